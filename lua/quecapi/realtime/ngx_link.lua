--- The realtime channel's link inside nginx: MQTT 3.1.1 over WebSocket over
-- TLS on a cosocket (`ngx.socket.tcp`), so nothing blocks the worker. It keeps
-- the contract of the C core's Paho link (csrc/mqtt.c), which
-- `quecapi.realtime.channel` drives the same way in both places:
--
--     link = ngx_link.connect{ url, client_id, username, password, keepalive, timeout,
--                              verify, max_message }   -> link | nil, err, kind, connack
--     link:subscribe({ topic, ... }, qos)  -> true | true, { refused topic, ... } | nil, err, kind
--     link:unsubscribe{ topic, ... }       -> true | nil, err, kind
--     link:publish(topic, payload, qos)    -> true | nil, err, kind   (QoS 1: the PUBACK is not waited for)
--     link:receive(seconds)                -> topic, payload
--                                          -> topic, false, size     (larger than max_message: dropped)
--                                          -> nil, "timeout", "timeout"
--                                          -> nil, err, "closed"     (the connection is gone)
--     link:connected(), link:close()
--
-- Every wait yields to nginx (cosocket reads and writes): a worker serves its
-- other requests meanwhile. Use it in a timer (`ngx.timer.at`) or a request
-- handler (rewrite, access, content); a cosocket belongs to the request or timer
-- that made it, so a link is used where it was opened.
--
-- The pieces:
--  - TCP and TLS as `quecapi.transport.ngx` does them: "localhost" goes to
--    127.0.0.1 without a resolver, other names through nginx's `resolver`; the
--    certificate is verified against the URL's host name with the CAs of
--    `lua_ssl_trusted_certificate` (cosockets take no CA file per connection:
--    `ca_file` is ignored, as in the ngx transport); an IPv6 literal is refused;
--  - the WebSocket handshake (RFC 6455), subprotocol `mqtt`, checked: status
--    101, `Upgrade`, `Sec-WebSocket-Accept`, and no other subprotocol than mqtt.
--    Debian's lua-nginx-websocket (`nginx.websocket.client`) connects to the URL's
--    host through the resolver (so `localhost` needs one) and accepts any
--    `HTTP/1.1` answer as a handshake (a 401 or a 404 too); its frame builder
--    (`nginx.websocket.protocol`, masking included) is what sends frames here;
--  - frames in: read as they come (`receiveany`), so a read that times out in
--    the middle of a frame loses nothing; the payload of binary frames is one
--    byte stream of MQTT packets (a frame may hold several packets or a part of
--    one); pings are answered, a close frame ends the link;
--  - MQTT by `quecapi.realtime.mqtt_codec`; keepalive: a PINGREQ when nothing
--    was sent for `keepalive` seconds, sent from inside `receive` (as Paho
--    does), and the link is lost when its PINGRESP is a keepalive late;
--  - a PUBLISH larger than `max_message` is skipped as it arrives (its topic and
--    size reported), never buffered whole; what is buffered is bounded by
--    `max_message` plus one topic.
-- @module quecapi.realtime.ngx_link

local codec = require "quecapi.realtime.mqtt_codec"
local url_parse = require("quecapi.transport.url").parse
local time = require "quecapi.time"
local core = require "quecapi.core"

local type, tostring, tonumber, ipairs = type, tostring, tonumber, ipairs
local setmetatable, rawget, pcall, select, error, assert = setmetatable, rawget, pcall, select, error, assert
local format, sub, lower, find, match, gmatch = string.format, string.sub, string.lower, string.find,
  string.match, string.gmatch
local concat, remove = table.concat, table.remove
local min, max, floor = math.min, math.max, math.floor

local _M = {}

local Link = {}
local mt = { __index = Link }

local DEFAULT_MAX_MESSAGE = 1024 * 1024
local MAX_HANDSHAKE = 16 * 1024 -- the handshake answer's head
local READ_SIZE = 64 * 1024 -- one receiveany
local WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
local MAX_TOPICS = 1000

-- Phases in which the link may live: cosockets, and a request or timer to own them.
_M.PHASES = { timer = true, content = true, rewrite = true, server_rewrite = true, access = true }

local function nginx()
  return rawget(_G, "ngx")
end

-- nginx's clock, seconds (ms resolution).
local function clock()
  local ngx = nginx()
  ngx.update_time()
  return ngx.now()
end

local function ms(seconds)
  return max(1, floor(seconds * 1000 + 0.5))
end

-- ------------------------------------------------------------------------
-- bytes in: WebSocket frames -> MQTT stream -> packets
-- ------------------------------------------------------------------------

-- Mark the link lost; the first reason stays.
local function lose(self, why)
  if not self.lost then self.lost = why end
  return nil, why
end

local function send_raw(self, data)
  local bytes, err = self.sock:send(data)
  if not bytes then
    return lose(self, "the connection was lost (" .. tostring(err) .. ")")
  end
  return true
end

-- One WebSocket frame out (masked, as a client's must be).
local function send_frame(self, opcode, payload)
  local frame, err = self.ws.build_frame(true, opcode, #payload, payload, true)
  if not frame then return nil, err end
  return send_raw(self, frame)
end

-- One MQTT packet out, in one binary frame.
local function send_packet(self, bytes)
  if self.lost then return nil, self.lost end
  local ok, err = send_frame(self, 0x2, bytes)
  if ok then self.last_out = clock() end
  return ok, err
end

-- Bytes buffered in the MQTT stream.
local function buffered(self)
  return #self.mbuf - self.mpos + 1 + self.pend_len
end

-- At least `n` contiguous bytes at mpos in mbuf, when that many are buffered.
local function ensure(self, n)
  local have = #self.mbuf - self.mpos + 1
  if have >= n then return true end
  if have + self.pend_len < n then return false end
  local pend = self.pend
  pend[0] = sub(self.mbuf, self.mpos)
  self.mbuf = concat(pend, "", 0, #pend)
  self.mpos, self.pend, self.pend_len = 1, {}, 0
  return true
end

local function consume(self, n)
  self.mpos = self.mpos + n
  if self.mpos > #self.mbuf and self.pend_len == 0 then self.mbuf, self.mpos = "", 1 end
end

local function deliver(self, topic, payload, size)
  local q = self.inbox
  q[#q + 1] = { topic, payload, size }
end

-- One whole packet from the server.
local function handle(self, first, buf, i, j)
  local kind, a, b, c, d = codec.packet(first, buf, i, j)
  if not kind then return lose(self, "the broker sent a malformed packet (" .. a .. ")") end
  if kind == "publish" then
    local topic, payload, qos, id = a, b, c, d
    if qos == 1 then
      send_packet(self, codec.puback(id))
    elseif qos == 2 then
      -- exactly once: deliver now, answer PUBREC; a resend of the same id before
      -- its PUBREL is not delivered again
      send_packet(self, codec.pubrec(id))
      if self.qos2[id] then return true end
      self.qos2[id] = true
    end
    if #payload > self.max_message then
      deliver(self, topic, false, #payload)
    else
      deliver(self, topic, payload)
    end
  elseif kind == "pubrel" then
    self.qos2[a] = nil
    send_packet(self, codec.pubcomp(a))
  elseif kind == "suback" or kind == "unsuback" then
    self.acks[a] = kind == "suback" and b or true
  elseif kind == "connack" then
    self.connack = a
  elseif kind == "pingresp" then
    self.ping_at = nil
  end
  -- puback, pubrec, pubcomp: QoS 1 commands are not waited for (as with Paho)
  return true
end

-- Packets out of the MQTT stream, as far as it goes.
local function parse_packets(self)
  while not self.lost do
    if self.skip > 0 then return true end
    if not ensure(self, min(5, buffered(self))) then return true end
    local first, rl, hlen = codec.fixed_header(self.mbuf, self.mpos)
    if first == nil then return true end
    if first == false then return lose(self, "the broker sent a malformed packet (" .. rl .. ")") end
    local kind = floor(first / 16)
    if kind == codec.PUBLISH and rl > self.max_message + 65541 then
      -- too large to keep: its topic, then skip the rest as it comes
      local avail = buffered(self) - hlen
      if avail < 2 then return true end
      local want = min(avail, 2 + 65535)
      ensure(self, hlen + want)
      local at = self.mpos + hlen
      local topic, size = codec.publish_topic(first, sub(self.mbuf, at, at + want - 1), rl)
      if topic == nil then return true end
      if topic == false then return lose(self, "the broker sent a malformed packet (" .. size .. ")") end
      deliver(self, topic, false, size)
      local drop = min(buffered(self), hlen + rl)
      ensure(self, drop)
      consume(self, drop)
      self.skip = hlen + rl - drop
    else
      if kind ~= codec.PUBLISH and rl > 65541 then
        return lose(self, "the broker sent a packet of " .. rl .. " bytes of a kind that is never that long")
      end
      if not ensure(self, hlen + rl) then return true end
      local pos, buf = self.mpos, self.mbuf
      consume(self, hlen + rl)
      local ok, err = handle(self, first, buf, pos + hlen, pos + hlen + rl - 1)
      if not ok then return nil, err end
    end
  end
  return nil, self.lost
end

-- Payload bytes of data frames into the MQTT stream.
local function stream_in(self, bytes)
  local skip = self.skip
  if skip > 0 then
    if skip >= #bytes then
      self.skip = skip - #bytes
      return true
    end
    self.skip = 0
    bytes = sub(bytes, skip + 1)
  end
  if self.mpos > #self.mbuf and self.pend_len == 0 then
    self.mbuf, self.mpos = bytes, 1
  else
    local pend = self.pend
    pend[#pend + 1] = bytes
    self.pend_len = self.pend_len + #bytes
  end
  return parse_packets(self)
end

-- Bytes from the socket: frames, their payloads into the MQTT stream.
local function frames_in(self, data)
  local buf = self.raw
  if buf ~= "" then buf = buf .. data else buf = data end
  local pos, n = 1, #buf
  while pos <= n and not self.lost do
    local left = self.frame_left
    if left > 0 then
      local take = min(left, n - pos + 1)
      self.frame_left = left - take
      local piece = (pos == 1 and take == n) and buf or sub(buf, pos, pos + take - 1)
      pos = pos + take
      stream_in(self, piece)
    else
      local fin, opcode, masked, len, hlen = codec.ws_header(buf, pos)
      if fin == nil then
        if opcode then return lose(self, "the broker sent a malformed WebSocket frame: " .. opcode) end
        break
      end
      -- RFC 6455 5.1: a client closes the connection on a masked frame from the server
      if masked then return lose(self, "the broker sent a masked WebSocket frame") end
      if opcode >= 8 then
        if pos + hlen + len - 1 > n then break end
        local payload = sub(buf, pos + hlen, pos + hlen + len - 1)
        pos = pos + hlen + len
        if opcode == 8 then
          self.peer_closed = true
          return lose(self, "the broker closed the WebSocket")
        elseif opcode == 9 then
          local ok = send_frame(self, 0xA, payload)
          if not ok then return nil, self.lost end
        end
      else
        if opcode == 1 then return lose(self, "the broker sent a text frame on an MQTT connection") end
        if (opcode == 0) ~= self.in_message then
          return lose(self, "the broker sent WebSocket fragments out of order")
        end
        self.in_message = not fin
        self.frame_left = len
        pos = pos + hlen
      end
    end
  end
  self.raw = pos <= n and sub(buf, pos) or ""
  if self.lost then return nil, self.lost end
  return true
end

-- Read what arrives within `seconds` and take it in. -> true; nil, "timeout"; nil, err (lost)
local function fill(self, seconds)
  local sock = self.sock
  sock:settimeouts(self.send_ms, self.send_ms, ms(seconds))
  local data, err = sock:receiveany(READ_SIZE)
  if not data then
    if err == "timeout" then return nil, "timeout" end
    return lose(self, "the connection was lost (" .. tostring(err) .. ")")
  end
  local ok, ferr = frames_in(self, data)
  if not ok then return nil, ferr end
  return true
end

-- The keepalive's part before a wait: the PINGREQ that is due, or the link lost
-- when its PINGRESP is late. -> seconds until the next thing due; nil, err
local function keepalive(self, now)
  local ka = self.keepalive
  if ka <= 0 then return 1e9 end
  if self.ping_at then
    local late = self.ping_at + ka - now
    if late <= 0 then return lose(self, format("no PINGRESP within %ds: the connection was lost", ka)) end
    return late
  end
  local due = self.last_out + ka - now
  if due <= 0 then
    local ok, err = send_packet(self, codec.PINGREQ)
    if not ok then return nil, err end
    self.ping_at = now
    return ka
  end
  return due
end

-- Wait for the acknowledgement of packet `id` (SUBACK, UNSUBACK) until `deadline`;
-- messages that arrive meanwhile are kept for receive.
local function wait_ack(self, id, deadline)
  while true do
    local ack = self.acks[id]
    if ack ~= nil then
      self.acks[id] = nil
      return ack
    end
    if self.lost then return nil, "the connection was lost", "closed" end
    local now = clock()
    if now >= deadline then return nil, "no answer from the broker in time", "network" end
    local due, err = keepalive(self, now)
    if not due then return nil, err, "closed" end
    local ok
    ok, err = fill(self, min(deadline - now, due))
    if not ok and err ~= "timeout" then return nil, "the connection was lost", "closed" end
  end
end

local function next_id(self)
  local id = self.next_id % 65535 + 1
  self.next_id = id
  return id
end

local function check_topics(list)
  if type(list) ~= "table" then error("topics must be a list", 3) end
  local n = #list
  if n < 1 or n > MAX_TOPICS then error("between 1 and 1000 topics", 3) end
  for i = 1, n do
    local t = list[i]
    if type(t) ~= "string" or t == "" or #t > 65535 or find(t, "\0", 1, true) then
      error(format("topic %d must be 1 to 65535 bytes without NUL", i), 3)
    end
  end
end

-- ------------------------------------------------------------------------
-- the link's methods
-- ------------------------------------------------------------------------

--- A link to the broker.
-- @type Link

--- One SUBSCRIBE, waiting for its SUBACK.
-- @return true; true, { refused topic, ... }; nil, err, kind
function Link:subscribe(list, qos)
  check_topics(list)
  qos = qos or 0
  if qos ~= 0 and qos ~= 1 and qos ~= 2 then error("qos must be 0, 1 or 2", 2) end
  if self.closed then return nil, "the connection is closed", "closed" end
  if self.lost then return nil, "the connection was lost", "closed" end
  local id = next_id(self)
  if not send_packet(self, assert(codec.subscribe(id, list, qos))) then
    return nil, "the connection was lost", "closed"
  end
  local granted, err, kind = wait_ack(self, id, clock() + self.timeout)
  if not granted then
    if kind == "network" then err = "no SUBACK from the broker in time" end
    return nil, err, kind
  end
  local refused
  for i, t in ipairs(list) do
    if granted[i] == 0x80 or granted[i] == nil then
      refused = refused or {}
      refused[#refused + 1] = t
    end
  end
  if refused then return true, refused end
  return true
end

--- One UNSUBSCRIBE, waiting for its UNSUBACK.
-- @return true, or nil, err, kind
function Link:unsubscribe(list)
  check_topics(list)
  if self.closed then return nil, "the connection is closed", "closed" end
  if self.lost then return nil, "the connection was lost", "closed" end
  local id = next_id(self)
  if not send_packet(self, assert(codec.unsubscribe(id, list))) then
    return nil, "the connection was lost", "closed"
  end
  local ok, err, kind = wait_ack(self, id, clock() + self.timeout)
  if not ok then
    if kind == "network" then err = "no UNSUBACK from the broker in time" end
    return nil, err, kind
  end
  return true
end

--- A PUBLISH; at QoS 1 and 2 its acknowledgement is not waited for.
-- @return true, or nil, err, kind
function Link:publish(topic, payload, qos)
  qos = qos or 1
  if type(topic) ~= "string" or topic == "" or #topic > 65535 or find(topic, "\0", 1, true) then
    error("topic must be 1 to 65535 bytes without NUL", 2)
  end
  if type(payload) ~= "string" then error("payload must be a string", 2) end
  if qos ~= 0 and qos ~= 1 and qos ~= 2 then error("qos must be 0, 1 or 2", 2) end
  if self.closed then return nil, "the connection is closed", "closed" end
  if self.lost then return nil, "the connection was lost", "closed" end
  local bytes, err = codec.publish(topic, payload, qos, qos > 0 and next_id(self) or nil)
  if not bytes then error(err, 2) end
  local ok = send_packet(self, bytes)
  if not ok then return nil, "the connection was lost", "closed" end
  return true
end

--- The next message, waiting at most `seconds`.
-- @return topic, payload; topic, false, size; nil, "timeout", "timeout"; nil, err, "closed"
function Link:receive(seconds)
  seconds = seconds or 0
  if type(seconds) ~= "number" or not (seconds >= 0 and seconds <= 86400) then
    error("seconds must be between 0 and 86400", 2)
  end
  if self.closed then return nil, "the connection is closed", "closed" end
  local deadline = clock() + seconds
  while true do
    local m = self.inbox[1]
    if m then
      remove(self.inbox, 1)
      return m[1], m[2], m[3]
    end
    if self.lost then return nil, "the connection was lost", "closed" end
    local now = clock()
    local left = deadline - now
    if left <= 0 and seconds > 0 then return nil, "timeout", "timeout" end
    local due = keepalive(self, now)
    if not due then return nil, "the connection was lost", "closed" end
    local ok, err = fill(self, max(0.001, min(left, due)))
    if not ok and err ~= "timeout" then return nil, "the connection was lost", "closed" end
    if not ok and seconds == 0 then return nil, "timeout", "timeout" end
  end
end

--- Is the connection up?
function Link:connected()
  return not self.closed and not self.lost
end

--- DISCONNECT and a WebSocket close, then the socket closed; idempotent.
function Link:close()
  if self.closed then return end
  self.closed = true
  if not self.lost then
    self.sock:settimeouts(1000, 1000, 1000)
    -- both in one write: nothing waits for an answer
    local disconnect = self.ws.build_frame(true, 0x2, #codec.DISCONNECT, codec.DISCONNECT, true)
    local close = self.ws.build_frame(true, 0x8, 2, "\3\232", true) -- 1000, normal closure
    self.sock:send(disconnect .. close)
    self.lost = "closed"
  end
  self.sock:close()
  self.inbox = {}
end

function mt.__tostring(self)
  return format("quecapi.realtime.ngx_link (%s)", self.closed and "closed" or self.lost and "lost" or "connected")
end

-- ------------------------------------------------------------------------
-- connecting
-- ------------------------------------------------------------------------

local CONNACK_TEXT = {
  [1] = "the broker refused the connection: unacceptable protocol version",
  [2] = "the broker refused the connection: client identifier rejected",
  [3] = "the broker refused the connection: server unavailable",
  [4] = "the broker refused the connection: bad user name or password",
  [5] = "the broker refused the connection: not authorized",
}

-- The handshake answer's status and headers (names in lowercase, repeats joined with ", ").
local function parse_head(head)
  local status = match(head, "^HTTP/1%.1 (%d%d%d)")
  if not status then return nil end
  local headers = {}
  for line in gmatch(head, "\r\n([^\r\n]*)") do
    local name, value = match(line, "^([^:%s]+):[ \t]*(.-)[ \t]*$")
    if name then
      name = lower(name)
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
  return tonumber(status), headers
end

local function has_token(value, token)
  for t in gmatch(lower(value or ""), "[^,%s]+") do
    if t == token then return true end
  end
  return false
end

-- The WebSocket upgrade on a connected (TLS) socket. -> true | nil, err, kind
local function upgrade(sock, host, port, path, scheme, left)
  local ngx = nginx()
  local key = ngx.encode_base64(core.random_string(16))
  local default_port = scheme == "wss" and 443 or 80
  local authority = port == default_port and host or (host .. ":" .. port)
  local request = "GET " .. path .. " HTTP/1.1\r\nHost: " .. authority .. "\r\nUpgrade: websocket\r\n" ..
    "Connection: Upgrade\r\nSec-WebSocket-Key: " .. key .. "\r\nSec-WebSocket-Version: 13\r\n" ..
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n"
  local t = left()
  if not t then return nil, "timeout" end
  sock:settimeouts(ms(t), ms(t), ms(t))
  local sent, err = sock:send(request)
  if not sent then return nil, err == "timeout" and "timeout" or "the WebSocket handshake failed: " .. tostring(err) end
  local reader = sock:receiveuntil("\r\n\r\n")
  local parts, size = {}, 0
  while true do
    t = left()
    if not t then return nil, "timeout" end
    sock:settimeouts(ms(t), ms(t), ms(t))
    local data, rerr = reader(4096)
    if rerr then
      if rerr == "timeout" then return nil, "timeout" end
      return nil, "the WebSocket handshake failed: " .. tostring(rerr)
    end
    if not data then break end
    size = size + #data
    if size > MAX_HANDSHAKE then return nil, "the WebSocket handshake answer is longer than 16 KiB" end
    parts[#parts + 1] = data
  end
  local status, headers = parse_head(concat(parts))
  if not status then return nil, "the broker's WebSocket endpoint did not answer with HTTP/1.1" end
  if status ~= 101 then
    return nil, format("the broker's WebSocket endpoint answered HTTP %d, not 101 (is the URL's path right?)", status)
  end
  if lower(headers.upgrade or "") ~= "websocket" or not has_token(headers.connection, "upgrade") then
    return nil, "the broker's answer to the WebSocket handshake is not an upgrade to websocket"
  end
  if headers["sec-websocket-accept"] ~= ngx.encode_base64(ngx.sha1_bin(key .. WS_GUID)) then
    return nil, "the broker's answer to the WebSocket handshake has a wrong Sec-WebSocket-Accept"
  end
  local proto = headers["sec-websocket-protocol"]
  if proto and lower(proto) ~= "mqtt" then
    return nil, "the broker chose the WebSocket subprotocol " .. proto:sub(1, 40) .. ", not mqtt"
  end
  return true
end

local function fail(sock, err, kind, connack)
  if sock then sock:close() end
  return nil, err, kind, connack
end

--- Connect: TCP, TLS, the WebSocket upgrade, MQTT CONNECT and its CONNACK, all
-- within `timeout` seconds.
-- @tparam table o `url` (wss:// or ws://), `client_id`, `username`, `password`,
--   `keepalive` (seconds, 40), `timeout` (seconds, 10), `verify` (true),
--   `max_message` (bytes, 1 MiB); `ca_file` is ignored (see the module's text)
-- @return a link; or nil, err, kind (usage, connect, tls, timeout, network,
--   auth, platform), connack (the refusal's return code)
function _M.connect(o)
  local ngx = nginx()
  local phase = time.phase()
  if not ngx or not phase then
    return nil, "quecapi.realtime.ngx_link works inside nginx only", "usage"
  end
  if not _M.PHASES[phase] then
    return nil, format("nginx's %s phase cannot hold a realtime connection: open it in a timer (ngx.timer.at) "
      .. "or a request handler", phase), "usage"
  end
  if type(o) ~= "table" or type(o.url) ~= "string" or type(o.client_id) ~= "string" then
    error("url and client_id are required", 2)
  end
  local scheme, rest = match(o.url, "^(%a+)(://.*)$")
  scheme = scheme and lower(scheme)
  if scheme ~= "wss" and scheme ~= "ws" then return nil, "unsupported URL scheme (wss:// or ws://)", "usage" end
  local _, host, port, path, family = url_parse((scheme == "wss" and "https" or "http") .. rest)
  if not host then return nil, "bad realtime URL: " .. tostring(port), "usage" end
  if family == "ipv6" then
    return nil, "IPv6 addresses are not supported by the nginx link: use a host name", "usage"
  end
  local connect_packet, cerr = codec.connect {
    client_id = o.client_id, username = o.username, password = o.password, keepalive = o.keepalive or 40,
  }
  if not connect_packet then return nil, cerr, "usage" end
  local timeout = o.timeout or 10
  local deadline = clock() + timeout
  local function left()
    local l = deadline - clock()
    if l <= 0 then return nil end
    return l
  end
  local timed_out = "no answer from the broker in time (TCP, TLS, WebSocket and MQTT connect)"

  local ok, sock = pcall(ngx.socket.tcp)
  if not ok or not sock then
    return nil, "cosockets are not available here: open the channel in a timer (ngx.timer.at)", "usage"
  end
  local t = ms(timeout)
  sock:settimeouts(t, t, t)
  -- "localhost" is the loopback address without asking DNS (RFC 6761), as in the ngx transport
  local addr = host == "localhost" and "127.0.0.1" or host
  local err
  ok, err = sock:connect(addr, port)
  if not ok then
    if err == "timeout" then return fail(sock, timed_out, "timeout") end
    return fail(sock, format("cannot connect to the broker %s:%d: %s", host, port, tostring(err)), "connect")
  end
  if scheme == "wss" then
    t = left()
    if not t then return fail(sock, timed_out, "timeout") end
    sock:settimeouts(ms(t), ms(t), ms(t))
    local verify = o.verify ~= false
    local session
    session, err = sock:sslhandshake(false, host, verify)
    if session and select(2, sock:getreusedtimes()) == "closed" then
      -- lua-nginx-module 0.10.23 reports success for a handshake that failed
      -- verification after waiting for the network, and closes the socket
      session, err = nil, "certificate verification failed (the reason is in the nginx error log)"
    end
    if not session then
      if err == "timeout" then return fail(sock, timed_out, "timeout") end
      local hint = ""
      if verify and family == "ipv4" then
        hint = " (nginx checks certificates against host names only: put the name in the URL)"
      end
      return fail(sock, "TLS handshake with the broker failed: " .. tostring(err) .. hint, "tls")
    end
  end
  ok, err = upgrade(sock, host, port, path, scheme, left)
  if not ok then
    if err == "timeout" then return fail(sock, timed_out, "timeout") end
    return fail(sock, err, "connect")
  end

  local self = setmetatable({
    sock = sock, ws = _M.frames(), keepalive = o.keepalive or 40, timeout = timeout,
    send_ms = ms(timeout), max_message = o.max_message or DEFAULT_MAX_MESSAGE,
    raw = "", frame_left = 0, in_message = false,
    mbuf = "", mpos = 1, pend = {}, pend_len = 0, skip = 0,
    inbox = {}, acks = {}, qos2 = {}, next_id = floor(clock() * 1000) % 65535,
    last_out = clock(), closed = false, lost = nil,
  }, mt)
  if not send_packet(self, connect_packet) then
    return fail(sock, "cannot send CONNECT: the connection was lost", "network")
  end
  while self.connack == nil do
    if self.lost then
      return fail(sock, "the broker closed the connection before its CONNACK", "network")
    end
    t = left()
    if not t then return fail(sock, timed_out, "timeout") end
    ok, err = fill(self, t)
    -- (a CONNACK followed by something that ends the link: the loss shows in receive)
    if not ok and err ~= "timeout" and self.connack == nil then
      return fail(sock, "the broker closed the connection before its CONNACK", "network")
    end
  end
  local rc = self.connack
  if rc ~= 0 then
    return fail(sock, CONNACK_TEXT[rc] or ("the broker refused the connection (CONNACK " .. rc .. ")"),
      (rc == 4 or rc == 5) and "auth" or "platform", rc)
  end
  return self
end

--- The WebSocket frame builder the link sends with: `nginx.websocket.protocol`
-- (Debian's lua-nginx-websocket), or the same module under OpenResty's name,
-- `resty.websocket.protocol`.
function _M.frames()
  local ok, protocol = pcall(require, "nginx.websocket.protocol")
  if ok then return protocol end
  return require "resty.websocket.protocol"
end

return _M
