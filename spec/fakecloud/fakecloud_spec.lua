-- The fake cloud itself, over raw HTTPS: the end-user API beyond login (email
-- accounts, tokens, passwords, binding, TSL, current values, control, history,
-- sharing), the fault matrix and the in-flight counters, and the live cloud's
-- ways (issue 11): form bodies, auth failures on demand, X-Q-Language, the
-- routes live clients use beyond the docs, the daily quota, a second user domain. Requests are built by
-- hand with the C core's session and crypto, so these specs check the fake and
-- nothing of the client library.
local core = require "quecapi.core"
local json = require "quecapi.json"
local fake = require "support.fake"

local PK = "p11pLZ"
local _  -- the uid some calls return first, when a spec does not need it

-- Wall-clock seconds with sub-second precision, the same on Lua 5.4 and LuaJIT.
local function wall()
  local p = io.popen("date +%s%N")
  local ns = p:read("*l")
  p:close()
  return tonumber(ns) / 1e9
end

local function ms(seconds)
  return string.format("%.0f", seconds * 1000)
end

local function now_ms()
  return tonumber(ms(os.time()))
end

-- One API call that must get an HTTP 200 envelope; the decoded envelope.
local function call(method, path, query, token, body)
  local status, res, _, text = fake.api { method = method, path = path, query = query, token = token, json = body }
  assert(status == 200, tostring(path) .. ": HTTP " .. tostring(status) .. " " .. tostring(res or text))
  assert(type(res) == "table", "not JSON: " .. tostring(text))
  return res
end

local function ok(method, path, query, token, body)
  local res = call(method, path, query, token, body)
  assert(res.code == 200, path .. ": code " .. tostring(res.code) .. " " .. tostring(res.msg))
  return res.data
end

local function code_of(method, path, query, token, body)
  return call(method, path, query, token, body).code
end

local function send_sms(phone, codeType)
  local random = core.random_string(16)
  local ts = ms(os.time())
  return code_of("POST", "/v2/sms/enduserapi/v2/sendPhoneSmsCode", {
    phone = phone, codeType = codeType, internationalCode = "86", random = random, ts = ts,
    userDomain = fake.user_domain, signature = fake.sign(phone, codeType, random, ts) })
end

local function email_login_query(email, password, sign_plain)
  local random = core.random_string(16)
  local pwd = core.encrypt_password(password, random)
  return { email = email, pwd = pwd, random = random, userDomain = fake.user_domain,
           signature = fake.sign(email, sign_plain and password or pwd, random) }
end

local function control(token, body)
  return ok("POST", "/v2/binding/enduserapi/batchControlDevice", nil, token, body)
end

local function write(token, dk, data)
  return control(token, { type = 2, data = data, deviceList = { { productKey = PK, deviceKey = dk } } })
end

local function attributes(token, dk, extra)
  local q = { pk = PK, dk = dk }
  for k, v in pairs(extra or {}) do q[k] = v end
  return ok("GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes", q, token)
end

local function values_of(data)
  local out = {}
  for _, item in ipairs(data.customizeTslInfo or {}) do out[item.resourceCode] = item.resourceValce end
  return out
end

describe("fake cloud: email accounts", function()
  before_each(function() fake.reset() end)

  it("sends a code, registers and logs in by email", function()
    local email = "ann@example.com"
    assert.are.equal(5026, code_of("POST", "/v2/mail/enduserapi/v2/sendEmail",
      { emailType = 1, userDomain = fake.user_domain }))
    assert.are.equal(5040, code_of("POST", "/v2/mail/enduserapi/v2/sendEmail",
      { email = "not-an-address", emailType = 1, userDomain = fake.user_domain }))
    assert.are.equal(5023, code_of("POST", "/v2/mail/enduserapi/v2/sendEmail", { email = email, emailType = 1 }))
    assert.is_nil(ok("POST", "/v2/mail/enduserapi/v2/sendEmail",
      { email = email, emailType = 1, userDomain = fake.user_domain }))
    local code = fake.email_code(email, 1)
    assert.matches("^%d%d%d%d%d%d$", code)

    local random = core.random_string(16)
    local reg = { email = email, code = code == "000000" and "000001" or "000000", random = random,
                  pwd = core.encrypt_password("mail-pass1", random), userDomain = fake.user_domain }
    assert.are.equal(5046, code_of("POST", "/v2/enduser/enduserapi/emailPwdRegister", reg))
    reg.code = code
    local uid = ok("POST", "/v2/enduser/enduserapi/emailPwdRegister", reg)
    assert.is_string(uid)
    assert.matches("^C%d+$", uid)
    assert.are.equal(5039, code_of("POST", "/v2/enduser/enduserapi/emailPwdRegister", reg))

    -- the signature covers the encrypted pwd, not the password
    assert.are.equal(5420, code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin",
      email_login_query(email, "mail-pass1", true)))
    local data = ok("POST", "/v2/enduser/enduserapi/emailPwdLogin", email_login_query(email, "mail-pass1"))
    assert.matches("^Bearer ", data.accessToken.token)
    assert.matches("^Bearer ", data.refreshToken.token)
    assert.is_true(data.accessToken.expirationTime > os.time())
    local info = ok("GET", "/v2/enduser/enduserapi/userInfo", nil, data.accessToken.token)
    assert.are.equal(uid, info.uid)
    assert.are.equal(email, info.email)
    assert.are.equal(1, info.status)
  end)

  it("counts wrong email passwords down, then freezes the account", function()
    fake.control("POST", "/_fake/users", { email = "bob@example.com", password = "right-pass" })
    local codes = {}
    for i = 1, 5 do
      codes[i] = code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin",
        email_login_query("bob@example.com", "wrong-pass"))
    end
    assert.are.same({ 5586, 5585, 5584, 5583, 5147 }, codes)
    assert.are.equal(5147, code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin",
      email_login_query("bob@example.com", "right-pass")))
    assert.are.equal(5031, code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin",
      email_login_query("nobody@example.com", "right-pass")))
  end)

  it("takes emailPwdLogin's fields from a form body too, as the platform does", function()
    fake.control("POST", "/_fake/users", { email = "cy@example.com", password = "form-pass" })
    local body = fake.encode_query(email_login_query("cy@example.com", "form-pass"))
    local status, res = fake.api { method = "POST", path = "/v2/enduser/enduserapi/emailPwdLogin", body = body,
                                   headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } }
    assert.are.equal(200, status)
    assert.are.equal(200, res.code)
  end)
end)

describe("fake cloud: tokens", function()
  before_each(function() fake.reset() end)

  local function refresh(refresh_token, access_token)
    return call("PUT", "/v2/enduser/enduserapi/refreshToken", { refreshToken = refresh_token }, access_token)
  end

  it("rotates both tokens on refresh and refuses the old ones", function()
    local _, access, login = fake.session_user("13700000001")
    local old_refresh = login.refreshToken.token
    local res = refresh(old_refresh, access)
    assert.are.equal(200, res.code)
    local new = res.data
    assert.matches("^Bearer ", new.accessToken.token)
    assert.are_not.equal(access, new.accessToken.token)
    assert.are_not.equal(old_refresh, new.refreshToken.token)
    assert.is_number(new.refreshToken.expirationTime)
    -- the old pair is dead, the new one works
    assert.are.equal(5032, code_of("GET", "/v2/enduser/enduserapi/userInfo", nil, access))
    assert.are.equal(5032, refresh(old_refresh, new.accessToken.token).code)
    assert.is_table(ok("GET", "/v2/enduser/enduserapi/userInfo", nil, new.accessToken.token))
    -- and the new refresh token is good for exactly one more round
    assert.are.equal(200, refresh(new.refreshToken.token, new.accessToken.token).code)
    assert.are.equal(5032, refresh(new.refreshToken.token, new.accessToken.token).code)
  end)

  it("needs the access token of the same user, expired or not", function()
    local _, access, login = fake.session_user("13700000002")
    local _, other = fake.session_user("13700000003")
    assert.are.equal(5106, refresh(login.refreshToken.token, nil).code)
    assert.are.equal(5032, refresh(login.refreshToken.token, other).code)
    assert.are.equal(5032, refresh(login.refreshToken.token, "Bearer not.a.token").code)
    assert.are.equal(5115, refresh(nil, access).code)
    -- the token as login returned it, "Bearer " included
    assert.are.equal(5032, refresh((login.refreshToken.token:gsub("^Bearer ", "")), access).code)
    fake.expire { access_only = true }
    assert.are.equal(5032, code_of("GET", "/v2/enduser/enduserapi/userInfo", nil, access))
    assert.are.equal(200, refresh(login.refreshToken.token, access).code)
  end)

  it("refuses an expired refresh token", function()
    local _, access, login = fake.session_user("13700000006")
    fake.expire { phone = "13700000006" }
    assert.are.equal(5032, refresh(login.refreshToken.token, access).code)
  end)

  it("logs out: every token of the user stops working", function()
    local _, access, login = fake.session_user("13700000004")
    assert.is_nil(ok("DELETE", "/v2/enduser/enduserapi/userLogout", nil, access))
    assert.are.equal(5032, code_of("GET", "/v2/enduser/enduserapi/userInfo", nil, access))
    assert.are.equal(5032, refresh(login.refreshToken.token, access).code)
    assert.are.equal(5106, code_of("DELETE", "/v2/enduser/enduserapi/userLogout"))
  end)

  it("answers userInfo with the documented fields", function()
    local uid, access = fake.session_user("13700000005")
    local info = ok("GET", "/v2/enduser/enduserapi/userInfo", nil, access)
    assert.are.equal(uid, info.uid)
    assert.are.equal("13700000005", info.phone)
    assert.is_string(info.nikeName)
    assert.is_number(info.registerTimeTs)
    assert.is_number(info.lastLoginTime)
  end)
end)

describe("fake cloud: passwords", function()
  before_each(function() fake.reset() end)

  local function set_pwd(token, old, new, random)
    random = random or core.random_string(16)
    return code_of("PUT", "/v2/enduser/enduserapi/setUserPwd", {
      oldPwd = core.encrypt_password(old, random), newPwd = core.encrypt_password(new, random),
      random = random }, token)
  end

  it("changes the password after checking the old one", function()
    local _, access = fake.session_user("13600000001", "old-pass1")
    assert.are.equal(5008, set_pwd(access, "not-the-pass", "new-pass1"))
    assert.are.equal(5063, set_pwd(access, "old-pass1", "old-pass1"))
    assert.are.equal(5510, set_pwd(access, "old-pass1", "short"))
    assert.are.equal(5505, code_of("PUT", "/v2/enduser/enduserapi/setUserPwd", { newPwd = "x" }, access))
    assert.are.equal(5506, code_of("PUT", "/v2/enduser/enduserapi/setUserPwd",
      { oldPwd = "garbage", newPwd = "garbage", random = "r" }, access))
    assert.are.equal(200, set_pwd(access, "old-pass1", "new-pass1"))
    assert.has_error(function() fake.login("13600000001", "old-pass1") end)
    assert.is_table(fake.login("13600000001", "new-pass1"))
  end)

  it("resets by phone with an SMS code of codeType 1", function()
    local _, access = fake.session_user("13600000002", "old-pass1")
    assert.are.equal(200, send_sms("13600000002", 1))
    local code = fake.sms_code("13600000002", 1)
    local random = core.random_string(16)
    local q = { phone = "13600000002", internationalCode = "86", code = code == "000000" and "000001" or "000000",
                random = random, pwd = core.encrypt_password("reset-pass", random), userDomain = fake.user_domain }
    assert.are.equal(5037, code_of("PUT", "/v2/enduser/enduserapi/userPwdReset", q))
    q.code = code
    assert.is_nil(ok("PUT", "/v2/enduser/enduserapi/userPwdReset", q))
    assert.is_table(fake.login("13600000002", "reset-pass"))
    -- a reset signs the user out, and a code is good once
    assert.are.equal(5032, code_of("GET", "/v2/enduser/enduserapi/userInfo", nil, access))
    assert.are.equal(5037, code_of("PUT", "/v2/enduser/enduserapi/userPwdReset", q))
  end)

  it("resets by email with an email code of emailType 2, to 12345678 without pwd", function()
    fake.control("POST", "/_fake/users", { email = "dee@example.com", password = "old-pass1" })
    ok("POST", "/v2/mail/enduserapi/v2/sendEmail",
      { email = "dee@example.com", emailType = 2, userDomain = fake.user_domain })
    local code = fake.email_code("dee@example.com", 2)
    assert.is_nil(ok("PUT", "/v2/enduser/enduserapi/userPwdReset",
      { email = "dee@example.com", code = code, userDomain = fake.user_domain }))
    assert.are.equal(200, code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin",
      email_login_query("dee@example.com", "12345678")))
    assert.are.equal(5044, code_of("PUT", "/v2/enduser/enduserapi/userPwdReset",
      { code = "1", userDomain = fake.user_domain }))
    assert.are.equal(5064, code_of("PUT", "/v2/enduser/enduserapi/userPwdReset",
      { email = "dee@example.com", userDomain = fake.user_domain }))
    assert.are.equal(5031, code_of("PUT", "/v2/enduser/enduserapi/userPwdReset",
      { email = "nobody@example.com", code = "1", userDomain = fake.user_domain }))
  end)
end)

describe("fake cloud: binding", function()
  local access
  before_each(function()
    fake.reset()
    _, access = fake.session_user("13500000001")
    fake.unbound {
      { productKey = PK, deviceKey = "BIND01", sn = "SN-0001", deviceName = "lamp" },
      { productKey = PK, deviceKey = "BIND02", sn = "SN-0002" },
    }
  end)

  local function list()
    return ok("GET", "/v2/binding/enduserapi/userDeviceList", nil, access)
  end

  it("binds by SN and by DK, then unbinds", function()
    assert.are.equal(0, list().total)
    local data = ok("POST", "/v2/binding/enduserapi/bindDeviceSn", { pk = PK, sn = "SN-0001" }, access)
    assert.are.equal(PK, data.pk)
    assert.are.equal("BIND01", data.dk)
    assert.is_string(data.authKey)
    assert.are.equal(5049, code_of("POST", "/v2/binding/enduserapi/bindDeviceSn", { pk = PK, sn = "SN-0001" }, access))
    assert.are.equal(5553, code_of("POST", "/v2/binding/enduserapi/bindDeviceSn", { pk = PK, sn = "SN-9999" }, access))
    assert.are.equal(5088, code_of("POST", "/v2/binding/enduserapi/bindDeviceSn", { pk = PK }, access))

    data = ok("POST", "/v2/binding/enduserapi/bindDeviceDk", { pk = PK, dk = "BIND02", name = "desk" }, access)
    assert.is_string(data.authKey)
    assert.are.equal(5067, code_of("POST", "/v2/binding/enduserapi/bindDeviceDk", { pk = PK }, access))
    assert.are.equal(5553, code_of("POST", "/v2/binding/enduserapi/bindDeviceDk", { pk = PK, dk = "NOPE" }, access))

    local l = list()
    assert.are.equal(2, l.total)
    assert.are.equal("lamp", l.list[1].deviceName)
    assert.are.equal(1, l.list[1].bindingType)
    assert.are.equal("desk", l.list[2].deviceName)
    assert.are.equal(3, l.list[2].bindingType)
    assert.are.equal(1, l.list[2].deviceType)

    local info = ok("GET", "/v2/binding/enduserapi/deviceInfo", { pk = PK, dk = "BIND02" }, access)
    assert.are.equal("desk", info.deviceName)
    assert.are.equal(5140, code_of("GET", "/v2/binding/enduserapi/deviceInfo", {}, access))

    data = ok("DELETE", "/v2/binding/enduserapi/unbundlingDeviceDk", { pk = PK, dk = "BIND01" }, access)
    assert.are.equal(0, data.bindingSum)
    assert.are.equal(5052, code_of("DELETE", "/v2/binding/enduserapi/unbundlingDeviceDk",
      { pk = PK, dk = "BIND01" }, access))
    assert.are.equal(5052, code_of("GET", "/v2/binding/enduserapi/deviceInfo", { pk = PK, dk = "BIND01" }, access))
    assert.are.equal(1, list().total)
    assert.are.equal(5106, code_of("POST", "/v2/binding/enduserapi/bindDeviceDk", { pk = PK, dk = "BIND01" }))
  end)

  it("lets a second user bind the same device (multi-binding)", function()
    local _, other = fake.session_user("13500000002")
    ok("POST", "/v2/binding/enduserapi/bindDeviceDk", { pk = PK, dk = "BIND01" }, access)
    ok("POST", "/v2/binding/enduserapi/bindDeviceDk", { pk = PK, dk = "BIND01" }, other)
    assert.are.equal(2, #fake.device(PK, "BIND01").bindings)
    local data = ok("DELETE", "/v2/binding/enduserapi/unbundlingDeviceDk", { pk = PK, dk = "BIND01" }, other)
    assert.are.equal(1, data.bindingSum)
  end)
end)

describe("fake cloud: TSL", function()
  local access
  before_each(function()
    fake.reset()
    _, access = fake.session_user("13400000001")
  end)

  it("describes the default product with every data type", function()
    local tsl = ok("GET", "/v2/binding/enduserapi/productTSL", { pk = PK }, access)
    assert.are.equal(PK, tsl.productKey)
    local by = {}
    for _, p in ipairs(tsl.properties) do
      by[p.code] = p
      assert.are.equal("PROPERTY", p.type)
      assert.is_number(p.id)
      assert.is_number(p.sort)
      assert.is_string(p.name)
    end
    local types = {}
    for code, p in pairs(by) do types[code] = p.dataType .. "/" .. p.subType end
    assert.are.same({ switch = "BOOL/RW", brightness = "INT/RW", temperature = "FLOAT/R", energy = "DOUBLE/R",
                      mode = "ENUM/RW", label = "TEXT/RW", updated = "DATE/RW", color = "STRUCT/RW",
                      schedule = "ARRAY/RW" }, types)
    assert.are.same({ { value = "true", name = "on" }, { value = "false", name = "off" } }, by.switch.specs)
    assert.are.same({ min = "0", max = "100", step = "1", unit = "%" }, by.brightness.specs)
    assert.are.equal("-20", by.temperature.specs.min)
    assert.are.equal("2", by.mode.specs[3].value)
    assert.are.equal("night", by.mode.specs[3].name)
    assert.are.same({ length = "32" }, by.label.specs)
    assert.are.same({}, by.updated.specs)
    assert.are.equal(3, #by.color.specs)
    assert.are.equal("r", by.color.specs[1].code)
    assert.are.equal("INT", by.color.specs[1].dataType)
    assert.are.equal("255", by.color.specs[1].specs.max)
    assert.are.equal("8", by.schedule.specs.size)
    assert.are.equal("INT", by.schedule.specs.dataType)
    assert.are.equal("1440", by.schedule.specs.specs.max)

    local blink = tsl.services[1]
    assert.are.equal("blink", blink.code)
    assert.are.equal("SERVICE", blink.type)
    assert.are.equal("times", blink.inputData[1].code)
    assert.are.equal("10", blink.inputData[1].specs.max)
    assert.are.equal("5000", blink.inputData[2].specs.max)
    assert.are.same({}, blink.outputData)
    local overheat = tsl.events[1]
    assert.are.equal("overheat", overheat.code)
    assert.are.equal("EVENT", overheat.type)
    assert.are.equal("FLOAT", overheat.outputData[1].dataType)
  end)

  it("sends empty TSL lists as JSON arrays", function()
    local status, _, _, text = fake.api { path = "/v2/binding/enduserapi/productTSL",
      query = { pk = PK }, token = access }
    assert.are.equal(200, status)
    assert.truthy(text:find('"outputData":[]', 1, true))
  end)

  it("answers seeded products, 5066 without pk and 5193 for an unknown one", function()
    local onoff = { { value = "true", name = "on" }, { value = "false", name = "off" } }
    fake.product { productKey = "pSEED1", productName = "Plug",
                   tsl = { properties = { { code = "on", dataType = "BOOL", specs = onoff } } } }
    local tsl = ok("GET", "/v2/binding/enduserapi/productTSL", { pk = "pSEED1" }, access)
    assert.are.equal("on", tsl.properties[1].code)
    assert.are.equal("RW", tsl.properties[1].subType)
    assert.are.same({}, tsl.services)
    assert.are.equal(5066, code_of("GET", "/v2/binding/enduserapi/productTSL", {}, access))
    assert.are.equal(5193, code_of("GET", "/v2/binding/enduserapi/productTSL", { pk = "pNOPE" }, access))
  end)
end)

describe("fake cloud: current values and property writes", function()
  local access
  before_each(function()
    fake.reset()
    _, access = fake.session_user("13300000001", "pass1234", 2)
  end)

  it("[11.1] writes every data type as native JSON and reads the platform's strings back", function()
    local before = values_of(attributes(access, "D0001", { type = "2" }))
    assert.are.equal("false", before.switch)
    assert.are.equal("0", before.brightness)
    assert.are.equal("[]", before.schedule)

    local res = write(access, "D0001", '[{"switch":true},{"brightness":80},{"mode":2},{"label":"desk lamp"},' ..
      '{"updated":1744780781133},{"color":{"r":255,"g":0,"b":16}},{"schedule":[60,120]}]')
    assert.are.equal(1, #res.successList)
    assert.are.equal(0, #res.failureList)
    assert.are.same({ productKey = PK, deviceKey = "D0001" }, res.successList[1].data)
    assert.is_string(res.successList[1].ticket)

    local data = attributes(access, "D0001", { type = "2" })
    local v = values_of(data)
    assert.are.equal("true", v.switch)
    assert.are.equal("80", v.brightness)
    assert.are.equal("2", v.mode)
    assert.are.equal("desk lamp", v.label)
    assert.are.equal("1744780781133", v.updated)
    assert.are.equal('{"r":"255","g":"0","b":"16"}', v.color)
    assert.are.equal('["60","120"]', v.schedule)
    assert.are.equal("0", v.temperature)
    local item = data.customizeTslInfo[2]
    assert.are.equal("brightness", item.resourceCode)
    assert.are.equal(2, item.abId)
    assert.are.equal("INT", item.dataType)
    assert.are.equal("RW", item.subType)
    assert.are.equal("PROPERTY", item.type)
    assert.is_string(item.name)

    -- an ENUM as its value in a string, and a struct written in part
    write(access, "D0001", '[{"switch":false},{"brightness":42},{"mode":"1"},{"color":{"g":7}}]')
    v = values_of(attributes(access, "D0001", { type = "2", codeList = "switch,brightness,mode,color" }))
    assert.are.same({ switch = "false", brightness = "42", mode = "1", color = '{"r":"255","g":"7","b":"16"}' }, v)

    -- the other device is untouched, and the fake saw the write
    assert.are.equal("false", values_of(attributes(access, "D0002", { type = "2" })).switch)
    local dev = fake.device(PK, "D0001")
    assert.are.equal(2, #dev.writes)
    assert.are.equal(42, dev.values.brightness)
    assert.are.same({ r = 255, g = 7, b = 16 }, dev.values.color)
  end)

  it("reads device reports, including read-only properties, and filters by type and codeList", function()
    fake.report(PK, "D0001", { values = { temperature = 23.5, energy = "1234.125", color = { r = 1, g = 2, b = 3 },
                                          schedule = { 10, 20, 30 } } })
    local v = values_of(attributes(access, "D0001", { type = "2" }))
    assert.are.equal("23.5", v.temperature)
    assert.are.equal("1234.125", v.energy)
    assert.are.equal('{"r":"1","g":"2","b":"3"}', v.color)
    assert.are.equal('["10","20","30"]', v.schedule)

    local all = attributes(access, "D0001")
    assert.is_table(all.customizeTslInfo)
    assert.is_table(all.deviceData)
    assert.are.equal("D0001", all.deviceData.deviceKey)
    assert.is_nil(all.deviceLocateInfo)  -- JSON null: no location reported yet

    local only1 = attributes(access, "D0001", { type = "1" })
    assert.is_nil(only1.customizeTslInfo)
    assert.is_number(only1.deviceData.battery)

    fake.control("POST", "/_fake/device/locations", { productKey = PK, deviceKey = "D0001",
                                                      points = { { lat = 31.2304, lng = 121.4737 } } })
    local loc = attributes(access, "D0001", { type = "3" }).deviceLocateInfo
    assert.are.equal("31.230400", loc.lat)
    assert.are.equal("N", loc.latType)
    assert.are.equal("E", loc.lngType)

    local one = attributes(access, "D0001", { type = "2", codeList = "temperature" })
    assert.are.equal(1, #one.customizeTslInfo)
    assert.are.equal(5471, code_of("GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes",
      { pk = PK, dk = "D0001", codeList = "temperature" }, access))
    assert.are.equal(5052, code_of("GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes",
      { pk = PK, dk = "D0099" }, access))
    assert.are.equal(5067, code_of("GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes", { pk = PK }, access))
  end)

  it("shows the device going online and what it reports about itself", function()
    local function first()
      return ok("GET", "/v2/binding/enduserapi/userDeviceList", nil, access).list[1]
    end
    assert.are.equal(0, first().onlineStatus)
    fake.report(PK, "D0001", { online = true, deviceData = { battery = 42, version = "X1" } })
    local d = first()
    assert.are.equal(1, d.onlineStatus)
    assert.are.equal("Online", d.deviceStatus)
    local dd = attributes(access, "D0001", { type = "1" }).deviceData
    assert.are.equal(42, dd.battery)
    assert.are.equal("X1", dd.version)
    fake.report(PK, "D0001", { online = false })
    assert.are.equal("Offline", first().deviceStatus)
    assert.is_false(fake.device(PK, "D0001").online)
  end)

  it("writes arrays of structs", function()
    fake.product { productKey = "pARR", tsl = { properties = {
      { code = "key", dataType = "ARRAY", specs = { size = "2", dataType = "STRUCT", specs = {
        { id = 1, code = "r", dataType = "INT", specs = { min = "0", max = "9" } },
        { id = 2, code = "g", dataType = "INT", specs = { min = "0", max = "9" } } } } } } } }
    fake.control("POST", "/_fake/devices",
      { phone = "13300000001", devices = { { productKey = "pARR", deviceKey = "A1" } } })
    local res = control(access, { type = 2, data = '[{"key":[{"r":1,"g":2},{"r":3}]}]',
                                  deviceList = { { productKey = "pARR", deviceKey = "A1" } } })
    assert.are.equal(1, #res.successList)
    local data = ok("GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes",
      { pk = "pARR", dk = "A1", type = "2" }, access)
    assert.are.equal('[{"r":"1","g":"2"},{"r":"3","g":"0"}]', data.customizeTslInfo[1].resourceValce)
    res = control(access, { type = 2, data = '[{"key":[{"r":1},{"r":1},{"r":1}]}]',
                            deviceList = { { productKey = "pARR", deviceKey = "A1" } } })
    assert.matches("at most 2", res.failureList[1].msg, 1, true)
    -- the SaaS form with "0"-keyed elements is not an App's write
    res = control(access, { type = 2, data = '[{"key":[{"0":[{"r":1}]}]}]',
                            deviceList = { { productKey = "pARR", deviceKey = "A1" } } })
    assert.matches("no member", res.failureList[1].msg, 1, true)
  end)
end)

describe("fake cloud: control validation", function()
  local access
  before_each(function()
    fake.reset()
    _, access = fake.session_user("13200000001", "pass1234", 1)
  end)

  local cases = {
    { '[{"nope":1}]', "unknown property" },
    { '[{"temperature":20}]', "read-only" },
    { '[{"switch":"yes"}]', "not a BOOL" },
    { '[{"brightness":50.5}]', "not an INT" },
    { '[{"brightness":101}]', "out of range" },
    { '[{"brightness":-1}]', "out of range" },
    { '[{"mode":7}]', "ENUM" },
    { '[{"mode":"7"}]', "ENUM" },
    { '[{"label":"' .. string.rep("x", 33) .. '"}]', "longer than 32" },
    { '[{"label":12}]', "not TEXT" },
    { '[{"updated":-5}]', "DATE" },
    { '[{"color":{"x":1}}]', "no member" },
    { '[{"color":{"r":256}}]', "out of range" },
    { '[{"color":{"r":true}}]', "not an INT" },
    { '[{"color":"red"}]', "not a STRUCT" },
    { '[{"schedule":{"a":60}}]', "not an ARRAY" },
    { '[{"schedule":[2000]}]', "out of range" },
    { '[{"schedule":[' .. string.rep('1,', 8) .. '1]}]', "at most 8" },
    { '{"switch":true}', "not an object" },
    { 'not json', "not a JSON text" },
    { '[]', "names no property" },
  }
  -- The live cloud is proven to take native values only: BOOL and numbers as
  -- strings, and the SaaS struct and array forms, are refused.
  local strings = {
    { '[{"switch":"true"}]', "not a BOOL" },
    { '[{"switch":"false"}]', "not a BOOL" },
    { '[{"brightness":"80"}]', "not an INT" },
    { '[{"brightness":"abc"}]', "not an INT" },
    { '[{"updated":"1744780781133"}]', "DATE" },
    { '[{"color":{"r":"255"}}]', "not an INT" },
    { '[{"color":[{"r":255}]}]', "JSON object" },
    { '[{"schedule":["60"]}]', "not an INT" },
    { '[{"schedule":[{"0":60}]}]', "not an INT" },
  }
  for _, case in ipairs(strings) do
    case.name = "[11.1] refuses a value that is not native JSON: " .. case[1]
    cases[#cases + 1] = case
  end
  for _, case in ipairs(cases) do
    it(case.name or ("puts the device in failureList for " .. case[1]:sub(1, 40)), function()
      local res = write(access, "D0001", case[1])
      assert.are.equal(0, #res.successList)
      assert.are.equal(1, #res.failureList)
      assert.are.same({ productKey = PK, deviceKey = "D0001" }, res.failureList[1].data)
      assert.matches(case[2], res.failureList[1].msg, 1, true)
      -- nothing was applied
      assert.are.equal(0, #fake.device(PK, "D0001").writes)
    end)
  end

  it("checks every device on its own", function()
    fake.unbound { { productKey = PK, deviceKey = "FREE1" } }
    local res = control(access, { type = 2, data = '[{"switch":true}]', deviceList = {
      { productKey = PK, deviceKey = "D0001" }, { productKey = PK, deviceKey = "FREE1" },
      { productKey = PK, deviceKey = "GHOST" }, { productKey = PK } } })
    assert.are.equal(1, #res.successList)
    assert.are.equal(3, #res.failureList)
    assert.matches("no permission", res.failureList[1].msg, 1, true)
    assert.matches("does not exist", res.failureList[2].msg, 1, true)
    assert.matches("required", res.failureList[3].msg, 1, true)
  end)

  it("answers request-wide mistakes with the documented codes", function()
    local dl = { { productKey = PK, deviceKey = "D0001" } }
    local function c(body) return code_of("POST", "/v2/binding/enduserapi/batchControlDevice", nil, access, body) end
    assert.are.equal(5070, c { data = "x", deviceList = dl })
    assert.are.equal(5071, c { type = 4, data = "x", deviceList = dl })
    assert.are.equal(5074, c { type = 2, deviceList = dl })
    assert.are.equal(5000, c { type = 2, data = { { switch = "true" } }, deviceList = dl })
    assert.are.equal(5072, c { type = 1, data = "00", deviceList = dl })
    assert.are.equal(5073, c { type = 1, dataFormat = 3, data = "00", deviceList = dl })
    assert.are.equal(5075, c { type = 1, dataFormat = 2, data = string.rep("a", 4097), deviceList = dl })
    assert.are.equal(5311, c { type = 2, data = "[]" })
    assert.are.equal(5311, c { type = 2, data = "[]", deviceList = json.array {} })
    local many = {}
    for i = 1, 101 do many[i] = { productKey = PK, deviceKey = "D" .. i } end
    assert.are.equal(5312, c { type = 2, data = "[]", deviceList = many })
    assert.are.equal(5330, c { type = 2, data = '[{"switch":true}]', deviceList = dl, isCache = 3 })
    assert.are.equal(5328, c { type = 2, data = '[{"switch":true}]', deviceList = dl, isCache = 1 })
    assert.are.equal(5329, c { type = 2, data = '[{"switch":true}]', deviceList = dl, isCache = 1, cacheTime = 0 })
    assert.are.equal(5331, c { type = 2, data = '[{"switch":true}]', deviceList = dl, isCover = 9 })
    assert.are.equal(5106, code_of("POST", "/v2/binding/enduserapi/batchControlDevice", nil, nil, { type = 2 }))
    -- a body that is not JSON at all
    local status, res = fake.api { method = "POST", path = "/v2/binding/enduserapi/batchControlDevice", token = access,
                                   body = "{type:2", headers = { ["Content-Type"] = "application/json" } }
    assert.are.equal(200, status)
    assert.are.equal(5000, res.code)
  end)
end)

describe("fake cloud: pass-through and services", function()
  local access
  before_each(function()
    fake.reset()
    _, access = fake.session_user("13100000001", "pass1234", 1)
  end)

  local function send(body)
    body.deviceList = { { productKey = PK, deviceKey = "D0001" } }
    return control(access, body)
  end

  it("passes hex and text through and records them", function()
    assert.are.equal(1, #send({ type = 1, dataFormat = 1, data = "0A0bFF" }).successList)
    assert.are.equal(1, #send({ type = 1, dataFormat = 2, data = "hello device", qos = 1 }).successList)
    local odd = send { type = 1, dataFormat = 1, data = "ABC" }
    assert.matches("not hex", odd.failureList[1].msg, 1, true)
    assert.matches("not hex", send({ type = 1, dataFormat = 1, data = "zz" }).failureList[1].msg, 1, true)
    local dev = fake.device(PK, "D0001")
    assert.are.equal(2, #dev.downlinks)
    assert.are.equal("0A0bFF", dev.downlinks[1].data)
    assert.are.equal(1, dev.downlinks[1].dataFormat)
    assert.are.equal("hello device", dev.downlinks[2].data)
    assert.are.equal(2, dev.downlinks[2].dataFormat)
    assert.is_string(dev.downlinks[1].ticket)
  end)

  it("calls a service with checked inputs", function()
    local res = send { type = 3, data = '[{"blink":[{"times":3},{"interval":500}]}]' }
    assert.are.equal(1, #res.successList)
    local dev = fake.device(PK, "D0001")
    assert.are.equal(1, #dev.services)
    assert.are.equal("blink", dev.services[1].code)
    assert.are.same({ times = 3, interval = 500 }, dev.services[1].params)
    assert.are.equal(res.successList[1].ticket, dev.services[1].ticket)

    local res11 = send { type = 3, data = '[{"blink":[{"times":11}]}]' }
    assert.matches("out of range", res11.failureList[1].msg, 1, true)
    assert.matches("no input", send({ type = 3, data = '[{"blink":[{"speed":1}]}]' }).failureList[1].msg, 1, true)
    -- [11.1] inputs are native JSON too
    assert.matches("not an INT", send({ type = 3, data = '[{"blink":[{"times":"3"}]}]' }).failureList[1].msg, 1, true)
    assert.matches("unknown service", send({ type = 3, data = '[{"dance":[]}]' }).failureList[1].msg, 1, true)
    assert.are.equal(1, #fake.device(PK, "D0001").services)
  end)
end)

describe("fake cloud: history", function()
  local access
  local DAY = 86400000
  local base = 1744761600000  -- 2025-04-16 00:00:00 UTC
  before_each(function()
    fake.reset()
    _, access = fake.session_user("13000000001", "pass1234", 1)
  end)

  local function report(ts, values)
    fake.report(PK, "D0001", { ts = ts, values = values })
  end

  it("lists raw property values newest first, paged, within the range", function()
    report(base + 1000, { brightness = 10 })
    report(base + 2000, { brightness = 20 })
    report(base + 3000, { brightness = 30 })
    report(base + 4000, { temperature = 25.5 })
    local q = { pk = PK, dk = "D0001", attributeCode = "brightness", startTimestamp = base, endTimestamp = base + 2500,
                pageSize = 1 }
    local page = ok("GET", "/v2/quecdatastorage/enduserapi/getPropertyDataList", q, access)
    assert.are.equal(2, page.total)
    assert.are.equal(2, page.pages)
    local row = page.list[1]
    assert.are.equal("20", row.propertyValue)
    assert.are.equal("brightness", row.propertyCode)
    assert.are.equal(base + 2000, row.createTimeTs)
    assert.are.equal(base + 2000, row.tsCreateTime)
    assert.are.equal("2025-04-16 00:00:02", row.createTime)
    q.page = 2
    assert.are.equal("10", ok("GET", "/v2/quecdatastorage/enduserapi/getPropertyDataList",
      q, access).list[1].propertyValue)

    q.startTimestamp = nil
    assert.are.equal(5107, code_of("GET", "/v2/quecdatastorage/enduserapi/getPropertyDataList", q, access))
    q.startTimestamp = "yesterday"
    assert.are.equal(5109, code_of("GET", "/v2/quecdatastorage/enduserapi/getPropertyDataList", q, access))
  end)

  it("records a write in the history at the fake's clock", function()
    local t0 = now_ms()
    write(access, "D0001", '[{"brightness":66}]')
    local page = ok("GET", "/v2/quecdatastorage/enduserapi/getPropertyDataList", { pk = PK, dk = "D0001",
      attributeCode = "brightness", startTimestamp = t0 - 60000, endTimestamp = t0 + 60000 }, access)
    assert.are.equal(1, page.total)
    assert.are.equal("66", page.list[1].propertyValue)
    assert.is_true(math.abs(page.list[1].createTimeTs - t0) < 5000)
  end)

  it("aggregates charts per day, hour and month", function()
    report(base + 1000, { brightness = 10 })
    report(base + 3600000, { brightness = 30 })
    report(base + DAY, { brightness = 50 })
    local q = { pk = PK, dk = "D0001", attributeCode = "brightness,temperature", startTimestamp = base,
                endTimestamp = base + 2 * DAY }
    local charts = ok("GET", "/v2/quecdatastorage/enduserapi/getPropertyChartList", q, access)
    assert.are.equal(2, #charts)
    assert.are.equal("brightness", charts[1].propertyCode)
    assert.are.same({ "2025-04-16", "2025-04-17" }, charts[1].xaxisData)
    assert.are.same({ base, base + DAY }, charts[1].xaxisDataTs)
    assert.are.same({ "20", "50" }, charts[1].yaxisData)  -- average by default
    assert.are.same({}, charts[2].xaxisData)
    q.attributeCode, q.countType = "brightness", 1
    assert.are.same({ "30", "50" }, ok("GET", "/v2/quecdatastorage/enduserapi/getPropertyChartList",
      q, access)[1].yaxisData)
    q.countType, q.timeGranularity = 5, 3
    local hourly = ok("GET", "/v2/quecdatastorage/enduserapi/getPropertyChartList", q, access)[1]
    assert.are.same({ "2025-04-16 00", "2025-04-16 01", "2025-04-17 00" }, hourly.xaxisData)
    q.countType, q.timeGranularity = 4, 1
    local monthly = ok("GET", "/v2/quecdatastorage/enduserapi/getPropertyChartList", q, access)[1]
    assert.are.same({ "2025-04" }, monthly.xaxisData)
    assert.are.same({ "40" }, monthly.yaxisData)
    q.countType = 9
    assert.are.equal(5000, code_of("GET", "/v2/quecdatastorage/enduserapi/getPropertyChartList", q, access))
  end)

  it("answers location history, oldest first, filtered by type", function()
    fake.control("POST", "/_fake/device/locations", { productKey = PK, deviceKey = "D0001", points = {
      { lat = 31.1, lng = 121.1, ts = base + 2000, type = "GP" },
      { lat = 31.0, lng = 121.0, ts = base + 1000, type = "LBS" },
      { lat = 32.0, lng = 122.0, ts = base + DAY * 3, type = "GP" } } })
    local q = { pk = PK, dk = "D0001", startTimestamp = base, endTimestamp = base + DAY }
    local pts = ok("GET", "/v2/quecdatastorage/enduserapi/getLocationHistory", q, access)
    assert.are.equal(2, #pts)
    assert.are.equal(31.0, pts[1].wgsLat)
    assert.are.equal("LBS", pts[1].locationType)
    assert.are.equal(base + 1000, pts[1].locateTimeTs)
    q.locateTypes = "GP"
    pts = ok("GET", "/v2/quecdatastorage/enduserapi/getLocationHistory", q, access)
    assert.are.equal(1, #pts)
    assert.are.equal(121.1, pts[1].gcjLng)
  end)

  it("lists events from a JSON body", function()
    fake.control("POST", "/_fake/device/events", { productKey = PK, deviceKey = "D0001", events = {
      { code = "overheat", output = { temperature = 71.5 }, ts = base + 1000 },
      { code = "overheat", output = { temperature = 75 }, ts = base + 2000 } } })
    local body = { productKey = PK, deviceKey = "D0001", codeList = { "overheat" }, startTime = base,
                   endTime = base + DAY, timezone = "+08:00" }
    local page = ok("POST", "/v2/quecdatastorage/enduserapi/v2/deviceEventList", nil, access, body)
    assert.are.equal(2, page.total)
    local ev = page.list[1]
    assert.are.equal("overheat", ev.eventCode)
    assert.are.equal('{"temperature":"75"}', ev.outputData)
    assert.are.equal("2025-04-16 08:00:02", ev.createTime)
    assert.are.equal(11, ev.abId)
    assert.are.equal("WARN", ev.eventType)
    body.codeList = json.array {}
    assert.are.equal(2, ok("POST", "/v2/quecdatastorage/enduserapi/v2/deviceEventList", nil, access, body).total)
    body.codeList = { "other" }
    assert.are.equal(0, ok("POST", "/v2/quecdatastorage/enduserapi/v2/deviceEventList", nil, access, body).total)
    body.startTime = nil
    assert.are.equal(5107, code_of("POST", "/v2/quecdatastorage/enduserapi/v2/deviceEventList", nil, access, body))
  end)
end)

describe("fake cloud: sharing", function()
  local owner, sharee, sharee_uid
  before_each(function()
    fake.reset()
    _, owner = fake.session_user("12900000001", "pass1234", 1)
    sharee_uid, sharee = fake.session_user("12900000002", "pass1234")
  end)

  local function share(extra)
    local q = { pk = PK, dk = "D0001", acceptingExpireAt = now_ms() + 600000 }
    for k, v in pairs(extra or {}) do q[k] = v end
    return ok("POST", "/v2/binding/enduserapi/shareInfo", q, owner)
  end

  local function list(token)
    return ok("GET", "/v2/binding/enduserapi/userDeviceList", nil, token)
  end

  it("shares a device by code, which then works for the sharee until cancelled", function()
    local code = share()
    assert.is_string(code)
    assert.are.equal(5139, code_of("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = code }, owner))
    assert.is_nil(ok("POST", "/v2/binding/enduserapi/shareDevice",
      { shareCode = code, deviceName = "borrowed" }, sharee))
    assert.are.equal(5137, code_of("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = code }, sharee))

    local l = list(sharee)
    assert.are.equal(1, l.total)
    local d = l.list[1]
    assert.are.equal(2, d.deviceType)
    assert.are.equal("borrowed", d.deviceName)
    assert.are.equal(code, d.shareCode)
    assert.is_string(d.ownerUid)
    assert.are.equal(1, list(owner).list[1].deviceType)

    -- the sharee reads and controls the device
    assert.is_table(attributes(sharee, "D0001", { type = "2" }).customizeTslInfo)
    assert.are.equal(1, #write(sharee, "D0001", '[{"brightness":5}]').successList)
    assert.are.equal(2, ok("GET", "/v2/binding/enduserapi/deviceInfo", { pk = PK, dk = "D0001" }, sharee).deviceType)

    local users = ok("GET", "/v2/binding/enduserapi/deviceShareUserList", { pk = PK, dk = "D0001" }, owner)
    assert.are.equal(1, #users)
    assert.are.equal(sharee_uid, users[1].shareInfo.shareUid)
    assert.are.equal(1, users[1].shareInfo.shareStatus)
    assert.are.equal(sharee_uid, users[1].userInfo.uid)
    assert.are.equal(5141, code_of("GET", "/v2/binding/enduserapi/deviceShareUserList",
      { pk = PK, dk = "D0001" }, sharee))

    assert.is_nil(ok("PUT", "/v2/binding/enduserapi/changeShareDeviceName",
      { shareCode = code, deviceName = "mine now" }, sharee))
    assert.are.equal("mine now", list(sharee).list[1].deviceName)
    assert.are.equal(5041, code_of("PUT", "/v2/binding/enduserapi/changeShareDeviceName",
      { shareCode = code, deviceName = "x" }, owner))

    assert.is_nil(ok("DELETE", "/v2/binding/enduserapi/ownerUserUnshareDevice", { shareCode = code }, owner))
    assert.are.equal(0, list(sharee).total)
    assert.are.equal("no permission to control this device",
      write(sharee, "D0001", '[{"brightness":5}]').failureList[1].msg)
    assert.are.equal(5142, code_of("DELETE", "/v2/binding/enduserapi/ownerUserUnshareDevice",
      { shareCode = code }, owner))
  end)

  it("ends a share when its usage time runs out", function()
    local code = share()
    ok("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = code }, sharee)
    assert.is_nil(ok("PUT", "/v2/binding/enduserapi/setShareTime",
      { shareCode = code, sharingExpireAt = now_ms() - 1000 }, owner))
    local d = list(sharee).list[1]
    assert.are.equal(2, d.status)
    assert.are.equal(5052, code_of("GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes",
      { pk = PK, dk = "D0001" }, sharee))
    assert.are.equal(5041, code_of("PUT", "/v2/binding/enduserapi/setShareTime",
      { shareCode = code, sharingExpireAt = now_ms() }, sharee))
  end)

  it("invites a user, who alone may accept, and lets the sharee leave", function()
    local _, third = fake.session_user("12900000003", "pass1234")
    local code = ok("POST", "/v2/binding/enduserapi/shareByUid",
      { pk = PK, dk = "D0001", phone = "12900000002" }, owner)
    assert.are.equal(5137, code_of("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = code }, third))
    assert.is_nil(ok("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = code }, sharee))
    assert.are.equal(1, list(sharee).total)
    assert.is_nil(ok("DELETE", "/v2/binding/enduserapi/shareUserUnshareDevice", { shareCode = code }, sharee))
    assert.are.equal(0, list(sharee).total)
    assert.are.equal(5891, code_of("POST", "/v2/binding/enduserapi/shareByUid", { pk = PK, dk = "D0001" }, owner))
    assert.are.equal(5033, code_of("POST", "/v2/binding/enduserapi/shareByUid",
      { pk = PK, dk = "D0001", shareUid = "C999999" }, owner))
  end)

  it("checks the share parameters", function()
    assert.are.equal(5132, code_of("POST", "/v2/binding/enduserapi/shareInfo", { pk = PK, dk = "D0001" }, owner))
    assert.are.equal(5145, code_of("POST", "/v2/binding/enduserapi/shareInfo",
      { pk = PK, dk = "D0001", acceptingExpireAt = "soon" }, owner))
    assert.are.equal(5133, code_of("POST", "/v2/binding/enduserapi/shareInfo",
      { pk = PK, dk = "D0001", acceptingExpireAt = now_ms() + 1000, coverMark = 4 }, owner))
    assert.are.equal(5153, code_of("POST", "/v2/binding/enduserapi/shareInfo",
      { pk = PK, dk = "D0001", acceptingExpireAt = now_ms() + 1000, sharingExpireAt = now_ms() }, owner))
    assert.are.equal(5135, code_of("POST", "/v2/binding/enduserapi/shareInfo",
      { pk = PK, dk = "D0001", acceptingExpireAt = now_ms() + 1000 }, sharee))
    assert.are.equal(5137, code_of("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = "nope" }, sharee))
    -- a new code replaces the unused one (coverMark 1, the default)
    local first = share()
    share()
    assert.are.equal(5137, code_of("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = first }, sharee))
    local expired = share { acceptingExpireAt = now_ms() - 1000, coverMark = 2 }
    assert.are.equal(5137, code_of("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = expired }, sharee))
  end)
end)

-- Seconds since the epoch of an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT").
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }
local function http_date(s)
  local d, mon, y, h, mi, sec = s:match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
  assert(d, "not an HTTP date: " .. tostring(s))
  y, mon = tonumber(y), MONTHS[mon]
  if mon <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mon + 9) % 12) + 2) / 5) + tonumber(d) - 1
  local days = era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

describe("fake cloud: faults", function()
  local API = "/v2/binding/enduserapi/userDeviceList"
  local access, s
  before_each(function()
    fake.reset()
    _, access = fake.session_user("12800000001", "pass1234", 3)
    s = assert(core.session { ca_file = fake.ca })
  end)

  local function get(opts)
    local req = { session = s, path = API, token = access }
    for k, v in pairs(opts or {}) do req[k] = v end
    return fake.api(req)
  end

  it("answers normally without a fault", function()
    local status, res, headers = get()
    assert.are.equal(200, status)
    assert.are.equal(3, res.data.total)
    assert.is_true(math.abs(http_date(headers["date"]) - os.time()) <= 5)
  end)

  it("chunked: a Transfer-Encoding: chunked answer decodes to the normal JSON", function()
    fake.fault { kind = "chunked", chunks = 6, path = API }
    local status, res, headers = get()
    assert.are.equal(200, status)
    assert.are.equal("chunked", headers["transfer-encoding"])
    assert.is_nil(headers["content-length"])
    assert.are.equal(3, res.data.total)
  end)

  it("slow_headers: nothing before the delay, so a short timeout gives 'timeout'", function()
    fake.fault { kind = "slow_headers", delay_ms = 1500, path = API }
    local status, _, kind = get { timeout = 0.3 }
    assert.is_nil(status)
    assert.are.equal("timeout", kind)
    fake.fault { kind = "slow_headers", delay_ms = 400, path = API }
    local t0 = wall()
    assert.are.equal(200, (get()))
    assert.is_true(wall() - t0 >= 0.35)
  end)

  it("slow_body: the body trickles in byte by byte", function()
    -- the short 5106 answer (no token), so a byte every few ms stays quick
    local _, _, _, text = get { token = false }
    fake.fault { kind = "slow_body", delay_ms = 5, path = API }
    local t0 = wall()
    local status, res = get { token = false }
    assert.are.equal(200, status)
    assert.are.equal(5106, res.code)
    assert.is_true(wall() - t0 >= #text * 0.005 * 0.8)
    fake.fault { kind = "slow_body", delay_ms = 50, path = API }
    local st, _, kind = get { timeout = 0.5, token = false }
    assert.is_nil(st)
    assert.are.equal("timeout", kind)
  end)

  it("reset: part of the answer, then a connection reset", function()
    fake.fault { kind = "reset", path = API }
    local status, err, kind = get()
    assert.is_nil(status)
    assert.are.equal("network", kind)
    assert.matches("reset", err:lower(), 1, true)
    assert.are.equal(200, (get()))
  end)

  it("huge: a valid 20 MiB body, refused over max_body and read in full under it", function()
    fake.fault { kind = "huge", path = API }
    local status, _, kind = get { max_body = 1024 * 1024 }
    assert.is_nil(status)
    assert.are.equal("too_large", kind)
    fake.fault { kind = "huge", size = 20 * 1024 * 1024, path = API }
    local st, res, headers, text = get { max_body = 32 * 1024 * 1024 }
    assert.are.equal(200, st)
    assert.are.equal(20 * 1024 * 1024, #text)
    assert.are.equal(tostring(20 * 1024 * 1024), headers["content-length"])
    assert.are.equal(200, res.code)
  end)

  it("wrong_length short: the client reads cut JSON, and the next request is fine", function()
    fake.fault { kind = "wrong_length", path = API }
    local status, res, headers, text = get()
    assert.are.equal(200, status)
    assert.is_nil(res)
    assert.are.equal(tonumber(headers["content-length"]), #text)
    assert.are.equal(200, (get()))
  end)

  it("wrong_length long: the connection ends before Content-Length bytes", function()
    fake.fault { kind = "wrong_length", variant = "long", path = API }
    local status, _, kind = get()
    assert.is_nil(status)
    assert.are.equal("network", kind)
    assert.are.equal(200, (get()))
  end)

  it("code: a platform error envelope with the platform's message", function()
    for _, c in ipairs { { 5032, "Token verification failed." }, { 5420, "Signature verification failed." },
                         { 5058, "SMS sending is out of the limited frequency allowable range." },
                         { 5340, "Failed to control devices in batches." } } do
      fake.fault { kind = "code", code = c[1], path = API }
      local status, res = get()
      assert.are.equal(200, status)
      assert.are.equal(c[1], res.code)
      assert.are.equal(c[2], res.msg)
      assert.is_nil(res.data)
    end
    fake.fault { kind = "code", code = 5000, msg = "custom words", path = API }
    assert.are.equal("custom words", select(2, get()).msg)
  end)

  it("keeps the older kinds", function()
    fake.fault { kind = "status", status = 503, path = API }
    local status, _, headers = get()
    assert.are.equal(503, status)
    assert.matches("text/html", headers["content-type"], 1, true)
    fake.fault { kind = "malformed", path = API }
    assert.is_nil(select(2, get()))
    fake.fault { kind = "badjson", path = API }
    assert.is_nil(select(2, get()))
    fake.fault { kind = "empty", path = API }
    local _, _, h, text = get()
    assert.are.equal("", text)
    assert.are.equal("0", h["content-length"])
    fake.fault { kind = "truncated", path = API }
    assert.are.equal("network", select(3, get()))
    -- libcurl may retry once on its own when a reused connection drops: queue
    -- two, then clear what is left
    fake.fault { kind = "drop", path = API, count = 2 }
    assert.are.equal("network", select(3, get()))
    fake.clear_faults()
    fake.fault { kind = "delay", delay_ms = 1000, path = API }
    assert.are.equal("timeout", select(3, get { timeout = 0.2 }))
  end)

  it("targets one path or every API path, count times", function()
    fake.fault { kind = "code", code = 5041, path = API, count = 2 }
    assert.is_table(ok("GET", "/v2/enduser/enduserapi/userInfo", nil, access))
    assert.are.equal(5041, select(2, get()).code)
    assert.are.equal(5041, select(2, get()).code)
    assert.are.equal(200, select(2, get()).code)
    fake.fault { kind = "code", code = 5041, count = 2 }
    assert.are.equal(5041, code_of("GET", "/v2/enduser/enduserapi/userInfo", nil, access))
    assert.are.equal(5041, select(2, get()).code)
    assert.are.equal(200, select(2, get()).code)
  end)

  it("refuses unknown kinds and incomplete options", function()
    assert.has_error(function() fake.fault { kind = "gremlins" } end)
    assert.has_error(function() fake.fault { kind = "code" } end)
    assert.has_error(function() fake.fault { kind = "wrong_length", variant = "sideways" } end)
  end)

  it("shows its skewed clock in the Date header of a 5420 answer", function()
    fake.configure { clock_offset = 900 }
    local random = core.random_string(16)
    local ts = ms(os.time())
    local phone = "12800000002"
    local status, res, headers = fake.api { method = "POST", path = "/v2/sms/enduserapi/v2/sendPhoneSmsCode", query = {
      phone = phone, codeType = 3, internationalCode = "86", random = random, ts = ts, userDomain = fake.user_domain,
      signature = fake.sign(phone, 3, random, ts) } }
    assert.are.equal(200, status)
    assert.are.equal(5420, res.code)
    local skew = http_date(headers["date"]) - os.time()
    assert.is_true(skew >= 895 and skew <= 905, "skew " .. skew)
    -- a request stamped with the fake's time passes
    ts = ms(http_date(headers["date"]))
    assert.are.equal(200, code_of("POST", "/v2/sms/enduserapi/v2/sendPhoneSmsCode", {
      phone = phone, codeType = 3, internationalCode = "86", random = random, ts = ts, userDomain = fake.user_domain,
      signature = fake.sign(phone, 3, random, ts) }))
  end)
end)

describe("fake cloud: concurrency", function()
  before_each(function() fake.reset() end)

  -- Requests an earlier spec gave up on (timeouts) are still being answered;
  -- wait until the fake is idle so only this spec's requests are counted.
  local function wait_idle()
    for _ = 1, 50 do
      if fake.stats().inflight == 0 then return end
      os.execute("sleep 0.1")
    end
    error("the fake cloud did not become idle")
  end

  it("counts 25 concurrent slow requests in flight", function()
    wait_idle()
    fake.configure { delay_ms = 800 }
    fake.control("POST", "/_fake/stats/reset")
    local url = fake.http_url .. "/v2/binding/enduserapi/userDeviceList"
    local cmd = "for i in $(seq 25); do curl -s -o /dev/null '" .. url .. "' & done; wait; echo done"
    local p = io.popen(cmd)
    os.execute("sleep 0.4")
    local mid = fake.stats()
    local out = p:read("*a")
    p:close()
    assert.matches("done", out, 1, true)
    assert.are.equal(25, mid.inflight)
    local after = fake.stats()
    assert.are.equal(0, after.inflight)
    assert.are.equal(25, after.inflight_max)
    assert.are.equal(25, after.requests)
    local reset = fake.control("POST", "/_fake/stats/reset")
    assert.are.equal(0, reset.inflight_max)
    assert.are.equal(0, fake.stats().inflight_max)
  end)
end)

-- One raw API call with a form body (and maybe a query); the decoded envelope.
local function form_call(method, path, form, token, query, headers)
  local status, res, _, text = fake.api { method = method, path = path, form = form, query = query,
                                          token = token, headers = headers }
  assert(status == 200, path .. ": HTTP " .. tostring(status) .. " " .. tostring(text))
  assert(type(res) == "table", "not JSON: " .. tostring(text))
  return res
end

-- The one request the fake logged since seq.
local function logged(since)
  local reqs = fake.requests(since)
  assert.are.equal(1, #reqs)
  return reqs[1]
end

-- Fails when any of the secrets appears in the request's URL (raw or escaped).
local function assert_clean_url(req, secrets)
  assert.is_string(req.url)
  for _, secret in ipairs(secrets) do
    assert.is_nil(req.url:find(secret, 1, true), "secret in the URL: " .. req.url)
    assert.is_nil(req.url:find(fake.encode_query { x = secret }:sub(3), 1, true), "secret in the URL: " .. req.url)
  end
end

describe("fake cloud: parameters in form bodies", function()
  before_each(function() fake.reset() end)

  it("[11.2] sends an SMS code, registers by email and logs in by phone and email with form bodies", function()
    local phone = "13900000001"
    local random, ts = core.random_string(16), ms(os.time())
    local signature = fake.sign(phone, 3, random, ts)
    local seq = fake.seq()
    assert.are.equal(200, form_call("POST", "/v2/sms/enduserapi/v2/sendPhoneSmsCode", {
      phone = phone, codeType = 3, internationalCode = "86", random = random, ts = ts,
      userDomain = fake.user_domain, signature = signature }).code)
    local req = logged(seq)
    assert.are.equal("/v2/sms/enduserapi/v2/sendPhoneSmsCode", req.url)
    assert.are.equal(phone, req.form.phone)
    assert.are.equal(phone, req.args.phone)
    assert.is_nil(req.query.phone)
    assert.matches("application/x-www-form-urlencoded", req.content_type, 1, true)
    assert_clean_url(req, { signature })

    -- registration by phone keeps its documented JSON body
    local code = fake.sms_code(phone, 3)
    random = core.random_string(16)
    local pwd = core.encrypt_password("form-pass1", random)
    assert.is_table(ok("POST", "/v2/enduser/enduserapi/v2/phonePwdRegister", nil, nil, {
      phone = phone, pwd = pwd, random = random, smsCode = code, internationalCode = "86",
      userDomain = fake.user_domain, agreementList = { { protocolType = 1, privacyVersion = "1.0" } } }))

    local login = fake.login_params(phone, "form-pass1")
    seq = fake.seq()
    local res = form_call("POST", "/v2/enduser/enduserapi/phonePwdLogin", login)
    assert.are.equal(200, res.code)
    assert.matches("^Bearer ", res.data.accessToken.token)
    req = logged(seq)
    assert.are.equal("/v2/enduser/enduserapi/phonePwdLogin", req.url)
    assert_clean_url(req, { login.pwd, login.signature })

    local email = "form@example.com"
    assert.are.equal(200, form_call("POST", "/v2/mail/enduserapi/v2/sendEmail",
      { email = email, emailType = 1, userDomain = fake.user_domain }).code)
    local mail_code = fake.email_code(email, 1)
    random = core.random_string(16)
    local reg = { email = email, code = mail_code, random = random, userDomain = fake.user_domain,
                  pwd = core.encrypt_password("mail-pass1", random) }
    seq = fake.seq()
    res = form_call("POST", "/v2/enduser/enduserapi/emailPwdRegister", reg)
    assert.are.equal(200, res.code)
    assert.matches("^C%d+$", res.data)
    assert_clean_url(logged(seq), { reg.pwd, mail_code })
    res = form_call("POST", "/v2/enduser/enduserapi/emailPwdLogin", email_login_query(email, "mail-pass1"))
    assert.are.equal(200, res.code)
  end)

  it("[11.2] refreshes a token, changes and resets a password with form bodies", function()
    local _, access, login = fake.session_user("13900000002", "old-pass1")
    local seq = fake.seq()
    local res = form_call("PUT", "/v2/enduser/enduserapi/refreshToken",
      { refreshToken = login.refreshToken.token }, access)
    assert.are.equal(200, res.code)
    local req = logged(seq)
    assert.are.equal("/v2/enduser/enduserapi/refreshToken", req.url)
    assert.are.equal("PUT", req.method)
    assert_clean_url(req, { (login.refreshToken.token:gsub("^Bearer ", "")) })
    access = res.data.accessToken.token
    -- a spent refresh token in a form body is refused as in a query
    assert.are.equal(5032, form_call("PUT", "/v2/enduser/enduserapi/refreshToken",
      { refreshToken = login.refreshToken.token }, access).code)

    local random = core.random_string(16)
    local change = { oldPwd = core.encrypt_password("old-pass1", random),
                     newPwd = core.encrypt_password("new-pass1", random), random = random }
    seq = fake.seq()
    assert.are.equal(200, form_call("PUT", "/v2/enduser/enduserapi/setUserPwd", change, access).code)
    assert_clean_url(logged(seq), { change.oldPwd, change.newPwd })
    assert.is_table(fake.login("13900000002", "new-pass1"))

    assert.are.equal(200, send_sms("13900000002", 1))
    local code = fake.sms_code("13900000002", 1)
    random = core.random_string(16)
    local reset = { phone = "13900000002", internationalCode = "86", code = code, random = random,
                    pwd = core.encrypt_password("reset-pass1", random), userDomain = fake.user_domain }
    seq = fake.seq()
    assert.are.equal(200, form_call("PUT", "/v2/enduser/enduserapi/userPwdReset", reset).code)
    assert_clean_url(logged(seq), { reset.pwd, code })
    assert.is_table(fake.login("13900000002", "reset-pass1"))
  end)

  it("[11.2] reads the query and a form body together; the query wins a clash", function()
    fake.user("13900000003", "pass1234")
    local login = fake.login_params("13900000003", "pass1234")
    local query = { phone = login.phone, internationalCode = login.internationalCode, userDomain = login.userDomain }
    local form = { pwd = login.pwd, random = login.random, signature = login.signature, phone = "10000000000" }
    local seq = fake.seq()
    assert.are.equal(200, form_call("POST", "/v2/enduser/enduserapi/phonePwdLogin", form, nil, query).code)
    local req = logged(seq)
    assert.are.equal("13900000003", req.args.phone)
    assert.are.equal("13900000003", req.query.phone)
    assert.are.equal("10000000000", req.form.phone)
    assert.are.equal(login.pwd, req.args.pwd)
    assert.matches("^/v2/enduser/enduserapi/phonePwdLogin%?", req.url)
    -- the query form keeps working on its own
    assert.are.equal(200, code_of("POST", "/v2/enduser/enduserapi/phonePwdLogin",
      fake.login_params("13900000003", "pass1234")))
  end)

  it("[11.2] reads a form body larger than nginx keeps in memory", function()
    fake.user("13900000004", "pass1234")
    local form = fake.login_params("13900000004", "pass1234")
    form.padding = string.rep("x", 64 * 1024)
    local res = form_call("POST", "/v2/enduser/enduserapi/phonePwdLogin", form)
    assert.are.equal(200, res.code)
  end)

  it("[11.2] [11.6] logs each request's URL and headers", function()
    local _, access = fake.session_user("13900000005")
    local seq = fake.seq()
    ok("GET", "/v2/binding/enduserapi/userDeviceList", { page = 1, pageSize = 5 }, access)
    fake.api { path = "/v2/enduser/enduserapi/userInfo", token = access,
               headers = { ["X-Q-Language"] = "en", appId = "app-42", ["quec-random-url"] = "0f3c" } }
    local reqs = fake.requests(seq)
    assert.are.equal(2, #reqs)
    assert.are.equal("/v2/binding/enduserapi/userDeviceList?page=1&pageSize=5", reqs[1].url)
    assert.are.equal(access, reqs[1].headers.authorization)
    assert.are.equal("en", reqs[2].headers["x-q-language"])
    assert.are.equal("app-42", reqs[2].headers.appid)
    assert.are.equal("0f3c", reqs[2].headers["quec-random-url"])
    assert.are.equal("/v2/enduser/enduserapi/userInfo", reqs[2].url)
  end)
end)

describe("fake cloud: auth failures on demand", function()
  local API = "/v2/binding/enduserapi/userDeviceList"
  local access, login
  before_each(function()
    fake.reset()
    _, access, login = fake.session_user("13900000101", "pass1234", 1)
  end)

  -- with the access token, another token, or none (false)
  local function get(token)
    if token == nil then token = access end
    return fake.api { path = API, token = token }
  end

  it("[11.4] answers the next N authenticated calls with HTTP 401, then normally", function()
    fake.auth_failure { count = 2 }
    -- calls without a token do not use it up
    assert.are.equal(5106, select(2, get(false)).code)
    assert.is_table(fake.login("13900000101", "pass1234"))
    for _ = 1, 2 do
      local status, res, headers = get()
      assert.are.equal(401, status)
      assert.matches("application/json", headers["content-type"], 1, true)
      assert.are.equal(401, res.code)
      assert.are.equal("Unauthorized.", res.msg)
    end
    local status, res = get()
    assert.are.equal(200, status)
    assert.are.equal(1, res.data.total)
  end)

  it("[11.4] answers HTTP 401 with an HTML page or an empty body", function()
    fake.auth_failure { body = "html" }
    local status, res, headers, text = get()
    assert.are.equal(401, status)
    assert.is_nil(res)
    assert.matches("text/html", headers["content-type"], 1, true)
    assert.matches("401 Unauthorized", text, 1, true)
    fake.auth_failure { status = 401, body = "empty" }
    status, res, headers, text = get()
    assert.are.equal(401, status)
    assert.is_nil(res)
    assert.are.equal("", text)
    assert.are.equal("0", headers["content-length"])
    assert.are.equal(200, (get()))
  end)

  it("[11.4] answers with the envelope codes live clients treat as a bad token", function()
    for _, c in ipairs { 401, 4001, 1003, 5032 } do
      fake.auth_failure { code = c }
      local status, res = get()
      assert.are.equal(200, status)
      assert.are.equal(c, res.code)
      assert.is_nil(res.data)
      assert.is_true(#res.msg > 0)
    end
    assert.are.equal(200, select(2, get()).code)
  end)

  it("[11.4] fails every call with the old token until it is renewed, sparing refreshToken", function()
    fake.auth_failure { code = 5032, until_renewed = true }
    for _ = 1, 3 do assert.are.equal(5032, select(2, get()).code) end
    local res = call("PUT", "/v2/enduser/enduserapi/refreshToken", { refreshToken = login.refreshToken.token }, access)
    assert.are.equal(200, res.code)
    local renewed = res.data.accessToken.token
    for _ = 1, 3 do assert.are.equal(200, select(2, get(renewed)).code) end
    -- a new login is a renewal too
    local _, other = fake.session_user("13900000102", "pass1234", 1)
    fake.auth_failure { status = 401, until_renewed = true }
    assert.are.equal(401, (get(other)))
    assert.are.equal(401, (get(renewed)))
    local fresh = fake.login("13900000102", "pass1234").accessToken.token
    assert.are.equal(200, (get(fresh)))
    assert.are.equal(401, (get(other)))
    fake.clear_faults()
    assert.are.equal(200, (get(other)))
  end)

  it("[11.4] fails refreshToken too when asked, and only one path when given", function()
    fake.auth_failure { code = 5032, refresh = true }
    assert.are.equal(5032, call("PUT", "/v2/enduser/enduserapi/refreshToken",
      { refreshToken = login.refreshToken.token }, access).code)
    fake.auth_failure { code = 4001, path = API }
    assert.is_table(ok("GET", "/v2/enduser/enduserapi/userInfo", nil, access))
    assert.are.equal(4001, select(2, get()).code)
    assert.are.equal(200, select(2, get()).code)
  end)

  it("[11.4] refuses inconsistent options", function()
    assert.has_error(function() fake.auth_failure { code = 5032, status = 401 } end)
    assert.has_error(function() fake.auth_failure { status = 500 } end)
    assert.has_error(function() fake.auth_failure { code = "soon" } end)
    assert.has_error(function() fake.auth_failure { body = "xml" } end)
    assert.has_error(function() fake.auth_failure { until_renewed = "yes" } end)
  end)
end)

describe("fake cloud: X-Q-Language", function()
  before_each(function() fake.reset() end)

  local function msg_of(lang, path, query, token)
    local headers = lang and { ["X-Q-Language"] = lang } or nil
    local _, res = fake.api { method = "POST", path = path, query = query, token = token, headers = headers }
    return res.code, res.msg
  end

  it("[11.6] words common errors in Chinese for zh and in English for en or no header", function()
    local login = "/v2/enduser/enduserapi/phonePwdLogin"
    local bad_sig = { phone = "13900000201", pwd = "x", random = "r", internationalCode = "86",
                      userDomain = fake.user_domain, signature = "00" }
    assert.are.same({ 5420, "签名验证失败" }, { msg_of("zh", login, bad_sig) })
    assert.are.same({ 5420, "签名验证失败" }, { msg_of("zh-CN", login, bad_sig) })
    assert.are.same({ 5420, "Signature verification failed." }, { msg_of("en", login, bad_sig) })
    assert.are.same({ 5420, "Signature verification failed." }, { msg_of(nil, login, bad_sig) })
    assert.are.same({ 5023, "请输入用户域" }, { msg_of("zh", login, { phone = "1", pwd = "x" }) })
    local list = "/v2/binding/enduserapi/bindDeviceDk"
    assert.are.same({ 5106, "请输入 token" }, { msg_of("zh", list, {}) })
    assert.are.same({ 5032, "token 验证失败" }, { msg_of("zh", list, {}, "Bearer stale") })
    assert.are.same({ 5032, "Token verification failed." }, { msg_of("en", list, {}, "Bearer stale") })
    -- injected codes follow the header too
    fake.fault { kind = "code", code = 4026 }
    assert.are.same({ 4026, "厂商账户资源不足，请联系设备厂商" }, { msg_of("zh", list, {}) })
  end)
end)

describe("fake cloud: routes live clients use beyond the docs", function()
  local access, uid
  before_each(function()
    fake.reset()
    uid, access = fake.session_user("13900000301", "pass1234", 2)
    fake.product { productKey = "pPLUG1", productName = "Plug",
                   tsl = { properties = { { code = "on", dataType = "BOOL" } } } }
    fake.control("POST", "/_fake/devices", { phone = "13900000301",
      devices = { { productKey = "pPLUG1", deviceKey = "PLUG01", online = true } } })
    fake.unbound { { productKey = PK, deviceKey = "FREE01" } }
  end)

  it("[11.8] getDeviceOnlineStatus: online as 0/1 for a bound device, 4007 for another", function()
    local path = "/v2/binding/enduserapi/getDeviceOnlineStatus"
    local data = ok("GET", path, { pk = "pPLUG1", dk = "PLUG01" }, access)
    assert.are.same({ productKey = "pPLUG1", deviceKey = "PLUG01", online = 1, value = 1 }, data)
    assert.are.equal(0, ok("GET", path, { pk = PK, dk = "D0001" }, access).online)
    fake.report(PK, "D0001", { online = true })
    assert.are.equal(1, ok("GET", path, { pk = PK, dk = "D0001" }, access).online)
    local res = call("GET", path, { pk = PK, dk = "FREE01" }, access)
    assert.are.equal(4007, res.code)
    assert.are.equal("device is not bound", res.msg)
    assert.are.equal(5067, code_of("GET", path, { pk = PK }, access))
    assert.are.equal(5066, code_of("GET", path, { dk = "D0001" }, access))
    assert.are.equal(5106, code_of("GET", path, { pk = PK, dk = "D0001" }))
  end)

  it("[11.8] getDeviceBindingInfo: the device as the device list shows it, 4007 when not bound", function()
    local path = "/v2/binding/enduserapi/getDeviceBindingInfo"
    local data = ok("GET", path, { pk = "pPLUG1", dk = "PLUG01" }, access)
    assert.are.equal("pPLUG1", data.productKey)
    assert.are.equal("PLUG01", data.deviceKey)
    assert.are.equal("Plug", data.productName)
    assert.are.equal(uid, data.uid)
    assert.are.equal(1, data.deviceType)
    assert.are.equal(1, data.onlineStatus)
    assert.are.equal(4007, code_of("GET", path, { pk = PK, dk = "FREE01" }, access))
    assert.are.equal(4007, code_of("GET", path, { pk = PK, dk = "NOBODY" }, access))
    assert.are.equal(5032, code_of("GET", path, { pk = PK, dk = "D0001" }, "Bearer stale"))
    -- a device shared with the user is the user's to verify too
    local _, guest = fake.session_user("13900000302", "pass1234")
    local code = ok("POST", "/v2/binding/enduserapi/shareInfo",
      { pk = PK, dk = "D0001", acceptingExpireAt = now_ms() + 600000 }, access)
    assert.are.equal(4007, code_of("GET", path, { pk = PK, dk = "D0001" }, guest))
    ok("POST", "/v2/binding/enduserapi/shareDevice", { shareCode = code }, guest)
    assert.are.equal(2, ok("GET", path, { pk = PK, dk = "D0001" }, guest).deviceType)
  end)

  it("[11.8] getProductList: the products of the user's devices, once each, as a page", function()
    local path = "/v2/enduser/enduserapi/getProductList"
    local page = ok("GET", path, { pageNum = 1, pageSize = 100 }, access)
    assert.are.equal(2, page.total)
    assert.are.same({ { productKey = PK, name = "RGB light" }, { productKey = "pPLUG1", name = "Plug" } }, page.list)
    page = ok("GET", path, { pageNum = 2, pageSize = 1 }, access)
    assert.are.equal(2, page.pages)
    assert.are.same({ { productKey = "pPLUG1", name = "Plug" } }, page.list)
    assert.are.equal(10, ok("GET", path, nil, access).pageSize)
    assert.are.equal(5000, code_of("GET", path, { pageNum = 0 }, access))
    assert.are.equal(5106, code_of("GET", path, { pageNum = 1 }))
    local _, empty = fake.session_user("13900000303", "pass1234")
    local status, res, _, text = fake.api { path = path, query = { pageNum = 1, pageSize = 10 }, token = empty }
    assert.are.equal(200, status)
    assert.are.equal(0, res.data.total)
    assert.truthy(text:find('"list":[]', 1, true))
  end)
end)

describe("fake cloud: daily quota, offline and not bound", function()
  local API = "/v2/binding/enduserapi/userDeviceList"
  local access, other, login, uid, other_uid
  before_each(function()
    fake.reset()
    uid, access, login = fake.session_user("13900000401", "pass1234", 1)
    other_uid, other = fake.session_user("13900000402", "pass1234", 1)
  end)

  it("[11.9] answers 4026 past the account's daily quota until the quota is reset", function()
    fake.quota(3)
    for _ = 1, 3 do assert.are.equal(200, code_of("GET", API, nil, access)) end
    local res = call("GET", API, nil, access)
    assert.are.equal(4026, res.code)
    assert.are.equal("Insufficient resources in the manufacturer's account. Please contact the device manufacturer.",
      res.msg)
    assert.are.equal(4026, code_of("POST", "/v2/binding/enduserapi/batchControlDevice", nil, access,
      { type = 2, data = '[{"switch":true}]', deviceList = { { productKey = PK, deviceKey = "D0001" } } }))
    -- another account has its own quota, and renewing the session still works
    assert.are.equal(200, code_of("GET", API, nil, other))
    local renewed = call("PUT", "/v2/enduser/enduserapi/refreshToken", { refreshToken = login.refreshToken.token },
      access)
    assert.are.equal(200, renewed.code)
    access = renewed.data.accessToken.token
    assert.are.equal(4026, code_of("GET", API, nil, access))
    local used = fake.quota_used()
    assert.are.equal(3, used.daily_quota)
    assert.are.equal(1, used.used[other_uid])
    assert.is_true(used.used[uid] > 3)

    fake.reset_quota()
    assert.are.equal(200, code_of("GET", API, nil, access))
    -- setting the quota starts afresh; 0 turns it off
    fake.quota(1)
    assert.are.equal(200, code_of("GET", API, nil, access))
    assert.are.equal(4026, code_of("GET", API, nil, access))
    fake.quota(0)
    for _ = 1, 5 do assert.are.equal(200, code_of("GET", API, nil, access)) end
    assert.has_error(function() fake.quota(-1) end)
  end)

  it("[11.9] does not count calls without a valid token", function()
    fake.quota(1)
    assert.are.equal(5106, code_of("GET", API))
    assert.are.equal(5032, code_of("GET", API, nil, "Bearer stale"))
    assert.are.equal(200, code_of("GET", API, nil, access))
    assert.are.equal(4026, code_of("GET", API, nil, access))
  end)

  it("[11.9] reports a device not bound as 4007 and, on demand, a device offline as 4021", function()
    fake.unbound { { productKey = PK, deviceKey = "FREE09" } }
    for _, path in ipairs { "/v2/binding/enduserapi/getDeviceBindingInfo",
                            "/v2/binding/enduserapi/getDeviceOnlineStatus" } do
      local res = call("GET", path, { pk = PK, dk = "FREE09" }, other)
      assert.are.equal(4007, res.code)
      assert.are.equal("device is not bound", res.msg)
    end
    -- the live cloud reports 4021 on the realtime channel; an HTTP answer carries it
    -- when a spec asks for it
    fake.fault { kind = "code", code = 4021, path = "/v2/binding/enduserapi/batchControlDevice" }
    local res = call("POST", "/v2/binding/enduserapi/batchControlDevice", nil, access,
      { type = 2, data = '[{"switch":true}]', deviceList = { { productKey = PK, deviceKey = "D0001" } } })
    assert.are.equal(4021, res.code)
    assert.are.equal("Device is offline.", res.msg)
  end)
end)

describe("fake cloud: a second user domain", function()
  local LOGIN = "/v2/enduser/enduserapi/phonePwdLogin"
  before_each(function() fake.reset() end)

  it("[11.10] logs a user in under the domain it lives in, and answers 5015 under the other", function()
    fake.user("13900000501", "pass1234", 1, fake.second_user_domain)
    local data = fake.login("13900000501", "pass1234", "86", fake.second_user_domain)
    assert.matches("^Bearer ", data.accessToken.token)
    assert.are.equal(1, ok("GET", "/v2/binding/enduserapi/userDeviceList", nil, data.accessToken.token).total)
    -- the first domain, correctly signed with its own secret: not this account's domain
    local res = call("POST", LOGIN, fake.login_params("13900000501", "pass1234"))
    assert.are.equal(5015, res.code)
    assert.are.equal("The user domain does not exist.", res.msg)
    -- and a user of the first domain under the second
    fake.user("13900000502", "pass1234")
    assert.are.equal(5015, code_of("POST", LOGIN, fake.login_params("13900000502", "pass1234", "86",
      fake.second_user_domain)))
    assert.are.equal(200, code_of("POST", LOGIN, fake.login_params("13900000502", "pass1234")))
    -- a wrong password is still a wrong password under the right domain
    assert.are.equal(5028, code_of("POST", LOGIN, fake.login_params("13900000501", "wrong-pass", "86",
      fake.second_user_domain)))
  end)

  it("[11.10] checks each domain's signature with its own secret", function()
    fake.user("13900000503", "pass1234", nil, fake.second_user_domain)
    local q = fake.login_params("13900000503", "pass1234", "86", fake.second_user_domain)
    q.signature = fake.sign(q.internationalCode, q.phone, q.pwd, q.random)  -- the first domain's secret
    assert.are.equal(5420, code_of("POST", LOGIN, q))
    q.signature = fake.sign_for(fake.second_user_domain, q.internationalCode, q.phone, q.pwd, q.random)
    assert.are.equal(200, code_of("POST", LOGIN, q))
    q.userDomain = "U.DM.1.1"
    assert.are.equal(5015, code_of("POST", LOGIN, q))
    q.userDomain = "X.DM.5903.1"
    assert.are.equal(5013, code_of("POST", LOGIN, q))
  end)

  it("[11.10] registers and logs in by email under the second domain", function()
    local email, ud = "second@example.com", fake.second_user_domain
    ok("POST", "/v2/mail/enduserapi/v2/sendEmail", { email = email, emailType = 1, userDomain = ud })
    local random = core.random_string(16)
    local pwd = core.encrypt_password("mail-pass2", random)
    ok("POST", "/v2/enduser/enduserapi/emailPwdRegister",
      { email = email, code = fake.email_code(email, 1), random = random, pwd = pwd, userDomain = ud })
    local q = email_login_query(email, "mail-pass2")
    assert.are.equal(5015, code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin", q))
    q.userDomain = ud
    q.signature = fake.sign_for(ud, q.email, q.pwd, q.random)
    assert.are.equal(200, code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin", q))
  end)

  it("[11.10] seeds users only under a domain it knows", function()
    assert.has_error(function() fake.user("13900000504", "pass1234", nil, "U.DM.1.1") end)
    fake.control("POST", "/_fake/users", { email = "ud@example.com", password = "pass1234",
                                           userDomain = fake.second_user_domain })
    local q = email_login_query("ud@example.com", "pass1234")
    q.userDomain = fake.second_user_domain
    q.signature = fake.sign_for(q.userDomain, q.email, q.pwd, q.random)
    assert.are.equal(200, code_of("POST", "/v2/enduser/enduserapi/emailPwdLogin", q))
  end)
end)

describe("[13.7] fake cloud: new users own devices", function()
  -- the fake's own reset, without the spec helper's turning the starter devices off
  before_each(function() fake.control("POST", "/_fake/reset") end)
  after_each(function() fake.reset() end)

  local function device_list(token)
    return ok("GET", "/v2/binding/enduserapi/userDeviceList", { pageSize = 100 }, token)
  end

  local function seeded(body)
    body.password = body.password or "pass1234"
    local uid = fake.control("POST", "/_fake/users", body).uid
    return uid, fake.login(body.phone, body.password).accessToken.token
  end

  it("gives a seeded user three devices of the default product, every other one online", function()
    local uid, token = seeded { phone = "13700000001" }
    local page = device_list(token)
    assert.are.equal(3, page.total)
    local online = 0
    for i, d in ipairs(page.list) do
      assert.are.equal(PK, d.productKey)
      assert.are.equal(string.format("%s%02d", uid, i), d.deviceKey)
      assert.are.equal("RGB light-" .. i, d.deviceName)
      if d.onlineStatus == 1 then online = online + 1 end
    end
    assert.are.equal(2, online)
    -- real devices of the product: they answer with their values and take writes
    assert.is_table(attributes(token, page.list[1].deviceKey).customizeTslInfo)
    assert.is_table(write(token, page.list[1].deviceKey, '[{"brightness":42}]'))
  end)

  it("gives as many as asked, none with devices = 0 or false, and refuses nonsense", function()
    local _, token = seeded { phone = "13700000002", devices = 5 }
    assert.are.equal(5, device_list(token).total)
    _, token = seeded { phone = "13700000003", devices = 0 }
    assert.are.equal(0, device_list(token).total)
    _, token = seeded { phone = "13700000004", devices = false }
    assert.are.equal(0, device_list(token).total)
    for _, bad in ipairs { -1, 1.5, "many", 100000 } do
      local status = fake.api { method = "POST", path = "/_fake/users", json = { phone = "137", devices = bad } }
      assert.are.equal(400, status, tostring(bad))
    end
  end)

  it("gives registered users theirs too, as many as signup_devices says, never a device of another user", function()
    assert.are.equal(200, send_sms("13700000005", 3))
    local random = core.random_string(16)
    ok("POST", "/v2/enduser/enduserapi/v2/phonePwdRegister", nil, nil, {
      phone = "13700000005", smsCode = fake.sms_code("13700000005", 3), internationalCode = "86", random = random,
      pwd = core.encrypt_password("reg-pass1", random), userDomain = fake.user_domain,
      agreementList = { { protocolType = 1, privacyVersion = "1.0.0" } } })
    local mine = device_list(fake.login("13700000005", "reg-pass1").accessToken.token)
    assert.are.equal(3, mine.total)
    fake.configure { signup_devices = 1 }
    local _, token = seeded { phone = "13700000006" }
    local theirs = device_list(token)
    assert.are.equal(1, theirs.total)
    for _, d in ipairs(mine.list) do assert.are_not.equal(theirs.list[1].deviceKey, d.deviceKey) end
  end)

  it("is turned off by the specs' own reset, which count what they seed", function()
    fake.reset()
    local _, token = seeded { phone = "13700000007" }
    assert.are.equal(0, device_list(token).total)
  end)
end)

describe("[13.7] fake cloud: quecapi.fakecloud.ctl", function()
  local ctl = require "quecapi.fakecloud.ctl"
  local shell = require "support.sh"

  it("describes the running fake cloud in its env file and as shell exports", function()
    local env = assert(ctl.status(fake.dir))
    assert.are.equal(fake.url, env.FAKECLOUD_URL)
    assert.are.equal(fake.ca, env.FAKECLOUD_CA)
    assert.are.equal(fake.user_domain, env.FAKECLOUD_USER_DOMAIN)
    local exports = ctl.exports(env)
    for _, name in ipairs(ctl.VARIABLES) do
      assert.matches("export " .. name .. "='", exports, 1, true)
    end
    assert.are.equal(fake.url, shell.output("eval " .. shell.quote(exports) .. ' && echo "$FAKECLOUD_URL"'))
  end)

  it("picks its directory from FAKECLOUD_DIR, XDG_RUNTIME_DIR or /tmp and the user", function()
    local function env(t) return function(k) return t[k] end end
    assert.are.equal("/x/fc", ctl.default_dir(env { FAKECLOUD_DIR = "/x/fc", XDG_RUNTIME_DIR = "/run/user/7" }))
    assert.are.equal("/run/user/7/quecapi-fakecloud", ctl.default_dir(env { XDG_RUNTIME_DIR = "/run/user/7" }))
    assert.are.equal("/tmp/quecapi-fakecloud-ann", ctl.default_dir(env { USER = "ann" }))
    -- a user name that is no plain word is not put in a path
    assert.matches("^/tmp/quecapi%-fakecloud%-[%w%._%-]+$", ctl.default_dir(env { USER = "../../etc" }))
    assert.is_nil(ctl.default_dir(env { USER = "../../etc" }):find("..", 1, true))
  end)

  it("reads back values the env file had to quote for the shell", function()
    local dir = shell.tempdir()
    shell.write(dir .. "/env", "FAKECLOUD_DIR='/tmp/a b/it'\\''s'\nFAKECLOUD_URL=https://127.0.0.1:1\n")
    local env = assert(ctl.read_env(dir))
    assert.are.equal("/tmp/a b/it's", env.FAKECLOUD_DIR)
    assert.are.equal("https://127.0.0.1:1", env.FAKECLOUD_URL)
    assert.are.equal("/tmp/a b/it's", shell.output(". " .. shell.quote(dir .. "/env") .. ' && echo "$FAKECLOUD_DIR"'))
    shell.run("rm -rf " .. shell.quote(dir))
    assert.is_nil(ctl.read_env(dir))
    assert.is_nil(ctl.status(dir))
  end)
end)
