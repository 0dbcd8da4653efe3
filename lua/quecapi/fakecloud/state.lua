-- Everything the fake cloud remembers. One nginx worker serves the fake, so plain
-- module tables are shared by all its requests.
local _M = {}

local DEFAULT_CONFIG = {
  access_ttl = 7200,         -- seconds, as the platform documents
  refresh_ttl = 30 * 86400,
  sms_ttl = 300,             -- "the last unused code sent within 5 minutes is valid"
  sms_interval = 0,          -- seconds between two codes to one phone or address (5058 when shorter)
  clock_offset = 0,          -- seconds the fake's clock is ahead of real time
  delay_ms = 0,              -- added to every API request
  signup_devices = 3,        -- devices bound to every new user, registered or seeded without `devices`
  login_attempts = 5,        -- wrong email passwords before the account is frozen (5147)
  freeze_seconds = 1200,     -- "please try again after 20 minutes"
  daily_quota = 0,           -- authenticated calls per account and UTC day before 4026; 0 = none
}

function _M.reset()
  _M.users = {}          -- uid -> { uid, phone, internationalCode, email, password, nickname,
                         --         userDomain (nil: config.user_domain), ... }
                         -- A phone or an email is one account whatever its domain.
  _M.by_phone = {}       -- internationalCode .. "|" .. phone -> uid
  _M.by_email = {}       -- email -> uid
  _M.codes = {}          -- "sms|86|phone|3" or "mail|email|1" -> { code, expires, used, sent }
  _M.access = {}         -- access token -> { uid, exp, refresh }
  _M.refresh = {}        -- refresh token -> { uid, exp, access }
  _M.attempts = {}       -- email -> { failures, frozen_until }
  _M.products = {}       -- productKey -> { productKey, productName, tsl } (seeded; see products.lua)
  _M.things = {}         -- "pk|dk" -> the device itself: values, history, commands (things.lua)
  _M.thing_order = {}    -- "pk|dk" keys in creation order
  _M.devices = {}        -- bindings: list of { uid, productKey, deviceKey, deviceName, bound_at, ... }
  _M.shares = {}         -- list of share records (sharing.lua)
  _M.faults = {}         -- pending fault injections
  _M.token_seq = 0       -- access tokens issued so far (auth.issue_tokens)
  _M.quota = { day = nil, used = {} }  -- authenticated calls per uid today (quota.lua)
  _M.log = {}            -- recent API requests, newest last
  _M.commands = {}       -- recent commands Apps published on the realtime channel, newest last
  _M.seq = 0
  _M.next_uid = 1
  _M.next_id = 1
  _M.config = {}
  for k, v in pairs(DEFAULT_CONFIG) do _M.config[k] = v end
  local inflight = _M.stats and _M.stats.inflight or 0
  _M.stats = { requests = 0, inflight = inflight, inflight_max = inflight }
end

-- The fake's own clock, in seconds (may be set ahead to test clock skew).
function _M.now()
  return ngx.now() + _M.config.clock_offset
end

-- The same clock in integral milliseconds, as the platform's *Ts fields are.
function _M.now_ms()
  return math.floor(_M.now() * 1000)
end

function _M.new_uid()
  local uid = "C" .. (100000 + _M.next_uid)
  _M.next_uid = _M.next_uid + 1
  return uid
end

-- A small increasing number for ids the platform returns as integers.
function _M.new_id()
  local id = _M.next_id
  _M.next_id = id + 1
  return id
end

function _M.remember(entry)
  _M.seq = _M.seq + 1
  entry.seq = _M.seq
  local log = _M.log
  log[#log + 1] = entry
  if #log > 500 then table.remove(log, 1) end
end

_M.reset()

return _M
