--- HTTP/1.1 on a connected socket: the request head, and the answer read back
-- from the wire — status line, header block, body framing (Content-Length,
-- chunked, to the connection's end, none) and chunked trailers.
--
--   local c = http1.conn(sock, clock, deadline, r)    -- r: what contract.check returns
--   local ok, err, kind = http1.send(c, http1.head(r))
--   local status, body, headers, reusable = http1.read_response(c, r.method)
--                                         -- or nil, err, kind
--
-- The socket is anything with nginx's cosocket methods `settimeout(ms)`,
-- `send(data)` and `receiveany(max)`; `clock()` answers the time in seconds.
-- Nothing here knows nginx, so the whole reading side runs in plain Lua against
-- a scripted socket (spec/unit/http1_spec.lua).
--
-- Time: every socket operation gets the time left before `deadline` as its
-- timeout and reads return as soon as any data is there, so a server that
-- trickles bytes cannot stretch a request past its deadline.
--
-- The answer's bytes are the server's: reading and parsing them costs time linear
-- in their size, whatever their shape (many repeated or folded headers, lines
-- that arrive a byte at a time, long runs of spaces), so a hostile answer cannot
-- hold the worker's CPU. The status line and header block are limited to
-- `r.max_header` bytes, and so, separately, is a chunked trailer.
--
-- Header rules, the same as csrc/http.c's for the curl transport: names are
-- lowercased; a line that starts with a space or tab continues the field before
-- it (joined by one space, none while its value is empty); a line whose name is
-- empty or holds white space is ignored, with its continuations; values are
-- trimmed of white space (SP, HT, LF, VT, FF, CR); repeats are joined with ", ";
-- a line without a colon, or a continuation first, is malformed.
-- @module quecapi.transport.http1

local url = require "quecapi.transport.url"

local tonumber, pairs = tonumber, pairs
local find, sub, lower, format, match, gmatch, byte =
  string.find, string.sub, string.lower, string.format, string.match, string.gmatch, string.byte
local concat = table.concat
local floor, ceil, min = math.floor, math.ceil, math.min

local _M = {}

local MAX_CHUNK_LINE = 4096        -- chunk size line with its extensions
local READ_SIZE = 64 * 1024        -- at most this much per receive
local SEND_PIECE = 64 * 1024       -- sends are split so each one sees the time left
_M.SEND_PIECE = SEND_PIECE

local BODYLESS_STATUS = { [204] = true, [304] = true }
-- Methods that announce an empty body: servers and gateways may refuse these
-- without a length (411), and the platform's gateway expects it on DELETE too.
local EMPTY_BODY_LENGTH = { POST = true, PUT = true, PATCH = true, DELETE = true }

-- Names and values met on every exchange (header names, Connection values) are
-- worked out once: a table per kind, emptied when it reaches MAX_MEMO entries, so
-- a server that makes up names cannot grow it without end.
local MAX_MEMO = 256

local function memo()
  return { n = 0, t = {} }
end

local function remember(m, k, v)
  if m.n >= MAX_MEMO then m.t, m.n = {}, 0 end
  m.t[k], m.n = v, m.n + 1
  return v
end

local lower_names = memo()

local function lower_name(k)
  local v = lower_names.t[k]
  if v == nil then v = remember(lower_names, k, lower(k)) end
  return v
end

-- ------------------------------------------------------------------------
-- the request head
-- ------------------------------------------------------------------------

--- The request line and header block of a checked request (contract.check),
-- then its body (or nil) and whether the caller asked to close the connection.
function _M.head(r)
  local lines = { r.method .. " " .. r.target .. " HTTP/1.1" }
  local names, headers = r.names, r.headers
  local has_host, close = false, false
  for i = 1, #names do
    local lk = lower_name(names[i])
    if lk == "host" then
      has_host = true
    elseif lk == "connection" then
      for token in gmatch(lower(headers[names[i]]), "[^,%s]+") do
        if token == "close" then close = true end
      end
    end
  end
  if not has_host then
    lines[2] = "Host: " .. url.authority(r.scheme, r.host, r.port, r.family)
  end
  for i = 1, #names do
    lines[#lines + 1] = names[i] .. ": " .. headers[names[i]]
  end
  local body = r.body
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

--- The state of one exchange on `sock`: the deadline (in `clock()` seconds) and
-- the limits of the checked request `r` (timeout, max_body, max_header).
function _M.conn(sock, clock, deadline, r)
  return {
    sock = sock, clock = clock, deadline = deadline, timeout = r.timeout,
    max_body = r.max_body, max_header = r.max_header, max_trailer_line = r.max_trailer_line,
    buf = "", pos = 1,
    received = 0, -- bytes of the answer so far: none means the request may go again
  }
end

--- Milliseconds until `t` (at least 1: 0 would mean "the directive's default"
-- to a cosocket), or nil when it has passed.
local function ms_until(clock, t)
  local left = t - clock()
  if left <= 0 then return nil end
  return ceil(left * 1000)
end
_M.ms_until = ms_until

-- Milliseconds left before the exchange's deadline, or nil when it has passed.
local function left_ms(c)
  return ms_until(c.clock, c.deadline)
end
_M.left_ms = left_ms

local function timed_out(c, what)
  return nil, format("timed out after %d ms %s", floor(c.timeout * 1000 + 0.5), what), "timeout"
end
_M.timed_out = timed_out

local function socket_error(c, err, what)
  if err == "timeout" then return timed_out(c, what) end
  if err == "closed" then return nil, "connection closed by the server " .. what, "network" end
  return nil, err .. " " .. what, "network"
end

--- Send all of `data`, in pieces that each get the time left.
function _M.send(c, data)
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

-- What arrives next (any amount, at most `max`), or nil, err, kind.
local function receive(c, max, what)
  local ms = left_ms(c)
  if not ms then return timed_out(c, what) end
  c.sock:settimeout(ms)
  local data, err = c.sock:receiveany(max)
  if not data then return socket_error(c, err, what) end
  c.received = c.received + #data
  return data
end

-- One line without its LF and one CR before it; fails when more than `limit`
-- bytes arrive without its LF. A line that arrives in many pieces is gathered in
-- a list and joined once: appending every piece to the buffer would copy (and
-- search) the line again for each piece, quadratic in its length.
local function read_line(c, limit, what)
  local buf, pos = c.buf, c.pos
  local i = find(buf, "\n", pos, true)
  local line
  if i then
    c.pos = i + 1
    if i > pos and byte(buf, i - 1) == 13 then return sub(buf, pos, i - 2) end
    return sub(buf, pos, i - 1)
  else
    local pieces, size = { sub(buf, pos) }, #buf - pos + 1
    while true do
      if size > limit then return nil, "line too long " .. what, "network" end
      local data, err, kind = receive(c, READ_SIZE, what)
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
  while n > 0 do
    local data, err, kind = receive(c, min(n, READ_SIZE), what)
    if not data then return nil, err, kind end
    parts[#parts + 1] = data
    n = n - #data
  end
  return true
end

local function too_large(c)
  return nil, format("response body exceeds %d bytes", c.max_body), "too_large"
end

-- ------------------------------------------------------------------------
-- the answer: status line, headers, body
-- ------------------------------------------------------------------------

-- A header block up to its empty line, as a list of lines; `what` names it in
-- errors ("header" or "trailer"). The block with its line ends may take
-- c.max_header bytes, and a trailer's line c.max_trailer_line.
local function read_block(c, what)
  local limit, line_limit = c.max_header, what == "trailer" and c.max_trailer_line or nil
  local lines, size = {}, 0
  local doing = "while reading the response " .. what
  while true do
    local line, err, kind = read_line(c, line_limit and min(limit - size, line_limit) or limit - size, doing)
    if line and line_limit and #line + 2 > line_limit then line, err, kind = nil, "line too long", "network" end
    if not line then
      if kind == "network" and find(err, "^line too long") then
        if line_limit and limit - size > line_limit then
          return nil, format("response trailer line exceeds %d bytes", line_limit), "network"
        end
        return nil, format("response %s exceeds %d bytes", what, limit), "network"
      end
      return nil, err, kind
    end
    size = size + #line + 2
    if size > limit then
      return nil, format("response %s exceeds %d bytes", what, limit), "network"
    end
    if line == "" then
      -- blank lines before a status line are tolerated, as most clients do
      if #lines > 0 or what == "trailer" then return lines end
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
-- every position of a long run of spaces, quadratic in its length. White space
-- is these six bytes, as in csrc/http.c, never what a locale calls a space.
local function is_space(b)
  return b == 32 or (b >= 9 and b <= 13)
end

-- The position of the last non-space byte of s at or after `from` (from - 1 if none).
local function last_nonspace(s, from)
  local e = #s
  while e >= from and is_space(byte(s, e)) do e = e - 1 end
  return e
end

local MALFORMED = "malformed header line in the response"

-- A header line's name (the bytes before its first colon) as the table's key:
-- lowercased, or false when it is empty or holds white space (the line is
-- ignored, as the rules say).
local field_names = memo()

local function field_name(raw)
  local v = field_names.t[raw]
  if v == nil then
    v = raw ~= "" and not find(raw, "[ \t\n\v\f\r]") and lower(raw) or false
    remember(field_names, raw, v)
  end
  return v
end

--- The fields of a header block (lines[1] is the status line) as a table of
-- lowercase names, by the rules above; nil, err when a line has no colon or the
-- first one continues a field that is not there (libcurl refuses both too). The
-- pieces of a name seen more than once or continued are gathered in a list and
-- joined once at the end, as csrc/http.c does: joining at every repeat copies
-- the value so far again each time, quadratic in the block's size.
function _M.parse_headers(lines)
  local headers, pieces, last, empty = {}, {}, nil, false
  for i = 2, #lines do
    local line = lines[i]
    local first = byte(line)
    if first == 32 or first == 9 then
      if i == 2 then return nil, MALFORMED end
      local s = match(line, "^[ \t\n\v\f\r]*()")
      local e = last_nonspace(line, s)
      if last and e >= s then
        local list = pieces[last]
        if not list then
          list = { headers[last] }
          pieces[last] = list
        end
        if not empty then list[#list + 1] = " " end
        list[#list + 1] = sub(line, s, e)
        empty = false
      end
    else
      local colon = find(line, ":", 1, true)
      if not colon then return nil, MALFORMED end
      local name = field_name(sub(line, 1, colon - 1))
      if name then
        local s, n = colon + 1, #line
        while s <= n and is_space(byte(line, s)) do s = s + 1 end
        local e = last_nonspace(line, s)
        local value = sub(line, s, e)
        empty = e < s
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
      end
      last = name or nil
    end
  end
  for name, list in pairs(pieces) do
    headers[name] = concat(list)
  end
  return headers
end

-- The tokens of a header value (Connection: "keep-alive", "close"), as a set.
local value_tokens = memo()

local function has_token(value, token)
  if not value then return false end
  local set = value_tokens.t[value]
  if not set then
    set = {}
    for t in gmatch(lower(value), "[^,%s]+") do set[t] = true end
    remember(value_tokens, value, set)
  end
  return set[token] == true
end

--- Content-Length as a number; repeats must agree. nil when absent, false when invalid.
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
_M.content_length = content_length

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

--- How the body of an answer is framed: "none", "chunked", "length" and the
-- length, or "close" (to the connection's end); nil, err when Content-Length
-- is invalid. RFC 9112 6.3: HEAD, 1xx, 204 and 304 have no body; chunked as the
-- final transfer coding frames it; any other coding runs to the end.
function _M.framing(method, status, headers)
  if method == "HEAD" or BODYLESS_STATUS[status] or status < 200 then return "none" end
  local codings = headers["transfer-encoding"]
  if codings then
    if last_coding(lower(codings)) == "chunked" then return "chunked" end
    return "close"
  end
  local length = content_length(headers["content-length"])
  if length == false then return nil, "invalid Content-Length in the response" end
  if length then return "length", length end
  return "close"
end
local framing = _M.framing

local function read_chunked(c, parts)
  local total = 0
  local what = "while reading the response body"
  while true do
    local line, err, kind = read_line(c, MAX_CHUNK_LINE, what)
    if not line then return nil, err, kind end
    local hex, ext = match(line, "^%s*(%x+)(.*)$")
    if not hex or #hex > 12 or not (ext == "" or find(ext, "^%s*;") or find(ext, "^%s*$")) then
      return nil, "malformed chunk size in the response body", "network"
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
      return nil, "malformed chunk in the response body", "network"
    end
  end
  -- trailer fields, up to the empty line: read so the connection can be reused, then dropped
  local trailer, err, kind = read_block(c, "trailer")
  if not trailer then return nil, err, kind end
  return true
end

local function read_to_close(c, parts)
  local total = #c.buf - c.pos + 1
  if total > c.max_body then return too_large(c) end
  if total > 0 then
    parts[1] = sub(c.buf, c.pos)
    c.pos = #c.buf + 1
  end
  local sock, what = c.sock, "while reading the response body"
  while true do
    local ms = left_ms(c)
    if not ms then return timed_out(c, what) end
    sock:settimeout(ms)
    local data, err = sock:receiveany(READ_SIZE)
    if not data then
      if err == "closed" then return true end -- the end of this body
      return socket_error(c, err, what)
    end
    c.received = c.received + #data
    total = total + #data
    if total > c.max_body then return too_large(c) end
    parts[#parts + 1] = data
  end
end

--- Read one answer to a request made with `method`.
-- @return status, body, headers, reusable (whether the connection may carry
--   another request); or nil, err, kind
function _M.read_response(c, method)
  local lines, err, kind, status, http11
  repeat
    lines, err, kind = read_block(c, "header")
    if not lines then return nil, err, kind end
    status, http11 = parse_status(lines[1])
    if not status or status < 100 then
      return nil, "malformed status line in the response", "network"
    end
    -- 1xx (100 Continue, 103 Early Hints) precede the real answer; 101 would switch protocols
  until status >= 200 or status == 101
  local headers
  headers, err = _M.parse_headers(lines)
  if not headers then return nil, err, "network" end

  local conn = headers["connection"]
  local reusable
  if http11 then
    reusable = not has_token(conn, "close")
  else
    reusable = has_token(conn, "keep-alive")
  end
  if status < 200 then reusable = false end
  -- with Transfer-Encoding and Content-Length both, the message is suspect
  -- (request smuggling): never reuse the connection
  if headers["transfer-encoding"] and headers["content-length"] then reusable = false end

  local how, length = framing(method, status, headers)
  if not how then return nil, length, "network" end
  local parts, ok = {}, true
  if how == "chunked" then
    ok, err, kind = read_chunked(c, parts)
  elseif how == "length" then
    if length > c.max_body then return too_large(c) end
    ok, err, kind = read_exact(c, length, parts, "while reading the response body")
    if not ok and kind == "network" then
      local got = 0
      for i = 1, #parts do got = got + #parts[i] end
      err = format("connection closed after %d of %d body bytes", got, length)
    end
  elseif how == "close" then
    ok, err, kind = read_to_close(c, parts)
    reusable = false
  end
  if not ok then return nil, err, kind end
  -- Bytes after the answer that nobody asked for: the connection's state is unknown.
  if c.pos <= #c.buf then reusable = false end
  return status, concat(parts), headers, reusable
end

return _M
