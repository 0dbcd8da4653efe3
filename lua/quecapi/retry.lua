--- The retry policy: which failures are worth another attempt, and when.
--
-- Network errors (connect, timeout, broken transfer) and gateway answers HTTP
-- 502/503/504 are retried with exponential backoff and full jitter, but only for
-- calls that are safe to repeat (GET and the catalog's `safe` rows) or when the
-- caller opts in for one call. Platform refusals are never retried here.
-- @module quecapi.retry

local core = require "quecapi.core"

local type, pairs, tostring, format = type, pairs, tostring, string.format
local min, byte, random_string = math.min, string.byte, core.random_string

local _M = {}

_M.DEFAULTS = {
  attempts = 3,      -- tries in all, the first included
  base_delay = 0.2,  -- seconds before the first retry (before jitter)
  max_delay = 2,     -- cap of one backoff
  deadline = 30,     -- seconds for the whole call, retries included
}

-- Transport failures a retry may cure; tls, url and too_large will not change.
_M.RETRYABLE_KINDS = { connect = true, timeout = true, network = true }

--- Check and complete a `retry` option: nil (defaults), false (one attempt) or a table.
-- @return policy, or nil, err
function _M.policy(cfg)
  local p = {}
  for k, v in pairs(_M.DEFAULTS) do p[k] = v end
  if cfg == false then
    p.attempts = 1
    return p
  end
  if cfg == nil or cfg == true then return p end
  if type(cfg) ~= "table" then return nil, "retry must be a table or false" end
  for k, v in pairs(cfg) do
    if _M.DEFAULTS[k] == nil then return nil, format("unknown retry option '%s'", tostring(k)) end
    if type(v) ~= "number" or v < 0 or v ~= v then
      return nil, format("retry option '%s' must be a non-negative number", k)
    end
    p[k] = v
  end
  if p.attempts < 1 then return nil, "retry option 'attempts' must be at least 1" end
  return p
end

-- The characters random_string gives, each a digit in base 62 (its position).
local ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local DIGIT = {}
for i = 1, #ALPHABET do DIGIT[byte(ALPHABET, i)] = i - 1 end
local JITTER_DIGITS = 5 -- 62^5 (about 9.2e8) steps in [0, 1)

-- Uniform in [0, 1), from the C core's OpenSSL RAND_bytes rather than
-- math.random: nobody seeds math.random (LuaJIT starts every process from the same
-- seed, and nginx forks its workers from a master that loaded this module), so
-- every worker and process would back off in step and retry together.
local function uniform()
  local s = random_string(JITTER_DIGITS)
  if not s then return 0.5 end -- the generator failed: a fixed middle, never a raise
  local v = 0
  for i = 1, JITTER_DIGITS do
    v = v * 62 + DIGIT[byte(s, i)]
  end
  return v / 62 ^ JITTER_DIGITS
end

--- Backoff before attempt n + 1 (n >= 1): uniformly random in [0, min(max, base * 2^(n-1))].
function _M.delay(policy, n)
  return uniform() * min(policy.max_delay, policy.base_delay * 2 ^ (n - 1))
end

return _M
