-- The commands in-process: quecapi.cli.main.run with a host of the spec's own
-- (environment, standard streams, terminal, and a scripted transport for the
-- client), so each command is checked without a network, a fake cloud or a
-- subprocess. bin/quecapi end to end: spec/integration/cli_spec.lua.
local main = require "quecapi.cli.main"
local catalog = require "quecapi.catalog"
local json = require "quecapi.json"
local recorder = require "support.recorder"
local shell = require "support.sh"

local BASE_URL = "https://iot-api.example.com"
local TSL = "GET /v2/binding/enduserapi/productTSL"
local ATTRS = "GET /v2/binding/enduserapi/getDeviceBusinessAttributes"
local CONTROL = "POST /v2/binding/enduserapi/batchControlDevice"
local LOGIN = "POST /v2/enduser/enduserapi/phonePwdLogin"
local DEVICES = "GET /v2/binding/enduserapi/userDeviceList"

local LOGIN_DATA = {
  accessToken = { token = "Bearer SECRET-ACCESS", expirationTime = 4102444800 },
  refreshToken = { token = "Bearer SECRET-REFRESH", expirationTime = 4102444800 },
}

local MODEL = {
  properties = {
    { code = "switch", name = "Switch", subType = "RW", dataType = "BOOL",
      specs = { { value = "true", name = "on" }, { value = "false", name = "off" } } },
    { code = "brightness", name = "Brightness", subType = "RW", dataType = "INT",
      specs = { min = "0", max = "100", step = "1", unit = "%" } },
  },
  services = { { code = "blink", name = "Blink", subType = "ASYNC",
                 inputData = { { code = "times", dataType = "INT", specs = { min = "1", max = "10" } } } } },
  events = {},
}

-- A stream the tool writes to or reads lines from.
local function stream(input)
  local s = { parts = {}, lines = {} }
  for line in (input or ""):gmatch("([^\n]*)\n") do s.lines[#s.lines + 1] = line end
  function s:write(...)
    for i = 1, select("#", ...) do self.parts[#self.parts + 1] = tostring((select(i, ...))) end
    return self
  end
  function s:read() return table.remove(self.lines, 1) end
  function s.flush() end
  function s:text() return table.concat(self.parts) end
  return s
end

local home

-- quecapi argv... in-process -> { status, out, err, transport }.
-- opts: env (added to the fake cloud-free defaults; false drops one), stdin,
-- transport, tty = list of read_secret results ({ line } or { nil, err, kind }).
local function run(argv, opts)
  opts = opts or {}
  local env = {
    HOME = home, XDG_CONFIG_HOME = home .. "/config", XDG_CACHE_HOME = home .. "/cache",
    QUECAPI_USER_DOMAIN = "C.DM.1.1", QUECAPI_USER_DOMAIN_SECRET = "S3cret-of-the-domain",
    QUECAPI_BASE_URL = BASE_URL,
  }
  for k, v in pairs(opts.env or {}) do env[k] = v or nil end
  local tty, prompts = opts.tty, {}
  local host = {
    getenv = function(name) return env[name] end,
    stdin = stream(opts.stdin), stdout = stream(), stderr = stream(),
    isatty = function(fd) return fd == 0 and tty ~= nil end,
    read_secret = function(prompt)
      prompts[#prompts + 1] = prompt
      local answer = table.remove(tty, 1) or { nil, "end of input", "eof" }
      return answer[1], answer[2], answer[3]
    end,
    transport = opts.transport,
  }
  local status = main.run(argv, host)
  local r = { status = status, out = host.stdout:text(), err = host.stderr:text(), prompts = prompts }
  for _, s in ipairs { "S3cret-of-the-domain", "SECRET-ACCESS", "SECRET-REFRESH", "Pw-unit-1" } do
    assert(not r.out:find(s, 1, true), "stdout shows a secret")
    assert(not r.err:find(s, 1, true), "stderr shows a secret")
  end
  return r
end

local function envelope(data)
  return 200, json.encode { code = 200, msg = "", data = data }, {}
end

-- A platform that logs in, lists a lamp, describes and reads it and takes writes.
local function platform(extra)
  local routes = {
    [LOGIN] = function() return envelope(LOGIN_DATA) end,
    [DEVICES] = function()
      return envelope { list = { { productKey = "p11pLZ", deviceKey = "lamp-1", deviceName = "Desk lamp",
                                   onlineStatus = 1 } }, total = 1, hasNextPage = false }
    end,
    [TSL] = function() return envelope(MODEL) end,
    [ATTRS] = function()
      return envelope { customizeTslInfo = {
        { resourceCode = "switch", dataType = "BOOL", resourceValce = "true" },
        { resourceCode = "brightness", dataType = "INT", resourceValce = "30" } } }
    end,
    [CONTROL] = function()
      return envelope { successList = { { data = { productKey = "p11pLZ", deviceKey = "lamp-1" } } },
                        failureList = {} }
    end,
  }
  for k, v in pairs(extra or {}) do routes[k] = v end
  return recorder.routes(routes)
end

local ACCOUNT = { QUECAPI_PHONE = "13800000001", QUECAPI_PASSWORD = "Pw-unit-1" }


-- Thing models are shared by the clients of a process; each spec starts afresh.
before_each(function() require("quecapi.things").MODELS:clear() end)

describe("[12.2] the commands in-process", function()
  before_each(function() home = shell.tempdir() end)
  after_each(function() shell.run("rm -rf " .. shell.quote(home)) end)

  it("prints the help and the version with nothing configured", function()
    local r = run({ "--help" }, { env = { QUECAPI_USER_DOMAIN_SECRET = false } })
    assert.are.equal(0, r.status, r.err)
    for _, name in ipairs(main.COMMANDS) do assert.matches("\n  " .. name .. " ", r.out) end
    assert.matches("QUECAPI_INTERNATIONAL_CODE", r.out, 1, true)
    assert.matches("--international-code CC", r.out, 1, true)
    assert.are.equal(r.out, run({ "help" }).out)
    r = run { "--version" }
    assert.are.equal(0, r.status)
    assert.are.equal("quecapi " .. require("quecapi").VERSION .. "\n", r.out)
  end)

  it("lists every option a command takes on its page", function()
    for _, name in ipairs(main.COMMANDS) do
      local c = assert(main.command(name))
      local page = run({ "help", name }).out
      assert.matches("^Usage: quecapi " .. name, page)
      for _, o in ipairs(c.options or {}) do assert.matches("--" .. o.name, page, 1, true) end
    end
  end)

  it("logs in with a piped password and lists the devices from the kept session", function()
    local t = platform()
    local r = run({ "login", "--phone", "13800000001" }, { stdin = "Pw-unit-1\n", transport = t })
    assert.are.equal(0, r.status, r.err)
    assert.matches("Logged in as +86 13800000001", r.out, 1, true)
    assert.matches("Password for +86 13800000001: ", r.err, 1, true)
    r = run({ "devices" }, { transport = t })
    assert.are.equal(0, r.status, r.err)
    assert.matches("^PRODUCT KEY%s+DEVICE KEY%s+NAME%s+STATUS\np11pLZ%s+lamp%-1%s+Desk lamp%s+online\n$", r.out)
    assert.are.equal(1, #t:to(LOGIN))
  end)

  it("reads a password typed on the terminal through the core's prompt", function()
    local t = platform()
    local r = run({ "login", "--phone", "13800000001" }, { tty = { { "Pw-unit-1" } }, transport = t })
    assert.are.equal(0, r.status, r.err)
    assert.are.same({ "Password for +86 13800000001: " }, r.prompts)
    assert.are.equal("", r.err)
  end)

  it("asks for a new password twice on a terminal and refuses two different ones", function()
    local t = platform()
    local r = run({ "register", "--phone", "13800000002", "--no-send" },
      { tty = { { "123456" }, { "Pw-unit-1" }, { "Pw-unit-2" } }, transport = t })
    assert.are.equal(2, r.status)
    assert.matches("the passwords differ", r.err, 1, true)
    assert.are.same({ "SMS code: ", "New password: ", "Repeat the password: " }, r.prompts)
    assert.are.equal(0, #t.sent)
  end)

  it("ends with 130 when the prompt is interrupted, 2 when it gets no answer", function()
    local r = run({ "login", "--phone", "13800000001" }, { tty = { { nil, "interrupted", "interrupted" } } })
    assert.are.equal(130, r.status)
    assert.are.equal("quecapi: interrupted\n", r.err)
    r = run({ "login", "--phone", "13800000001" }, { tty = {} })
    assert.are.equal(2, r.status)
    assert.matches("no password given", r.err, 1, true)
    r = run({ "login", "--phone", "13800000001" }, { stdin = "\n" })
    assert.are.equal(2, r.status)
    assert.matches("empty password", r.err, 1, true)
  end)

  it("picks the exit status from the failure's kind", function()
    local cases = {
      { function() return nil, "connection refused", "connect" end, 1, "connect" },
      { function() return nil, "timed out", "timeout" end, 1, "timeout" },
      { function() return 200, '{"code":5028,"msg":"Incorrect password"}', {} end, 1, "%[5028%]" },
      { function() return 502, "<html>bad gateway</html>", {} end, 1, "HTTP 502" },
    }
    for _, case in ipairs(cases) do
      local t = recorder.routes { [LOGIN] = case[1] }
      local r = run({ "login" }, { env = ACCOUNT, transport = t })
      assert.are.equal(case[2], r.status, r.err)
      assert.matches(case[3], r.err)
    end
    -- a region the library does not know is a configuration error
    local r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false, QUECAPI_REGION = "mars" } })
    assert.are.equal(2, r.status)
    assert.matches("region", r.err, 1, true)
  end)

  it("[13.9] says once which cloud it uses when no region or base URL is set", function()
    local t = platform()
    local r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false, QUECAPI_PHONE = "13800000001",
                                           QUECAPI_PASSWORD = "Pw-unit-1" }, transport = t })
    assert.are.equal(0, r.status, r.err)
    local _, notes = r.err:gsub("no region or base URL is set", "")
    assert.are.equal(1, notes, r.err)
    assert.matches("'cn' cloud, " .. require("quecapi").REGIONS.cn:gsub("%p", "%%%0"), r.err)
    assert.matches("^https://iot%-api%.quectelcn%.com/", t.sent[1].url)
    -- and says nothing when told
    r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false, QUECAPI_REGION = "eu" }, transport = platform() })
    assert.is_nil(r.err:find("no region", 1, true))
  end)

  it("[13.9] refuses a property code the thing model does not have, naming it (exit 2)", function()
    local t = platform()
    local r = run({ "get", "p11pLZ", "lamp-1", "switch", "nosuchcode" }, { env = ACCOUNT, transport = t })
    assert.are.equal(2, r.status)
    assert.are.equal("", r.out)
    assert.matches("'nosuchcode'", r.err, 1, true)
    assert.is_nil(r.err:find("'switch'", 1, true))
    assert.are.equal(0, #t:to(ATTRS))
    -- known codes are read with one thing model request
    r = run({ "get", "p11pLZ", "lamp-1", "brightness", "switch" }, { env = ACCOUNT, transport = t })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("brightness  30\nswitch      true\n", r.out)
    assert.are.equal(1, #t:to(TSL)) -- one for both runs: the clients of a process share thing models
  end)

  it("describes the thing model from client:thing_model", function()
    local r = run({ "tsl", "p11pLZ" }, { env = ACCOUNT, transport = platform() })
    assert.are.equal(0, r.status, r.err)
    assert.matches("\n  brightness%s+Brightness%s+INT%s+RW%s+0%.%.100 %%\n", r.out)
    assert.matches("\n  switch%s+Switch%s+BOOL%s+RW%s+true=on, false=off\n", r.out)
    assert.matches("\n  blink%s+Blink%s+ASYNC%s+times INT 1%.%.10\n", r.out)
    assert.matches("\nEvents\n  %(none%)\n", r.out)
  end)

  it("refuses values the thing model does not allow before sending (exit 2), sets the others", function()
    local t = platform()
    local r = run({ "set", "p11pLZ", "lamp-1", "brightness=500" }, { env = ACCOUNT, transport = t })
    assert.are.equal(2, r.status)
    assert.matches("^quecapi: set_properties: ", r.err)
    assert.are.equal(0, #t:to(CONTROL))
    r = run({ "set", "p11pLZ", "lamp-1", "brightness=80", "switch=false" }, { env = ACCOUNT, transport = t })
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("p11pLZ lamp-1: ok\n", r.out)
    assert.are.equal('[{"brightness":80},{"switch":false}]', json.decode(t:to(CONTROL)[1].body).data)
  end)

  it("exits 1 when the platform could not set a device", function()
    local t = platform { [CONTROL] = function()
      return envelope { successList = {}, failureList = { { data = { productKey = "p11pLZ", deviceKey = "lamp-1" },
                                                            msg = "offline" } } }
    end }
    local r = run({ "set", "p11pLZ", "lamp-1", "switch=true" }, { env = ACCOUNT, transport = t })
    assert.are.equal(1, r.status)
    assert.are.equal("p11pLZ lamp-1: failed: offline\n", r.out)
  end)

  it("[12.2] accepts set_user_info's signature, which is profile text there", function()
    local t = platform { ["PUT /v2/enduser/enduserapi/setUserInfo"] = function() return envelope {} end }
    local r = run({ "call", "set_user_info", "signature=hello there" }, { env = ACCOUNT, transport = t })
    assert.are.equal(0, r.status, r.err)
    local sent = t:to("PUT /v2/enduser/enduserapi/setUserInfo")
    assert.are.equal(1, #sent)
    assert.are.equal("hello there", recorder.args(sent[1]).signature or json.decode(sent[1].body).signature)
  end)

  it("checks call's parameters before anything is sent or a session is needed", function()
    for _, argv in ipairs {
      { "call", "user_device_list", "bogus=1" }, { "call", "user_device_list", "page=abc" },
      { "call", "product_tsl" }, { "call", "user_device_list", "signature=x" },
      { "call", "phone_pwd_login", "pwd=abc" }, { "call", "user_info", "--all" },
      { "call", "device_info", "pk" }, { "call", "batch_control_device", "deviceList=[oops" },
    } do
      local t = platform()
      local r = run(argv, { transport = t })
      assert.are.equal(2, r.status, table.concat(argv, " ") .. ": " .. r.err)
      assert.are.equal(0, #t.sent)
    end
  end)
end)

-- A command-line text for a value of each catalog type.
local TEXT = { string = "x1", integer = "1", number = "1.5", boolean = "true", list = "a,b",
               array = '[{"a":1}]', object = '{"a":1}' }

describe("[13.9] call works for every catalog operation", function()
  local call = require "quecapi.cli.cmd.call"

  before_each(function() home = shell.tempdir() end)
  after_each(function() shell.run("rm -rf " .. shell.quote(home)) end)

  for _, e in ipairs(catalog.entries) do
    it(e.method_name .. ": its required parameters are given or asked for", function()
      local t = recorder.new()
      function t:request(req)
        self.sent[#self.sent + 1] = req
        return envelope(LOGIN_DATA)
      end
      -- a session first, for the operations that need one
      assert.are.equal(0, run({ "login" }, { env = ACCOUNT, transport = t }).status)
      t.sent = {}
      local secret = {}
      for _, name in ipairs(call.secrets(e)) do secret[name] = true end
      local words, asked = { "call", e.method_name }, {}
      for _, name in ipairs(e.required) do
        local plain = e.encrypt and e.encrypt[name] or name
        if secret[plain] then
          if not (e.auth == "refresh" and plain == "refreshToken") then asked[#asked + 1] = plain end
        else
          words[#words + 1] = name .. "=" .. TEXT[e.params[name]]
        end
      end
      local answers = {}
      for i = 1, #asked do answers[i] = "Secret-" .. i end
      local r = run(words, { stdin = table.concat(answers, "\n") .. "\n", transport = t })
      assert.are.equal(0, r.status, r.err)
      assert.are.equal(1, #t.sent, r.err)
      assert.are.equal(e.method, t.sent[1].method)
      local path = BASE_URL .. e.path
      assert.are.equal(path, t.sent[1].url:sub(1, #path))
      for i, name in ipairs(asked) do
        assert.matches((catalog.snake_case(name):gsub("_", " ")) .. ": ", r.err, 1, true)
        -- what was typed reached the wire only as the API carries it (encrypted passwords are not plain)
        if not e.passwords[name] then
          local req = t.sent[1]
          local wire = recorder.args(req)[name] or (req.body and (json.decode(req.body) or {})[name])
          assert.are.equal("Secret-" .. i, wire, name)
        end
      end
      assert.matches("^%s*[%[{n\"%d]", r.out) -- the answer's data as JSON
      assert.is_nil(r.out:find("SECRET-ACCESS", 1, true))
    end)
  end
end)
