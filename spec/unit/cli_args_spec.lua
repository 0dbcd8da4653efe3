-- The command line's pieces in-process, nothing started: argument parsing, the
-- typed words, the settings' layers and the config file's checks, what is
-- printed, and the exit status of each failure kind.
local args = require "quecapi.cli.args"
local settings = require "quecapi.cli.settings"
local output = require "quecapi.cli.output"
local fail = require "quecapi.cli.fail"
local core = require "quecapi.core"
local shell = require "support.sh"

-- Commands as the parser sees them: their own options only.
local COMMANDS = {
  devices = { options = { { name = "json" }, { name = "page-size", value = "N" } } },
  get = { nargs = { 2 }, args_help = "PRODUCT_KEY DEVICE_KEY" },
  logout = { nargs = { 0, 0 } },
}
local function find(name) return COMMANDS[name] end

local function env_of(t)
  return function(name) return t[name] end
end

describe("[12.2] the command line", function()
  it("takes options before and after the command, --name=value, short flags and --", function()
    local p = assert(args.parse({ "--phone", "1380", "devices", "--json", "--page-size=7", "-v", "--", "--x" }, find))
    assert.are.equal("devices", p.name)
    assert.are.equal(COMMANDS.devices, p.command)
    assert.are.same({ phone = "1380", json = true, ["page-size"] = "7", verbose = true }, p.opts)
    assert.are.same({ "--x" }, p.args)
  end)

  it("refuses what it does not know as usage errors that point at the help", function()
    for _, argv in ipairs {
      { "frobnicate" }, { "--bogus" }, { "devices", "--bogus" }, { "devices", "--json=yes" }, { "--phone" },
      { "-z" }, { "logout", "--page-size", "3" },
    } do
      local p, err, code, kind, hint = args.parse(argv, find)
      assert.is_nil(p, table.concat(argv, " "))
      assert.is_string(err)
      assert.is_nil(code)
      assert.are.equal("usage", kind)
      assert.is_true(hint)
    end
  end)

  it("refuses secrets as options, naming where they go instead and never repeating them", function()
    for _, argv in ipairs {
      { "--user-domain-secret", "S3cret-value", "devices" }, { "devices", "--user-domain-secret=S3cret-value" },
      { "--password", "S3cret-value", "logout" },
    } do
      local p, err, _, kind = args.parse(argv, find)
      assert.is_nil(p)
      assert.are.equal("usage", kind)
      assert.matches("QUECAPI_", err, 1, true)
      assert.is_nil(err:find("S3cret-value", 1, true))
    end
  end)

  it("checks the number of arguments of a command", function()
    assert.is_true(args.check_count(assert(args.parse({ "get", "pk", "dk", "a", "b" }, find))))
    local ok, err, _, kind = args.check_count(assert(args.parse({ "get", "pk" }, find)))
    assert.is_nil(ok)
    assert.are.equal("usage", kind)
    assert.matches("PRODUCT_KEY DEVICE_KEY", err, 1, true)
    assert.is_nil(args.check_count(assert(args.parse({ "logout", "extra" }, find))))
  end)

  it("reads typed values: booleans, whole numbers as integers, JSON, else text", function()
    assert.are.equal(true, args.value("true", "x"))
    assert.are.equal(false, args.value("false", "x"))
    assert.are.equal(80, args.value("80", "x"))
    if math.type then assert.are.equal("integer", math.type(args.value("80", "x"))) end
    assert.are.equal(-2.5, args.value("-2.5", "x"))
    assert.are.equal(1000, args.value("1e3", "x"))
    assert.are.same({ r = 1 }, args.value('{"r":1}', "x"))
    assert.are.same({ 60, 120 }, args.value("[60,120]", "x"))
    assert.are.equal("42", args.value('"42"', "x"))
    assert.are.equal("hello world", args.value("hello world", "x"))
    local v, err, _, kind = args.value("{bad", "color")
    assert.is_nil(v)
    assert.are.equal("usage", kind)
    assert.matches("^color: not valid JSON", err)
  end)

  it("reads NAME=VALUE words, counts and durations", function()
    assert.are.same({ "a", "b=c" }, { args.assignment("a=b=c") })
    assert.is_nil(args.assignment("nonsense"))
    assert.are.equal(7, args.count("7", "page-size"))
    for _, bad in ipairs { "0", "-1", "x", "1.5" } do assert.is_nil(args.count(bad, "page-size"), bad) end
    assert.are.equal(90, args.duration("90s", "since"))
    assert.are.equal(7 * 86400, args.duration("7d", "since"))
    for _, bad in ipairs { "5y", "0h", "h", "1.5h" } do assert.is_nil(args.duration(bad, "since"), bad) end
  end)
end)

describe("[12.2] the settings", function()
  local dir

  before_each(function() dir = shell.tempdir() end)
  after_each(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  local function config_file(text, mode)
    local path = dir .. "/config.lua"
    shell.write(path, text)
    assert(shell.run("chmod " .. mode .. " " .. shell.quote(path)))
    return path
  end

  it("layers the config file, the environment and the options, later ones winning", function()
    local path = config_file([[return { user_domain = "C.DM.1.1", user_domain_secret = "file-secret",
      base_url = "https://file.example", phone = 13800000000, international_code = 44, email = "a@b.c" }]], "600")
    local s = assert(settings.load({ config = path }, env_of {}, core))
    assert.are.equal("https://file.example", s.base_url)
    assert.are.equal("13800000000", s.phone)
    assert.are.equal("44", s.international_code)
    -- a layer with both a phone and an email means the phone
    assert.is_nil(s.email)

    s = assert(settings.load({ config = path }, env_of { QUECAPI_REGION = "eu", QUECAPI_EMAIL = "e@x.y",
      QUECAPI_INTERNATIONAL_CODE = "1" }, core))
    assert.are.equal("eu", s.region)
    assert.is_nil(s.base_url) -- the environment's region replaces the file's base URL
    assert.are.equal("e@x.y", s.email)
    assert.is_nil(s.phone)
    assert.are.equal("1", s.international_code)

    s = assert(settings.load({ config = path, ["base-url"] = "https://opt.example", phone = "1",
      ["international-code"] = "49" }, env_of { QUECAPI_REGION = "eu", QUECAPI_EMAIL = "e@x.y" }, core))
    assert.are.equal("https://opt.example", s.base_url)
    assert.is_nil(s.region)
    assert.are.equal("1", s.phone)
    assert.is_nil(s.email)
    assert.are.equal("49", s.international_code)
  end)

  it("[13.9] knows QUECAPI_INTERNATIONAL_CODE and --international-code, default 86", function()
    assert.are.equal("86", assert(settings.load({}, env_of {}, core)).international_code)
    assert.are.equal("852", assert(settings.load({}, env_of { QUECAPI_INTERNATIONAL_CODE = "852" }, core))
      .international_code)
    assert.are.equal("1", assert(settings.load({ ["international-code"] = "1" },
      env_of { QUECAPI_INTERNATIONAL_CODE = "852" }, core)).international_code)
    local listed = {}
    for _, pair in ipairs(settings.ENVIRONMENT) do listed[pair[1]] = true end
    assert.is_true(listed.QUECAPI_INTERNATIONAL_CODE)
  end)

  it("treats an empty variable as unset", function()
    local s = assert(settings.load({}, env_of { QUECAPI_REGION = "", QUECAPI_PHONE = "" }, core))
    assert.is_nil(s.region)
    assert.is_nil(s.phone)
  end)

  it("refuses --phone with --email", function()
    local s, _, _, kind = settings.load({ phone = "1", email = "a@b.c" }, env_of {}, core)
    assert.is_nil(s)
    assert.are.equal("usage", kind)
  end)

  it("finds the config file under XDG_CONFIG_HOME, else HOME, and the token file likewise", function()
    assert.are.equal("/x/quecapi/config.lua", settings.default_config_path(env_of { XDG_CONFIG_HOME = "/x", HOME = "/h" }))
    assert.are.equal("/h/.config/quecapi/config.lua", settings.default_config_path(env_of { HOME = "/h" }))
    -- a relative XDG folder is ignored, as the XDG rules say
    assert.are.equal("/h/.config/quecapi/config.lua",
      settings.default_config_path(env_of { XDG_CONFIG_HOME = "rel", HOME = "/h" }))
    assert.is_nil(settings.default_config_path(env_of {}))
    assert.are.equal("/c/quecapi/tokens.json", settings.token_file(env_of { XDG_CACHE_HOME = "/c", HOME = "/h" }))
    assert.are.equal("/h/.cache/quecapi/tokens.json", settings.token_file(env_of { HOME = "/h" }))
    local none, err, _, kind = settings.token_file(env_of {})
    assert.is_nil(none)
    assert.are.equal("config", kind)
    assert.matches("HOME", err, 1, true)
  end)

  it("refuses a config file others may read or write, naming the fix", function()
    for _, mode in ipairs { "644", "640", "604", "620", "602" } do
      local path = config_file("return {}", mode)
      local t, err, _, kind = settings.read_config(path, true, core)
      assert.is_nil(t, mode)
      assert.are.equal("config", kind)
      assert.matches("chmod 600", err, 1, true)
    end
    assert.are.same({}, assert(settings.read_config(config_file("return {}", "600"), true, core)))
    assert.are.same({}, assert(settings.read_config(config_file("return {}", "700"), true, core)))
  end)

  it("follows a symlinked config file and judges what it points to", function()
    local target = config_file("return { region = 'eu' }", "600")
    local link = dir .. "/link.lua"
    assert(shell.run("ln -s " .. shell.quote(target) .. " " .. shell.quote(link)))
    assert.are.equal("eu", assert(settings.read_config(link, true, core)).region)
  end)

  it("refuses a file owned by another user", function()
    local path = config_file("return {}", "600")
    local fake_core = setmetatable({ getuid = function() return 4242 end }, { __index = core })
    local info = assert(core.file_info(path, true))
    if info.uid == 0 then
      -- root's files are trusted like ssh trusts them: pretend another owner
      fake_core.file_info = function(p, follow)
        local i = assert(core.file_info(p, follow))
        i.uid = 4243
        return i
      end
    end
    local t, err = settings.read_config(path, true, fake_core)
    assert.is_nil(t)
    assert.matches("owned by uid", err, 1, true)
  end)

  it("is fine without a config file unless one was named", function()
    assert.are.same({}, assert(settings.read_config(dir .. "/missing.lua", false, core)))
    local t, err, _, kind = settings.read_config(dir .. "/missing.lua", true, core)
    assert.is_nil(t)
    assert.are.equal("config", kind)
    assert.matches("missing.lua", err, 1, true)
  end)

  it("runs the config file without libraries, and never quotes it in an error", function()
    for _, text in ipairs {
      "os.execute('touch " .. dir .. "/pwned') return {}",
      'return { user_domain_secret = "S3cretInFile\n',
      "return 'not a table'",
      "return { user_domian = 'x' }",
      "return { region = 5 }",
      "\27Lua bytecode",
    } do
      local t, err, _, kind = settings.read_config(config_file(text, "600"), true, core)
      assert.is_nil(t, text)
      assert.are.equal("config", kind)
      assert.is_nil(err:find("S3cretInFile", 1, true))
    end
    assert.is_nil(shell.read(dir .. "/pwned"))
  end)
end)

describe("[12.2] what the tool prints", function()
  it("aligns columns by display width, wide characters counting two", function()
    local lines = output.table_lines({ { "NAME", "STATUS" }, { "灯", "on" }, { "lamp", "off" } }, "  ")
    assert.are.same({ "  NAME  STATUS", "  灯    on", "  lamp  off" }, lines)
    assert.are.equal(4, output.width("éèêë"))
    assert.are.equal(2, output.width("😀"))
    -- not UTF-8: counted in bytes
    assert.are.equal(3, output.width("a\255b"))
  end)

  it("prints network text without control characters", function()
    assert.are.equal("a?[31mred?", output.clean("a\27[31mred\7"))
    assert.are.equal("", output.plain(nil))
    assert.are.equal("80", output.plain(80))
    assert.are.equal("0.5", output.plain(0.5))
    assert.are.equal('{"r":1}', output.plain { r = 1 })
  end)

  it("masks the catalog's token fields in answers it prints", function()
    local masked = output.mask { accessToken = { token = "Bearer A", expirationTime = 5 }, token = "T",
                                 refreshToken = "R", name = "kept" }
    assert.are.same({ accessToken = { token = "***", expirationTime = 5 }, token = "***", refreshToken = "***",
                      name = "kept" }, masked)
  end)

  it("prints JSON through quecapi.json, indented, keys sorted, empty lists as []", function()
    local json = require "quecapi.json"
    assert.are.equal("[]", output.json_text(json.array {}))
    assert.are.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": []\n}',
      output.json_text { c = json.array {}, b = {}, a = { 1, 2 } })
  end)
end)

describe("[12.2] exit status", function()
  it("comes from the failure's kind alone", function()
    assert.are.equal(2, fail.status("usage"))
    assert.are.equal(2, fail.status("config"))
    assert.are.equal(130, fail.status("interrupted"))
    for _, kind in ipairs { "auth", "timeout", "connect", "tls", "network", "too_large", "http", "platform",
                            "rate_limited" } do
      assert.are.equal(1, fail.status(kind), kind)
    end
    assert.are.equal(1, fail.status(nil))
  end)
end)
