-- What the live cloud accepts (issue 11), against the fake cloud that enforces it
-- and, where the bytes are ours alone, a scripted transport.
local quecapi = require "quecapi"
local json = require "quecapi.json"
local fake = require "support.fake"
local recorder = require "support.recorder"

local LIST = "/v2/binding/enduserapi/userDeviceList"
local REFRESH = "/v2/enduser/enduserapi/refreshToken"

local function url_secrets(reqs, values)
  local found = {}
  for _, r in ipairs(reqs) do
    for _, v in ipairs(values) do
      if v and #v > 0 and (r.url:find(v, 1, true) or r.url:find(fake.encode_query { x = v }:sub(3), 1, true)) then
        found[#found + 1] = r.path .. " carries " .. v
      end
    end
  end
  return found
end

describe("the live cloud's wire format", function()
  before_each(function()
    fake.reset()
    fake.clear_faults()
  end)

  it("[11.2] keeps the password, signature, SMS code and refresh token out of URLs", function()
    local phone, password = "13500000001", "Live-Pa55word"
    local c = fake.client()
    local seq = fake.seq()
    assert(c:send_phone_sms_code { phone = phone, codeType = 3 })
    local code = fake.sms_code(phone, 3)
    assert(c:phone_pwd_register { phone = phone, password = password, smsCode = code,
      agreementList = { { protocolType = 1, privacyVersion = "1.0.0" } } })
    assert(c:phone_pwd_login { phone = phone, password = password })
    local refresh = c:get_tokens().refresh_token
    assert(c:refresh_token {})
    local reqs = fake.requests(seq)
    assert.is_true(#reqs >= 4)
    local values = { password, code, refresh, (refresh:gsub("^Bearer ", "")) }
    for _, r in ipairs(reqs) do
      for _, field in ipairs { "pwd", "signature", "smsCode", "refreshToken" } do
        if r.args[field] then values[#values + 1] = r.args[field] end
        assert.is_nil(r.url:find(field .. "=", 1, true), r.url)
      end
    end
    assert.are.same({}, url_secrets(reqs, values))
  end)

  it("[11.2] shows the form body in prepare, and sends GET parameters in the query", function()
    local c = fake.client()
    local req = assert(c:prepare("phone_pwd_login", { phone = "1", password = "p" }))
    assert.are.equal(fake.url .. "/v2/enduser/enduserapi/phonePwdLogin", req.url)
    assert.are.equal("application/x-www-form-urlencoded", req.headers["Content-Type"])
    assert.matches("&pwd=", req.body, 1, true)
    c:set_tokens { access_token = "Bearer t" }
    req = assert(c:prepare("user_device_list", { page = 2 }))
    assert.matches("?page=2", req.url, 1, true)
    assert.is_nil(req.body)
  end)

  it("[11.3] sends and signs internationalCode 86 when the caller gives none", function()
    local c = assert(quecapi.new { user_domain = "C.DM.1.1", user_domain_secret = "sec",
                                   random = function() return "abcdef" end })
    for _, name in ipairs { "phone_pwd_login", "send_phone_sms_code", "phone_pwd_register" } do
      local params = { phone = "17132136550", password = "abcd1234", codeType = 1, smsCode = "1",
                       agreementList = {} }
      if name == "send_phone_sms_code" then params.password = nil end
      if name ~= "phone_pwd_register" then params.smsCode, params.agreementList = nil, nil end
      if name ~= "send_phone_sms_code" then params.codeType = nil end
      local req = assert(c:prepare(name, params))
      local args = recorder.args(req)
      local body = req.body:sub(1, 1) == "{" and json.decode(req.body) or args
      assert.are.equal("86", body.internationalCode, name)
    end
    local req = assert(c:prepare("phone_pwd_login", { phone = "17132136550", password = "abcd1234" }))
    local args = recorder.args(req)
    assert.are.equal(quecapi.sha256_hex("86" .. "17132136550" .. args.pwd .. "abcdef" .. "sec"), args.signature)
    -- against the fake, which checks the signature over what it received
    fake.user("13500000003", "Pw-ic-003")
    assert(fake.client():phone_pwd_login { phone = "13500000003", password = "Pw-ic-003" })
  end)
end)

describe("auth failures", function()
  local PHONE, PASSWORD = "13500000010", "Auth-Pa55word"
  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 2)
  end)
  after_each(function() fake.clear_faults() end)

  local function logged_in()
    local c = fake.client { retry = false }
    assert(c:phone_pwd_login { phone = PHONE, password = PASSWORD })
    return c
  end

  for _, case in ipairs {
    { status = 401 }, { status = 401, body = "html" }, { status = 401, body = "empty" },
    { code = 401 }, { code = 4001 }, { code = 1003 }, { code = 5032 },
  } do
    local label = case.status and ("HTTP 401 (" .. (case.body or "envelope") .. ")") or ("code " .. case.code)
    it("[11.4] renews once and repeats once on " .. label, function()
      local c = logged_in()
      local before = c:get_tokens().access_token
      local seq = fake.seq()
      fake.auth_failure(case)
      local res, err = c:user_device_list {}
      assert.is_table(res, err)
      assert.are_not.equal(before, c:get_tokens().access_token)
      local paths = {}
      for _, r in ipairs(fake.requests(seq)) do paths[#paths + 1] = r.path end
      assert.are.same({ LIST, REFRESH, LIST }, paths)
    end)
  end

  it("[11.4] never loops: a token still refused after renewal ends the call", function()
    local c = logged_in()
    local seq = fake.seq()
    fake.auth_failure { code = 4001, count = 50 }
    local res, err, code, kind = c:user_device_list {}
    assert.is_nil(res)
    assert.are.equal(4001, code)
    assert.are.equal("auth", kind)
    assert.matches("^user_device_list: ", err)
    assert.are.equal(3, #fake.requests(seq))
  end)
end)

describe("regions, headers and the user id", function()
  it("[11.5] knows the us region and the realtime URL of each region", function()
    assert.are.equal("https://iot-api.landecia.com", quecapi.REGIONS.us)
    for region, url in pairs { cn = "wss://iot-south.quectelcn.com:8443/ws/v2",
                               eu = "wss://iot-south.acceleronix.io:8443/ws/v2",
                               us = "wss://iot-south.landecia.com:8443/ws/v2" } do
      local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", region = region })
      assert.are.equal(url, c:realtime_url())
      assert.are.equal(url, quecapi.REALTIME_URLS[region])
      assert.are.equal(quecapi.REGIONS[region], c.base_url)
    end
    local function rt(base_url)
      return assert(quecapi.new { user_domain = "d", user_domain_secret = "s", base_url = base_url }):realtime_url()
    end
    assert.are.equal("wss://iot-south.quecteleu.com:8443/ws/v2", rt("https://iot-api.quecteleu.com"))
    assert.are.equal("wss://uat-iot-south.quectelcn.com:8443/ws/v2", rt("https://uat-iot-api.quectelcn.com"))
    assert.is_nil(rt("https://gateway.example.com"))
    assert.is_nil(quecapi.new { user_domain = "d", user_domain_secret = "s", region = "mars" })
  end)

  it("[11.6] merges a headers option into every request and sends lang as X-Q-Language", function()
    local t = recorder.new()
    local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = t,
      headers = { appId = "my-app", ["appVersion"] = "2.1" }, lang = "zh" })
    c:set_tokens { access_token = "Bearer t" }
    assert(c:user_device_list {})
    assert(c:request { path = "/v2/some/other" })
    for _, req in ipairs(t.sent) do
      assert.are.equal("my-app", req.headers.appId)
      assert.are.equal("2.1", req.headers.appVersion)
      assert.are.equal("zh", req.headers["X-Q-Language"])
      assert.are.equal("Bearer t", req.headers.Authorization)
    end
  end)

  it("[11.6] refuses headers that would break framing, replace the token or inject lines", function()
    for _, headers in ipairs {
      { Authorization = "Bearer other" }, { ["content-length"] = "5" }, { ["Transfer-Encoding"] = "chunked" },
      { Host = "evil" }, { ["X-A"] = "1\r\nX-B: 2" }, { ["X-A"] = "a\nb" }, { ["bad name"] = "1" }, { [1] = "x" },
      { ["X-A"] = 5 }, { ["X-Q-Language"] = "en" },
    } do
      local c, err, _, kind = quecapi.new { user_domain = "d", user_domain_secret = "s", headers = headers }
      assert.is_nil(c)
      assert.are.equal("config", kind)
      assert.matches("headers", err, 1, true)
    end
    assert.is_nil(quecapi.new { user_domain = "d", user_domain_secret = "s", lang = "en\r\nX: y" })
  end)

  it("[11.6] gets the platform's messages in the language asked for", function()
    fake.reset()
    local en = fake.client()
    local zh = fake.client { lang = "zh" }
    local _, err_en = en:phone_pwd_login { phone = "13500000099", password = "nobody-here" }
    local _, err_zh = zh:phone_pwd_login { phone = "13500000099", password = "nobody-here" }
    assert.is_string(err_en)
    assert.is_string(err_zh)
    assert.are_not.equal(err_en, err_zh)
    assert.truthy(err_zh:find("[\228-\233][\128-\191][\128-\191]"), err_zh) -- CJK characters
  end)

  it("[11.7] reads the uid claim of the access token", function()
    local function b64url(s)
      local A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      local out = {}
      for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        for q = 1, (c and 4) or (b and 3) or 2 do
          local v = math.floor(n / 2 ^ (18 - 6 * (q - 1))) % 64
          out[#out + 1] = A:sub(v + 1, v + 1)
        end
      end
      return table.concat(out)
    end
    local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s" })
    assert.is_nil(c:user_id())
    for _, case in ipairs {
      { '{"uid":1234567890123,"exp":1}', "1234567890123" }, { '{"uid":"C1ab-2"}', "C1ab-2" },
      { '{"sub":"x"}', nil }, { '[1]', nil }, { '{"uid":"a b"}', nil },
    } do
      c:set_tokens { access_token = "Bearer " .. b64url('{"alg":"HS256"}') .. "." .. b64url(case[1]) .. ".c2ln" }
      assert.are.equal(case[2], (c:user_id()), case[1])
    end
    c:set_tokens { access_token = "Bearer not-a-jwt" }
    local uid, err = c:user_id()
    assert.is_nil(uid)
    assert.is_string(err)
  end)
end)

describe("the user id against the fake cloud", function()
  it("[11.7] is the uid the cloud put in the token it issued", function()
    fake.reset()
    local uid = fake.user("13500000040", "Uid-Pa55word")
    local c = fake.client()
    assert(c:phone_pwd_login { phone = "13500000040", password = "Uid-Pa55word" })
    assert.are.equal(tostring(uid), c:user_id())
    assert(c:refresh_token {})
    assert.are.equal(tostring(uid), c:user_id())
  end)
end)

describe("operations from live clients, the quota and a second user domain", function()
  local PHONE, PASSWORD = "13500000020", "Live-Ops-Pa55"
  before_each(function()
    fake.reset()
    fake.clear_faults()
  end)

  it("[11.8] calls getDeviceOnlineStatus, getDeviceBindingInfo and getProductList", function()
    fake.user(PHONE, PASSWORD, 2)
    local c = fake.client()
    assert(c:phone_pwd_login { phone = PHONE, password = PASSWORD })
    local dev = assert(c:user_device_list {}).data.list[1]
    local res = assert(c:get_device_online_status { pk = dev.productKey, dk = dev.deviceKey })
    assert.are.equal(200, res.code)
    res = assert(c:get_device_binding_info { pk = dev.productKey, dk = dev.deviceKey })
    assert.are.equal(200, res.code)
    res = assert(c:get_product_list { pageNum = 1, pageSize = 10 })
    assert.is_table(res.data)
    local _, _, code = c:get_device_binding_info { pk = dev.productKey, dk = "not-mine" }
    assert.are.equal(4007, code)
  end)

  it("[11.9] reports the daily quota as rate limited, with its reset time, and does not retry", function()
    fake.user(PHONE, PASSWORD, 1)
    local c = fake.client()
    assert(c:phone_pwd_login { phone = PHONE, password = PASSWORD })
    fake.quota(1)
    assert(c:user_device_list {})
    local seq = fake.seq()
    local res, err, code, kind = c:user_device_list {}
    fake.quota(0)
    assert.is_nil(res)
    assert.are.equal(4026, code)
    assert.are.equal("rate_limited", kind)
    assert.matches("resets at 00:00 UTC", err, 1, true)
    assert.are.equal(1, #fake.requests(seq))
    assert.matches("daily", quecapi.errors[4026], 1, true)
    assert.is_string(quecapi.errors[4007])
    assert.is_string(quecapi.errors[4021])
  end)

  it("[11.10] logs in under the fallback user domain once, and keeps to it", function()
    fake.user(PHONE, PASSWORD, 1, fake.second_user_domain)
    local cfg = { fallback_user_domain = { user_domain = fake.second_user_domain,
                                           user_domain_secret = fake.second_secret } }
    local seq = fake.seq()
    local c = fake.client(cfg)
    assert(c:phone_pwd_login { phone = PHONE, password = PASSWORD })
    assert(c:user_device_list {})
    local logins = {}
    for _, r in ipairs(fake.requests(seq)) do
      if r.path:find("phonePwdLogin", 1, true) then logins[#logins + 1] = r.args.userDomain end
    end
    assert.are.same({ fake.user_domain, fake.second_user_domain }, logins)
    -- a new client of the same process goes to the domain that worked
    seq = fake.seq()
    local again = fake.client(cfg)
    assert(again:phone_pwd_login { phone = PHONE, password = PASSWORD })
    assert.are.equal(1, #fake.requests(seq))
    assert.are.equal(fake.second_user_domain, fake.requests(seq)[1].args.userDomain)
  end)

  it("[11.10] without a fallback, or when both refuse, the first refusal is the answer", function()
    fake.user(PHONE, PASSWORD, 1, fake.second_user_domain)
    local _, _, code = fake.client():phone_pwd_login { phone = PHONE, password = PASSWORD }
    assert.are.equal(5015, code)
    local c = fake.client { fallback_user_domain = { user_domain = "X.DM.9",
      user_domain_secret = "nope" } }
    local res, err = c:phone_pwd_login { phone = PHONE, password = PASSWORD }
    assert.is_nil(res)
    assert.matches("fallback user domain too", err, 1, true)
    assert.is_nil(err:find("nope", 1, true))
  end)
end)
