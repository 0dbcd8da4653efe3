-- The C core's terminal helpers in a real pseudo-terminal (script(1) from
-- util-linux gives one): core.isatty, and core.read_secret reading a line
-- without echo, with erase working, and leaving the terminal as it found it
-- however the read ends (a line, Ctrl-C, Ctrl-D). Nothing else is started.
local core = require "quecapi.core"
local shell = require "support.sh"

local INTERPRETER = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

-- Run in the child: report isatty, read one secret, then show the terminal's settings.
local CHILD = [[
package.cpath = %q
local core = require "quecapi.core"
io.write("tty:", tostring(core.isatty(0)), ",", tostring(core.isatty(1)), "\n")
io.flush()
local line, err, kind = core.read_secret("Secret: ")
if line then
  io.write("result:len=", #line, line == "p\195\164ssw0rd" and " right" or " wrong", "\n")
else
  io.write("result:nil ", tostring(kind), " ", tostring(err), "\n")
end
io.flush()
os.execute("stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(echo|icanon|isig)$' | tr '\\n' ' '; echo")
io.write("DONE\n")
]]

local function sleep(s) shell.run("sleep " .. s) end

local function wait_for(path, text)
  for _ = 1, 200 do
    local s = shell.read(path)
    if s and s:find(text, 1, true) then return s end
    sleep(0.05)
  end
  error("timed out waiting for " .. text .. " in:\n" .. tostring(shell.read(path)))
end

-- Types `keys` at the child's prompt in a fresh terminal; what the terminal showed.
local function type_at_prompt(keys)
  local dir = shell.tempdir()
  local script, fifo, log = dir .. "/child.lua", dir .. "/keys", dir .. "/typescript"
  shell.write(script, CHILD:format(package.cpath))
  assert(shell.run("mkfifo " .. shell.quote(fifo)))
  assert(shell.run("( script -qfec " .. shell.quote(INTERPRETER .. " " .. shell.quote(script)) .. " "
    .. shell.quote(log) .. " <" .. shell.quote(fifo) .. " >/dev/null 2>&1 & )"))
  -- read-write: opening never blocks, and the terminal keeps its input open
  local keyboard = assert(io.open(fifo, "r+"))
  wait_for(log, "Secret: ")
  keyboard:write(keys)
  keyboard:flush()
  local shown = wait_for(log, "DONE")
  keyboard:close()
  shell.run("rm -rf " .. shell.quote(dir))
  return shown
end

describe("[12.2] the core's terminal helpers", function()
  it("reads a line without echo, erase working, and restores the terminal", function()
    local shown = type_at_prompt("pxx\127\127\195\164ssw0rd\r")
    assert.matches("tty:true,true", shown, 1, true)
    assert.matches("result:len=9 right", shown, 1, true)
    assert.is_nil(shown:find("ssw0rd", 1, true), "the typed text was echoed")
    assert.matches("isig icanon echo", shown, 1, true)
  end)

  it("ends on Ctrl-C as interrupted, with the terminal restored", function()
    local shown = type_at_prompt("abc\3")
    assert.matches("result:nil interrupted", shown, 1, true)
    assert.matches("isig icanon echo", shown, 1, true)
  end)

  it("ends on Ctrl-D at an empty line as the end of input", function()
    local shown = type_at_prompt("\4")
    assert.matches("result:nil eof", shown, 1, true)
    assert.matches("isig icanon echo", shown, 1, true)
  end)

  it("says there is no terminal without a controlling one", function()
    local dir = shell.tempdir()
    shell.write(dir .. "/child.lua", CHILD:format(package.cpath))
    local out = shell.output("setsid -w " .. INTERPRETER .. " " .. shell.quote(dir .. "/child.lua") .. " </dev/null 2>&1")
    shell.run("rm -rf " .. shell.quote(dir))
    assert.matches("tty:false,false", out, 1, true)
    assert.matches("result:nil notty", out, 1, true)
  end)

  it("answers isatty for any descriptor number without failing", function()
    assert.is_false(core.isatty(-1))
    assert.is_false(core.isatty(987654))
    assert.is_false(core.isatty(2 ^ 40))
    assert.has_error(function() core.isatty("zero") end)
  end)
end)
