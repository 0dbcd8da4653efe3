--- Reading an answer: JSON decoding and the platform's envelope check.
--
-- HTTP 2xx with `{code = 200, ...}` is success; any other code is the platform's
-- refusal, and any other status a failure whatever the body says. A body that is
-- not an envelope is described by its HTTP status and a short, printable,
-- redacted excerpt.
-- @module quecapi.response

local json = require "quecapi.json"
local redact = require "quecapi.redact"

local type, tostring, tonumber = type, tostring, tonumber
local format, sub, gsub = string.format, string.sub, string.gsub
local floor = math.floor

local _M = {}

-- Codes that mean "slow down": retrying would only make it worse.
_M.RATE_LIMITED = {
  [4026] = true, -- daily call quota of the account exhausted
  [5058] = true, -- SMS sending frequency limit
  [5147] = true, -- account frozen for 20 minutes after failed logins
  [5325] = true, -- access temporarily blocked
}

-- Gateway answers worth another try (when the call is safe to repeat).
_M.TRANSIENT_STATUS = { [502] = true, [503] = true, [504] = true }

local EXCERPT = 120

-- Redact before cutting: a secret cut in half at the edge would no longer match.
function _M.excerpt(body, secrets)
  local s = redact.text(sub(body, 1, 16 * EXCERPT), secrets)
  local cut = #s > EXCERPT
  s = gsub(sub(s, 1, EXCERPT), "[^\32-\126]", ".")
  if cut then s = s .. "..." end
  return s
end

local errors
local function message(doc, n)
  local msg = doc.msg
  if type(msg) == "string" and msg ~= "" then return msg end
  errors = errors or require "quecapi.errors"
  return n and errors[n] or "no message"
end

-- 401 from the gateway means the token was not accepted.
local function http_kind(status)
  return status == 401 and "auth" or "http"
end

-- Seconds until 00:00 UTC, when the daily quota (4026) starts again.
local function rate_note(n)
  if n == 4026 then
    local now = os.time()
    local left = 86400 - now % 86400
    return format(" (daily quota used up; resets at 00:00 UTC, in %dh%02dm; not retried)",
      floor(left / 3600), floor(left % 3600 / 60))
  end
  return " (rate limited; not retried)"
end

--- Decode and check an answer.
-- Success is HTTP 2xx with the envelope's `code == 200`. Anything else fails:
-- an impossible status, a body that is no envelope, a gateway or HTTP error
-- (whatever its body says: a 500 whose envelope claims 200 is no success), or
-- the platform's refusal. Gateway statuses (502, 503, 504) are transient, JSON
-- body or not.
-- Secrets are only needed to redact an excerpt of a bad body, so they are asked
-- of `owner:secrets(extra)` then, not on every (successful) call.
-- @return the envelope; or nil, err, code, transient, kind
function _M.read(status, body, owner, extra)
  if status < 100 or status > 599 or status ~= floor(status) then
    return nil, format("invalid HTTP status %s", tostring(status)), nil, false, "http"
  end
  local transient = _M.TRANSIENT_STATUS[status] or false
  local doc = json.decode(body)
  local code = type(doc) == "table" and doc.code or nil
  if code == nil then
    if body == "" then
      return nil, format("HTTP %d with an empty body", status), nil, transient, http_kind(status)
    end
    local what = type(doc) == "table" and "response has no 'code' field" or "response is not JSON"
    local excerpt = _M.excerpt(body, owner:secrets(extra))
    return nil, format("HTTP %d, %s: %s", status, what, excerpt), nil, transient, http_kind(status)
  end
  local n = tonumber(code)
  if status < 200 or status > 299 then
    -- an HTTP error that carries an envelope: its code and message say more
    -- (a code 200 there is no platform code of a failure: the call's code is nil)
    return nil, format("HTTP %d, platform error %s: %s", status, tostring(code), message(doc, n)),
      n ~= 200 and n or nil, transient, http_kind(status)
  end
  if code ~= 200 then
    local err = format("platform error %s: %s", tostring(code), message(doc, n))
    if n and _M.RATE_LIMITED[n] then
      return nil, err .. rate_note(n), n, false, "rate_limited"
    end
    return nil, err, n, false, "platform"
  end
  return doc
end

return _M
