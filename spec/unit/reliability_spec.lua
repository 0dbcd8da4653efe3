-- Reliability 0.2 with a scripted platform: bounded walks, masked and printable
-- errors, tokens per origin, checked options and stored data, a sane clock, and
-- answers judged by their status. Each `it` names its item of the review ([10.N]).
local quecapi = require "quecapi"
local json = require "quecapi.json"
local skew = require "quecapi.skew"
local recorder = require "support.recorder"
local locale = require "support.locale"

local LIST = "GET /v2/binding/enduserapi/userDeviceList"
local SMS = "POST /v2/sms/enduserapi/v2/sendPhoneSmsCode"
local LOGIN = "POST /v2/enduser/enduserapi/phonePwdLogin"
local SECRET = "the-domain-secret"
local ACCESS = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOjQyfQ.S1gnatur3"

local function envelope(code, data, msg)
  return 200, json.encode { code = code, msg = msg or (code == 200 and "" or "nope"), data = data }, {}
end

local function page(list, extra)
  local data = { list = list }
  for k, v in pairs(extra or {}) do data[k] = v end
  return function() return envelope(200, data) end
end

local function client(routes, extra, no_tokens)
  local t = recorder.routes(routes)
  local lines = {}
  local cfg = { user_domain = "C.DM.1.1", user_domain_secret = SECRET, transport = t,
                retry = { base_delay = 0.001, max_delay = 0.002 },
                log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  local c = assert(quecapi.new(cfg))
  if not no_tokens then
    assert(c:set_tokens { access_token = ACCESS, access_expires = os.time() + 7200 })
  end
  return c, t, lines
end

local function walk(c, params, opts)
  local items, failure = {}, nil
  for item, err, code, kind in c:paginate("user_device_list", params, opts) do
    if item == false then
      failure = { err = err, code = code, kind = kind }
    else
      items[#items + 1] = item
    end
  end
  return items, failure
end

describe("reliability 0.2: paginate", function()
  it("[10.3] stops when page * pageSize reaches total, whatever hasNextPage says", function()
    local c, t = client { [LIST] = page({ { dk = "a" }, { dk = "b" }, { dk = "c" } }, { total = 3, hasNextPage = true }) }
    local items, failure = walk(c, { pageSize = 3 })
    assert.is_nil(failure)
    assert.are.equal(3, #items)
    assert.are.equal(1, #t.sent)
  end)

  it("[10.3] stops on a page identical to the one before (a server that ignores page)", function()
    local c, t = client { [LIST] = page({ { dk = "a" }, { dk = "b" } }, { hasNextPage = true }) }
    local items, failure = walk(c, { pageSize = 2 })
    assert.is_nil(failure)
    assert.are.same({ { dk = "a" }, { dk = "b" } }, items)
    assert.are.equal(2, #t.sent)
  end)

  it("[10.3] stops on an empty page", function()
    local n = 0
    local c, t = client { [LIST] = function()
      n = n + 1
      return envelope(200, { list = n == 1 and { { dk = "a" } } or {}, hasNextPage = true })
    end }
    local items = walk(c, { pageSize = 1 })
    assert.are.equal(1, #items)
    assert.are.equal(2, #t.sent)
  end)

  it("[10.3] ends with an error after max_pages of distinct pages that never end", function()
    local n = 0
    local c, t = client { [LIST] = function()
      n = n + 1
      return envelope(200, { list = { { dk = "d" .. n } }, hasNextPage = true })
    end }
    local items, failure = walk(c, { pageSize = 1 }, { max_pages = 5 })
    assert.are.equal(5, #items)
    assert.are.equal(5, #t.sent)
    assert.are.equal("too_large", failure.kind)
    assert.matches("stopped after 5 pages", failure.err, 1, true)
    assert.are.equal(10000, quecapi.new { user_domain = "d", user_domain_secret = "s" } and
      require("quecapi.client").MAX_PAGES)
    local _, bad = walk(c, {}, { max_pages = 0 })
    assert.are.equal("usage", bad.kind)
  end)
end)

describe("reliability 0.2: secrets in errors", function()
  it("[10.4] masks the access token quoted without its Bearer prefix, in err and in logs", function()
    local raw = ACCESS:gsub("^Bearer ", "")
    local c, _, lines = client { [LIST] = function()
      return envelope(5000, nil, "token " .. raw .. ' is not valid ({"token":"' .. raw .. '"})')
    end }
    local res, err = c:user_device_list({}, { retry = false })
    assert.is_nil(res)
    assert.is_nil(err:find(raw, 1, true), err)
    assert.is_nil(err:find("S1gnatur3", 1, true), err)
    assert.matches("***", err, 1, true)
    for _, l in ipairs(lines) do assert.is_nil(l:find("S1gnatur3", 1, true), l) end
  end)

  it("[10.23] masks secrets shorter than 4 characters where they stand alone", function()
    local c = client({ [LOGIN] = function(req)
      return 502, "<html>bad password ab1 for " .. req.url .. "</html>", {}
    end }, { retry = false }, true)
    local res, err = c:phone_pwd_login { phone = "13800138000", password = "ab1" }
    assert.is_nil(res)
    assert.is_nil(err:find("password ab1", 1, true), err)
    assert.matches("bad password ***", err, 1, true)
  end)

  it("[10.7] makes err one printable line: no forged log lines, no terminal escapes", function()
    local c = client { [LIST] = function()
      return envelope(5000, nil, "failed\nINFO forged line\r\27[2J\27]0;title\7 \194\155 done 设备")
    end }
    local res, err, code, kind = c:user_device_list({}, { retry = false })
    assert.is_nil(res)
    assert.are.equal(5000, code)
    assert.are.equal("platform", kind)
    assert.is_nil(err:find("[%c\127]"), err)
    assert.is_nil(err:find("\194\155", 1, true), err)
    assert.matches("failed\\nINFO forged line\\r\\x1b[2J\\x1b]0;title\\x07 \\u009b done 设备", err, 1, true)
  end)

  it("[10.7] escapes the bytes of a message that is not UTF-8", function()
    local c = client { [LIST] = function() return envelope(5000, nil, "bad \155[31m \255") end }
    local _, err = c:user_device_list({}, { retry = false })
    assert.matches("bad \\x9b[31m \\xff", err, 1, true)
  end)
end)

describe("reliability 0.2: tokens per origin", function()
  it("[10.6] keys stored tokens by origin: another host's client finds none and sends no token", function()
    local store = require("quecapi.store.memory").new()
    local a = client({ [LIST] = { { envelope(200, {}) } } }, { token_store = store,
      base_url = "https://iot-api.quectelcn.com" })
    assert(a:user_device_list {})
    local b, tb = client({ [LIST] = { { envelope(200, {}) } } }, { token_store = store,
      base_url = "http://127.0.0.1:9" }, true)
    local res, err, _, kind = b:user_device_list {}
    assert.is_nil(res)
    assert.are.equal("auth", kind)
    assert.matches("not logged in", err, 1, true)
    assert.are.equal(0, #tb.sent)
    assert.are_not.equal(a.token_key, b.token_key)
    assert.are.equal("https://iot-api.quectelcn.com:443", a.origin)
    assert.are.equal("http://127.0.0.1:9", b.origin)
  end)

  it("[10.6] refuses plain http to a host that is not loopback, unless allow_http", function()
    local c, err, _, kind = quecapi.new { user_domain = "d", user_domain_secret = "s",
                                          base_url = "http://iot-api.example.com" }
    assert.is_nil(c)
    assert.are.equal("config", kind)
    assert.matches("plain http", err, 1, true)
    assert.is_table(quecapi.new { user_domain = "d", user_domain_secret = "s",
                                  base_url = "http://iot-api.example.com", allow_http = true })
    for _, url in ipairs { "http://127.0.0.1:8080", "http://localhost", "http://[::1]:80" } do
      assert.is_table(quecapi.new { user_domain = "d", user_domain_secret = "s", base_url = url }, url)
    end
    assert.is_nil(quecapi.new { user_domain = "d", user_domain_secret = "s", base_url = "https://u:p@host" })
  end)
end)

describe("reliability 0.2: stored tokens", function()
  it("[10.11] set_tokens refuses wrong types with nil, err", function()
    local c = client({}, nil, true)
    for _, bad in ipairs {
      "x", {}, { access_token = 5 }, { access_token = "" },
      { access_token = "Bearer a", access_expires = "soon" },
      { access_token = "Bearer a", refresh_token = {} },
      { access_token = "Bearer a", refresh_expires = 0 / 0 },
    } do
      local ok, err, _, kind = c:set_tokens(bad)
      assert.is_nil(ok)
      assert.are.equal("usage", kind)
      assert.matches("^set_tokens: ", err)
    end
  end)

  it("[10.11] reads unusable stored tokens as none, logs it, and logs in again", function()
    local data = {}
    local store = {
      get = function(_, k) return data[k] end,
      set = function(_, k, v) data[k] = v return true end,
      delete = function(_, k) data[k] = nil return true end,
    }
    local c, t, lines = client({
      [LOGIN] = function() return envelope(200, { accessToken = { token = "Bearer new", expirationTime = os.time() + 7200 } }) end,
      [LIST] = { { envelope(200, {}) } },
    }, { token_store = store, account = { phone = "13800138000", password = "pa55word" } }, true)
    data[c.token_key] = { access_token = "Bearer old", access_expires = "soon" }
    local ok, res = pcall(c.user_device_list, c, {})
    assert.is_true(ok, res)
    assert.is_table(res)
    assert.are.equal("Bearer new", t:to(LIST)[1].headers.Authorization)
    local warned = false
    for _, l in ipairs(lines) do
      if l:find("ignoring the stored tokens", 1, true) then warned = true end
    end
    assert.is_true(warned)
  end)
end)

describe("reliability 0.2: options", function()
  it("[10.22] refuses bad per-call options with nil, err, nil, usage (never a raise)", function()
    local c, t = client { [LIST] = { { envelope(200, {}) } } }
    for _, opts in ipairs { 5, "x", { deadline = "soon" }, { timeout = 0 }, { timeout = -1 }, { timeout = "1" },
                            { deadline = 0 / 0 }, { retry = "yes" }, { unknown = 1 } } do
      local ok, res, err, code, kind = pcall(c.user_device_list, c, {}, opts)
      assert.is_true(ok, tostring(res))
      assert.is_nil(res)
      assert.is_string(err)
      assert.is_nil(code)
      assert.are.equal("usage", kind)
    end
    assert.are.equal(0, #t.sent)
  end)

  it("[10.22] refuses an account with fields of the wrong type", function()
    for _, account in ipairs {
      { phone = "1", password = "p", internationalCode = {} },
      { email = {}, password = "p" },
      { phone = 13800138000, password = "p" },
      { phone = "1", password = 5 },
    } do
      local ok, c, err = pcall(quecapi.new, { user_domain = "d", user_domain_secret = "s", account = account })
      assert.is_true(ok, tostring(c))
      assert.is_nil(c)
      assert.matches("account", err, 1, true)
    end
    local c = client({}, nil, true)
    local ok, res, err, _, kind = pcall(c.login, c, { phone = "1", password = "p", internationalCode = {} })
    assert.is_true(ok)
    assert.is_nil(res)
    assert.are.equal("usage", kind)
    assert.matches("^login: ", err)
  end)

  it("[10.23] refuses a list element containing a comma instead of splitting it", function()
    local c, t = client { ["GET /v2/binding/enduserapi/getDeviceBusinessAttributes"] = { { envelope(200, {}) } } }
    local res, err, _, kind = c:get_device_business_attributes { pk = "p", dk = "d", codeList = { "a,b", "c" } }
    assert.is_nil(res)
    assert.are.equal("usage", kind)
    assert.matches("codeList", err, 1, true)
    assert.are.equal(0, #t.sent)
    assert(c:get_device_business_attributes { pk = "p", dk = "d", codeList = { "a", 2.5 } })
    assert.matches("codeList=a%2C2.5", t.sent[1].url, 1, true)
  end)
end)

describe("reliability 0.2: clock", function()
  local function date(offset)
    return os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + offset)
  end

  it("[10.20] believes only a well-formed Date within a day of the local clock", function()
    for _, bad in ipairs {
      "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 2024 99:99:99 GMT", "Mon, 32 Jan 2024 10:00:00 GMT",
      "yesterday", date(3 * 86400), date(-2 * 86400), date(600):gsub("GMT", "PST"),
    } do
      local url = "https://skew-" .. tostring({}):match("%x+$") .. ".example"
      local c, t = client({ [SMS] = { { function() return 200, json.encode { code = 5420, msg = "sig" },
        { date = bad } end } } }, { base_url = url })
      local res, _, code = c:send_phone_sms_code({ phone = "1", internationalCode = "86", codeType = 3 })
      assert.is_nil(res)
      assert.are.equal(5420, code)
      assert.are.equal(1, #t.sent, bad) -- not signed again
      assert.are.equal(0, skew.offset(url), bad)
    end
    assert.is_number(skew.parse_http_date(date(0)))
  end)

  it("[10.20] never lets a learnt offset make tokens look expired", function()
    local url = "https://skew-tokens.example"
    local answers = {
      function() return 200, json.encode { code = 5420, msg = "sig" }, { date = date(23 * 3600) } end,
      function() return envelope(200, {}) end,
    }
    local c, t = client({ [SMS] = answers, [LIST] = { { envelope(200, {}) } } }, { base_url = url })
    assert(c:send_phone_sms_code({ phone = "1", internationalCode = "86", codeType = 3 }))
    assert.is_true(math.abs(skew.offset(url) - 23 * 3600 * 1000) <= 1000)
    -- the token expires in 2 h by our clock: no renewal, although the platform's clock says it is gone
    assert(c:user_device_list {})
    assert.are.equal(ACCESS, t:to(LIST)[1].headers.Authorization)
    assert.are.equal(3, #t.sent)
  end)
end)

describe("reliability 0.2: answers", function()
  it("[10.21] retries a safe call on 502/503/504 whatever the body, JSON with a code included", function()
    local busy = { 503, json.encode { code = 503, msg = "Service Unavailable" }, {} }
    local c, t = client { [LIST] = { busy, { 504, json.encode { code = 5000 }, {} }, { function() return envelope(200, {}) end } } }
    assert(c:user_device_list {})
    assert.are.equal(3, #t.sent)
    local c2, t2 = client { [SMS] = { busy } }
    local res, err, code, kind = c2:send_phone_sms_code({ phone = "1", internationalCode = "86", codeType = 3 })
    assert.is_nil(res)
    assert.are.equal(1, #t2.sent) -- a call with side effects is not repeated
    assert.are.equal(503, code)
    assert.are.equal("http", kind)
    assert.matches("HTTP 503", err, 1, true)
  end)

  it("[10.23] an impossible status, or an HTTP error whose envelope says 200, is no success", function()
    for _, answer in ipairs {
      { 999, json.encode { code = 200, data = {} }, {} },
      { 500, json.encode { code = 200, data = {} }, {} },
      { 404, json.encode { code = 200, data = {} }, {} },
    } do
      local c = client { [LIST] = { answer } }
      local res, err, _, kind = c:user_device_list({}, { retry = false })
      assert.is_nil(res, answer[1])
      assert.are.equal("http", kind)
      assert.matches("HTTP " .. (answer[1] == 999 and "status 999" or answer[1]), err, 1, true)
    end
  end)

  it("[10.23] decodes -0 as a float, keeping its sign", function()
    local v = json.decode("[-0, 0, -0.0]")
    assert.are.equal(-math.huge, 1 / v[1])
    assert.are.equal(math.huge, 1 / v[2])
    assert.are.equal(-math.huge, 1 / v[3])
    if math.type then assert.are.equal("float", math.type(v[1])) end
  end)
end)

describe("reliability 0.2: numbers and the locale", function()
  local under_locale = locale.run

  it("[10.19] writes JSON, query strings and signatures with a decimal point under de_DE", function()
    local out = under_locale [[
      local json = require "quecapi.json"
      local quecapi = require "quecapi"
      local sent
      local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s",
        transport = { request = function(_, req) sent = req return 200, '{"code":200}', {} end } })
      c:set_tokens { access_token = "Bearer t" }
      assert(c:get_device_business_attributes { pk = "p", dk = "d", codeList = { 21.5 } })
      print(json.encode { temperature = 21.5, small = 2.5e-7, list = { 0.25 } })
      print(sent.url:match("codeList=[^&]*"))
      print(json.decode("[21.5]")[1] == 21.5)
    ]]
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal('{"list":[0.25],"small":2.5e-07,"temperature":21.5}', lines[1], out)
    assert.are.equal("codeList=21.5", lines[2], out)
    assert.are.equal("true", lines[3], out)
  end)
end)
