-- The whole seed flow against the fake cloud over HTTPS:
-- SMS code -> register -> login -> device list -> paginate.
local fake = require "support.fake"

local AGREEMENTS = { { protocolType = 1, privacyVersion = "1.0.0" }, { protocolType = 2, privacyVersion = "1.0.0" } }

describe("the App flow against the fake cloud", function()
  before_each(function() fake.reset() end)

  it("registers, logs in and lists devices", function()
    local c = fake.client()
    local phone = "13800000001"

    local res, err = c:send_phone_sms_code { phone = phone, internationalCode = "86", codeType = 3 }
    assert.is_table(res, err)
    assert.are.equal(200, res.code)
    assert.is_nil(res.data)

    local code = fake.sms_code(phone, 3)
    assert.matches("^%d%d%d%d%d%d$", code)

    res, err = c:phone_pwd_register { phone = phone, password = "s3cret-pass", smsCode = code,
                                      internationalCode = "86", agreementList = AGREEMENTS }
    assert.is_table(res, err)
    assert.is_string(res.data.uid)

    res, err = c:phone_pwd_login { phone = phone, password = "s3cret-pass", internationalCode = "86" }
    assert.is_table(res, err)
    assert.matches("^Bearer ", res.data.accessToken.token)
    assert.is_true(res.data.accessToken.expirationTime > os.time())
    assert.are.equal(res.data.accessToken.token, c:get_tokens().access_token)

    fake.control("POST", "/_fake/devices", { phone = phone, count = 23, productKey = "p11pLZ" })
    res, err = c:user_device_list { pageSize = 10, page = 3 }
    assert.is_table(res, err)
    assert.are.equal(23, res.data.total)
    assert.are.equal(3, #res.data.list)
    assert.are.equal(3, res.data.pageNum)
    assert.is_false(res.data.hasNextPage)
    if math.type then assert.are.equal("integer", math.type(res.data.total)) end
    assert.are.equal("p11pLZ", res.data.list[1].productKey)

    local keys = {}
    for device, perr in c:paginate("user_device_list", { pageSize = 7 }) do
      assert.is_table(device, perr)
      keys[#keys + 1] = device.deviceKey
    end
    assert.are.equal(23, #keys)
    assert.are.equal("D0001", keys[1])
    assert.are.equal("D0023", keys[23])
  end)

  it("filters the device list by pkList, dk and deviceName", function()
    local c = fake.client()
    fake.user("13800000002", "pass1234")
    fake.control("POST", "/_fake/devices", { phone = "13800000002", count = 3, productKey = "pA" })
    fake.control("POST", "/_fake/devices", { phone = "13800000002", count = 2, productKey = "pB", prefix = "B" })
    assert(c:phone_pwd_login { phone = "13800000002", password = "pass1234", internationalCode = "86" })
    assert.are.equal(5, c:user_device_list({}).data.total)
    assert.are.equal(2, c:user_device_list({ pkList = { "pB" } }).data.total)
    assert.are.equal(5, c:user_device_list({ pkList = "pA,pB" }).data.total)
    assert.are.equal(1, c:user_device_list({ dk = "B0002" }).data.total)
    assert.are.equal(1, c:user_device_list({ deviceName = "device-0003" }).data.total)
  end)

  it("paginates an empty list without calling twice", function()
    local c = fake.client()
    fake.user("13800000003", "pass1234")
    assert(c:phone_pwd_login { phone = "13800000003", password = "pass1234", internationalCode = "86" })
    local seq = fake.seq()
    local n = 0
    for _ in c:paginate("user_device_list", {}) do n = n + 1 end
    assert.are.equal(0, n)
    assert.are.equal(1, #fake.requests(seq))
  end)

  it("rejects a wrong user domain secret with 5420", function()
    local c = fake.client { user_domain_secret = "not-the-secret" }
    local res, err, code = c:send_phone_sms_code { phone = "13800000004", internationalCode = "86", codeType = 3 }
    assert.is_nil(res)
    assert.are.equal(5420, code)
    assert.matches("send_phone_sms_code: platform error 5420", err, 1, true)
    assert.is_nil(err:find("not-the-secret", 1, true))
  end)

  it("rejects a wrong SMS code with 5037 and a wrong password with 5028", function()
    local c = fake.client()
    assert(c:send_phone_sms_code { phone = "13800000005", internationalCode = "86", codeType = 3 })
    local code = fake.sms_code("13800000005", 3)
    local wrong = code == "000000" and "000001" or "000000"
    local _, _, ecode = c:phone_pwd_register { phone = "13800000005", password = "pass1234", smsCode = wrong,
                                               internationalCode = "86", agreementList = AGREEMENTS }
    assert.are.equal(5037, ecode)
    fake.user("13800000006", "right-pass")
    local res, err, lcode = c:phone_pwd_login { phone = "13800000006", password = "wrong-pass", internationalCode = "86" }
    assert.is_nil(res)
    assert.are.equal(5028, lcode)
    assert.is_nil(err:find("wrong-pass", 1, true))
  end)

  it("rejects a stale timestamp with 5420 when the Date header cannot explain it", function()
    -- the platform's Date agrees with the local clock, yet ts is an hour old
    local c = fake.client { clock = function() return os.time() * 1000 end }
    local res, err = c:prepare("send_phone_sms_code", { phone = "13800000007", internationalCode = "86", codeType = 3 })
    assert.is_table(res, err)
    local stale = res.body:gsub("ts=%d+", "ts=" .. (os.time() - 3600) * 1000)
    local status, body = require("quecapi.core").session({ ca_file = fake.ca }):request {
      method = "POST", url = res.url, body = stale, headers = res.headers }
    assert.are.equal(200, status)
    assert.are.equal(5420, require("quecapi.json").decode(body).code)
  end)

  it("renews an expired access token with the refresh token, and repeats the call", function()
    local c = fake.client()
    fake.user("13800000008", "pass1234", 2)
    assert(c:phone_pwd_login { phone = "13800000008", password = "pass1234", internationalCode = "86" })
    local before = c:get_tokens()
    fake.control("POST", "/_fake/expire", { access_only = true })
    local seq = fake.seq()
    local res, err = c:user_device_list {}
    assert.is_table(res, err)
    assert.are.equal(2, res.data.total)
    local paths = {}
    for _, r in ipairs(fake.requests(seq)) do paths[#paths + 1] = r.method .. " " .. r.path end
    assert.are.same({ "GET /v2/binding/enduserapi/userDeviceList", "PUT /v2/enduser/enduserapi/refreshToken",
                      "GET /v2/binding/enduserapi/userDeviceList" }, paths)
    local after = c:get_tokens()
    assert.are_not.equal(before.access_token, after.access_token)
    assert.are_not.equal(before.refresh_token, after.refresh_token) -- rotated
  end)

  it("answers 5032 when the whole session has expired", function()
    local c = fake.client()
    fake.user("13800000010", "pass1234", 2)
    assert(c:phone_pwd_login { phone = "13800000010", password = "pass1234", internationalCode = "86" })
    fake.control("POST", "/_fake/expire", {}) -- access and refresh tokens
    local res, err, code = c:user_device_list {}
    assert.is_nil(res)
    assert.are.equal(5032, code)
    local token = c:get_tokens().access_token
    assert.is_nil(err:find(token, 1, true))
  end)

  it("sends the wire format the platform expects", function()
    local c = fake.client()
    fake.user("13800000009", "pass1234")
    local seq = fake.seq()
    assert(c:phone_pwd_login { phone = "13800000009", password = "pass1234", internationalCode = "86" })
    assert(c:user_device_list { pkList = { "a", "b" } })
    local reqs = fake.requests(seq)
    assert.are.equal(2, #reqs)
    assert.are.equal("POST", reqs[1].method)
    assert.are.equal("/v2/enduser/enduserapi/phonePwdLogin", reqs[1].path)
    assert.are.equal("86", reqs[1].args.internationalCode)
    assert.are.equal(16, #reqs[1].args.random)
    assert.is_nil(reqs[1].args.ts)
    assert.are.equal("GET", reqs[2].method)
    assert.are.equal("a,b", reqs[2].args.pkList)
    assert.are.equal(c:get_tokens().access_token, reqs[2].authorization)
    assert.matches("^quecapi/", reqs[2].user_agent)
  end)
end)

describe("injected faults", function()
  local c
  before_each(function()
    fake.reset()
    -- one attempt per call: these cases are about how each failure is reported
    c = fake.client { timeout = 2, retry = false }
    fake.user("13900000001", "pass1234", 3)
    assert(c:phone_pwd_login { phone = "13900000001", password = "pass1234", internationalCode = "86" })
  end)

  local cases = {
    { kind = "status", status = 502, expect = "HTTP 502, response is not JSON" },
    { kind = "status", status = 503, expect = "HTTP 503, response is not JSON" },
    { kind = "malformed", expect = "HTTP 200, response is not JSON" },
    { kind = "badjson", expect = "HTTP 200, response is not JSON" },
    { kind = "empty", expect = "HTTP 200 with an empty body" },
    { kind = "truncated", expect = "request failed (network)" },
    -- libcurl retries once by itself when a reused connection closes before any
    -- byte of the answer, so a dropped connection is injected twice
    { kind = "drop", count = 2, expect = "request failed (network)" },
  }
  for _, case in ipairs(cases) do
    it("turns '" .. case.kind .. (case.status and (" " .. case.status) or "") .. "' into nil, err", function()
      fake.fault { kind = case.kind, status = case.status, count = case.count,
                   path = "/v2/binding/enduserapi/userDeviceList" }
      local ok, res, err, code = pcall(c.user_device_list, c, {})
      assert.is_true(ok, res)
      assert.is_nil(res)
      assert.is_nil(code)
      assert.matches(case.expect, err, 1, true)
      assert.matches("^user_device_list: ", err)
      -- the next call works again
      assert.is_table((c:user_device_list {}))
    end)
  end

  it("times out on a slow answer instead of hanging", function()
    fake.fault { kind = "delay", delay_ms = 1500, path = "/v2/binding/enduserapi/userDeviceList" }
    local quick = fake.client { timeout = 0.3, retry = false }
    quick:set_tokens(c:get_tokens())
    local t0 = os.time()
    local res, err = quick:user_device_list {}
    assert.is_nil(res)
    assert.matches("request failed (timeout)", err, 1, true)
    assert.is_true(os.time() - t0 <= 2)
  end)

  it("reports a refused connection", function()
    local dead = fake.client { base_url = "https://127.0.0.1:1" }
    local res, err = dead:send_phone_sms_code { phone = "1", internationalCode = "86", codeType = 3 }
    assert.is_nil(res)
    assert.matches("request failed (connect)", err, 1, true)
  end)

  it("paginate yields false, err once when a page fails", function()
    fake.fault { kind = "status", status = 500, path = "/v2/binding/enduserapi/userDeviceList" }
    local seen = {}
    for item, err in c:paginate("user_device_list", {}) do
      seen[#seen + 1] = { item, err }
    end
    assert.are.equal(1, #seen)
    assert.is_false(seen[1][1])
    assert.matches("HTTP 500", seen[1][2], 1, true)
  end)
end)
