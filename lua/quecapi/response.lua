--- Reading an answer: JSON decoding and the platform's envelope check.
--
-- `{code = 200, ...}` is success; any other code is the platform's refusal. A body
-- that is not an envelope is described by its HTTP status and a short, printable,
-- redacted excerpt.
-- @module quecapi.response

local json = require "quecapi.json"
local redact = require "quecapi.redact"

local type, tostring, tonumber = type, tostring, tonumber
local format, sub, gsub = string.format, string.sub, string.gsub

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
local function message_for(code)
  errors = errors or require "quecapi.errors"
  return errors[code]
end

--- Decode and check an answer.
-- Secrets are only needed to redact an excerpt of a bad body, so they are asked
-- of `owner:secrets(extra)` then, not on every (successful) call.
-- @return the envelope; or nil, err, code, transient
function _M.read(status, body, owner, extra)
  local doc = json.decode(body)
  if type(doc) ~= "table" then
    local transient = _M.TRANSIENT_STATUS[status] or false
    if body == "" then
      return nil, format("HTTP %d with an empty body", status), nil, transient
    end
    local excerpt = _M.excerpt(body, owner:secrets(extra))
    return nil, format("HTTP %d, response is not JSON: %s", status, excerpt), nil, transient
  end
  local code = doc.code
  if code == nil then
    local excerpt = _M.excerpt(body, owner:secrets(extra))
    return nil, format("HTTP %d, response has no 'code' field: %s", status, excerpt), nil,
      _M.TRANSIENT_STATUS[status] or false
  end
  if code ~= 200 then
    local n = tonumber(code)
    local msg = doc.msg
    if type(msg) ~= "string" or msg == "" then msg = n and message_for(n) or "no message" end
    local err = format("platform error %s: %s", tostring(code), msg)
    if n and _M.RATE_LIMITED[n] then err = err .. " (rate limited; not retried)" end
    return nil, err, n, false
  end
  return doc
end

return _M
