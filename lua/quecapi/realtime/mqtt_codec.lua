--- The bytes of the realtime channel's nginx link: MQTT 3.1.1 packets (the
-- client's side of them) and the header of the WebSocket frames (RFC 6455)
-- that carry them. Pure functions on strings: no I/O, no clock, nothing kept
-- between calls; they never raise on what the network sends.
--
-- Encoders return the packet as a string:
--
--     codec.connect { client_id = "qu_1_2", username = "", password = "Bearer ...", keepalive = 40 }
--     codec.subscribe(id, { topic, ... }, qos)    codec.unsubscribe(id, { topic, ... })
--     codec.publish(topic, payload, qos, id)      codec.puback(id)  codec.pubrec(id)  codec.pubcomp(id)
--     codec.PINGREQ                               codec.DISCONNECT
--
-- Decoders take the bytes as they came:
--
--     codec.fixed_header(s, pos)  -> first byte, remaining length, length of the fixed header
--                                 -> nil (more bytes needed) | false, err (malformed)
--     codec.packet(first, s, i, j) -> kind, ...  (the body is s[i..j]; see `packet`) | nil, err
--     codec.publish_topic(first, body_start) -> topic, payload size implied by a remaining length
--     codec.ws_header(s, pos)     -> fin, opcode, masked, payload length, header length
--                                 -> nil (more bytes needed) | nil, err (malformed)
--
-- Written in Lua rather than in the C core: the nginx link runs on LuaJIT, where
-- these functions are compiled with the loop around them, and a call through
-- the C API would stop the trace on every packet (README, "Realtime in
-- OpenResty", has the measurement). Only arithmetic on bytes is used (no bit
-- library), so the same file runs and is tested on Lua 5.4 and LuaJIT.
-- @module quecapi.realtime.mqtt_codec

local byte, char, sub = string.byte, string.char, string.sub
local concat = table.concat
local floor = math.floor
local type, ipairs = type, ipairs

local _M = {}

-- Packet types (the high nibble of the first byte).
_M.CONNECT, _M.CONNACK, _M.PUBLISH, _M.PUBACK = 1, 2, 3, 4
_M.PUBREC, _M.PUBREL, _M.PUBCOMP = 5, 6, 7
_M.SUBSCRIBE, _M.SUBACK, _M.UNSUBSCRIBE, _M.UNSUBACK = 8, 9, 10, 11
_M.PINGREQ_TYPE, _M.PINGRESP, _M.DISCONNECT_TYPE = 12, 13, 14

--- MQTT's largest remaining length (four length bytes).
_M.MAX_REMAINING = 268435455

-- ------------------------------------------------------------------------
-- encoding
-- ------------------------------------------------------------------------

local function u16(n)
  return char(floor(n / 256) % 256, n % 256)
end

-- A UTF-8 string field: two length bytes, then the bytes.
local function field(s)
  return u16(#s) .. s
end

-- The remaining length as MQTT writes it: 7 bits a byte, low first.
local function varint(n)
  local out = {}
  repeat
    local digit = n % 128
    n = floor(n / 128)
    if n > 0 then digit = digit + 128 end
    out[#out + 1] = char(digit)
  until n == 0
  return concat(out)
end

local function packet(first, body)
  return char(first) .. varint(#body) .. body
end

--- CONNECT, MQTT 3.1.1, clean session. `username` sets the user name flag even
-- when empty (the platform wants an empty name with its flag set); `password`
-- needs a user name in 3.1.1.
-- @tparam table o `client_id`, `username`, `password`, `keepalive` (seconds)
-- @return the packet, or nil, err
function _M.connect(o)
  local id, user, pass = o.client_id, o.username, o.password
  if type(id) ~= "string" or id == "" or #id > 65535 then return nil, "client id must be 1 to 65535 bytes" end
  if pass ~= nil and user == nil then user = "" end
  local flags = 2 -- clean session
  local tail = { field(id) }
  if user ~= nil then
    if type(user) ~= "string" or #user > 65535 then return nil, "user name must be a string of up to 65535 bytes" end
    flags = flags + 128
    tail[#tail + 1] = field(user)
  end
  if pass ~= nil then
    if type(pass) ~= "string" or #pass > 65535 then return nil, "password must be a string of up to 65535 bytes" end
    flags = flags + 64
    tail[#tail + 1] = field(pass)
  end
  local keepalive = o.keepalive or 0
  if type(keepalive) ~= "number" or keepalive < 0 or keepalive > 65535 or keepalive % 1 ~= 0 then
    return nil, "keepalive must be whole seconds from 0 to 65535"
  end
  return packet(0x10, field("MQTT") .. char(4, flags) .. u16(keepalive) .. concat(tail))
end

local function check_id(id)
  return type(id) == "number" and id >= 1 and id <= 65535 and id % 1 == 0
end

local function topic_list(list)
  if type(list) ~= "table" or list[1] == nil then return nil, "topics must be a non-empty list" end
  for i, t in ipairs(list) do
    if type(t) ~= "string" or t == "" or #t > 65535 then
      return nil, "topic " .. i .. " must be 1 to 65535 bytes"
    end
  end
  return true
end

--- SUBSCRIBE of every topic at one QoS.
-- @return the packet, or nil, err
function _M.subscribe(id, topics, qos)
  if not check_id(id) then return nil, "packet id must be 1 to 65535" end
  local ok, err = topic_list(topics)
  if not ok then return nil, err end
  qos = qos or 0
  if qos ~= 0 and qos ~= 1 and qos ~= 2 then return nil, "qos must be 0, 1 or 2" end
  local parts = { u16(id) }
  for _, t in ipairs(topics) do parts[#parts + 1] = field(t) .. char(qos) end
  return packet(0x82, concat(parts))
end

--- UNSUBSCRIBE.
-- @return the packet, or nil, err
function _M.unsubscribe(id, topics)
  if not check_id(id) then return nil, "packet id must be 1 to 65535" end
  local ok, err = topic_list(topics)
  if not ok then return nil, err end
  local parts = { u16(id) }
  for _, t in ipairs(topics) do parts[#parts + 1] = field(t) end
  return packet(0xA2, concat(parts))
end

--- PUBLISH (never retained, never a duplicate); `id` is needed for QoS 1 and 2.
-- @return the packet, or nil, err
function _M.publish(topic, payload, qos, id)
  if type(topic) ~= "string" or topic == "" or #topic > 65535 then return nil, "topic must be 1 to 65535 bytes" end
  if type(payload) ~= "string" then return nil, "payload must be a string" end
  qos = qos or 0
  if qos ~= 0 and qos ~= 1 and qos ~= 2 then return nil, "qos must be 0, 1 or 2" end
  local head = field(topic)
  if qos > 0 then
    if not check_id(id) then return nil, "packet id must be 1 to 65535" end
    head = head .. u16(id)
  end
  if #head + #payload > _M.MAX_REMAINING then return nil, "message larger than MQTT allows (256 MB)" end
  return char(0x30 + qos * 2) .. varint(#head + #payload) .. head .. payload
end

--- The acknowledgements a client sends for a QoS 1 or 2 message.
function _M.puback(id) return char(0x40, 2) .. u16(id) end
function _M.pubrec(id) return char(0x50, 2) .. u16(id) end
function _M.pubcomp(id) return char(0x70, 2) .. u16(id) end

_M.PINGREQ = char(0xC0, 0)
_M.DISCONNECT = char(0xE0, 0)

-- ------------------------------------------------------------------------
-- decoding
-- ------------------------------------------------------------------------

--- The fixed header at `pos`: first byte, remaining length, header length (2 to 5);
-- nil when `s` ends inside it; false, err when it is malformed.
function _M.fixed_header(s, pos)
  local n = #s
  if pos + 1 > n then return nil end
  local first = byte(s, pos)
  local value, mult = 0, 1
  for i = 1, 4 do
    local b = byte(s, pos + i)
    if not b then return nil end
    value = value + (b % 128) * mult
    if b < 128 then
      -- a length written with more bytes than it needs is allowed by the
      -- letter of 3.1.1; nothing forbids reading it
      return first, value, i + 1
    end
    mult = mult * 128
  end
  return false, "malformed remaining length (more than four bytes)"
end

-- A two-byte number at `i` of `s`.
local function read16(s, i)
  local a, b = byte(s, i, i + 1)
  return a * 256 + b
end

--- The topic of a PUBLISH from the start of its body (`body` may be only the
-- first bytes of it), and the size of the payload for a remaining length `rl`.
-- @return topic, payload size; nil when `body` is too short for the topic; false, err
function _M.publish_topic(first, body, rl)
  local qos = floor(first / 2) % 4
  if qos == 3 then return false, "PUBLISH with QoS 3" end
  if #body < 2 then return nil end
  local tlen = read16(body, 1)
  local head = 2 + tlen + (qos > 0 and 2 or 0)
  if head > rl then return false, "PUBLISH shorter than its topic" end
  if #body < 2 + tlen then return nil end
  return sub(body, 3, 2 + tlen), rl - head
end

local ACK_KIND = {
  [_M.PUBACK] = "puback", [_M.PUBREC] = "pubrec", [_M.PUBREL] = "pubrel", [_M.PUBCOMP] = "pubcomp",
  [_M.UNSUBACK] = "unsuback",
}
-- The flags a packet from the server must carry (the low nibble), by type.
local FLAGS = {
  [_M.CONNACK] = 0, [_M.PUBACK] = 0, [_M.PUBREC] = 0, [_M.PUBREL] = 2, [_M.PUBCOMP] = 0,
  [_M.SUBACK] = 0, [_M.UNSUBACK] = 0, [_M.PINGRESP] = 0,
}

--- One packet a server sends, from its first byte and its body, the bytes
-- `i` to `j` of `s` (default: all of `s`; no copy is made of the body):
--
--  - "publish", topic, payload, qos, packet id (nil at QoS 0), retain
--  - "connack", return code, session present
--  - "suback", packet id, { granted QoS or 0x80, ... }
--  - "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback", packet id
--  - "pingresp"
--
-- @return the kind and its fields, or nil, err (a malformed packet, or one a
--   server never sends to a client)
function _M.packet(first, s, i, j)
  i, j = i or 1, j or #s
  local kind, flags = floor(first / 16), first % 16
  local n = j - i + 1
  if kind == _M.PUBLISH then
    local qos = floor(flags / 2) % 4
    if qos == 3 then return nil, "PUBLISH with QoS 3" end
    if n < 2 then return nil, "PUBLISH without a topic" end
    local tlen = read16(s, i)
    local pos = i + 2 + tlen -- the packet id, or the payload
    local id
    if qos > 0 then
      if pos + 1 > j then return nil, "PUBLISH shorter than its topic and packet id" end
      id = read16(s, pos)
      if id == 0 then return nil, "PUBLISH with packet id 0" end
      pos = pos + 2
    elseif pos - 1 > j then
      return nil, "PUBLISH shorter than its topic"
    end
    if tlen == 0 then return nil, "PUBLISH with an empty topic" end
    return "publish", sub(s, i + 2, i + 1 + tlen), sub(s, pos, j), qos, id, flags % 2 == 1
  end
  local want = FLAGS[kind]
  if want == nil then return nil, "a packet of type " .. kind .. " (not one a server sends to a client)" end
  if flags ~= want then return nil, "reserved flags set in a packet of type " .. kind end
  if kind == _M.PINGRESP then
    if n ~= 0 then return nil, "PINGRESP with a body" end
    return "pingresp"
  end
  if kind == _M.CONNACK then
    if n ~= 2 then return nil, "CONNACK of " .. n .. " bytes" end
    local ack, rc = byte(s, i, i + 1)
    if ack > 1 then return nil, "CONNACK with reserved flags" end
    return "connack", rc, ack == 1
  end
  if kind == _M.SUBACK then
    if n < 3 then return nil, "SUBACK without a return code" end
    local granted = {}
    for k = i + 2, j do
      local g = byte(s, k)
      if g > 2 and g ~= 0x80 then return nil, "SUBACK with return code " .. g end
      granted[k - i - 1] = g
    end
    return "suback", read16(s, i), granted
  end
  if n ~= 2 then return nil, "an acknowledgement of " .. n .. " bytes" end
  return ACK_KIND[kind], read16(s, i)
end

-- ------------------------------------------------------------------------
-- WebSocket frames
-- ------------------------------------------------------------------------

--- The header of a WebSocket frame at `pos`: fin (boolean), opcode, masked
-- (boolean), payload length, header length (2 to 14, the masking key included).
-- @return those; nil when `s` ends inside the header; nil, err when it is malformed
function _M.ws_header(s, pos)
  local b1, b2 = byte(s, pos, pos + 1)
  if not b2 then return nil end
  if b1 % 128 >= 16 then return nil, "a WebSocket frame with reserved bits set (no extension was agreed)" end
  local fin, opcode = b1 >= 128, b1 % 16
  local masked = b2 >= 128
  local len, hlen = b2 % 128, 2
  if len == 126 then
    if #s < pos + 3 then return nil end
    len, hlen = read16(s, pos + 2), 4
  elseif len == 127 then
    if #s < pos + 9 then return nil end
    local hi = byte(s, pos + 2)
    -- 2^53 and more cannot be counted in a double, and is no frame anyone sends
    if hi ~= 0 or byte(s, pos + 3) >= 32 then return nil, "a WebSocket frame longer than 2^53 bytes" end
    len = 0
    for i = pos + 3, pos + 9 do len = len * 256 + byte(s, i) end
    hlen = 10
  end
  if masked then hlen = hlen + 4 end
  if opcode >= 8 then
    if opcode > 10 then return nil, "a WebSocket control frame of unknown opcode " .. opcode end
    if len > 125 then return nil, "a WebSocket control frame longer than 125 bytes" end
    if not fin then return nil, "a fragmented WebSocket control frame" end
  elseif opcode > 2 then
    return nil, "a WebSocket frame of unknown opcode " .. opcode
  end
  if #s < pos + hlen - 1 then return nil end
  return fin, opcode, masked, len, hlen
end

return _M
