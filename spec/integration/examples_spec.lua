-- The examples, run as a user would run them, against the fake cloud.
local fake = require "support.fake"

local PHONE, PASSWORD = "13300000001", "examples-Pass-1"

local shell = require "support.sh"
local shell_quote = shell.quote

-- Run an example with lua5.4 and the fake cloud's settings; output, exit status.
local function run(script, args, extra_env)
  local env = {
    LUA_PATH = os.getenv("LUA_PATH"), LUA_PATH_5_4 = os.getenv("LUA_PATH_5_4"),
    LUA_CPATH_5_4 = os.getenv("LUA_CPATH_5_4") or os.getenv("LUA_CPATH"),
    QUECAPI_BASE_URL = fake.url, QUECAPI_CA_FILE = fake.ca,
    QUECAPI_USER_DOMAIN = fake.user_domain, QUECAPI_USER_DOMAIN_SECRET = fake.secret,
    QUECAPI_PHONE = PHONE, QUECAPI_PASSWORD = PASSWORD,
  }
  for k, v in pairs(extra_env or {}) do env[k] = v end
  local parts = { "env -i PATH=/usr/bin:/bin" }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  -- the examples run on Lua 5.4 whatever runs the specs; its core comes from build/lua5.4
  parts[#parts + 1] = "LUA_CPATH_5_4=" .. shell_quote("build/lua5.4/?.so;;")
  parts[#parts + 1] = "lua5.4 examples/" .. script .. " " .. (args or "") .. " 2>&1; echo \"exit=$?\""
  local out = shell.output(table.concat(parts, " "))
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
    local logins = 0
    for _, r in ipairs(fake.requests(since)) do
      if r.path == "/v2/enduser/enduserapi/phonePwdLogin" then logins = logins + 1 end
    end
    assert.are.equal(1, logins)
  end)
end)
