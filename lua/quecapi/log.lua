--- The optional log hook: `quecapi.new{ log = function(level, msg) end }`.
--
-- Lines carry method, URL path (never the query string), status, platform code
-- and timing; everything passes through redaction first, so a secret that slips
-- into a message is still masked.
-- @module quecapi.log

local redact = require "quecapi.redact"

local _M = {}

local function noop() end

--- The logger of a client without a hook: callers may skip building a message for it.
_M.noop = noop

--- A logger for a client: log(level, fmt, ...) with secrets masked.
-- @param hook the user's function(level, msg), or nil
-- @param secrets function returning the list of secret values to mask
function _M.new(hook, secrets)
  if not hook then return noop end
  return function(level, fmt, ...)
    local ok, msg = pcall(string.format, fmt, ...)
    if not ok then msg = fmt end
    -- a failing hook must not break the call that logs
    pcall(hook, level, redact.text(msg, secrets()))
  end
end

return _M
