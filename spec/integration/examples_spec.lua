-- The examples, run as a user would run them, against the fake cloud.
--
-- They run on the interpreter that runs these specs, with the suite's build of
-- the core (CORE_PREFIX, as spec/run sets it), so a clean checkout needs no
-- other build: the modules from lua/, the core from build/<prefix><interpreter>.
local fake = require "support.fake"

local PHONE, PASSWORD = "13300000001", "examples-Pass-1"

local shell = require "support.sh"
local shell_quote = shell.quote

local ROOT = shell.output("pwd")
local PATH = os.getenv("PATH") or "/usr/bin:/bin"
local INTERPRETER = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local LUA_DIR = ROOT .. "/lua/?.lua"
local CORE = ROOT .. "/build/" .. (os.getenv("CORE_PREFIX") or "") .. INTERPRETER .. "/?.so"

-- The environment of a run: the paths to this checkout and `extra`.
local function environment(extra)
  local env = {
    PATH = PATH, HOME = os.getenv("HOME") or "/tmp",
    LUA_PATH = LUA_DIR .. ";;", LUA_PATH_5_4 = LUA_DIR .. ";;", LUA_CPATH = CORE .. ";;", LUA_CPATH_5_4 = CORE .. ";;",
  }
  for k, v in pairs(extra or {}) do env[k] = v end
  local parts = { "env -i" }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  return table.concat(parts, " ")
end

-- Run an example with the fake cloud's settings; output, exit status.
local function run(script, args, extra_env)
  local env = {
    QUECAPI_BASE_URL = fake.url, QUECAPI_CA_FILE = fake.ca,
    QUECAPI_USER_DOMAIN = fake.user_domain, QUECAPI_USER_DOMAIN_SECRET = fake.secret,
    QUECAPI_PHONE = PHONE, QUECAPI_PASSWORD = PASSWORD,
  }
  for k, v in pairs(extra_env or {}) do env[k] = v end
  local out = shell.output(environment(env) .. " " .. INTERPRETER .. " examples/" .. script .. " " .. (args or "")
    .. " 2>&1; echo \"exit=$?\"")
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

describe("examples", function()
  before_each(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 3)
  end)

  it("quickstart.lua logs in and prints the device table", function()
    local out, status = run("quickstart.lua")
    assert.are.equal(0, status, out)
    assert.matches("PRODUCT KEY%s+DEVICE KEY%s+NAME%s+STATUS", out)
    assert.matches("D0003", out, 1, true)
    assert.matches("3 device(s)", out, 1, true)
    assert.is_nil(out:find(PASSWORD, 1, true))
  end)

  it("control.lua switches a device on and reads it back", function()
    local out, status = run("control.lua")
    assert.are.equal(0, status, out)
    assert.matches("switched on", out, 1, true)
    assert.matches("after:%s+switch%s+true", out)
  end)

  it("poller.lua appends values to a CSV file and reuses its login", function()
    local dir = shell.tempdir()
    local csv, tokens = dir .. "/values.csv", dir .. "/tokens.json"
    local since = fake.seq()
    local out, status = run("poller.lua", csv .. " switch brightness", { QUECAPI_TOKEN_FILE = tokens })
    assert.are.equal(0, status, out)
    out, status = run("poller.lua", csv .. " switch brightness", { QUECAPI_TOKEN_FILE = tokens })
    assert.are.equal(0, status, out)
    local lines = {}
    for line in io.lines(csv) do lines[#lines + 1] = line end
    shell.run("rm -rf " .. dir)
    assert.are.equal("time,productKey,deviceKey,code,value", lines[1])
    assert.are.equal(1 + 2 * 3 * 2, #lines) -- header + 2 runs x 3 devices x 2 codes
    assert.matches("^%d+%-%d+%-%d+T[%d:]+Z,p11pLZ,D0001,brightness,0$", lines[2])
    assert.are.equal(1, #fake.received(since, "/v2/enduser/enduserapi/phonePwdLogin"))
  end)

  it("[13.7] the README's fake cloud snippet prints a new user's devices", function()
    local readme = assert(shell.read(ROOT .. "/README.md"))
    local section = assert(readme:match("\n## Testing your code against the fake cloud\n(.-)\n## "))
    local snippet = assert(section:match("```lua\n(.-)```"))
    local path = os.tmpname()
    shell.write(path, snippet)
    local out = shell.output(environment { FAKECLOUD_URL = fake.url, FAKECLOUD_CA = fake.ca } .. " " .. INTERPRETER
      .. " " .. shell_quote(path) .. " 2>&1; echo \"exit=$?\"")
    os.remove(path)
    assert.are.equal(0, tonumber(out:match("exit=(%d+)%s*$")), out)
    for i = 1, 3 do assert.matches("p11pLZ\tC1000010" .. i .. "\tRGB light%-" .. i .. "\n", out) end
  end)

  it("[13.7] fakecloud_spec.lua, a user's own busted spec, passes against the fake cloud", function()
    -- from elsewhere, as a user's project: this checkout's .busted plays no part
    local out = shell.output("cd /tmp && " .. environment { FAKECLOUD_URL = fake.url, FAKECLOUD_CA = fake.ca }
      .. " " .. INTERPRETER .. " /usr/bin/busted -o plainTerminal " .. shell_quote(ROOT .. "/examples/fakecloud_spec.lua")
      .. " 2>&1; echo \"exit=$?\"")
    assert.are.equal(0, tonumber(out:match("exit=(%d+)%s*$")), out)
    assert.matches("5 successes / 0 failures / 0 errors", out, 1, true)
  end)
end)
