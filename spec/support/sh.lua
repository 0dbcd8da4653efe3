-- Shell commands and files for specs: one copy of the small helpers every spec
-- that starts processes or writes files needs.
-- The plain helpers are the fake cloud's (quecapi.fakecloud.shell); what specs
-- add is a clean environment for the programs they start, and writes that raise.
local shell = require "quecapi.fakecloud.shell"

local _M = {}

--- A string as one shell word.
_M.quote = shell.quote

-- Under `make check-asan` the interpreter runs with the ASan runtime in
-- LD_PRELOAD. The programs started from here (sh, nginx, curl, coreutils) are not
-- built for it: inheriting it, curl can hang and any of them can leave leak
-- reports. The shell that os.execute starts is replaced at once by a clean one.
local function clean(cmd)
  return "exec env -u LD_PRELOAD /bin/sh -c " .. _M.quote(cmd)
end

--- Run a shell command: true on exit status 0, on Lua 5.1 and 5.2+ alike.
function _M.run(cmd)
  return shell.run(clean(cmd))
end

--- Run a shell command and return what it printed, without the final newline.
function _M.output(cmd)
  return (assert(shell.output(clean(cmd)), "cannot start a shell"))
end

--- A file's contents, or nil when it cannot be read.
_M.read = shell.read

function _M.write(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end

--- An object that calls `f` when it is collected: keep it in a module to run
-- `f` at exit (busted ends with os.exit(code, true), which closes the state).
-- Lua 5.1 has no __gc on tables: there it is a userdata proxy.
function _M.on_collect(f)
  if rawget(_G, "newproxy") then
    local p = newproxy(true)
    getmetatable(p).__gc = f
    return p
  end
  return setmetatable({}, { __gc = f })
end

--- A fresh directory (mode 0755) for one test or one server.
function _M.tempdir()
  local name = os.tmpname()
  os.remove(name)
  assert(_M.run("mkdir -m 0755 " .. _M.quote(name)), "cannot create " .. name)
  return name
end

--- A file's permission bits as octal digits, e.g. "600".
function _M.mode(path)
  return _M.output("stat -c %a " .. _M.quote(path))
end

return _M
