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

local type, pairs, error = type, pairs, error
local find, format, lower, sub = string.find, string.format, string.lower, string.sub
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

-- Verdicts on names already seen (methods, header names): a client sends the same
-- few on every request, and a pattern scan of each costs more than the rest of
-- the check. Bounded: a caller making up names cannot grow them without end.
local MAX_SEEN = 256
local tokens, n_tokens = {}, 0

local function is_token(s)
  local ok = tokens[s]
  if ok == nil then
    ok = s ~= "" and not find(s, "[^%w!#$%%&'*+%-.^_`|~]")
    if n_tokens >= MAX_SEEN then tokens, n_tokens = {}, 0 end
    tokens[s], n_tokens = ok, n_tokens + 1
  end
  return ok
end

-- A header name is sent (a token), dropped (a framing header) or refused.
local SEND, DROP, REFUSE = 1, 2, 3
local kinds, n_kinds = {}, 0

local function name_kind(k)
  local kind = kinds[k]
  if kind == nil then
    kind = FRAMING[lower(k)] and DROP or is_token(k) and SEND or REFUSE
    if n_kinds >= MAX_SEEN then kinds, n_kinds = {}, 0 end
    kinds[k], n_kinds = kind, n_kinds + 1
  end
  return kind
end

-- Plain searches (memchr) instead of one pattern: a token in a header is a few
-- hundred bytes, and a bracket class is matched byte by byte.
local function has_ctl(s)
  return find(s, "\r", 1, true) ~= nil or find(s, "\n", 1, true) ~= nil or find(s, "\0", 1, true) ~= nil
end

-- What url.parse found for URLs without their query ("https://host:port/path"),
-- keyed by that part: a client sends every request of an operation to one URL,
-- and parsing it again costs more than the rest of the check. Never the query:
-- it may carry a call's secrets. Only a URL whose path url.parse takes as it is
-- (it starts with "/", holds printable ASCII only, no "#") is kept, so the URL
-- with a query of the same kind added is what url.parse would make of it; any
-- other URL is parsed. Bounded, as a generic request may name any path.
local locations, n_locations = {}, 0

local function remember(u, scheme, host, port, family)
  local q = find(u, "?", 1, true)
  local head = q and sub(u, 1, q - 1) or u
  local sep = find(head, "://", 1, true)
  local slash = sep and find(head, "/", sep + 3, true)
  if not slash or find(head, "#", sep + 3, true) then return end
  local path = sub(head, slash)
  if find(path, "[^!-~]") then return end
  if n_locations >= MAX_SEEN then locations, n_locations = {}, 0 end
  locations[head] = { scheme, host, port, family, path, url.format(scheme, host, port, path, family) }
  n_locations = n_locations + 1
end

-- scheme, host, port, target, family, the URL rebuilt; or nil, err.
local function parse_url(u)
  local q = find(u, "?", 1, true)
  local known = locations[q and sub(u, 1, q - 1) or u]
  if known then
    if not q then return known[1], known[2], known[3], known[5], known[4], known[6] end
    local query = sub(u, q)
    if not find(query, "[^!-~]") and not find(query, "#", 1, true) then
      return known[1], known[2], known[3], known[5] .. query, known[4], known[6] .. query
    end
  end
  local scheme, host, port, target, family = url.parse(u)
  if not scheme then return nil, host end
  remember(u, scheme, host, port, family)
  return scheme, host, port, target, family, url.format(scheme, host, port, target, family)
end

-- A field of the request of the wrong type: the caller's error, reported at the
-- caller of the transport's request (check is called by request).
local function wrong_type(name, want)
  error(format("request.%s must be a %s", name, want), 4)
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
  -- Every field is read once (the table may compute them) and checked in this
  -- order. Written out rather than through a helper: this runs on every request.
  local target_url = req.url
  if target_url ~= nil and type(target_url) ~= "string" then wrong_type("url", "string") end
  if target_url == nil then error("request.url is required", 3) end
  local method = req.method
  if method == nil then method = "GET" elseif type(method) ~= "string" then wrong_type("method", "string") end
  local body = req.body
  if body ~= nil and type(body) ~= "string" then wrong_type("body", "string") end
  local headers = req.headers
  if headers ~= nil and type(headers) ~= "table" then wrong_type("headers", "table") end
  local timeout = req.timeout
  if timeout == nil then
    timeout = DEFAULTS.timeout
  elseif type(timeout) ~= "number" then
    wrong_type("timeout", "number")
  end
  local connect_timeout = req.connect_timeout
  if connect_timeout == nil then
    connect_timeout = DEFAULTS.connect_timeout
  elseif type(connect_timeout) ~= "number" then
    wrong_type("connect_timeout", "number")
  end
  local max_body = req.max_body
  if max_body == nil then
    max_body = DEFAULTS.max_body
  elseif type(max_body) ~= "number" then
    wrong_type("max_body", "number")
  end
  local max_timeout = LIMITS.max_timeout
  -- written so that NaN fails too
  if not (timeout > 0 and timeout <= max_timeout and connect_timeout > 0 and connect_timeout <= max_timeout) then
    error(format("timeouts must be between 0 and %g seconds", max_timeout), 3)
  end
  if not (max_body >= 0 and max_body <= LIMITS.max_body) then
    error(format("max_body must be between 0 and %g", LIMITS.max_body), 3)
  end
  local names, n, framing = {}, 0, false
  if headers then
    for k, v in pairs(headers) do
      if type(k) ~= "string" or type(v) ~= "string" then
        error("request.headers must map strings to strings", 3)
      end
      if name_kind(k) == DROP then
        framing = true
      else
        n = n + 1
        names[n] = k
      end
    end
  end

  if not is_token(method) then return nil, "invalid HTTP method", "url" end
  if has_ctl(target_url) then return nil, "URL contains CR, LF or NUL", "url" end
  if n > 1 then sort(names) end
  for i = 1, n do
    local k = names[i]
    if name_kind(k) == REFUSE then return nil, "invalid header name", "url" end
    if has_ctl(headers[k]) then return nil, "header value contains CR, LF or NUL", "url" end
  end
  local scheme, host, port, target, family, rebuilt = parse_url(target_url)
  if not scheme then return nil, host, "url" end

  if framing then
    local own = {}
    for i = 1, n do own[names[i]] = headers[names[i]] end
    headers = own
  elseif n == 0 then
    headers = nil
  end
  return {
    method = method, body = method ~= "HEAD" and body or nil, headers = headers, names = names,
    url = rebuilt,
    scheme = scheme, host = host, port = port, target = target, family = family,
    timeout = timeout, connect_timeout = connect_timeout, max_body = floor(max_body),
    max_header = LIMITS.max_header_bytes, max_trailer_line = LIMITS.max_trailer_line,
  }
end

return _M
