-- Your own code, tested offline against the fake cloud: a busted spec as you
-- would write one for a script of yours. Here the code under test is
-- `lights_on`, which switches on every online light of an account.
--
-- Run it with quecapi installed (luarocks) and nginx with its Lua module:
--
--   quecapi fakecloud start
--   busted examples/fakecloud_spec.lua
--   quecapi fakecloud stop
--
-- From a checkout: `lua5.4 bin/quecapi fakecloud start`, then
--   busted --lpath='lua/?.lua' --cpath='build/lua5.4/?.so' examples/fakecloud_spec.lua
-- luacheck: std +busted
local fakecloud = require "quecapi.fakecloud.testing"

-- The code under test: switch on every online device of the RGB light product.
-- Returns how many were switched on, or nil, err.
local function lights_on(client)
  local n = 0
  for device, err in client:paginate("user_device_list", { pageSize = 50 }) do
    if not device then return nil, err end
    if device.productKey == "p11pLZ" and device.onlineStatus == 1 then
      local ok, serr = client:set_properties(device.productKey, device.deviceKey, { switch = true })
      if not ok then return nil, serr end
      n = n + 1
    end
  end
  return n
end

local PHONE, PASSWORD = "13700000123", "my-Pass-123"

describe("lights_on against the fake cloud", function()
  local client

  before_each(function()
    assert(fakecloud.reset())
    -- a user as if registered: it owns three lights, the first and the third online
    assert(fakecloud.user { phone = PHONE, password = PASSWORD })
    client = assert(fakecloud.client())
    assert(client:login { phone = PHONE, password = PASSWORD })
  end)

  it("switches on the online lights and leaves the offline one alone", function()
    assert.are.equal(2, assert(lights_on(client)))
    local switched = {}
    for device in client:paginate("user_device_list", { pageSize = 50 }) do
      -- what the device itself received, read from the fake's side
      local state = assert(fakecloud.device(device.productKey, device.deviceKey))
      switched[#switched + 1] = state.values.switch
    end
    assert.are.same({ true, false, true }, switched)
  end)

  it("sees a light the device switched on itself", function()
    local first = client:paginate("user_device_list", {})()
    assert(fakecloud.report(first.productKey, first.deviceKey, { values = { switch = true, brightness = 55 } }))
    local values = assert(client:get_properties(first.productKey, first.deviceKey, { "switch", "brightness" }))
    assert.are.same({ switch = true, brightness = 55 }, values)
  end)

  it("gets through a gateway error on the device list (the client retries it)", function()
    assert(fakecloud.fault { kind = "status", status = 503, path = "/v2/binding/enduserapi/userDeviceList" })
    assert.are.equal(2, assert(lights_on(client)))
  end)

  it("reports a platform refusal instead of raising", function()
    assert(fakecloud.fault { kind = "code", code = 5052, path = "/v2/binding/enduserapi/batchControlDevice" })
    local n, err = lights_on(client)
    assert.is_nil(n)
    assert.matches("5052", err, 1, true)
  end)

  it("registers a new account with the SMS code the fake sent", function()
    local phone = "13700000124"
    assert(client:send_phone_sms_code { phone = phone, internationalCode = "86", codeType = 3 })
    local code = assert(fakecloud.sms_code(phone, 3))
    assert(client:phone_pwd_register { phone = phone, password = "new-Pass-1", smsCode = code,
                                       internationalCode = "86",
                                       agreementList = { { protocolType = 1, privacyVersion = "1.0.0" } } })
    assert(client:login { phone = phone, password = "new-Pass-1" })
    local res = assert(client:user_device_list { pageSize = 10 })
    assert.are.equal(3, res.data.total) -- new users own three lights too
    assert.are.equal(2, assert(lights_on(client)))
  end)
end)
