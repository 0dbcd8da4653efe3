--- Clock skew: what the platform's `Date` header teaches about our clock.
--
-- Signed calls carry `ts`, our wall clock in milliseconds, and the platform
-- refuses them (5420) when it is far from its own. When such a refusal comes
-- with a `Date` header that differs from our clock by over a minute, the
-- difference is learnt and the call signed again with the platform's time.
-- Offsets are shared per base URL, so that short-lived clients (one per nginx
-- request) share what one of them learnt.
--
-- A `Date` is believed only when it is a well-formed IMF-fixdate within a day of
-- our clock: a broken or hostile answer (year 9999, "99:99:99") must not shift
-- every client of that base URL. The offset only ever changes `ts`; token expiry
-- is judged by the local clock (see quecapi.tokens).
-- @module quecapi.skew

local type, tonumber = type, tonumber
local abs, floor = math.abs, math.floor
local match = string.match

local _M = {}

--- Largest offset believed, in seconds.
_M.WINDOW = 86400

--- Smallest offset acted upon, in seconds: below it, clocks agree well enough.
_M.TOLERANCE = 60

local offsets = {} -- base URL -> milliseconds to add to our clock

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
local DAYS = { Mon = true, Tue = true, Wed = true, Thu = true, Fri = true, Sat = true, Sun = true }
local MONTH_DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Seconds since the epoch of an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT"), or
-- nil unless it is a well-formed IMF-fixdate (RFC 9110 5.6.7) with values in range.
-- @tparam string s
-- @treturn number|nil
function _M.parse_http_date(s)
  if type(s) ~= "string" or #s ~= 29 then return nil end
  local wd, d, mon, y, hh, mm, ss = match(s, "^(%a%a%a), (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local m = MONTHS[mon]
  if not m or not DAYS[wd] then return nil end
  d, y, hh, mm, ss = tonumber(d), tonumber(y), tonumber(hh), tonumber(mm), tonumber(ss)
  if d < 1 or d > MONTH_DAYS[m] or hh > 23 or mm > 59 or ss > 60 then return nil end
  return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
end

--- The offset (ms) learnt for a base URL, or 0.
function _M.offset(base_url)
  return offsets[base_url] or 0
end

--- Learn from a refusal's `Date` header: true when that changed the offset (and
-- so what a call would send), false when the header is absent, unbelievable or
-- agrees with what was known.
-- @tparam string base_url
-- @tparam string|nil date the header's value
-- @tparam number now_ms our wall clock
-- @return changed (boolean), and the new offset in seconds when it changed
function _M.learn(base_url, date, now_ms)
  local server = _M.parse_http_date(date)
  if not server then return false end
  local offset = server - now_ms / 1000
  if abs(offset) > _M.WINDOW then return false end
  local ms = abs(offset) > _M.TOLERANCE and floor(offset + 0.5) * 1000 or nil
  if offsets[base_url] == ms then return false end
  offsets[base_url] = ms
  return true, ms and ms / 1000 or 0
end

return _M
