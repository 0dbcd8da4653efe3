--- Failures of the command-line tool, as values: `nil, err, code, kind` like the
-- library's (kinds: usage config auth timeout connect tls network too_large http
-- platform rate_limited, and the tool's own "interrupted"), and the exit status
-- each kind means. The status comes from the kind alone, never from the text.
-- @module quecapi.cli.fail

local format = string.format

local _M = {}

-- usage and config: the command line or the settings need fixing, nothing was
-- sent; interrupted: 128 + SIGINT, as a shell reports it.
local STATUS = { usage = 2, config = 2, interrupted = 130 }

--- The exit status of a failure of this kind: 2 for usage and config, 130 for
-- an interruption, 1 for the rest (the platform or the network).
-- @tparam string|nil kind
-- @treturn int
function _M.status(kind)
  return STATUS[kind] or 1
end

--- A mistake on the command line. The fifth value asks the dispatcher to add
-- where the command's help is.
function _M.usage(fmt, ...)
  return nil, format(fmt, ...), nil, "usage", true
end

--- Unusable input that is not a command-line mistake: an empty or missing
-- answer to a prompt, a secret given where `ps` would show it.
function _M.input(fmt, ...)
  return nil, format(fmt, ...), nil, "usage"
end

--- A setting is missing or wrong (the config file, the environment).
function _M.config(fmt, ...)
  return nil, format(fmt, ...), nil, "config"
end

return _M
