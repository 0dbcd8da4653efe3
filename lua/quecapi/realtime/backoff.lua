--- When the realtime channel tries to connect again after losing its
-- connection: exponential backoff with jitter, bounded.
--
-- Attempt n waits a random time between half and all of `min(cap, base * 2^(n-1))`
-- seconds: about 1, 2, 4, 8, 16, then 30 s with the defaults. The randomness
-- spreads the clients of a broker that restarted over time instead of sending
-- them back at once; the cap keeps a long outage from leaving a monitor
-- disconnected for long after the broker is back. The count starts again only
-- after a connection that stayed up `stable` seconds, so a broker that accepts
-- and then drops every connection is retried at the capped pace, not every second.
--
-- Pure (the caller owns the clock and the randomness): shared by the plain-Lua
-- and the nginx connections.
-- @module quecapi.realtime.backoff

local core = require "quecapi.core"

local min, setmetatable = math.min, setmetatable
local byte = string.byte

local _M = {}

_M.DEFAULTS = { base = 1, cap = 30, stable = 30 }

-- A number in [0, 1) from the C core's random generator (RAND_bytes): math.random
-- is not seeded on LuaJIT, and seeding it would change it for the whole process.
local function fraction()
  local s = core.random_string(4)
  local f = 0
  for i = 4, 1, -1 do
    local c = byte(s, i)
    local v = c <= 57 and c - 48 or c <= 90 and c - 55 or c - 61 -- [0-9A-Za-z] -> 0..61
    f = (f + v) / 62
  end
  return f
end
_M.fraction = fraction

local Backoff = {}
local mt = { __index = Backoff }

--- A policy: `base`, `cap`, `stable` (seconds), `random` (a function -> [0, 1)).
function _M.new(o)
  o = o or {}
  local d = _M.DEFAULTS
  return setmetatable({
    base = o.base or d.base, cap = o.cap or d.cap, stable = o.stable or d.stable,
    random = o.random or fraction, attempt = 0,
  }, mt)
end

--- The wait before attempt n (1 for the first after a loss).
function Backoff:delay(n)
  local d = min(self.cap, self.base * 2 ^ (n - 1))
  return d / 2 + self.random() * d / 2
end

--- A connection was lost after being up `uptime` seconds (nil: it never came
-- up): the wait before the next attempt.
function Backoff:lost(uptime)
  if uptime and uptime >= self.stable then self.attempt = 0 end
  self.attempt = self.attempt + 1
  return self:delay(self.attempt)
end

--- An attempt failed: the wait before the next one.
function Backoff:failed()
  self.attempt = self.attempt + 1
  return self:delay(self.attempt)
end

return _M
