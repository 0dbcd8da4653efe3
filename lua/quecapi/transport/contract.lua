--- The one contract both transports keep (libcurl through the C core, and nginx
-- cosockets), and the checks both make before anything else:
--
--   t:request{ method, url, headers, body, timeout, connect_timeout, max_body }
--     -> status, body, headers        (headers: lowercase names, repeats joined with ", ",
--                                      folded lines unfolded, chunked trailers dropped)
--     -> nil, err, kind               (kind: one of KINDS)
--
-- The transport layers:
--
--   contract.lua   defaults, limits, failure kinds; check(req) -> the request to send
--   url.lua        URLs split and checked, and rebuilt for the wire
--   http1.lua      HTTP/1.1 on a socket: the request head, the answer's status line,
--                  headers, framing (length, chunked, close) and trailers
--   curl.lua       check, then the C core's libcurl session (csrc/http.c)
--   ngx.lua        check, then connection, TLS, pool, deadline and the one resend over
--                  nginx cosockets, reading with http1
--   auto.lua       curl or ngx, chosen per request by nginx phase
--
-- Defaults and limits live here, once: config.lua takes its defaults from
-- DEFAULTS, and each transport sends what `check` returns. The C core keeps only
-- the checks that protect memory and the process (see csrc/http.c).
--
-- A bad value in a request is data (nil, err, "url", nothing sent); a wrong type,
-- a missing url or a timeout or max_body out of range is the caller's programming
-- error and raises, reported at the caller of the transport's `request`.
-- @module quecapi.transport.contract

local url = require "quecapi.transport.url"

local type, pairs, error, next = type, pairs, error, next
local find, format, lower = string.find, string.format, string.lower
local sort = table.sort
local floor = math.floor

local _M = {}

--- Defaults of a request's optional fields.
_M.DEFAULTS = {
  timeout = 10,                 -- seconds for the whole attempt
  connect_timeout = 5,          -- seconds for the connection and the TLS handshake
  max_body = 8 * 1024 * 1024,   -- bytes of an answer's body
}
local DEFAULTS = _M.DEFAULTS

--- Limits that protect the client from a hostile server, and the ranges a
-- request's numbers must be in. `max_header_bytes` bounds an answer's status
-- line and header block, and separately its chunked trailer (an API's headers
-- take a few hundred bytes); `max_trailer_line` is libcurl's own limit on one
-- trailer line, kept by the ngx transport too (trailers are read and dropped).
_M.LIMITS = {
  max_header_bytes = 64 * 1024,  -- bytes, line ends included
  max_trailer_line = 4095,       -- bytes, its line end included
  max_timeout = 1e6,             -- seconds
  max_body = 1e15,               -- bytes
}
local LIMITS = _M.LIMITS

--- The failure kinds a transport reports.
--   timeout     the request's time (or connect_timeout) ran out
--   connect     no connection (refused, unreachable, name not resolved)
--   tls         the TLS handshake failed (certificate, name, protocol)
--   network     the connection broke or the answer is not well-formed HTTP
--   too_large   the body exceeds max_body
--   url         the request was refused before anything was sent (method, URL, header)
--   usage       the transport cannot work here (an nginx phase without cosockets)
--   closed      the transport's session was closed
_M.KINDS = {
  timeout = true, connect = true, tls = true, network = true, too_large = true,
  url = true, usage = true, closed = true,
}

-- Framing is the transport's: a caller's value for these would contradict what
-- is sent (libcurl would even send a caller's Content-Length instead of its own).
local FRAMING = { ["content-length"] = true, ["transfer-encoding"] = true }

local function is_token(s)
  return s ~= "" and not find(s, "[^%w!#$%%&'*+%-.^_`|~]")
end

local function has_ctl(s)
  return find(s, "[\r\n%z]") ~= nil
end

-- An optional field of the request; a wrong type is the caller's error. Not a
-- closure inside check: LuaJIT cannot compile a trace that creates one, and this
-- runs on every request.
local function opt(req, name, want, default)
  local v = req[name]
  if v == nil then return default end
  if type(v) ~= want then error(format("request.%s must be a %s", name, want), 4) end
  return v
end

--- Check a request and complete it with the defaults.
-- @tparam table req method, url, headers, body, timeout, connect_timeout, max_body
-- @return the request to send: { method, url (rebuilt from its parts), scheme, host,
--   port, target, family, headers (without framing headers), names (their names,
--   sorted: the same bytes on the wire for the same request), body (never for
--   HEAD), timeout, connect_timeout, max_body (whole bytes), max_header,
--   max_trailer_line };
--   or nil, err, "url"
function _M.check(req)
  if type(req) ~= "table" then error("request must be a table", 3) end
  local target_url = opt(req, "url", "string")
  if target_url == nil then error("request.url is required", 3) end
  local method = opt(req, "method", "string", "GET")
  local body = opt(req, "body", "string")
  local headers = opt(req, "headers", "table", nil)
  local timeout = opt(req, "timeout", "number", DEFAULTS.timeout)
  local connect_timeout = opt(req, "connect_timeout", "number", DEFAULTS.connect_timeout)
  local max_body = opt(req, "max_body", "number", DEFAULTS.max_body)
  local max_timeout = LIMITS.max_timeout
  -- written so that NaN fails too
  if not (timeout > 0 and timeout <= max_timeout and connect_timeout > 0 and connect_timeout <= max_timeout) then
    error(format("timeouts must be between 0 and %g seconds", max_timeout), 3)
  end
  if not (max_body >= 0 and max_body <= LIMITS.max_body) then
    error(format("max_body must be between 0 and %g", LIMITS.max_body), 3)
  end
  local names, framing = {}, false
  if headers then
    for k, v in pairs(headers) do
      if type(k) ~= "string" or type(v) ~= "string" then
        error("request.headers must map strings to strings", 3)
      end
      if FRAMING[lower(k)] then
        framing = true
      else
        names[#names + 1] = k
      end
    end
  end

  if not is_token(method) then return nil, "invalid HTTP method", "url" end
  if has_ctl(target_url) then return nil, "URL contains CR, LF or NUL", "url" end
  sort(names)
  for i = 1, #names do
    local k = names[i]
    if not is_token(k) then return nil, "invalid header name", "url" end
    if has_ctl(headers[k]) then return nil, "header value contains CR, LF or NUL", "url" end
  end
  local scheme, host, port, target, family = url.parse(target_url)
  if not scheme then return nil, host, "url" end

  if framing then
    local own = {}
    for i = 1, #names do own[names[i]] = headers[names[i]] end
    headers = own
  elseif headers == nil or next(headers) == nil then
    headers = nil
  end
  return {
    method = method, body = method ~= "HEAD" and body or nil, headers = headers, names = names,
    url = url.format(scheme, host, port, target, family),
    scheme = scheme, host = host, port = port, target = target, family = family,
    timeout = timeout, connect_timeout = connect_timeout, max_body = floor(max_body),
    max_header = LIMITS.max_header_bytes, max_trailer_line = LIMITS.max_trailer_line,
  }
end

return _M
