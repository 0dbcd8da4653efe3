--- The non-blocking transport: HTTP/1.1 over nginx cosockets (`ngx.socket.tcp`).
--
-- Same contract as `quecapi.transport.curl`, so a client can use either:
--
--   t:request{ method, url, headers, body, timeout, connect_timeout, max_body }
--     -> status, body, headers        (headers: lowercase names, repeats joined with ", ")
--     -> nil, err, kind               (kind: timeout, connect, tls, too_large, network, url,
--                                      usage)
--
-- Use it in the phases that have cosockets (rewrite, server_rewrite, access,
-- content, timer, ssl_cert, ssl_session_fetch, ssl_client_hello). In every other
-- phase (init_by_lua, init_worker_by_lua, set_by_lua, header/body filters,
-- log_by_lua, balancer, ...) a request returns nil, err, "usage" at once, without
-- sending anything; err says to make the call from a timer (ngx.timer.at). Where
-- blocking is acceptable (init_by_lua, init_worker_by_lua) the curl transport
-- works, and the auto transport picks it there.
--
-- Differences from the curl transport, by necessity:
--  * Trust: certificates are verified against nginx's `lua_ssl_trusted_certificate`
--    (depth `lua_ssl_verify_depth`). cosockets cannot take a CA file per request, so
--    the `ca_file` option is accepted for symmetry and ignored.
--  * Host names are resolved by nginx's `resolver` directive; IPv4 literals and
--    "localhost" (127.0.0.1) need none. IPv6 literals and user:password@ in URLs
--    are refused (kind "url").
--  * nginx verifies a certificate against a host name only (X509_check_host): with
--    verification on, an https URL must name the host, not its IP address, or the
--    handshake fails with kind "tls".
--  * No proxy from the environment and no content decoding (Accept-Encoding is not
--    sent, so servers answer with the identity encoding).
--  * Chunked trailers are read and dropped; they are not merged into the headers.
--
-- Like libcurl, a request that fails on a pooled (reused) connection before any
-- byte of the answer arrived, except by timeout, is sent once more, and only once
-- (the server closed an idle keep-alive connection under us, but it may have
-- received the request: an SMS must not go out three times). The resend goes on a
-- new connection; the other pooled connections to that server are closed on the way.
--
-- Time: connecting and the TLS handshake together get at most `connect_timeout`
-- seconds, as libcurl's CONNECTTIMEOUT. The whole request (connect, TLS, send,
-- header, body, and the one resend) must finish within `timeout` seconds: every
-- socket operation gets the time left as its timeout and reads return as soon as
-- any data is there, so a server that trickles bytes cannot stretch the request
-- past its deadline.
--
-- The answer's bytes are the server's: reading and parsing them costs time linear
-- in their size, whatever their shape (many repeated or folded headers, lines
-- that arrive a byte at a time, long runs of spaces), so a hostile answer cannot
-- hold the worker's CPU. Status line and headers are limited to 64 KiB.
-- @module quecapi.transport.ngx

local type, tostring, tonumber, pairs, ipairs = type, tostring, tonumber, pairs, ipairs
local setmetatable, pcall, error, rawget, select = setmetatable, pcall, error, rawget, select
local find, sub, lower, format, match, gmatch, byte =
  string.find, string.sub, string.lower, string.format, string.match, string.gmatch, string.byte
local concat, sort = table.concat, table.sort
local floor, ceil, min = math.floor, math.ceil, math.min

local time = require "quecapi.time"

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

local DEFAULT_TIMEOUT = 10
local DEFAULT_CONNECT_TIMEOUT = 5
local DEFAULT_MAX_BODY = 8 * 1024 * 1024
local DEFAULT_POOL_SIZE = 32
local DEFAULT_KEEPALIVE_MS = 60000

local MAX_HEADER_BYTES = 64 * 1024 -- status line + headers (and chunked trailers)
local MAX_CHUNK_LINE = 4096        -- chunk size line with its extensions
local READ_SIZE = 64 * 1024        -- at most this much per receive
local SEND_PIECE = 64 * 1024       -- sends are split so each one sees the time left

local BODYLESS_STATUS = { [204] = true, [304] = true }
-- Methods that announce an empty body: servers and gateways may refuse these
-- without a length (411), and the platform's gateway expects it on DELETE too.
local EMPTY_BODY_LENGTH = { POST = true, PUT = true, PATCH = true, DELETE = true }
-- Framing is ours: a caller's value for these would contradict what is sent.
local OWN_HEADERS = { ["content-length"] = true, ["transfer-encoding"] = true }

-- The nginx API, looked up when a request is made so this file loads anywhere.
local function nginx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.socket) == "table" and ngx.socket.tcp then
    return ngx
  end
end

-- Why a request cannot be made in this nginx phase, and what to do instead.
local function no_cosockets(phase)
  if time.BLOCKING_PHASES[phase] then
    return format("nginx's %s phase has no cosockets: use the curl transport here (it may block "
      .. "while nginx starts) or make the call from a timer (ngx.timer.at)", phase)
  end
  return format("nginx's %s phase has no cosockets and a blocking request would stall the worker: "
    .. "make the call from a timer (ngx.timer.at)", phase)
end

-- ------------------------------------------------------------------------
-- request validation (the same rules as csrc/http.c)
-- ------------------------------------------------------------------------

local function is_token(s)
  return s ~= "" and not find(s, "[^%w!#$%%&'*+%-.^_`|~]")
end

local function has_ctl(s)
  return find(s, "[\r\n%z]") ~= nil
end

local function valid_ipv4(host)
  local a, b, c, d = match(host, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  for _, part in ipairs { a, b, c, d } do
    if #part > 3 or tonumber(part) > 255 then return false end
  end
  return true
end

local function valid_name(host)
  if #host > 253 or not find(host, "^[%w%-%.]+$") then return false end
  for label in gmatch(host .. ".", "([^.]*)%.") do
    if label == "" or #label > 63 or find(label, "^%-") or find(label, "%-$") then
      return false
    end
  end
  return true
end

--- Split a URL: scheme, host, port, target ("/path?query"), or nil, err.
local function parse_url(url)
  local scheme, rest = match(url, "^(%a[%w+.%-]*)://(.*)$")
  if not scheme then return nil, "malformed URL" end
  scheme = lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported URL scheme '" .. scheme .. "'"
  end
  local authority, target = match(rest, "^([^/?#]*)(.*)$")
  if find(authority, "@", 1, true) then return nil, "credentials in URLs are not supported" end
  if find(authority, "^%[") then return nil, "IPv6 addresses are not supported" end
  local host, port = match(authority, "^([^:]*):(%d+)$")
  if not host then
    host = match(authority, "^([^:]*):?$")
    if not host then return nil, "malformed host or port in URL" end
  end
  host = lower(host)
  if host == "" then return nil, "URL has no host" end
  local ip = valid_ipv4(host)
  if ip == false or (ip == nil and (find(host, "^[%d.]+$") or not valid_name(host))) then
    return nil, "invalid host name in URL"
  end
  if port then
    port = tonumber(port)
    if #match(authority, ":(%d+)$") > 5 or port < 1 or port > 65535 then
      return nil, "invalid port in URL"
    end
  else
    port = scheme == "https" and 443 or 80
  end
  target = match(target, "^[^#]*") -- a fragment never goes on the wire
  if find(target, "[%s%c]") then return nil, "URL contains spaces or control characters" end
  if target == "" then
    target = "/"
  elseif byte(target) == 63 then -- "?"
    target = "/" .. target
  end
  return scheme, host, port, target
end
_M.parse_url = parse_url

-- An optional field of the request; a wrong type is the caller's error. Not a
-- closure inside check_request: LuaJIT cannot compile a trace that creates one,
-- and this runs on every request.
local function opt(req, name, want, default)
  local v = req[name]
  if v == nil then return default end
  if type(v) ~= want then error(format("request.%s must be a %s", name, want), 4) end
  return v
end

-- Check types (programmer errors raise, as the C core does) and runtime data
-- (bad values return nil, err). Returns the normalised request or nil, err.
local function check_request(req)
  if type(req) ~= "table" then error("request must be a table", 3) end
  local url = opt(req, "url", "string")
  if url == nil then error("request.url is required", 3) end
  local method = opt(req, "method", "string", "GET")
  local body = opt(req, "body", "string")
  local headers = opt(req, "headers", "table", {})
  local timeout = opt(req, "timeout", "number", DEFAULT_TIMEOUT)
  local connect_timeout = opt(req, "connect_timeout", "number", DEFAULT_CONNECT_TIMEOUT)
  local max_body = opt(req, "max_body", "number", DEFAULT_MAX_BODY)
  if not (timeout > 0 and timeout <= 1e6 and connect_timeout > 0 and connect_timeout <= 1e6) then
    error("timeouts must be between 0 and 1e6 seconds", 3)
  end
  if not (max_body >= 0 and max_body <= 1e15) then
    error("max_body must be between 0 and 1e15", 3)
  end
  local names = {}
  for k, v in pairs(headers) do
    if type(k) ~= "string" or type(v) ~= "string" then
      error("request.headers must map strings to strings", 3)
    end
    names[#names + 1] = k
  end

  if not is_token(method) then return nil, "invalid HTTP method" end
  if has_ctl(url) then return nil, "URL contains CR, LF or NUL" end
  sort(names) -- the same bytes on the wire for the same request
  for _, k in ipairs(names) do
    if not is_token(k) then return nil, "invalid header name" end
    if has_ctl(headers[k]) then return nil, "header value contains CR, LF or NUL" end
  end
  local scheme, host, port, target = parse_url(url)
  if not scheme then return nil, host end
  return {
    method = method, body = body, headers = headers, names = names,
    timeout = timeout, connect_timeout = connect_timeout, max_body = floor(max_body),
    scheme = scheme, host = host, port = port, target = target,
  }
end

-- Request line and header block.
local function serialize(r)
  local lines = { r.method .. " " .. r.target .. " HTTP/1.1" }
  local has_host, close = false, false
  for _, k in ipairs(r.names) do
    local lk = lower(k)
    if lk == "host" then
      has_host = true
    elseif lk == "connection" then
      for token in gmatch(lower(r.headers[k]), "[^,%s]+") do
        if token == "close" then close = true end
      end
    end
  end
  if not has_host then
    local default = r.scheme == "https" and 443 or 80
    lines[2] = "Host: " .. (r.port == default and r.host or r.host .. ":" .. r.port)
  end
  for _, k in ipairs(r.names) do
    if not OWN_HEADERS[lower(k)] then
      lines[#lines + 1] = k .. ": " .. r.headers[k]
    end
  end
  local body = r.body
  if r.method == "HEAD" then
    body = nil -- as libcurl: a HEAD request never carries a body
  end
  if body then
    lines[#lines + 1] = "Content-Length: " .. #body
  elseif EMPTY_BODY_LENGTH[r.method] then
    lines[#lines + 1] = "Content-Length: 0"
  end
  lines[#lines + 1] = "\r\n"
  return concat(lines, "\r\n"), body, close
end

-- ------------------------------------------------------------------------
-- a connection with a deadline and a small read buffer
-- ------------------------------------------------------------------------

local function now(ngx)
  ngx.update_time()
  return ngx.now()
end

-- Milliseconds until `t` (at least 1: 0 would mean "the directive's default"
-- to a cosocket), or nil when it has passed.
local function ms_until(ngx, t)
  local left = t - now(ngx)
  if left <= 0 then return nil end
  return ceil(left * 1000)
end

-- Milliseconds left before the request's deadline, or nil when it has passed.
local function left_ms(c)
  return ms_until(c.ngx, c.deadline)
end

local function fail(_, err, kind)
  return nil, err, kind
end

local function timed_out(c, what)
  return fail(c, format("timed out after %d ms %s", floor(c.timeout * 1000 + 0.5), what), "timeout")
end

local function socket_error(c, err, what)
  if err == "timeout" then return timed_out(c, what) end
  if err == "closed" then return fail(c, "connection closed by the server " .. what, "network") end
  return fail(c, err .. " " .. what, "network")
end

-- What arrives next (any amount, at most READ_SIZE), or nil, err, kind.
local function receive(c, what)
  local ms = left_ms(c)
  if not ms then return timed_out(c, what) end
  c.sock:settimeout(ms)
  local data, err = c.sock:receiveany(READ_SIZE)
  if not data then return socket_error(c, err, what) end
  c.received = c.received + #data
  return data
end

-- One line without its CR LF; fails when more than `limit` bytes arrive without
-- its LF. A line that arrives in many pieces is gathered in a list and joined
-- once: appending every piece to the buffer would copy (and search) the line
-- again for each piece, quadratic in its length.
local function read_line(c, limit, what)
  local buf, pos = c.buf, c.pos
  local i = find(buf, "\n", pos, true)
  local line
  if i then
    line = sub(buf, pos, i - 1)
    c.pos = i + 1
  else
    local pieces, size = { sub(buf, pos) }, #buf - pos + 1
    while true do
      if size > limit then return fail(c, "line too long " .. what, "network") end
      local data, err, kind = receive(c, what)
      if not data then return nil, err, kind end
      i = find(data, "\n", 1, true)
      if i then
        pieces[#pieces + 1] = sub(data, 1, i - 1)
        c.buf, c.pos = data, i + 1
        break
      end
      pieces[#pieces + 1] = data
      size = size + #data
    end
    line = concat(pieces)
  end
  if byte(line, -1) == 13 then line = sub(line, 1, -2) end
  return line
end

-- Exactly n bytes into `parts`, from the buffer first, then straight from the
-- socket (never more than n, so nothing of a next response is consumed).
local function read_exact(c, n, parts, what)
  local buffered = #c.buf - c.pos + 1
  if buffered > 0 then
    local take = min(buffered, n)
    parts[#parts + 1] = sub(c.buf, c.pos, c.pos + take - 1)
    c.pos = c.pos + take
    n = n - take
  end
  local sock = c.sock
  while n > 0 do
    local ms = left_ms(c)
    if not ms then return timed_out(c, what) end
    sock:settimeout(ms)
    local data, err = sock:receiveany(min(n, READ_SIZE))
    if not data then return socket_error(c, err, what) end
    c.received = c.received + #data
    parts[#parts + 1] = data
    n = n - #data
  end
  return true
end

local function too_large(c)
  return fail(c, format("response body exceeds %d bytes", c.max_body), "too_large")
end

-- ------------------------------------------------------------------------
-- response: status line, headers, body
-- ------------------------------------------------------------------------

-- The header block up to its empty line, as a list of lines.
local function read_head(c)
  local lines, size = {}, 0
  while true do
    local line, err, kind = read_line(c, MAX_HEADER_BYTES - size, "while reading the response header")
    if not line then
      if kind == "network" and find(err, "^line too long") then
        return fail(c, format("response header exceeds %d bytes", MAX_HEADER_BYTES), "network")
      end
      return nil, err, kind
    end
    size = size + #line + 2
    if size > MAX_HEADER_BYTES then
      return fail(c, format("response header exceeds %d bytes", MAX_HEADER_BYTES), "network")
    end
    if line == "" then
      if #lines > 0 then return lines end
      -- blank lines before a status line are tolerated, as most clients do
    else
      lines[#lines + 1] = line
    end
  end
end

local function parse_status(line)
  local major, minor, status, rest = match(line, "^HTTP/(%d)%.(%d) (%d%d%d)(.*)$")
  if not major or (rest ~= "" and not find(rest, "^ ")) or major ~= "1" then return nil end
  return tonumber(status), minor == "1"
end

-- The header block is the server's, so every scan of it is linear. Trailing
-- white space is trimmed with a loop: a pattern such as "(.-)%s*$" retries from
-- every position of a long run of spaces, quadratic in its length.
local function is_space(b)
  return b == 32 or (b >= 9 and b <= 13) -- as %s
end

-- The position of the last non-space byte of s at or after `from` (from - 1 if none).
local function last_nonspace(s, from)
  local e = #s
  while e >= from and is_space(byte(s, e)) do e = e - 1 end
  return e
end

-- Lowercase names; repeated headers joined with ", "; obsolete line folding
-- unfolded. The pieces of a name seen more than once are gathered in a list and
-- joined once at the end, as csrc/http.c does: joining at every repeat copies
-- the value so far again each time, quadratic in the block's size.
local function parse_headers(lines)
  local headers, pieces, last = {}, {}, nil
  for i = 2, #lines do
    local line = lines[i]
    local first = byte(line)
    if first == 32 or first == 9 then
      if last then
        local s = match(line, "^%s*()")
        local list = pieces[last]
        if not list then
          list = { headers[last] }
          pieces[last] = list
        end
        list[#list + 1] = " "
        list[#list + 1] = sub(line, s, last_nonspace(line, s))
      end
    else
      local name, s = match(line, "^([^:%s]+):%s*()")
      if name then
        name = lower(name)
        local value = sub(line, s, last_nonspace(line, s))
        if headers[name] == nil then
          headers[name] = value
        else
          local list = pieces[name]
          if not list then
            list = { headers[name] }
            pieces[name] = list
          end
          list[#list + 1] = ", "
          list[#list + 1] = value
        end
        last = name
      end
    end
  end
  for name, list in pairs(pieces) do
    headers[name] = concat(list)
  end
  return headers
end

local function has_token(value, token)
  if not value then return false end
  for t in gmatch(lower(value), "[^,%s]+") do
    if t == token then return true end
  end
  return false
end

-- Content-Length as a number; repeats must agree. nil when absent, false when invalid.
local function content_length(value)
  if value == nil then return nil end
  local n, start, len = nil, 1, #value
  while true do
    local comma = find(value, ",", start, true)
    local s, e = start, comma and comma - 1 or len
    while s <= e and is_space(byte(value, s)) do s = s + 1 end
    while e >= s and is_space(byte(value, e)) do e = e - 1 end
    if e < s or e - s >= 15 then return false end
    local part = sub(value, s, e)
    if not find(part, "^%d+$") then return false end
    local v = tonumber(part)
    if n and v ~= n then return false end
    n = v
    if not comma then return n end
    start = comma + 1
  end
end

-- The last coding of a Transfer-Encoding value ("chunked" in "gzip, chunked"),
-- or nil when the value ends with a comma or is empty.
local function last_coding(value)
  local e = last_nonspace(value, 1)
  local s = e
  while s >= 1 do
    local b = byte(value, s)
    if b == 44 or is_space(b) then break end
    s = s - 1
  end
  if s == e then return nil end
  return sub(value, s + 1, e)
end

local function read_chunked(c, parts)
  local total = 0
  local what = "while reading the response body"
  while true do
    local line, err, kind = read_line(c, MAX_CHUNK_LINE, what)
    if not line then return nil, err, kind end
    local hex, ext = match(line, "^%s*(%x+)(.*)$")
    if not hex or #hex > 12 or not (ext == "" or find(ext, "^%s*;") or find(ext, "^%s*$")) then
      return fail(c, "malformed chunk size in the response body", "network")
    end
    local size = tonumber(hex, 16)
    if size == 0 then break end
    total = total + size
    if total > c.max_body then return too_large(c) end
    local ok
    ok, err, kind = read_exact(c, size, parts, what)
    if not ok then return nil, err, kind end
    line, err, kind = read_line(c, MAX_CHUNK_LINE, what)
    if not line then return nil, err, kind end
    if line ~= "" then
      return fail(c, "malformed chunk in the response body", "network")
    end
  end
  -- trailer fields, up to the empty line: read so the connection can be reused, then dropped
  local size = 0
  while true do
    local line, err, kind = read_line(c, MAX_HEADER_BYTES, "while reading the response trailer")
    if not line then return nil, err, kind end
    if line == "" then return true end
    size = size + #line + 2
    if size > MAX_HEADER_BYTES then
      return fail(c, format("response trailer exceeds %d bytes", MAX_HEADER_BYTES), "network")
    end
  end
end

local function read_to_close(c, parts)
  local total = #c.buf - c.pos + 1
  if total > c.max_body then return too_large(c) end
  if total > 0 then
    parts[1] = sub(c.buf, c.pos)
    c.pos = #c.buf + 1
  end
  local sock = c.sock
  while true do
    local ms = left_ms(c)
    if not ms then return timed_out(c, "while reading the response body") end
    sock:settimeout(ms)
    local data, err = sock:receiveany(READ_SIZE)
    if not data then
      if err == "closed" then return true end
      return socket_error(c, err, "while reading the response body")
    end
    c.received = c.received + #data
    total = total + #data
    if total > c.max_body then return too_large(c) end
    parts[#parts + 1] = data
  end
end

-- status, body, headers, reusable; or nil, err, kind
local function read_response(c, method)
  local lines, err, kind, status, http11
  repeat
    lines, err, kind = read_head(c)
    if not lines then return nil, err, kind end
    status, http11 = parse_status(lines[1])
    if not status or status < 100 then
      return fail(c, "malformed status line in the response", "network")
    end
    -- 1xx (100 Continue, 103 Early Hints) precede the real answer; 101 would switch protocols
  until status >= 200 or status == 101
  local headers = parse_headers(lines)

  local conn = headers["connection"]
  local reusable
  if http11 then
    reusable = not has_token(conn, "close")
  else
    reusable = has_token(conn, "keep-alive")
  end

  -- How the body is framed: none, chunked, a Content-Length, or the connection's end.
  local parts, framing, length = {}, "close", nil
  if method == "HEAD" or BODYLESS_STATUS[status] or status < 200 then
    framing = "none"
    if status < 200 then reusable = false end
  elseif headers["transfer-encoding"] then
    -- RFC 9112 6.3: chunked as the final coding frames the body; any other coding
    -- means the body runs to the end of the connection.
    local codings = lower(headers["transfer-encoding"])
    -- with Content-Length too, the message is suspect (smuggling): do not reuse
    if headers["content-length"] then reusable = false end
    if last_coding(codings) == "chunked" then framing = "chunked" end
  else
    length = content_length(headers["content-length"])
    if length == false then
      return fail(c, "invalid Content-Length in the response", "network")
    elseif length then
      if length > c.max_body then return too_large(c) end
      framing = "length"
    end
  end

  local ok
  if framing == "chunked" then
    ok, err, kind = read_chunked(c, parts)
  elseif framing == "length" then
    ok, err, kind = read_exact(c, length, parts, "while reading the response body")
    if not ok and kind == "network" then
      local got = 0
      for _, p in ipairs(parts) do got = got + #p end
      err = format("connection closed after %d of %d body bytes", got, length)
    end
  elseif framing == "close" then
    ok, err, kind = read_to_close(c, parts)
    reusable = false
  else
    ok = true
  end
  if not ok then return nil, err, kind end
  -- Bytes after the answer that nobody asked for: the connection's state is unknown.
  if c.pos <= #c.buf then reusable = false end
  return status, concat(parts), headers, reusable
end

-- ------------------------------------------------------------------------
-- one attempt on one connection
-- ------------------------------------------------------------------------

local function send_all(c, data)
  local sock, i, n = c.sock, 1, #data
  while i <= n do
    local ms = left_ms(c)
    if not ms then return timed_out(c, "while sending the request") end
    sock:settimeout(ms)
    local piece = sub(data, i, i + SEND_PIECE - 1)
    local bytes, err = sock:send(piece)
    if not bytes then return socket_error(c, err, "while sending the request") end
    i = i + #piece
  end
  return true
end

-- Connecting or the TLS handshake ran out of time: of connect_timeout, or of
-- the request's timeout when that ends first.
local function connect_timed_out(c, r, by_deadline, tls)
  if by_deadline then
    return timed_out(c, format(tls and "during the TLS handshake with %s:%d" or "while connecting to %s:%d",
      r.host, r.port))
  end
  local what = tls and "TLS handshake with" or "connect to"
  return nil, format("%s %s:%d timed out after %d ms", what, r.host, r.port, floor(r.connect_timeout * 1000 + 0.5)),
    "timeout"
end

-- Connect (to a pooled connection when there is one) and, on a new https
-- connection, shake hands. Both together get at most connect_timeout (and the
-- time left before the deadline), as libcurl's CONNECTTIMEOUT bounds its connect
-- and handshake: a server that accepts and never speaks TLS costs connect_timeout,
-- not the whole timeout. With `fresh`, pooled connections are closed until a new
-- one is made: they are as old as the one that just died under us.
-- Returns whether the connection came from the pool; or nil, err, kind.
local function open(self, c, r, pool, fresh)
  local ngx, sock = c.ngx, c.sock
  local limit = now(ngx) + r.connect_timeout
  local by_deadline = c.deadline <= limit
  if by_deadline then limit = c.deadline end
  -- "localhost" is the loopback address without asking DNS (RFC 6761), as libcurl
  -- does; nginx would need a `resolver` for it otherwise.
  local addr = r.host == "localhost" and "127.0.0.1" or r.host
  local reused
  local tries = fresh and self.pool_size + 1 or 1
  for i = 1, tries do
    local ms = ms_until(ngx, limit)
    if not ms then return connect_timed_out(c, r, by_deadline, false) end
    sock:settimeout(ms)
    local ok, err = sock:connect(addr, r.port, { pool = pool })
    if not ok then
      sock:close()
      if err == "timeout" then return connect_timed_out(c, r, by_deadline, false) end
      return nil, format("cannot connect to %s:%d: %s", r.host, r.port, tostring(err)), "connect"
    end
    reused = (sock:getreusedtimes() or 0) > 0
    if not (fresh and reused) or i == tries then break end
    sock:close()
  end

  if r.scheme == "https" and not reused then
    local ms = ms_until(ngx, limit)
    if not ms then
      sock:close()
      return connect_timed_out(c, r, by_deadline, true)
    end
    sock:settimeout(ms)
    local verify = self.verify
    local session, err = sock:sslhandshake(false, r.host, verify)
    if session and select(2, sock:getreusedtimes()) == "closed" then
      -- lua-nginx-module 0.10.23 (Debian 12) reports success for a handshake that
      -- failed verification after it had to wait for the network, and closes the
      -- socket: the reason is only in nginx's error log.
      session, err = nil, "certificate verification failed (the reason is in the nginx error log)"
    end
    if not session then
      sock:close()
      if err == "timeout" then return connect_timed_out(c, r, by_deadline, true) end
      local hint = ""
      if verify and valid_ipv4(r.host) then
        -- nginx matches certificate names (X509_check_host), never IP address entries
        hint = " (nginx checks certificates against host names only: put the name in the URL)"
      end
      return nil, "TLS handshake with " .. r.host .. " failed: " .. tostring(err) .. hint, "tls"
    end
  end
  return reused
end

-- status, body, headers; or nil, err, kind, retry (the request may go again:
-- a pooled connection died before any byte of its answer arrived).
local function attempt(self, ngx, r, deadline, fresh)
  local ok, sock = pcall(ngx.socket.tcp)
  if not ok or not sock then
    return nil, "cosockets are not available here (" .. tostring(sock) ..
      "): make the call from a timer (ngx.timer.at)", "usage"
  end
  local c = {
    ngx = ngx, sock = sock, deadline = deadline, timeout = r.timeout, max_body = r.max_body,
    buf = "", pos = 1, received = 0,
  }
  if not left_ms(c) then return timed_out(c, "before connecting") end
  local https = r.scheme == "https"
  -- A verify=false connection must never be handed to a verifying client.
  local pool = format("quecapi:%s:%s:%d:%s:%s", r.scheme, r.host, r.port,
    https and (self.verify and "verify" or "noverify") or "plain", https and r.host or "")
  local reused, err, kind = open(self, c, r, pool, fresh)
  if reused == nil then return nil, err, kind end

  local head, body, close = serialize(r)
  -- One send for small requests: the header and the body in one packet.
  if body and #head + #body <= SEND_PIECE then
    head, body = head .. body, nil
  end
  ok, err, kind = send_all(c, head)
  if ok and body then ok, err, kind = send_all(c, body) end
  if not ok then
    sock:close()
    return nil, err, kind, reused and kind ~= "timeout"
  end

  local status, rbody, headers, reusable = read_response(c, r.method)
  if not status then
    sock:close()
    -- rbody is the error, headers the kind
    return nil, rbody, headers, reused and c.received == 0 and headers ~= "timeout"
  end
  if reusable and not close then
    local kept = sock:setkeepalive(self.keepalive_timeout, self.pool_size)
    if not kept then sock:close() end
  else
    sock:close()
  end
  return status, rbody, headers
end

-- ------------------------------------------------------------------------
-- public
-- ------------------------------------------------------------------------

--- Make a transport. Nothing is opened here.
-- @tparam[opt] table opts `verify` (default true), `ca_file` (ignored: see above),
--   `pool_size` (idle connections kept per host, default 32),
--   `keepalive_timeout` (ms an idle connection is kept, default 60000; 0 = no limit)
function _M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error("options must be a table", 2) end
  local verify, pool_size, keepalive = opts.verify, opts.pool_size, opts.keepalive_timeout
  if verify ~= nil and type(verify) ~= "boolean" then error("verify must be a boolean", 2) end
  if opts.ca_file ~= nil and type(opts.ca_file) ~= "string" then error("ca_file must be a string", 2) end
  if pool_size ~= nil and (type(pool_size) ~= "number" or pool_size < 1 or pool_size ~= floor(pool_size)) then
    error("pool_size must be a positive integer", 2)
  end
  if keepalive ~= nil and (type(keepalive) ~= "number" or keepalive < 0) then
    error("keepalive_timeout must be a number of milliseconds", 2)
  end
  return setmetatable({
    verify = verify ~= false,
    ca_file = opts.ca_file,
    pool_size = pool_size or DEFAULT_POOL_SIZE,
    keepalive_timeout = keepalive and floor(keepalive) or DEFAULT_KEEPALIVE_MS,
  }, mt)
end

--- Send one request.
-- @tparam table req method, url, headers, body, timeout, connect_timeout, max_body
-- @return status, body, headers; or nil, err, kind
function _M:request(req)
  local r, err = check_request(req)
  if not r then return nil, err, "url" end
  local ngx = nginx()
  if not ngx then
    return nil, "quecapi.transport.ngx works inside OpenResty/nginx only; use the curl transport", "network"
  end
  local phase = time.phase()
  if phase and not time.YIELDING_PHASES[phase] then
    return nil, no_cosockets(phase), "usage"
  end
  local deadline = now(ngx) + r.timeout
  local status, body, headers, retry = attempt(self, ngx, r, deadline, false)
  if not status and retry then
    -- Once, as libcurl and the README say, and on a new connection: a request
    -- with side effects (an SMS) may have reached the server before it closed.
    status, body, headers = attempt(self, ngx, r, deadline, true)
  end
  return status, body, headers
end

--- Nothing to release: connections live in nginx's per-worker pool.
function _M.close(_)
  return true
end

return _M
