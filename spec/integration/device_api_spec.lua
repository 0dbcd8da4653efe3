-- The priority calls of the end-user API end to end, through the client's catalog
-- methods and typed helpers, against the fake cloud over HTTPS.
local fake = require "support.fake"
local json = require "quecapi.json"

local PK = "p11pLZ" -- the fake's default product: its thing model has every data type

local function logged_in(phone, devices)
  fake.user(phone, "pass-" .. phone, devices)
  local c = fake.client()
  assert(c:phone_pwd_login { phone = phone, password = "pass-" .. phone, internationalCode = "86" })
  return c
end

local function first_device(c)
  local res = assert(c:user_device_list { pageSize = 1 })
  return res.data.list[1].productKey, res.data.list[1].deviceKey
end

describe("accounts", function()
  before_each(function() fake.reset() end)

  it("registers and logs in by email after sendEmail", function()
    local c = fake.client()
    assert(c:send_email { email = "ann@example.com", emailType = 1 })
    local code = fake.email_code("ann@example.com", 1)
    local res, err = c:email_pwd_register { email = "ann@example.com", password = "ann-pass-1", code = code }
    assert.is_table(res, err)
    res, err = c:email_pwd_login { email = "ann@example.com", password = "ann-pass-1" }
    assert.is_table(res, err)
    assert.matches("^Bearer ", c:get_tokens().access_token)
    local info = assert(c:user_info())
    assert.are.equal("ann@example.com", info.data.email)
  end)

  it("logs in with an account configured on the client", function()
    fake.user("13500000001", "acct-pass-1", 2)
    local c = fake.client { account = { phone = "13500000001", password = "acct-pass-1" } }
    assert.are.equal(2, assert(c:user_device_list {}).data.total)
  end)

  it("refreshes the token on request and rotates the refresh token", function()
    local c = logged_in("13500000002")
    local before = c:get_tokens()
    local res = assert(c:refresh_token())
    assert.matches("^Bearer ", res.data.accessToken.token)
    local after = c:get_tokens()
    assert.are_not.equal(before.refresh_token, after.refresh_token)
    -- the old refresh token is spent
    local stale = fake.client()
    stale:set_tokens(before)
    local _, _, code = stale:refresh_token()
    assert.are.equal(5032, code)
    assert(c:user_info())
  end)

  it("changes the password, resets it by SMS, and logs out", function()
    local c = logged_in("13500000003")
    assert(c:set_user_pwd { old_password = "pass-13500000003", new_password = "new-pass-3" })
    assert(c:phone_pwd_login { phone = "13500000003", password = "new-pass-3", internationalCode = "86" })
    local _, _, code = c:set_user_pwd { old_password = "wrong-old-1", new_password = "x-pass-99" }
    assert.is_number(code)

    assert(c:send_phone_sms_code { phone = "13500000003", internationalCode = "86", codeType = 1 })
    local sms = fake.sms_code("13500000003", 1)
    assert(c:user_pwd_reset { phone = "13500000003", internationalCode = "86", code = sms, password = "reset-pass-3" })
    assert(c:phone_pwd_login { phone = "13500000003", password = "reset-pass-3", internationalCode = "86" })

    assert(c:logout())
    assert.is_nil(c:get_tokens())
    local res, err = c:user_info()
    assert.is_nil(res)
    assert.matches("not logged in", err, 1, true)
  end)
end)

describe("binding", function()
  before_each(function() fake.reset() end)

  it("binds by SN and by DK, shows device info, and unbinds", function()
    fake.unbound { { productKey = PK, deviceKey = "B0001", sn = "SN-0001" },
                   { productKey = PK, deviceKey = "B0002", sn = "SN-0002" } }
    local c = logged_in("13500000010")
    assert(c:bind_device_sn { pk = PK, sn = "SN-0001" })
    assert(c:bind_device_dk { pk = PK, dk = "B0002" })
    assert.are.equal(2, assert(c:user_device_list {}).data.total)
    local info = assert(c:device_info { pk = PK, dk = "B0001" })
    assert.are.equal("B0001", info.data.deviceKey)
    assert(c:unbundling_device_dk { pk = PK, dk = "B0001" })
    assert.are.equal(1, assert(c:user_device_list {}).data.total)
    local _, _, code = c:device_info { pk = PK, dk = "B0001" }
    assert.is_number(code)
  end)
end)

describe("device data and remote control", function()
  local c, dk
  before_each(function()
    fake.reset()
    c = logged_in("13500000020", 1)
    local pk
    pk, dk = first_device(c)
    assert.are.equal(PK, pk)
  end)

  it("reads the thing model", function()
    local res = assert(c:product_tsl { pk = PK })
    local types = {}
    for _, p in ipairs(res.data.properties) do types[p.dataType] = true end
    for _, t in ipairs { "BOOL", "INT", "FLOAT", "DOUBLE", "ENUM", "TEXT", "DATE", "STRUCT", "ARRAY" } do
      assert.is_true(types[t], t)
    end
  end)

  it("writes every data type with set_properties and reads it back with get_properties", function()
    local values = {
      switch = true, brightness = 80, mode = 2, label = "kitchen", updated = 1744780781133,
      color = { r = 255, g = 10, b = 0 }, schedule = { 60, 120, 1440 },
    }
    local result = assert(c:set_properties(PK, dk, values))
    assert.are.equal(1, #result.successList)
    assert.are.equal(0, #result.failureList)
    local now = assert(c:get_properties(PK, dk))
    for k, v in pairs(values) do assert.are.same(v, now[k], k) end
    assert.is_number(now.temperature)
    assert.is_number(now.energy)
    if math.type then assert.are.equal("integer", math.type(now.brightness)) end
    -- the raw call carries the same values as strings (resourceValce)
    local raw = assert(c:get_device_business_attributes { pk = PK, dk = dk, type = "2", codeList = { "brightness" } })
    assert.are.equal("80", raw.data.customizeTslInfo[1].resourceValce)
  end)

  it("refuses invalid values before sending", function()
    local since = fake.seq()
    local res, err = c:set_properties(PK, dk, { brightness = 101 })
    assert.is_nil(res)
    assert.matches("brightness", err, 1, true)
    for _, r in ipairs(fake.requests(since)) do
      assert.are_not.equal("/v2/binding/enduserapi/batchControlDevice", r.path)
    end
  end)

  it("passes type 1 (hex and text), 2 and 3 through batchControlDevice", function()
    local device = { { productKey = PK, deviceKey = dk } }
    assert(c:batch_control_device { type = 1, dataFormat = 1, data = "A1B2", deviceList = device })
    assert(c:batch_control_device { type = 1, dataFormat = 2, data = "hello", deviceList = device })
    local res = assert(c:batch_control_device { type = 2, data = '[{"brightness":33}]', deviceList = device })
    assert.are.equal(1, #res.data.successList)
    assert(c:call_service(PK, dk, "blink", { times = 3, interval = 500 }))
    assert(c:send_raw(PK, dk, "0A0B", "hex"))
    local seen = fake.device(PK, dk)
    assert.are.equal(3, #seen.downlinks)
    assert.are.equal(1, #seen.services)
    assert.are.equal(33, assert(c:get_properties(PK, dk, { "brightness" })).brightness)
    -- the platform's own validation: a value out of range lands in failureList
    res = assert(c:batch_control_device { type = 2, data = '[{"brightness":333}]', deviceList = device })
    assert.are.equal(1, #res.data.failureList)
    assert.matches("out of range", res.data.failureList[1].msg, 1, true)
  end)

  it("[11.1] sends native JSON values, which the cloud takes, and never strings, which it refuses", function()
    local since = fake.seq()
    local result = assert(c:set_properties(PK, dk, { switch = true, brightness = 80, mode = "night",
                                                     color = { r = 1, g = 2, b = 3 }, schedule = { 5 } }))
    assert.are.equal(1, #result.successList)
    assert(c:call_service(PK, dk, "blink", { times = 2, interval = 100 }))
    local sent = {}
    for _, r in ipairs(fake.requests(since)) do
      if r.path == "/v2/binding/enduserapi/batchControlDevice" then sent[#sent + 1] = json.decode(r.raw_body).data end
    end
    assert.are.same({ '[{"brightness":80},{"color":{"b":3,"g":2,"r":1}},{"mode":2},{"schedule":[5]},{"switch":true}]',
                      '[{"blink":[{"interval":100},{"times":2}]}]' }, sent)
    local seen = fake.device(PK, dk)
    assert.are.same({ r = 1, g = 2, b = 3 }, seen.values.color)
    assert.are.same({ times = 2, interval = 100 }, seen.services[1].params)
    -- the same values as strings, sent by hand, are refused device by device
    local device = { { productKey = PK, deviceKey = dk } }
    for _, data in ipairs { '[{"switch":"true"}]', '[{"brightness":"80"}]', '[{"blink":[{"times":"2"}]}]' } do
      local res = assert(c:batch_control_device { type = data:find("blink") and 3 or 2, data = data,
                                                  deviceList = device })
      assert.are.equal(0, #res.data.successList, data)
      assert.are.equal(1, #res.data.failureList, data)
    end
  end)

  it("keeps the history of written values", function()
    local start = os.time() * 1000 - 1000
    for _, v in ipairs { 10, 20, 30 } do assert(c:set_properties(PK, dk, { brightness = v })) end
    local stop = os.time() * 1000 + 1000
    local page = assert(c:get_property_data_list { pk = PK, dk = dk, attributeCode = "brightness",
                                                    startTimestamp = start, endTimestamp = stop })
    assert.are.equal(3, page.data.total)
    local seen = {}
    for _, row in ipairs(page.data.list) do seen[#seen + 1] = row.propertyValue end
    table.sort(seen)
    assert.are.same({ "10", "20", "30" }, seen)
    local values = {}
    for row, err in c:paginate("get_property_data_list", { pk = PK, dk = dk, attributeCode = "brightness",
                                                          startTimestamp = start, endTimestamp = stop, pageSize = 2 }) do
      assert.is_table(row, err)
      values[#values + 1] = row.propertyValue
    end
    assert.are.equal(3, #values)
    local chart = assert(c:get_property_chart_list { pk = PK, dk = dk, attributeCode = { "brightness" },
                                                      startTimestamp = start, endTimestamp = stop })
    assert.are.equal("brightness", chart.data[1].propertyCode)
    assert.are.equal(1, #chart.data[1].yaxisData)
  end)

  it("reads location history and events", function()
    local now = os.time() * 1000
    fake.control("POST", "/_fake/device/locations", { productKey = PK, deviceKey = dk,
      points = { { lat = "31.2304", lng = "121.4737", ts = now - 2000 }, { lat = "31.2305", lng = "121.4738", ts = now - 1000 } } })
    fake.control("POST", "/_fake/device/events", { productKey = PK, deviceKey = dk,
      events = { { code = "overheat", output = { temperature = 71.5 }, ts = now - 500 } } })
    local loc = assert(c:get_location_history { pk = PK, dk = dk, startTimestamp = now - 10000, endTimestamp = now })
    assert.are.equal(2, #loc.data)
    local ev = assert(c:device_event_list { productKey = PK, deviceKey = dk, codeList = {},
                                            startTime = now - 10000, endTime = now })
    assert.are.equal(1, ev.data.total)
    assert.are.equal("overheat", ev.data.list[1].eventCode)
  end)
end)

describe("sharing", function()
  before_each(function() fake.reset() end)

  it("shares a device, lets the sharee rename it, and cancels", function()
    local owner = logged_in("13500000030", 1)
    local pk, dk = first_device(owner)
    local guest = logged_in("13500000031")
    local code = assert(owner:share_info { pk = pk, dk = dk, acceptingExpireAt = (os.time() + 3600) * 1000 }).data
    assert.is_string(code)
    assert(guest:share_device { shareCode = code })
    local list = assert(guest:user_device_list {}).data.list
    assert.are.equal(1, #list)
    assert.are.equal(2, list[1].deviceType)
    assert(guest:change_share_device_name { shareCode = code, deviceName = "Guest lamp" })
    local sharees = assert(owner:device_share_user_list { pk = pk, dk = dk })
    assert.is_true(#sharees.data >= 1)
    assert(owner:set_share_time { shareCode = code, sharingExpireAt = (os.time() + 7200) * 1000 })
    assert(owner:owner_user_unshare_device { shareCode = code })
    assert.are.equal(0, #(assert(guest:user_device_list {}).data.list or {}))
  end)

  it("invites a user by phone, who accepts and later leaves", function()
    local owner = logged_in("13500000032", 1)
    local pk, dk = first_device(owner)
    local guest = logged_in("13500000033")
    local code = assert(owner:share_by_uid { pk = pk, dk = dk, phone = "13500000033" }).data
    assert(guest:share_device { shareCode = code })
    assert.are.equal(1, assert(guest:user_device_list {}).data.total)
    assert(guest:share_user_unshare_device { shareCode = code })
    local after = assert(guest:user_device_list {}).data
    for _, d in ipairs(after.list or {}) do assert.are_not.equal(1, d.status) end
  end)
end)

describe("the generic request", function()
  before_each(function() fake.reset() end)

  it("reaches an endpoint through the same pipeline", function()
    local c = logged_in("13500000040", 3)
    local res = assert(c:request { method = "GET", path = "/v2/binding/enduserapi/userDeviceList",
                                   query = { pageSize = 2 } })
    assert.are.equal(3, res.data.total)
    assert.are.equal(2, #res.data.list)
    local _, err = c:request { path = "no-slash" }
    assert.matches("path must start with /", err, 1, true)
    local missing, merr = c:request { path = "/v2/nothing/here" }
    assert.is_nil(missing)
    assert.matches("HTTP 404", merr, 1, true)
    assert.is_string(json.encode(res.data))
  end)
end)
