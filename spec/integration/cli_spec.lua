-- bin/quecapi as a user runs it: a subprocess against the fake cloud, with HOME
-- and the XDG folders in a fresh temporary folder per test and an otherwise
-- empty environment, so nothing reads or touches the real home.
--
-- The subprocess runs on the interpreter that runs these specs (Lua 5.4 or
-- LuaJIT, or their sanitizer wrappers on PATH) with the suite's build of the
-- core (CORE_PREFIX): bin/quecapi is started from a checkout-shaped folder
-- whose lua/ is the checkout's and whose build/<interpreter> is the suite's
-- build, so the launcher finds them the way it finds a real checkout's.
--
-- Every run is also checked for leaks: no secret this test knows (the user domain
-- secret, passwords, SMS codes, tokens) may appear on its stdout or stderr.
--
-- The command-level units (arguments, settings, each command) are specced
-- in-process in spec/unit/cli_*_spec.lua; these are the end-to-end cases.
local fake = require "support.fake"
local json = require "quecapi.json"
local quecapi_client = require "quecapi.client"

local shell = require "support.sh"
local sh_quote, read_file, write_file = shell.quote, shell.read, shell.write

local function capture(cmd)
  return (shell.output(cmd):gsub("%s+$", ""))
end

local ROOT = capture("pwd")
local PATH = os.getenv("PATH") or "/usr/bin:/bin"

-- The interpreter of this run, by the name its build folder has.
local INTERPRETER = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local CORE_DIR = ROOT .. "/build/" .. (os.getenv("CORE_PREFIX") or "") .. INTERPRETER

-- A checkout as the launcher sees one: bin/quecapi (the checkout's own file),
-- lua/ and the suite's core as build/<interpreter>.
local CHECKOUT = capture("mktemp -d /tmp/quecapi-cli-checkout.XXXXXX")
assert(shell.run(table.concat({
  "mkdir -p " .. sh_quote(CHECKOUT .. "/bin") .. " " .. sh_quote(CHECKOUT .. "/build"),
  "ln -s " .. sh_quote(ROOT .. "/bin/quecapi") .. " " .. sh_quote(CHECKOUT .. "/bin/quecapi"),
  "ln -s " .. sh_quote(ROOT .. "/lua") .. " " .. sh_quote(CHECKOUT .. "/lua"),
  "ln -s " .. sh_quote(CORE_DIR) .. " " .. sh_quote(CHECKOUT .. "/build/" .. INTERPRETER),
}, " && ")), "cannot make " .. CHECKOUT)

local mode_of = shell.mode

local function sleep(s)
  os.execute("sleep " .. s)
end

-- state of the current test
local box, secrets

local function secret(value)
  secrets[#secrets + 1] = value
  return value
end

local function cli_env(env)
  local vars = {
    PATH = PATH, HOME = box .. "/home",
    XDG_CONFIG_HOME = box .. "/config", XDG_CACHE_HOME = box .. "/cache",
  }
  if env ~= false then
    vars.QUECAPI_USER_DOMAIN = fake.user_domain
    vars.QUECAPI_USER_DOMAIN_SECRET = fake.secret
    vars.QUECAPI_BASE_URL = fake.url
    vars.QUECAPI_CA_FILE = fake.ca
  end
  for k, v in pairs(type(env) == "table" and env or {}) do
    if v == false then vars[k] = nil else vars[k] = v end
  end
  local parts = {}
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. sh_quote(v) end
  table.sort(parts)
  return table.concat(parts, " ")
end

-- The shell command for one run; its output lands in box/out, box/err, box/rc.
local function command_line(args, opts, stdin_path)
  local words = {}
  for i, a in ipairs(args) do words[i] = sh_quote(a) end
  -- from the checkout as `lua5.4 bin/quecapi`, or by its full path from elsewhere
  local dir, script = CHECKOUT, "bin/quecapi"
  if opts.elsewhere then dir, script = box, CHECKOUT .. "/bin/quecapi" end
  return "cd " .. sh_quote(dir) .. " && env -i " .. cli_env(opts.env)
    .. " " .. (opts.interpreter or INTERPRETER) .. " " .. sh_quote(script) .. " " .. table.concat(words, " ")
    .. " <" .. sh_quote(stdin_path) .. " >" .. sh_quote(box .. "/out") .. " 2>" .. sh_quote(box .. "/err")
    .. "; echo $? >" .. sh_quote(box .. "/rc.tmp") .. " && mv " .. sh_quote(box .. "/rc.tmp")
    .. " " .. sh_quote(box .. "/rc")
end

local function assert_no_secrets(r, args)
  for i, s in ipairs(secrets) do
    if type(s) == "string" and #s >= 4 then
      assert(not r.out:find(s, 1, true), "stdout of quecapi " .. table.concat(args, " ") .. " shows secret #" .. i)
      assert(not r.err:find(s, 1, true), "stderr of quecapi " .. table.concat(args, " ") .. " shows secret #" .. i)
    end
  end
end

local function result(args)
  local r = { code = tonumber(read_file(box .. "/rc")), out = read_file(box .. "/out") or "",
              err = read_file(box .. "/err") or "" }
  os.remove(box .. "/rc")
  assert_no_secrets(r, args)
  return r
end

-- quecapi args... -> { code, out, err }; opts.stdin is piped in, opts.env adds
-- variables (false drops one; env = false drops the fake cloud's settings).
local function run(args, opts)
  opts = opts or {}
  local stdin_path = "/dev/null"
  if opts.stdin then
    stdin_path = box .. "/stdin"
    write_file(stdin_path, opts.stdin)
  end
  os.execute(command_line(args, opts, stdin_path))
  return result(args)
end

local function wait_for(what, check)
  for _ = 1, 200 do
    local v = check()
    if v then return v end
    sleep(0.05)
  end
  error("timed out waiting for " .. what)
end

-- A run whose stdin is a pipe the test writes to while the command runs:
-- start(args, opts) -> feed(text), finish() -> result.
local function start(args, opts)
  local fifo = box .. "/fifo"
  os.execute("mkfifo " .. sh_quote(fifo))
  os.execute("( " .. command_line(args, opts or {}, fifo) .. " ) >/dev/null 2>&1 &")
  -- read-write, so opening never blocks even if the command has not started
  local pipe = assert(io.open(fifo, "r+"))
  return {
    feed = function(text)
      pipe:write(text)
      pipe:flush()
    end,
    finish = function()
      pipe:close()
      wait_for("quecapi " .. table.concat(args, " "), function() return read_file(box .. "/rc") end)
      return result(args)
    end,
  }
end

local function lines(text)
  local list = {}
  for line in text:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

local function token_path()
  return box .. "/cache/quecapi/tokens.json"
end

-- The session in the token file; its tokens become secrets to look for.
local function stored_tokens()
  local doc = json.decode(read_file(token_path()) or "") or {}
  -- tokens are kept per origin of the base URL and per user domain
  local t = doc[quecapi_client.origin_of(fake.url) .. " " .. fake.user_domain]
  if t then
    secret(t.access_token)
    secret(t.refresh_token)
    secret((t.access_token or ""):gsub("^Bearer ", ""))
    secret((t.refresh_token or ""):gsub("^Bearer ", ""))
  end
  return t
end

-- A user with devices, seeded through the fake's control API.
local function seed(phone, password, devices)
  secret(password)
  fake.user(phone, password)
  if devices then fake.control("POST", "/_fake/devices", { phone = phone, devices = devices }) end
end

local function login(phone, password)
  local r = run({ "login", "--phone", phone }, { env = { QUECAPI_PASSWORD = password } })
  assert.are.equal(0, r.code, r.err)
  return r
end

local function write_config(path, text, mode)
  os.execute("mkdir -p " .. sh_quote(path:match("^(.*)/[^/]*$")))
  write_file(path, text)
  os.execute("chmod " .. mode .. " " .. sh_quote(path))
end

local function config_text(fields)
  local parts = {}
  for k, v in pairs(fields) do parts[#parts + 1] = string.format("  %s = %q,", k, v) end
  table.sort(parts)
  return "return {\n" .. table.concat(parts, "\n") .. "\n}\n"
end

local function requests_to(path, since)
  local found = {}
  for _, r in ipairs((fake.requests(since))) do
    if r.path == path then found[#found + 1] = r end
  end
  return found
end

local COMMAND_NAMES = { "login", "logout", "sms", "register", "devices", "device", "tsl", "get", "fakecloud",
                        "set", "history", "call", "help" }

local LAMP = { productKey = "p11pLZ", deviceKey = "lamp-1", deviceName = "Desk lamp", online = true,
               values = { brightness = 30, switch = false } }

describe("bin/quecapi", function()
  before_each(function()
    fake.reset()
    box = capture("mktemp -d /tmp/quecapi-cli.XXXXXX")
    os.execute("mkdir -p " .. sh_quote(box .. "/home"))
    secrets = { fake.secret }
  end)

  after_each(function()
    if box and box:find("^/tmp/quecapi%-cli%.") then os.execute("rm -rf " .. sh_quote(box)) end
  end)

  teardown(function()
    if CHECKOUT:find("^/tmp/quecapi%-cli%-checkout%.") then os.execute("rm -rf " .. sh_quote(CHECKOUT)) end
  end)

  describe("help", function()
    it("describes the tool, its settings and its exit codes", function()
      local r = run { "--help" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("Usage: quecapi %[options%] COMMAND", r.out)
      for _, name in ipairs(COMMAND_NAMES) do assert.matches("\n  " .. name .. " ", r.out) end
      assert.matches("QUECAPI_USER_DOMAIN_SECRET", r.out, 1, true)
      assert.matches("never taken as options", r.out, 1, true)
      assert.matches("Exit status", r.out, 1, true)
      assert.are.equal(r.out, run({ "-h" }).out)
      assert.are.equal(r.out, run({ "help" }).out)
    end)

    it("has a page for every command, the same through --help, -h and help", function()
      for _, name in ipairs(COMMAND_NAMES) do
        local r = run { name, "--help" }
        assert.are.equal(0, r.code, r.err)
        assert.matches("^Usage: quecapi " .. name, r.out)
        assert.are.equal(r.out, run({ "help", name }).out)
        assert.are.equal(r.out, run({ name, "-h" }).out)
        assert.are.equal(r.out, run({ "--help", name }).out)
      end
      assert.matches("%-%-json", run({ "help", "devices" }).out)
      assert.matches("%-%-since", run({ "help", "history" }).out)
    end)

    it("finds its modules next to the script from any directory", function()
      local r = run({ "--version" }, { elsewhere = true })
      assert.are.equal(0, r.code, r.err)
      assert.matches("^quecapi %d+%.%d+%.%d+\n$", r.out)
    end)

    it("needs no configuration", function()
      local r = run({ "devices", "--help" }, { env = false })
      assert.are.equal(0, r.code, r.err)
    end)
  end)

  describe("usage errors exit 2", function()
    local cases = {
      {}, { "frobnicate" }, { "--bogus" }, { "devices", "--bogus" }, { "devices", "--json=yes" },
      { "devices", "--page-size", "0" }, { "history", "p11pLZ", "lamp-1", "brightness", "--page-size", "x" },
      { "devices", "extra" }, { "--phone" }, { "help", "nope" },
      { "get", "p11pLZ" }, { "device", "p11pLZ" }, { "tsl" }, { "history", "p11pLZ", "lamp-1" },
      { "history", "p11pLZ", "lamp-1", "brightness", "--since", "5y" }, { "set", "p11pLZ", "lamp-1" },
      { "set", "p11pLZ", "lamp-1", "nonsense" }, { "set", "p11pLZ", "lamp-1", "color={bad" },
      { "call" }, { "call", "no_such_operation" }, { "call", "user_device_list", "bogus=1" },
      { "call", "user_device_list", "page=abc" }, { "call", "product_tsl" },
      { "call", "user_device_list", "signature=x" },
      { "call", "user_info", "--all" }, { "sms", "--type", "x", "--phone", "1" },
      { "logout", "extra" }, { "login", "--phone", "1", "--email", "a@b.c" },
    }
    for _, args in ipairs(cases) do
      it("for quecapi " .. table.concat(args, " "), function()
        local r = run(args)
        assert.are.equal(2, r.code, r.err)
        assert.are.equal("", r.out)
        assert.matches("^quecapi: ", r.err)
      end)
    end

    it("when login has no account to log in with", function()
      local r = run { "login" }
      assert.are.equal(2, r.code)
      assert.matches("--phone", r.err, 1, true)
    end)

    it("for the user domain secret given as an option, without repeating it", function()
      for _, args in ipairs {
        { "--user-domain-secret", fake.secret, "devices" },
        { "devices", "--user-domain-secret=" .. fake.secret },
      } do
        local r = run(args)
        assert.are.equal(2, r.code)
        assert.matches("QUECAPI_USER_DOMAIN_SECRET", r.err, 1, true)
      end
      local r = run { "login", "--password", secret("Pw-on-argv-1"), "--phone", "13800000000" }
      assert.are.equal(2, r.code)
      assert.matches("QUECAPI_PASSWORD", r.err, 1, true)
    end)

    it("without a user domain secret", function()
      local r = run({ "devices" }, { env = { QUECAPI_USER_DOMAIN_SECRET = false } })
      assert.are.equal(2, r.code)
      assert.matches("QUECAPI_USER_DOMAIN_SECRET", r.err, 1, true)
    end)

    it("for an unknown region", function()
      local r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false, QUECAPI_REGION = "mars" } })
      assert.are.equal(2, r.code)
      assert.matches("region", r.err, 1, true)
    end)
  end)

  describe("the config file", function()
    local function settings(extra)
      local t = { user_domain = fake.user_domain, user_domain_secret = fake.secret,
                  base_url = fake.url, ca_file = fake.ca }
      for k, v in pairs(extra or {}) do t[k] = v end
      return config_text(t)
    end

    it("is refused, exit 2, when group or others may read it", function()
      local path = box .. "/config/quecapi/config.lua"
      for _, mode in ipairs { "644", "640", "604" } do
        write_config(path, settings(), mode)
        local r = run({ "devices" }, { env = false })
        assert.are.equal(2, r.code, r.err)
        assert.matches("chmod 600", r.err, 1, true)
        assert.matches("config.lua", r.err, 1, true)
      end
    end)

    it("is used when private, without any QUECAPI_ variable", function()
      seed("13800000101", "Pw-config-101")
      write_config(box .. "/config/quecapi/config.lua",
        settings { phone = "13800000101", password = "Pw-config-101" }, "600")
      local r = run({ "login" }, { env = false })
      assert.are.equal(0, r.code, r.err)
      assert.matches("Logged in as %+86 13800000101", r.out)
    end)

    it("is found through QUECAPI_CONFIG and --config", function()
      seed("13800000102", "Pw-config-102")
      local path = box .. "/elsewhere.lua"
      write_config(path, settings { phone = "13800000102", password = "Pw-config-102" }, "600")
      local only_file = { QUECAPI_CONFIG = path, QUECAPI_USER_DOMAIN_SECRET = false }
      assert.are.equal(0, run({ "login" }, { env = only_file }).code)
      assert.are.equal(0, run({ "login", "--config", path }, { env = false }).code)
      local r = run({ "login", "--config", box .. "/missing.lua" }, { env = false })
      assert.are.equal(2, r.code)
      local world = box .. "/world.lua"
      write_config(world, settings(), "644")
      assert.are.equal(2, run({ "login", "--config", world }, { env = false }).code)
    end)

    it("lives under HOME when the XDG variables are not set", function()
      seed("13800000105", "Pw-home-105")
      write_config(box .. "/home/.config/quecapi/config.lua",
        settings { phone = "13800000105", password = "Pw-home-105" }, "600")
      local r = run({ "login" }, { env = { QUECAPI_USER_DOMAIN_SECRET = false, XDG_CONFIG_HOME = false,
                                           XDG_CACHE_HOME = false } })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("600", mode_of(box .. "/home/.cache/quecapi/tokens.json"))
      assert.is_nil(read_file(token_path()))
    end)

    it("does not quote its text in a syntax error", function()
      write_config(box .. "/config/quecapi/config.lua",
        'return { user_domain_secret = "' .. fake.secret .. '\n', "600")
      local r = run({ "devices" }, { env = false })
      assert.are.equal(2, r.code)
      assert.matches("config.lua", r.err, 1, true)
    end)

    it("rejects unknown settings and code that reaches for libraries", function()
      local path = box .. "/config/quecapi/config.lua"
      write_config(path, "return { user_domian = 'x' }", "600")
      assert.are.equal(2, run({ "devices" }, { env = false }).code)
      write_config(path, "os.execute('touch " .. box .. "/pwned') return {}", "600")
      assert.are.equal(2, run({ "devices" }, { env = false }).code)
      assert.is_nil(read_file(box .. "/pwned"))
    end)

    it("loses to the environment, which loses to the options", function()
      seed("13800000103", "Pw-order-103")
      local dead = "https://127.0.0.1:1"
      write_config(box .. "/config/quecapi/config.lua", settings { base_url = dead, region = "eu" }, "600")
      local env = { QUECAPI_PASSWORD = "Pw-order-103", QUECAPI_BASE_URL = false }
      -- the config file's dead URL alone
      assert.are.equal(1, run({ "login", "--phone", "13800000103" }, { env = env }).code)
      -- the environment's URL wins over it
      env.QUECAPI_BASE_URL = fake.url
      assert.are.equal(0, run({ "login", "--phone", "13800000103" }, { env = env }).code)
      -- an option wins over the environment, both ways
      env.QUECAPI_BASE_URL = dead
      assert.are.equal(0, run({ "login", "--phone", "13800000103", "--base-url", fake.url }, { env = env }).code)
      env.QUECAPI_BASE_URL = fake.url
      local r = run({ "login", "--phone", "13800000103", "--base-url", dead }, { env = env })
      assert.are.equal(1, r.code)
      assert.matches("request failed", r.err, 1, true)
    end)

    it("keeps a region from the environment over a base URL from the file", function()
      write_config(box .. "/config/quecapi/config.lua", settings(), "600")
      -- an unknown region is a configuration error: seen only if the region is used
      local r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false, QUECAPI_REGION = "mars" } })
      assert.are.equal(2, r.code)
      assert.matches("region", r.err, 1, true)
      -- and the file's URL is used when nothing later names an endpoint
      r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false } })
      assert.are.equal(1, r.code)
      assert.matches("not logged in", r.err, 1, true)
    end)
  end)

  describe("login and devices", function()
    local DEVICES = {
      { productKey = "p11pLZ", deviceKey = "lamp-1", deviceName = "Desk lamp", online = true },
      { productKey = "p11pLZ", deviceKey = "lamp-22", deviceName = "Hall", online = false },
      { productKey = "p11pLZ", deviceKey = "l3", deviceName = "Living room ceiling", online = true },
    }

    it("logs in, keeps the tokens 0600 and lists the devices from them", function()
      seed("13800000201", "Pw-login-201", DEVICES)
      local r = login("13800000201", "Pw-login-201")
      assert.matches("Logged in as %+86 13800000201", r.out)
      assert.are.equal("600", mode_of(token_path()))
      assert.are.equal("700", mode_of(box .. "/cache/quecapi"))
      local t = stored_tokens()
      assert.is_string(t.access_token)
      assert.is_string(t.refresh_token)

      -- no password now: only the token file
      r = run { "devices" }
      assert.are.equal(0, r.code, r.err)
      local rows = lines(r.out)
      assert.are.equal(4, #rows)
      assert.matches("^PRODUCT KEY%s+DEVICE KEY%s+NAME%s+STATUS$", rows[1])
      local status_at = rows[1]:find("STATUS", 1, true)
      local name_at = rows[1]:find("NAME", 1, true)
      for i, d in ipairs(DEVICES) do
        local row = rows[i + 1]
        assert.matches("^p11pLZ%s+" .. d.deviceKey:gsub("%-", "%%-") .. "%s", row)
        assert.are.equal(name_at, row:find(d.deviceName, 1, true))
        assert.are.equal(status_at, row:find(d.online and "online" or "offline", 1, true))
      end
      assert_no_secrets(r, { "devices" })
    end)

    it("prints the devices as a JSON array with --json", function()
      seed("13800000202", "Pw-login-202", DEVICES)
      login("13800000202", "Pw-login-202")
      local r = run { "devices", "--json" }
      assert.are.equal(0, r.code, r.err)
      local list = json.decode(r.out)
      assert.are.equal(3, #list)
      assert.are.equal("lamp-1", list[1].deviceKey)
      assert.are.equal("Desk lamp", list[1].deviceName)
      assert.are.equal(1, list[1].onlineStatus)
      assert.are.equal(0, list[2].onlineStatus)
    end)

    it("prints an empty JSON array when there are no devices", function()
      seed("13800000203", "Pw-login-203")
      login("13800000203", "Pw-login-203")
      local r = run { "devices", "--json" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("[]\n", r.out)
      assert.matches("No devices", run({ "devices" }).out)
    end)

    it("reads every page", function()
      seed("13800000204", "Pw-login-204")
      fake.control("POST", "/_fake/devices", { phone = "13800000204", count = 23 })
      login("13800000204", "Pw-login-204")
      local since = fake.seq()
      local r = run { "devices", "--json", "--page-size", "10" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(23, #json.decode(r.out))
      assert.are.equal(3, #requests_to("/v2/binding/enduserapi/userDeviceList", since))
      assert.are.equal(24, #lines(run({ "devices", "--page-size", "7" }).out))
    end)

    it("asks for the password on stdin when none is configured", function()
      seed("13800000205", "Pw-stdin-205")
      local r = run({ "login", "--phone", "13800000205" }, { stdin = "Pw-stdin-205\n" })
      assert.are.equal(0, r.code, r.err)
      assert.matches("Password", r.err, 1, true)
      assert.is_table(stored_tokens())
    end)

    it("logs in by email", function()
      fake.control("POST", "/_fake/users", { email = "cli@example.com", password = secret("Pw-mail-206") })
      local r = run({ "login", "--email", "cli@example.com" }, { env = { QUECAPI_PASSWORD = "Pw-mail-206" } })
      assert.are.equal(0, r.code, r.err)
      assert.matches("Logged in as cli@example.com", r.out, 1, true)
    end)

    it("exits 1 with the platform's code for a wrong password", function()
      seed("13800000207", "Pw-right-207")
      local r = run({ "login", "--phone", "13800000207" }, { stdin = secret("Pw-wrong-207") .. "\n" })
      assert.are.equal(1, r.code)
      assert.matches("%[5028%]", r.err)
      assert.is_nil(read_file(token_path()) and stored_tokens())
    end)

    it("exits 1 when not logged in", function()
      local r = run { "devices" }
      assert.are.equal(1, r.code)
      assert.matches("quecapi login", r.err, 1, true)
    end)

    it("logs in by itself with a configured password", function()
      seed("13800000208", "Pw-auto-208", DEVICES)
      local r = run({ "devices" }, { env = { QUECAPI_PHONE = "13800000208", QUECAPI_PASSWORD = "Pw-auto-208" } })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(4, #lines(r.out))
      assert.is_table(stored_tokens())
    end)

    it("renews an expired access token with the refresh token", function()
      seed("13800000209", "Pw-renew-209", DEVICES)
      login("13800000209", "Pw-renew-209")
      local before = stored_tokens().access_token
      fake.control("POST", "/_fake/expire", { access_only = true })
      local r = run { "devices" }
      assert.are.equal(0, r.code, r.err)
      assert.are_not.equal(before, stored_tokens().access_token)
    end)

    it("logs in again when the whole session has expired, given a password", function()
      seed("13800000211", "Pw-again-211", DEVICES)
      login("13800000211", "Pw-again-211")
      stored_tokens()
      fake.control("POST", "/_fake/expire", {})
      local r = run { "devices" }
      assert.are.equal(1, r.code)
      assert.matches("%[5032%]", r.err)
      r = run({ "devices" }, { env = { QUECAPI_PHONE = "13800000211", QUECAPI_PASSWORD = "Pw-again-211" } })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(4, #lines(r.out))
    end)

    it("logs requests to stderr with --verbose, secrets masked", function()
      seed("13800000210", "Pw-verbose-210", DEVICES)
      local r = run({ "login", "--phone", "13800000210", "--verbose" },
        { env = { QUECAPI_PASSWORD = "Pw-verbose-210" } })
      assert.are.equal(0, r.code, r.err)
      assert.matches("phonePwdLogin", r.err, 1, true)
      stored_tokens()
      r = run { "devices", "-v" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("GET /v2/binding/enduserapi/userDeviceList", r.err, 1, true)
      assert.are.equal(4, #lines(r.out))
      assert_no_secrets(r, { "devices", "-v" })
    end)
  end)

  describe("sms and register", function()
    it("sends a code, then registers with the code and password piped in", function()
      local phone = "13800000301"
      local r = run { "sms", "--phone", phone }
      assert.are.equal(0, r.code, r.err)
      assert.matches("sent to %+86 " .. phone, r.out)
      local code = secret(fake.sms_code(phone, 3))
      local password = secret("Pw-register-301")
      r = run({ "register", "--phone", phone, "--no-send" }, { stdin = code .. "\n" .. password .. "\n" })
      assert.are.equal(0, r.code, r.err)
      assert.matches("Registered %+86 " .. phone, r.out)
      assert.matches("SMS code:", r.err, 1, true)
      assert.matches("password:", r.err, 1, true)
      login(phone, password)
    end)

    it("registers end to end: the code is typed after the command sent it", function()
      local phone = "13800000302"
      local password = secret("Pw-register-302")
      local job = start({ "register", "--phone", phone })
      local code = wait_for("the SMS code", function()
        local ok, c = pcall(fake.sms_code, phone, 3)
        return ok and c
      end)
      secret(code)
      job.feed(code .. "\n" .. password .. "\n")
      local r = job.finish()
      assert.are.equal(0, r.code, r.err)
      assert.matches("Registered", r.out, 1, true)
      login(phone, password)
    end)

    it("sends other code types and international numbers", function()
      local r = run { "sms", "--phone", "5550100", "--international-code", "1", "--type", "2" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("^%d%d%d%d%d%d$", secret(fake.sms_code("5550100", 2, "1")))
    end)

    it("exits 1 with the platform's code for a wrong SMS code", function()
      local phone = "13800000303"
      assert.are.equal(0, run({ "sms", "--phone", phone }).code)
      secret(fake.sms_code(phone, 3))
      local r = run({ "register", "--phone", phone, "--no-send" },
        { stdin = "000000x\n" .. secret("Pw-register-303") .. "\n" })
      assert.are.equal(1, r.code)
      assert.matches("%[5037%]", r.err)
    end)

    it("exits 2 when stdin ends before the code", function()
      local r = run { "register", "--phone", "13800000304", "--no-send" }
      assert.are.equal(2, r.code)
      assert.matches("SMS code", r.err, 1, true)
    end)
  end)

  describe("devices and their data", function()
    before_each(function()
      seed("13800000401", "Pw-data-401", { LAMP })
      login("13800000401", "Pw-data-401")
      stored_tokens()
    end)

    it("shows a product's thing model", function()
      local r = run { "tsl", "p11pLZ" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("\nProperties\n", r.out, 1, true)
      assert.matches("\n  brightness%s+Brightness%s+INT%s+RW%s+0%.%.100 %%", r.out)
      assert.matches("\n  mode%s+Mode%s+ENUM%s+RW%s+0=auto, 1=manual, 2=night", r.out)
      assert.matches("\n  temperature%s+Temperature%s+FLOAT%s+R%s", r.out)
      assert.matches("\nServices\n", r.out, 1, true)
      assert.matches("\n  blink%s+Blink%s+ASYNC%s+times INT 1%.%.10", r.out)
      assert.matches("\nEvents\n", r.out, 1, true)
      assert.matches("\n  overheat%s", r.out)

      r = run { "tsl", "p11pLZ", "--json" }
      assert.are.equal(0, r.code, r.err)
      local model = json.decode(r.out)
      assert.are.equal(9, #model.properties)
      assert.are.equal("blink", model.services[1].code)
      assert.are.equal("overheat", model.events[1].code)
    end)

    it("gets current values, all or some", function()
      local r = run { "get", "p11pLZ", "lamp-1" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("\nbrightness%s+30\n", "\n" .. r.out)
      assert.matches("\nswitch%s+false\n", "\n" .. r.out)

      r = run { "get", "p11pLZ", "lamp-1", "switch", "brightness" }
      assert.are.equal(0, r.code, r.err)
      assert.are.same({ "switch      false", "brightness  30" }, lines(r.out))

      r = run { "get", "p11pLZ", "lamp-1", "--json" }
      local values = json.decode(r.out)
      assert.are.equal(30, values.brightness)
      assert.is_false(values.switch)
    end)

    it("[13.9] exits 2 naming a property code the thing model does not have", function()
      local since = fake.seq()
      local r = run { "get", "p11pLZ", "lamp-1", "brightness", "brigthness" }
      assert.are.equal(2, r.code, r.err)
      assert.are.equal("", r.out)
      assert.matches("^quecapi: .*'brigthness'", r.err)
      assert.is_nil(r.err:find("'brightness'", 1, true))
      assert.are.same({}, requests_to("/v2/binding/enduserapi/getDeviceBusinessAttributes", since))
    end)

    it("sets values parsed from the command line", function()
      local r = run { "set", "p11pLZ", "lamp-1", "brightness=80", "switch=true", "mode=night",
                      'color={"r":1,"g":2,"b":255}', 'label="42"', "schedule=[60,120]" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("p11pLZ lamp-1: ok\n", r.out)

      local values = json.decode(run({ "get", "p11pLZ", "lamp-1", "--json" }).out)
      assert.are.equal(80, values.brightness)
      assert.is_true(values.switch)
      assert.are.equal(2, values.mode)
      assert.are.same({ r = 1, g = 2, b = 255 }, values.color)
      assert.are.equal("42", values.label)
      assert.are.same({ 60, 120 }, values.schedule)

      r = run { "set", "p11pLZ", "lamp-1", "label=hello world", "--json" }
      assert.are.equal(0, r.code, r.err)
      local res = json.decode(r.out)
      assert.are.equal("lamp-1", res.successList[1].data.deviceKey)
    end)

    it("refuses values the thing model does not allow, before sending (exit 2)", function()
      local since = fake.seq()
      for _, word in ipairs { "temperature=20", "brightness=500", "brightness=high", "nosuch=1" } do
        local r = run { "set", "p11pLZ", "lamp-1", word }
        assert.are.equal(2, r.code, word)
        assert.matches("^quecapi: set_properties: ", r.err)
      end
      assert.are.same({}, requests_to("/v2/binding/enduserapi/batchControlDevice", since))
    end)

    it("reports a device the platform could not control (exit 1)", function()
      fake.user("13800000402", "Pw-other-402")
      fake.control("POST", "/_fake/devices", { phone = "13800000402",
        devices = { { productKey = "p11pLZ", deviceKey = "not-mine", online = true } } })
      local r = run { "set", "p11pLZ", "not-mine", "brightness=1" }
      assert.are.equal(1, r.code)
      assert.matches("^p11pLZ not%-mine: failed: ", r.out)
    end)

    it("shows a device with its properties", function()
      local r = run { "device", "p11pLZ", "lamp-1" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("Name%s+Desk lamp\n", r.out)
      assert.matches("Status%s+online\n", r.out)
      assert.matches("\nProperties\n", r.out, 1, true)
      assert.matches("\n  brightness%s+30\n", r.out)

      r = run { "device", "p11pLZ", "lamp-1", "--json" }
      assert.are.equal(0, r.code, r.err)
      local d = json.decode(r.out)
      assert.are.equal("Desk lamp", d.info.deviceName)
      assert.are.equal(30, d.properties.brightness)
    end)

    it("exits 1 with the platform's code for a device that is not the user's", function()
      local r = run { "device", "p11pLZ", "nobody-has-it" }
      assert.are.equal(1, r.code)
      assert.matches("%[%d+%]$", (r.err:gsub("%s+$", "")))
    end)

    it("shows a property's history over the last period", function()
      local now = os.time() * 1000
      for _, report in ipairs {
        { values = { brightness = 11 }, ts = now - 30 * 60 * 1000 },
        { values = { brightness = 12 }, ts = now - 10 * 60 * 1000 },
        { values = { brightness = 99 }, ts = now - 3 * 3600 * 1000 },
        { values = { switch = true }, ts = now - 5 * 60 * 1000 },
      } do
        report.productKey, report.deviceKey = "p11pLZ", "lamp-1"
        fake.control("POST", "/_fake/device", report)
      end
      local since = fake.seq()
      local r = run { "history", "p11pLZ", "lamp-1", "brightness", "--since", "1h", "--json" }
      assert.are.equal(0, r.code, r.err)
      local seen = {}
      for _, rec in ipairs(json.decode(r.out)) do seen[tostring(rec.propertyValue)] = true end
      assert.is_true(seen["11"])
      assert.is_true(seen["12"])
      assert.is_nil(seen["99"])
      assert.is_nil(seen["true"])

      local req = requests_to("/v2/quecdatastorage/enduserapi/getPropertyDataList", since)[1]
      assert.are.equal("brightness", req.args.attributeCode)
      assert.are.equal("p11pLZ", req.args.pk)
      assert.are.equal("lamp-1", req.args.dk)
      local span = tonumber(req.args.endTimestamp) - tonumber(req.args.startTimestamp)
      assert.are.equal(3600 * 1000, span)
      assert.is_true(math.abs(tonumber(req.args.endTimestamp) - now) < 60 * 1000)

      r = run { "history", "p11pLZ", "lamp-1", "brightness", "--since", "4h" }
      assert.are.equal(0, r.code, r.err)
      local rows = lines(r.out)
      assert.matches("^TIME%s+VALUE$", rows[1])
      assert.are.equal(4, #rows)
      assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%s+%d+$", rows[2])

      r = run { "history", "p11pLZ", "lamp-1", "mode", "--since", "90s" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("^No values of mode since ", r.out)
    end)

    it("calls any operation by either name and prints its data as JSON", function()
      local r = run { "call", "user_device_list", "pageSize=1" }
      assert.are.equal(0, r.code, r.err)
      local data = json.decode(r.out)
      assert.are.equal(1, data.total)
      assert.are.equal("lamp-1", data.list[1].deviceKey)

      r = run { "call", "deviceInfo", "pk=p11pLZ", "dk=lamp-1" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("Desk lamp", json.decode(r.out).deviceName)

      r = run { "call", "user_device_list", "--all", "pageSize=1" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(1, #json.decode(r.out))

      r = run { "call", "--list" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("\nuser_device_list%s+GET%s", r.out)
      assert.is_true(#lines(r.out) >= 100)
    end)

    it("keeps text parameters as typed", function()
      fake.control("POST", "/_fake/devices", { phone = "13800000401",
        devices = { { productKey = "p11pLZ", deviceKey = "0042", deviceName = "007", online = true } } })
      local r = run { "call", "device_info", "pk=p11pLZ", "dk=0042" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("007", json.decode(r.out).deviceName)
      r = run { "call", "user_device_list", "deviceName=007", "--all" }
      assert.are.equal("0042", json.decode(r.out)[1].deviceKey)
    end)

    it("asks for a password parameter and masks tokens in what it prints", function()
      local r = run({ "call", "phone_pwd_login", "phone=13800000401", "internationalCode=86" },
        { stdin = "Pw-data-401\n" })
      assert.are.equal(0, r.code, r.err)
      local data = json.decode(r.out)
      assert.are.equal("***", data.accessToken.token)
      assert.are.equal("***", data.refreshToken.token)
      assert.is_number(data.accessToken.expirationTime)
      stored_tokens()
      assert_no_secrets(r, { "call", "phone_pwd_login" })
    end)

    it("renews the session through call refresh_token, with the stored refresh token", function()
      local before = stored_tokens().access_token
      local r = run { "call", "refresh_token" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("***", json.decode(r.out).refreshToken.token)
      assert.are_not.equal(before, stored_tokens().access_token)
      assert.are.equal(0, run({ "devices" }).code)
    end)

    it("logs out and forgets the session", function()
      local old = stored_tokens().access_token
      local r = run { "logout" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("Logged out", r.out, 1, true)
      assert.is_nil(stored_tokens())
      assert.are.equal("600", mode_of(token_path()))
      local _, res = fake.api { path = "/v2/enduser/enduserapi/userInfo", token = old }
      assert.are.equal(5032, res.code)

      r = run { "devices" }
      assert.are.equal(1, r.code)
      assert.matches("quecapi login", r.err, 1, true)
      r = run { "logout" }
      assert.are.equal(0, r.code, r.err)
      assert.matches("Not logged in", r.out, 1, true)
    end)
  end)

  describe("[13.9] the cloud it talks to", function()
    it("says once which cloud it uses when neither a region nor a base URL is set", function()
      -- no session yet: the command stops before anything goes to that cloud
      local r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false } })
      assert.are.equal(1, r.code, r.err)
      assert.matches("not logged in", r.err, 1, true)
      local _, notes = r.err:gsub("no region or base URL is set", "")
      assert.are.equal(1, notes, r.err)
      assert.matches("using the 'cn' cloud, https://iot-api.quectelcn.com", r.err, 1, true)
      r = run({ "devices" }, { env = { QUECAPI_BASE_URL = false, QUECAPI_REGION = "eu" } })
      assert.is_nil(r.err:find("no region", 1, true))
      r = run { "devices" }
      assert.is_nil(r.err:find("no region", 1, true))
    end)
  end)

  describe("[12.2] on a terminal", function()
    -- quecapi args... in a pseudo-terminal: `keys` are typed once `prompt` shows;
    -- what the terminal showed, and the exit status.
    local function in_terminal(args, prompt, keys, env)
      local fifo, log = box .. "/keys", box .. "/typescript"
      local words = {}
      for i, a in ipairs(args) do words[i] = sh_quote(a) end
      local cmd = "cd " .. sh_quote(CHECKOUT) .. " && env -i " .. cli_env(env) .. " " .. INTERPRETER
        .. " bin/quecapi " .. table.concat(words, " ") .. "; echo EXIT=$?; stty -a | tr ' ;' '\\n\\n'"
        .. " | grep -E '^-?(echo|icanon|isig)$' | tr '\\n' ' '; echo; echo DONE"
      os.execute("mkfifo " .. sh_quote(fifo))
      os.execute("( script -qfec " .. sh_quote(cmd) .. " " .. sh_quote(log) .. " <" .. sh_quote(fifo)
        .. " >/dev/null 2>&1 & )")
      local keyboard = assert(io.open(fifo, "r+"))
      wait_for("the prompt", function() return (read_file(log) or ""):find(prompt, 1, true) end)
      keyboard:write(keys)
      keyboard:flush()
      local shown = wait_for("the end", function()
        local t = read_file(log) or ""
        return t:find("\nDONE", 1, true) and t
      end)
      keyboard:close()
      -- script's own header quotes the command line (with the environment): not the tool's output
      shown = shown:gsub("^Script started[^\n]*\n", ""):gsub("\nScript done[^\n]*\n?$", "")
      for i, v in ipairs(secrets) do
        if #v >= 4 then assert(not shown:find(v, 1, true), "the terminal shows secret #" .. i) end
      end
      return shown, tonumber(shown:match("EXIT=(%d+)"))
    end

    it("asks for the password without echo and logs in", function()
      seed("13800000701", "Pw-tty-701")
      local shown, status = in_terminal({ "login", "--phone", "13800000701" }, "Password for +86 13800000701: ",
        "Pw-tty-701\r")
      assert.are.equal(0, status, shown)
      assert.matches("Logged in as +86 13800000701", shown, 1, true)
      assert.matches("isig icanon echo", shown, 1, true)
      assert.is_table(stored_tokens())
    end)

    it("ends on Ctrl-C at the prompt with status 130 and the terminal restored", function()
      seed("13800000702", "Pw-tty-702")
      local since = fake.seq()
      local shown, status = in_terminal({ "login", "--phone", "13800000702" }, "Password for ", "Pw-t\3")
      assert.are.equal(130, status, shown)
      assert.matches("quecapi: interrupted", shown, 1, true)
      assert.matches("isig icanon echo", shown, 1, true)
      assert.are.equal(0, #fake.requests(since))
    end)
  end)

  describe("[12.2] installed with luarocks", function()
    -- The modules and sources the CLI adds, listed in the copy's rockspec when the
    -- rockspec does not list them yet; the rest of the rockspec is used as it is.
    local function complete_rockspec(path)
      local text = assert(read_file(path))
      local rows = {}
      local files = shell.output("cd " .. sh_quote(ROOT) .. " && ls lua/quecapi/cli/*.lua lua/quecapi/cli/cmd/*.lua"
        .. " lua/quecapi/fakecloud/ctl.lua lua/quecapi/fakecloud/nginx_conf.lua")
      for file in files:gmatch("[^\n]+") do
        local name = file:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/", ".")
        if not text:find('["' .. name .. '"]', 1, true) then
          rows[#rows + 1] = string.format('      ["%s"] = "%s",\n', name, file)
        end
      end
      text = text:gsub('(\n%s*%["quecapi%.core"%] = {)', "\n" .. table.concat(rows):gsub("%%", "%%%%") .. "%1", 1)
      if not text:find("csrc/term.c", 1, true) then text = text:gsub('"csrc/json.c"', '"csrc/json.c", "csrc/term.c"', 1) end
      write_file(path, text)
    end

    it("works in a Lua 5.1 tree, under Lua 5.1 and LuaJIT", function()
      local src, tree = box .. "/src", box .. "/tree"
      assert(shell.run("mkdir -p " .. sh_quote(src) .. " && cd " .. sh_quote(ROOT)
        .. " && tar -cf - lua csrc bin quecapi-*.rockspec | (cd " .. sh_quote(src) .. " && tar -xf -)"))
      local rockspec = shell.output("cd " .. sh_quote(src) .. " && ls quecapi-*.rockspec")
      complete_rockspec(src .. "/" .. rockspec)
      -- luarocks finds Lua's headers from the interpreter on PATH: not a wrapper of
      -- the sanitizer runs (build/...), whose folder holds no Lua installation
      local plain_path = PATH:gsub("[^:]*/build/[^:]*:?", "")
      local luarocks = "env -i PATH=" .. sh_quote(plain_path) .. " HOME=" .. sh_quote(box .. "/home")
        .. " luarocks --lua-version 5.1 --tree " .. sh_quote(tree)
      local built = shell.output("cd " .. sh_quote(src) .. " && " .. luarocks .. " make --deps-mode=none "
        .. sh_quote(rockspec) .. " 2>&1; echo status=$?")
      assert.matches("status=0$", built)
      local paths = shell.output(luarocks .. " path --lr-path") .. ";;"
      local cpaths = shell.output(luarocks .. " path --lr-cpath") .. ";;"
      local script = shell.output("ls " .. sh_quote(tree) .. "/lib/luarocks/rocks-5.1/quecapi/*/bin/quecapi")
      seed("13800000801", "Pw-rock-801")
      fake.control("POST", "/_fake/devices", { phone = "13800000801", count = 2 })
      for _, command in ipairs { "luajit " .. sh_quote(script), sh_quote(tree .. "/bin/quecapi") } do
        local function installed(args, env)
          local words = {}
          for i, a in ipairs(args) do words[i] = sh_quote(a) end
          local out = shell.output("cd " .. sh_quote(box) .. " && env -i " .. cli_env(env) .. " LUA_PATH=" .. sh_quote(paths)
            .. " LUA_CPATH=" .. sh_quote(cpaths) .. " " .. command .. " " .. table.concat(words, " ") .. " 2>&1; echo status=$?")
          assert_no_secrets({ out = out, err = "" }, args)
          return out, tonumber(out:match("status=(%d+)$"))
        end
        local out, status = installed { "--version" }
        assert.are.equal(0, status, out)
        assert.matches("^quecapi %d+%.%d+%.%d+\n", out)
        out, status = installed({ "login", "--phone", "13800000801" }, { QUECAPI_PASSWORD = "Pw-rock-801" })
        assert.are.equal(0, status, out)
        out, status = installed { "devices", "--json" }
        assert.are.equal(0, status, out)
        assert.are.equal(2, #json.decode(out:gsub("status=%d+$", "")))
        stored_tokens()
      end
    end)
  end)

  describe("[13.7] fakecloud", function()
    it("starts a fake cloud of its own, describes it as shell exports, and stops it", function()
      local dir = box .. "/fake cloud" -- a space in the path, as a home folder may have
      local env = { FAKECLOUD_DIR = dir }
      local r = run({ "fakecloud", "start" }, { env = env })
      assert.are.equal(0, r.code, r.err)
      local url = r.out:match("^fake cloud at (https://127%.0%.0%.1:%d+) ")
      assert.is_string(url, r.out)
      assert.matches(dir .. "/env", r.out, 1, true)
      local ok, err = pcall(function()
        -- the exports, as a shell reads them
        r = run({ "fakecloud", "env" }, { env = env })
        assert.are.equal(0, r.code, r.err)
        local exported = shell.output("eval " .. sh_quote(r.out)
          .. " && echo \"$FAKECLOUD_URL|$FAKECLOUD_CA|$FAKECLOUD_DIR|$FAKECLOUD_USER_DOMAIN\"")
        assert.are.equal(url .. "|" .. dir .. "/ca.pem|" .. dir .. "|" .. fake.user_domain, exported)
        -- it answers over HTTPS with the CA it made
        local session = assert(require("quecapi.core").session { ca_file = dir .. "/ca.pem" })
        local status, body = session:request { method = "GET", url = url .. "/_fake/health" }
        assert.are.equal(200, status, body)
        assert.are.equal(0, run({ "fakecloud", "status" }, { env = env }).code)
        -- a second start finds it running
        r = run({ "fakecloud", "start" }, { env = env })
        assert.are.equal(0, r.code, r.err)
        assert.matches("already running at " .. url, r.out, 1, true)
      end)
      r = run({ "fakecloud", "stop" }, { env = env })
      assert(ok, err)
      assert.are.equal(0, r.code, r.err)
      assert.is_nil(read_file(dir .. "/env"))
      r = run({ "fakecloud", "status" }, { env = env })
      assert.are.equal(1, r.code)
      assert.matches("no fake cloud is running in " .. dir, r.err, 1, true)
      assert.are.equal(1, run({ "fakecloud", "env" }, { env = env }).code)
    end)

    it("keeps its files under XDG_RUNTIME_DIR, else /tmp, without FAKECLOUD_DIR", function()
      local r = run({ "fakecloud", "status" }, { env = { XDG_RUNTIME_DIR = box .. "/run" } })
      assert.are.equal(1, r.code)
      assert.matches(box .. "/run/quecapi-fakecloud", r.err, 1, true)
      r = run({ "fakecloud", "status" }, { env = { USER = "someone" } })
      assert.matches("/tmp/quecapi-fakecloud-someone", r.err, 1, true)
      r = run { "fakecloud", "restart" }
      assert.are.equal(2, r.code)
    end)
  end)

  describe("secrets and origins", function()
    it("[10.6] keeps the session per origin: another base URL gets no token", function()
      seed("13800000601", "Pw-origin-601", { LAMP })
      login("13800000601", "Pw-origin-601")
      stored_tokens()
      local since = fake.seq()
      -- the same fake cloud on plain HTTP, another port: another origin
      local r = run({ "devices" }, { env = { QUECAPI_BASE_URL = fake.http_url } })
      assert.are.equal(1, r.code, r.err)
      assert.matches("not logged in", r.err, 1, true)
      for _, req in ipairs((fake.requests(since))) do
        assert.is_nil(req.authorization, "a token went to " .. tostring(req.url))
      end
      r = run({ "devices" }, { env = { QUECAPI_BASE_URL = "http://iot-api.example.com" } })
      assert.are.equal(2, r.code, r.err)
      assert.matches("plain http", r.err, 1, true)
      assert.are.equal(0, run({ "devices" }).code)
    end)

    it("[10.8] refuses secret parameters on the command line, naming the variable to use", function()
      seed("13800000602", "Pw-secret-602")
      login("13800000602", "Pw-secret-602")
      local since = fake.seq()
      for _, case in ipairs {
        { { "call", "phone_pwd_login", "phone=13800000602", "password=Pw-secret-602" }, "QUECAPI_PASSWORD" },
        { { "call", "relation_phone", "phone=13900000602", "internationalCode=86", "code=123456" }, "QUECAPI_CODE" },
        { { "call", "set_phone", "smsCode=1" }, nil },
        { { "call", "share_device", "shareCode=S3cretShareCode" }, "QUECAPI_SHARE_CODE" },
        { { "call", "set_user_pwd", "old_password=a", "new_password=b" }, "QUECAPI_OLD_PASSWORD" },
      } do
        local r = run(case[1])
        assert.are.equal(2, r.code, table.concat(case[1], " ") .. ": " .. r.err)
        if case[2] then assert.matches(case[2], r.err, 1, true) end
        assert.is_nil(r.err:find("S3cretShareCode", 1, true))
        assert.is_nil(r.err:find("123456", 1, true))
      end
      assert.are.equal(0, #fake.requests(since))
    end)

    it("[10.8] takes a secret parameter from its environment variable, or asks for it", function()
      seed("13800000603", "Pw-secret-603")
      login("13800000603", "Pw-secret-603")
      local since = fake.seq()
      local r = run({ "call", "share_device", }, { env = { QUECAPI_SHARE_CODE = secret("EnvShareCode-603") } })
      local sent = requests_to("/v2/binding/enduserapi/shareDevice", since)
      assert.are.equal(1, #sent, r.err)
      assert.are.equal("EnvShareCode-603", sent[1].args.shareCode)
      since = fake.seq()
      r = run({ "call", "relation_phone", "phone=13900000603", "internationalCode=86" },
        { stdin = secret("654321") .. "\n" })
      assert.matches("code:", r.err, 1, true)
      sent = requests_to("/v2/enduser/enduserapi/relationPhone", since)
      assert.are.equal(1, #sent, r.err)
      assert.are.equal("654321", sent[1].args.code)
    end)

    it("sends set_user_info's signature, which is the user's profile text there", function()
      seed("13800000604", "Pw-profile-604")
      login("13800000604", "Pw-profile-604")
      local since = fake.seq()
      local r = run { "call", "set_user_info", "signature=hello there" }
      assert.are_not.equal(2, r.code, r.err) -- not refused as a parameter the client owns
      local sent = requests_to("/v2/enduser/enduserapi/setUserInfo", since)
      assert.are.equal(1, #sent)
      assert.are.equal("hello there", sent[1].args.signature)
    end)
  end)
end)
