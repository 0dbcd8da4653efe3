-- Everything the fake cloud remembers. One nginx worker serves the fake, so plain
-- module tables are shared by all its requests.
local _M = {}

local DEFAULT_CONFIG = {
  access_ttl = 7200,         -- seconds, as the platform documents
  refresh_ttl = 30 * 86400,
  sms_ttl = 300,             -- "the last unused code sent within 5 minutes is valid"
  sms_interval = 0,          -- seconds between two codes to one phone (5058 when shorter)
  clock_offset = 0,          -- seconds the fake's clock is ahead of real time
  delay_ms = 0,              -- added to every API request
  signup_devices = 0,        -- devices bound to every newly registered user (for demos)
}

function _M.reset()
  _M.users = {}          -- uid -> { uid, phone, internationalCode, email, password, nickname }
  _M.by_phone = {}       -- internationalCode .. "|" .. phone -> uid
  _M.by_email = {}       -- email -> uid
  _M.codes = {}          -- "sms|86|phone|3" or "mail|email|1" -> { code, expires, used, sent }
  _M.access = {}         -- access token -> { uid, exp }
  _M.refresh = {}        -- refresh token -> { uid, exp }
  _M.devices = {}        -- list of device records
  _M.faults = {}         -- pending fault injections
  _M.log = {}            -- recent API requests, newest last
  _M.seq = 0
  _M.next_uid = 1
  _M.config = {}
  for k, v in pairs(DEFAULT_CONFIG) do _M.config[k] = v end
  _M.stats = { requests = 0, inflight = _M.stats and _M.stats.inflight or 0, inflight_max = 0 }
end

-- The fake's own clock, in seconds (may be set ahead to test clock skew).
function _M.now()
  return ngx.now() + _M.config.clock_offset
end

function _M.new_uid()
  local uid = "C" .. (100000 + _M.next_uid)
  _M.next_uid = _M.next_uid + 1
  return uid
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
