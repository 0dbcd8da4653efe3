-- The wire format, checked through client:prepare (nothing is sent) with the
-- clock and random hooks fixed to the values of the platform's guide.
local quecapi = require "quecapi"
local json = require "quecapi.json"
local recorder = require "support.recorder"

local GUIDE = {
  user_domain = "C.DM.10271.5",
  user_domain_secret = "57Fk69oYgbs2aWWN362NtZwYB2RqKNqQ7yZESnF5VM22",
}

local function client(random, extra)
  local cfg = {
    user_domain = GUIDE.user_domain, user_domain_secret = GUIDE.user_domain_secret,
    clock = function() return 1744773894369 end,
    random = function(n) assert(n == 16) return random end,
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return assert(quecapi.new(cfg))
end

describe("client:prepare", function()
  it("builds the guide's sendPhoneSmsCode request exactly", function()
    local req = assert(client("76a6L647F02CAoN9"):prepare("send_phone_sms_code",
      { phone = "17132136550", codeType = 3, internationalCode = "86" }))
    assert.are.equal("POST", req.method)
    -- [11.2] the guide's fields and signature, in a form body rather than the request line
    assert.are.equal("https://iot-api.quectelcn.com/v2/sms/enduserapi/v2/sendPhoneSmsCode", req.url)
    assert.are.equal("codeType=3" ..
      "&internationalCode=86&phone=17132136550&random=76a6L647F02CAoN9" ..
      "&signature=2deb6518ca0ee701e28a6359a91270c59dbe69456a3336dc5f625bfa32e64df6" ..
      "&ts=1744773894369&userDomain=C.DM.10271.5", req.body)
    assert.are.equal("application/x-www-form-urlencoded", req.headers["Content-Type"])
    assert.is_nil(req.headers["Authorization"])
  end)

  it("builds the guide's phonePwdLogin request exactly, signing the encrypted pwd", function()
    local req = assert(client("abcdef"):prepare("phonePwdLogin",
      { phone = "17132136550", password = "abcd1234", internationalCode = "86" }))
    assert.are.equal("POST", req.method)
    assert.are.equal("https://iot-api.quectelcn.com/v2/enduser/enduserapi/phonePwdLogin", req.url)
    assert.are.equal("internationalCode=86" ..
      "&phone=17132136550&pwd=KbbO5AsWloh9gulLei6NhQ%3D%3D&random=abcdef" ..
      "&signature=1fd91ebf096be51dae1c6055bc930bd8e24b1f477d2a47ae87eedb0f73057bf0" ..
      "&userDomain=C.DM.10271.5", req.body)
    assert.is_nil(req.body:find("abcd1234", 1, true))
  end)

  it("builds the guide's phonePwdRegister JSON body byte for byte", function()
    local req = assert(client("abcdef"):prepare("phone_pwd_register", {
      phone = "17132136550", password = "abcd1234", smsCode = "606754", internationalCode = "86",
      agreementList = { { protocolType = 1, privacyVersion = "1.0.0" }, { protocolType = 2, privacyVersion = "1.0.0" } },
    }))
    assert.are.equal("POST", req.method)
    assert.are.equal("https://iot-api.quectelcn.com/v2/enduser/enduserapi/v2/phonePwdRegister", req.url)
    assert.are.equal("application/json", req.headers["Content-Type"])
    assert.are.equal('{"agreementList":[{"privacyVersion":"1.0.0","protocolType":1},' ..
      '{"privacyVersion":"1.0.0","protocolType":2}],"internationalCode":"86","phone":"17132136550",' ..
      '"pwd":"KbbO5AsWloh9gulLei6NhQ==","random":"abcdef","smsCode":"606754","userDomain":"C.DM.10271.5"}',
      req.body)
  end)

  it("sends the access token verbatim on authenticated calls", function()
    local c = client("x")
    c:set_tokens { access_token = "Bearer eyJ.token.sig", access_expires = os.time() + 3600 }
    local req = assert(c:prepare("user_device_list", { pkList = { "p1", "p2" }, page = 2, pageSize = 50 }))
    assert.are.equal("GET", req.method)
    assert.are.equal("https://iot-api.quectelcn.com/v2/binding/enduserapi/userDeviceList" ..
      "?page=2&pageSize=50&pkList=p1%2Cp2", req.url)
    assert.are.equal("Bearer eyJ.token.sig", req.headers["Authorization"])
    assert.is_nil(req.body)
  end)

  it("accepts pkList as a comma-separated string", function()
    local c = client("x")
    c:set_tokens { access_token = "Bearer t" }
    local req = assert(c:prepare("user_device_list", { pkList = "p1,p2" }))
    assert.matches("pkList=p1%%2Cp2", req.url)
  end)

  it("carries the client's timeouts and body limit", function()
    local req = assert(client("76a6L647F02CAoN9", { timeout = 3, connect_timeout = 1.5 }):prepare(
      "send_phone_sms_code", { phone = "1", codeType = 1, internationalCode = "86" }))
    assert.are.equal(3, req.timeout)
    assert.are.equal(1.5, req.connect_timeout)
    assert.is_number(req.max_body)
  end)

  it("uses a fresh random of 16 characters and the real clock by default", function()
    local c = assert(quecapi.new { user_domain = "C.DM.1.1", user_domain_secret = "s" })
    local a = assert(c:prepare("send_phone_sms_code", { phone = "1", codeType = 3, internationalCode = "86" }))
    local b = assert(c:prepare("send_phone_sms_code", { phone = "1", codeType = 3, internationalCode = "86" }))
    local ra, rb = a.body:match("random=(%w+)"), b.body:match("random=(%w+)")
    assert.are.equal(16, #ra)
    assert.are_not.equal(ra, rb)
    local ts = tonumber(a.body:match("ts=(%d+)"))
    assert.is_true(math.abs(ts / 1000 - os.time()) < 5)
  end)
end)

describe("parameter validation", function()
  local function try(name, params)
    local t = recorder.new()
    local c = client("abcdef", { transport = t })
    c:set_tokens { access_token = "Bearer t" }
    local res, err, code = c[name](c, params)
    assert.are.equal(0, #t.sent, "a request was sent")
    return res, err, code
  end

  it("names a missing required field and sends nothing", function()
    local res, err, code = try("send_phone_sms_code", { phone = "1", internationalCode = "86" })
    assert.is_nil(res)
    assert.are.equal("send_phone_sms_code: missing required parameter 'codeType'", err)
    assert.is_nil(code)
  end)

  it("asks for the plaintext password by its own name", function()
    local _, err = try("phone_pwd_login", { phone = "1" })
    assert.matches("missing required parameter 'password'", err, 1, true)
    _, err = try("phone_pwd_login", { phone = "1", pwd = "already-encrypted" })
    assert.matches("pass the plaintext as 'password', not 'pwd'", err, 1, true)
  end)

  it("names a field of the wrong type", function()
    local cases = {
      { "send_phone_sms_code", { phone = 13800138000, codeType = 3, internationalCode = "86" }, "'phone' must be a string" },
      { "send_phone_sms_code", { phone = "1", codeType = "three", internationalCode = "86" }, "'codeType' must be an integer" },
      { "send_phone_sms_code", { phone = "1", codeType = 3.5, internationalCode = "86" }, "'codeType' must be an integer" },
      { "user_device_list", { pageSize = {} }, "'pageSize' must be an integer" },
      { "user_device_list", { pkList = { {} } }, "'pkList' must be a list of strings" },
      { "user_device_list", { isAssociation = "maybe" }, "'isAssociation' must be a boolean" },
      { "phone_pwd_register", { phone = "1", password = "p", smsCode = "1", agreementList = "all" }, "'agreementList' must be a list" },
      { "phone_pwd_login", { phone = "1", password = 1234 }, "'password' must be a string" },
    }
    for _, case in ipairs(cases) do
      local res, err = try(case[1], case[2])
      assert.is_nil(res)
      assert.matches(case[3], err, 1, true)
    end
  end)

  it("rejects unknown and client-owned parameters", function()
    local _, err = try("user_device_list", { pagesize = 10 })
    assert.matches("unknown parameter 'pagesize'", err, 1, true)
    _, err = try("send_phone_sms_code", { phone = "1", codeType = 3, internationalCode = "86", signature = "x" })
    assert.matches("'signature' is filled in by the client", err, 1, true)
  end)

  it("rejects empty required values and non-table parameters", function()
    local _, err = try("send_phone_sms_code", { phone = "", codeType = 3, internationalCode = "86" })
    assert.matches("'phone' is empty", err, 1, true)
    _, err = try("user_device_list", "page=1")
    assert.matches("parameters must be a table", err, 1, true)
  end)

  it("refuses an authenticated call before login, sending nothing", function()
    local t = recorder.new()
    local c = client("x", { transport = t })
    local res, err = c:user_device_list {}
    assert.is_nil(res)
    assert.are.equal("user_device_list: not logged in (no access token)", err)
    assert.are.equal(0, #t.sent)
  end)

  it("never echoes the password in an error", function()
    local _, err = try("phone_pwd_login", { phone = 1, password = "hunter2-secret" })
    assert.is_nil(err:find("hunter2", 1, true))
  end)

  it("reports an unknown operation", function()
    local c = client("x")
    local res, err = c:call("fly_to_the_moon", {})
    assert.is_nil(res)
    assert.matches("unknown operation 'fly_to_the_moon'", err, 1, true)
  end)
end)

describe("response handling (scripted transport)", function()
  local function with(answers)
    local t = recorder.new(answers)
    local c = client("abcdef", { transport = t })
    return c, t
  end

  it("returns the envelope on code 200 and keeps the login tokens", function()
    local c = with { { 200, json.encode { code = 200, msg = "", data = {
      accessToken = { token = "Bearer A", expirationTime = 1744787786 },
      refreshToken = { token = "Bearer R", expirationTime = 1747372586 } } } } }
    local res = assert(c:phone_pwd_login { phone = "1", password = "abcd1234", internationalCode = "86" })
    assert.are.equal(200, res.code)
    local tokens = c:get_tokens()
    assert.are.equal("Bearer A", tokens.access_token)
    assert.are.equal(1744787786, tokens.access_expires)
    assert.are.equal("Bearer R", tokens.refresh_token)
  end)

  it("returns nil, err, code for a platform error", function()
    local c = with { { 200, '{"code":5420,"msg":"Signature verification failed","data":null,"extMsg":null}' } }
    local res, err, code = c:phone_pwd_login { phone = "1", password = "p" }
    assert.is_nil(res)
    assert.are.equal("phone_pwd_login: platform error 5420: Signature verification failed", err)
    assert.are.equal(5420, code)
  end)

  it("describes a non-JSON body with its status and a printable excerpt", function()
    local c = with { { 502, "<html>\r\n<b>Bad\0Gateway</b></html>" } }
    local res, err, code = c:phone_pwd_login { phone = "1", password = "p" }
    assert.is_nil(res)
    assert.is_nil(code)
    assert.matches("HTTP 502, response is not JSON: <html>..<b>Bad.Gateway</b></html>", err, 1, true)
  end)

  it("shortens a long excerpt", function()
    local c = with { { 200, string.rep("x", 5000) } }
    local _, err = c:phone_pwd_login { phone = "1", password = "p" }
    assert.is_true(#err < 250)
    assert.matches("%.%.%.$", err)
  end)

  it("reports an empty body and a JSON body without a code", function()
    local c = with { { 200, "" }, { 404, '{"status":404,"error":"Not Found"}' } }
    local _, err = c:phone_pwd_login { phone = "1", password = "p" }
    assert.matches("HTTP 200 with an empty body", err, 1, true)
    _, err = c:phone_pwd_login { phone = "1", password = "p" }
    assert.matches("HTTP 404, response has no 'code' field", err, 1, true)
  end)

  it("reports a transport failure with its kind", function()
    local c = with { function() return nil, "Connection refused", "connect" end }
    local res, err, code = c:phone_pwd_login { phone = "1", password = "p" }
    assert.is_nil(res)
    assert.is_nil(code)
    assert.are.equal("phone_pwd_login: request failed (connect): Connection refused", err)
  end)

  it("masks tokens and secrets in an excerpt of a truncated login answer", function()
    local c = with { { 200, '{"code":200,"data":{"accessToken":{"token":"Bearer eyJhbGciOiJSUzI1NiJ9.secretpart' } }
    local _, err = c:phone_pwd_login { phone = "1", password = "p" }
    assert.is_nil(err:find("eyJhbGciOiJSUzI1NiJ9", 1, true))
    assert.matches("***", err, 1, true)
  end)

  it("fails a login answer that carries no token", function()
    local c = with { { 200, '{"code":200,"data":{}}' } }
    local res, err = c:phone_pwd_login { phone = "1", password = "p" }
    assert.is_nil(res)
    assert.matches("no access token", err, 1, true)
    assert.is_nil(c:get_tokens())
  end)
end)

describe("rows whose random or signature belong to the caller", function()
  local function logged_in()
    local c = client("client-random-16")
    c:set_tokens { access_token = "Bearer t", access_expires = os.time() + 3600 }
    return c
  end

  it("signs encryptedBindingCode in place of bindingCode and keeps the caller's random", function()
    local req = assert(logged_in():prepare("device_binding_by_pure_bt", {
      pk = "p1", dk = "d1", pwd = "btpw", encryptedBindingCode = "ENC", random = "iv-of-the-caller",
      encryptedNewBindingSecret = "S",
    }))
    local body = json.decode(req.body)
    assert.are.equal("iv-of-the-caller", body.random)
    assert.are.equal(quecapi.sha256_hex("p1" .. "d1" .. "ENC" .. "btpw" .. GUIDE.user_domain_secret), body.signature)
  end)

  it("passes setUserInfo's signature (the user's profile text) through", function()
    local req = assert(logged_in():prepare("set_user_info", { signature = "hello there" }))
    assert.matches("signature=hello%%20there", req.body)
  end)

  it("still refuses a random the client owns", function()
    local _, err = logged_in():prepare("phone_pwd_login", { phone = "1", password = "p", random = "mine" })
    assert.matches("'random' is filled in by the client", err, 1, true)
  end)
end)
