--- Clocks and sleeping, inside and outside nginx.
--
-- Inside nginx, sleeping must yield (ngx.sleep) where the phase allows it; a
-- blocking sleep would stall every request of the worker.
-- @module quecapi.time

local core = require "quecapi.core"

local _M = {}

local ngx = rawget(_G, "ngx")

-- Phases in which ngx.sleep and cosockets work.
_M.YIELDING_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

--- The current nginx phase, or nil outside nginx.
function _M.phase()
  if ngx and ngx.get_phase then
    local ok, phase = pcall(ngx.get_phase)
    if ok then return phase end
  end
end

--- Wall clock in milliseconds.
_M.now_ms = core.now_ms

--- Seconds on a clock that never jumps, for deadlines.
_M.monotonic = core.monotonic

--- Sleep without blocking nginx when possible.
function _M.sleep(seconds)
  if seconds <= 0 then return end
  if _M.YIELDING_PHASES[_M.phase() or ""] then
    return ngx.sleep(seconds)
  end
  return core.sleep(seconds)
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Seconds since the epoch of an HTTP Date header ("Sun, 06 Nov 1994 08:49:37 GMT"), or nil.
function _M.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local m = MONTHS[mon]
  if not m then return nil end
  return days_from_civil(tonumber(y), m, tonumber(d)) * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

return _M
