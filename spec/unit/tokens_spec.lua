-- The token lifecycle with a scripted platform: renewal before expiry, one renewal
-- and one repeat on 5032, rotation, failures that end instead of looping.
local quecapi = require "quecapi"
local json = require "quecapi.json"
local recorder = require "support.recorder"

local LIST = "GET /v2/binding/enduserapi/userDeviceList"
local REFRESH = "PUT /v2/enduser/enduserapi/refreshToken"
local LOGIN = "POST /v2/enduser/enduserapi/phonePwdLogin"

local function pair(n, ttl)
  local now = os.time()
  return 200, json.encode { code = 200, msg = "", data = {
    accessToken = { token = "Bearer access-" .. n, expirationTime = now + (ttl or 7200) },
    refreshToken = { token = "Bearer refresh-" .. n, expirationTime = now + 86400 } } }, {}
end

local function envelope(code, data)
  return 200, json.encode { code = code, msg = code == 200 and "" or "nope", data = data }, {}
end

local function client(routes, extra)
  local t = recorder.routes(routes)
  local cfg = { user_domain = "C.DM.1.1", user_domain_secret = "the-domain-secret", transport = t,
                retry = false }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return assert(quecapi.new(cfg)), t
end

local function tokens(access_ttl)
  return { access_token = "Bearer access-0", access_expires = os.time() + access_ttl,
           refresh_token = "Bearer refresh-0", refresh_expires = os.time() + 86400 }
end

describe("token lifecycle", function()
  it("uses a fresh access token as is", function()
    local c, t = client { [LIST] = { envelope(200, { list = {} }) } }
    c:set_tokens(tokens(3600))
    assert(c:user_device_list {})
    assert.are.equal(1, #t.sent)
    assert.are.equal("Bearer access-0", t.sent[1].headers.Authorization)
  end)

  it("refreshes before the access token expires (margin)", function()
    local c, t = client({ [REFRESH] = { pair(1) }, [LIST] = { envelope(200, {}) } }, { refresh_margin = 600 })
    c:set_tokens(tokens(300)) -- expires within the margin
    assert(c:user_device_list {})
    assert.are.equal(2, #t.sent)
    local refresh = t.sent[1]
    assert.are.equal("PUT", refresh.method)
    assert.are.equal("Bearer refresh-0", recorder.args(refresh).refreshToken)
    assert.are.equal("Bearer access-0", refresh.headers.Authorization)
    assert.are.equal("Bearer access-1", t.sent[2].headers.Authorization)
    local kept = c:get_tokens()
    assert.are.equal("Bearer access-1", kept.access_token)
    assert.are.equal("Bearer refresh-1", kept.refresh_token) -- the rotated one replaced the old
  end)

  it("refreshes once and repeats once on 5032", function()
    local c, t = client { [LIST] = { { envelope(5032) }, { envelope(200, { total = 1 }) } }, [REFRESH] = { pair(2) } }
    c:set_tokens(tokens(3600))
    local res = assert(c:user_device_list {})
    assert.are.equal(1, res.data.total)
    assert.are.equal(3, #t.sent)
    assert.are.equal("GET", t.sent[1].method)
    assert.are.equal("PUT", t.sent[2].method)
    assert.are.equal("Bearer access-2", t.sent[3].headers.Authorization)
  end)

  it("returns 5032 when the refresh fails, without a loop", function()
    local c, t = client { [LIST] = { envelope(5032) }, [REFRESH] = { envelope(5032) } }
    c:set_tokens(tokens(3600))
    local res, err, code = c:user_device_list {}
    assert.is_nil(res)
    assert.are.equal(5032, code)
    assert.matches("user_device_list: access token rejected (5032) and renewal failed", err, 1, true)
    assert.are.equal(2, #t.sent)
    assert.is_nil(err:find("refresh-0", 1, true))
  end)

  it("returns 5032 when the repeated call is refused again", function()
    local c, t = client { [LIST] = { envelope(5032) }, [REFRESH] = { pair(3) } }
    c:set_tokens(tokens(3600))
    local res, _, code = c:user_device_list {}
    assert.is_nil(res)
    assert.are.equal(5032, code)
    assert.are.equal(3, #t.sent)
  end)

  it("does not send an expired token it cannot renew", function()
    local c, t = client { [LIST] = { envelope(200, {}) } }
    c:set_tokens { access_token = "Bearer old", access_expires = os.time() - 10 }
    local res, err = c:user_device_list {}
    assert.is_nil(res)
    assert.matches("expired and there is no refresh token", err, 1, true)
    assert.are.equal(0, #t.sent)
  end)

  it("logs in with the configured account when there is no token", function()
    local c, t = client({ [LOGIN] = { pair(4) }, [LIST] = { envelope(200, {}) } },
      { account = { phone = "13800138000", password = "acc0unt-pass" } })
    assert(c:user_device_list {})
    assert.are.equal(2, #t.sent)
    assert.are.equal("POST", t.sent[1].method)
    assert.are.equal("13800138000", recorder.args(t.sent[1]).phone)
    assert.are.equal("Bearer access-4", t.sent[2].headers.Authorization)
  end)

  it("logs in again when the refresh token is refused", function()
    local c, t = client({ [REFRESH] = { envelope(5032) }, [LOGIN] = { pair(5) }, [LIST] = { envelope(200, {}) } },
      { account = { phone = "13800138000", password = "acc0unt-pass" } })
    c:set_tokens(tokens(10))
    assert(c:user_device_list {})
    assert.are.same({ "PUT", "POST", "GET" }, { t.sent[1].method, t.sent[2].method, t.sent[3].method })
  end)

  it("picks up tokens another worker renewed while it waited for the lock", function()
    local data = {}
    local store = {
      get = function(_, k) return data[k] end,
      set = function(_, k, v) data[k] = v return true end,
      delete = function(_, k) data[k] = nil return true end,
      -- the lock is busy; meanwhile "another worker" stores new tokens
      lock = function(_, k)
        data[k] = { access_token = "Bearer from-elsewhere", access_expires = os.time() + 7200 }
        return nil, "timeout"
      end,
      unlock = function() end,
    }
    local c, t = client({ [LIST] = { envelope(200, {}) } }, { token_store = store, token_key = "k" })
    data[c.token_key] = tokens(10)
    assert(c:user_device_list {})
    assert.are.equal(1, #t.sent)
    assert.are.equal("Bearer from-elsewhere", t.sent[1].headers.Authorization)
  end)

  it("forgets the tokens on logout", function()
    local c = client { ["DELETE /v2/enduser/enduserapi/userLogout"] = { envelope(200) } }
    c:set_tokens(tokens(3600))
    assert(c:logout())
    assert.is_nil(c:get_tokens())
  end)

  it("keeps secrets out of the errors of a failed login", function()
    local c = client { [LOGIN] = { envelope(5028) } }
    local _, err, code = c:login { phone = "1", password = "pa55-word-x" }
    assert.are.equal(5028, code)
    assert.is_nil(err:find("pa55-word-x", 1, true))
  end)
end)
