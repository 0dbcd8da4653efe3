-- One deadline per call, token renewal included ([10.2]), against the fake cloud:
-- a slow refresh or login never stretches a call past its deadline.
local core = require "quecapi.core"
local fake = require "support.fake"

local REFRESH = "/v2/enduser/enduserapi/refreshToken"
local LOGIN = "/v2/enduser/enduserapi/phonePwdLogin"
local PHONE, PASSWORD = "13700000002", "deadline-Pa55"

-- A client holding an expired access token and a good refresh token.
local function expired_client(overrides)
  local data = fake.login(PHONE, PASSWORD)
  local c = fake.client(overrides)
  assert(c:set_tokens { access_token = data.accessToken.token, access_expires = os.time() - 10,
                        refresh_token = data.refreshToken.token, refresh_expires = os.time() + 86400 })
  return c
end

local function timed(fn)
  local t0 = core.monotonic()
  local a, b, c, d = fn()
  return core.monotonic() - t0, a, b, c, d
end

describe("deadlines", function()
  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 1)
  end)
  after_each(function() fake.clear_faults() end)

  it("[10.2] a slow refresh ends within the call's deadline, as a timeout", function()
    fake.fault { kind = "slow_headers", delay_ms = 6000, path = REFRESH }
    local c = expired_client { timeout = 10 }
    local elapsed, res, err, _, kind = timed(function() return c:user_device_list({}, { deadline = 1 }) end)
    assert.is_nil(res)
    assert.are.equal("timeout", kind, err)
    assert.is_true(elapsed < 1.5, "took " .. elapsed .. "s")
  end)

  it("[10.2] a failed refresh and a slow login both fit in the deadline", function()
    local c = expired_client { timeout = 10, account = { phone = PHONE, password = PASSWORD } }
    fake.fault { kind = "code", code = 5032, path = REFRESH }
    fake.fault { kind = "slow_headers", delay_ms = 6000, path = LOGIN }
    local elapsed, res, err, _, kind = timed(function() return c:user_device_list({}, { deadline = 1.2 }) end)
    assert.is_nil(res)
    assert.are.equal("timeout", kind, err)
    assert.is_true(elapsed < 1.7, "took " .. elapsed .. "s")
  end)

  it("[10.2] renewal, the call and its retries share one deadline", function()
    fake.fault { kind = "delay", delay_ms = 400, path = REFRESH }
    fake.fault { kind = "slow_headers", delay_ms = 6000, path = "/v2/binding/enduserapi/userDeviceList", count = 5 }
    local c = expired_client { timeout = 10, retry = { attempts = 5, base_delay = 0.01 } }
    local elapsed, res, err, _, kind = timed(function() return c:user_device_list({}, { deadline = 1 }) end)
    assert.is_nil(res)
    assert.are.equal("timeout", kind, err)
    assert.is_true(elapsed < 1.5, "took " .. elapsed .. "s")
    -- the renewal itself succeeded and was kept
    assert.are_not.equal(os.time() - 10, c:get_tokens().access_expires)
  end)

  it("[10.2] a renewal that fits leaves the call its time and succeeds", function()
    fake.fault { kind = "delay", delay_ms = 300, path = REFRESH }
    local c = expired_client()
    local elapsed, res = timed(function() return c:user_device_list({}, { deadline = 3 }) end)
    assert.is_table(res)
    assert.is_true(elapsed >= 0.3 and elapsed < 3)
  end)
end)
