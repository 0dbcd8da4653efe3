-- A broker that sends what a spec scripts, inside the spec's nginx: the
-- WebSocket upgrade written by hand on the raw request socket, then MQTT bytes
-- cut into frames the way the scenario says. What the client sent back (packet
-- types, pongs) goes to the `wire` shared dict under "got:<scenario>".
--
--   location /hostile/ { content_by_lua_block { require("support.hostile_broker").serve() } }
-- luacheck: std +ngx_lua
local proto = require "nginx.websocket.protocol"
local codec = require "quecapi.realtime.mqtt_codec"

local _M = {}

local GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

local function frame(opcode, payload, fin, masked)
  return proto.build_frame(fin ~= false, opcode, #payload, payload, masked or false)
end

local function bin(payload, fin) return frame(0x2, payload, fin) end

local function publish(topic, payload, qos, id)
  return assert(codec.publish(topic, payload, qos or 0, id))
end

local function record(scenario, what)
  ngx.shared.wire:rpush("got:" .. scenario, what)
end

-- The client's next MQTT packet (one per frame, as the link sends them): first byte, body.
local function read_packet(sock, scenario)
  while true do
    local data, typ = proto.recv_frame(sock, 1024 * 1024, true)
    if not data then return nil end
    if typ == "pong" then
      record(scenario, "pong:" .. data)
    elseif typ == "close" then
      record(scenario, "close")
      return nil
    elseif typ == "binary" then
      local first, rl, hlen = codec.fixed_header(data, 1)
      if first then
        record(scenario, string.format("%02x", first))
        return first, data:sub(hlen + 1, hlen + rl)
      end
    end
  end
end

local SCRIPTS = {}

-- Everything a broker may legally do with frames.
function SCRIPTS.frames(sock, scenario)
  local first, body = read_packet(sock, scenario) -- SUBSCRIBE
  assert(first == 0x82, "expected SUBSCRIBE")
  local id = body:sub(1, 2)
  sock:send(bin("\144\4" .. id .. "\0\128")) -- SUBACK: the second topic refused
  -- two packets in one frame
  sock:send(bin(publish("t/1", "one") .. publish("t/2", "two")))
  -- one packet in three fragments, a ping between them
  local p = publish("t/3", "three")
  sock:send(frame(0x2, p:sub(1, 3), false) .. frame(0x9, "hi") .. frame(0x0, p:sub(4, 6), false) ..
    frame(0x0, p:sub(7), true))
  -- QoS 1: the client owes a PUBACK
  sock:send(bin(publish("t/4", "four", 1, 77)))
  -- a message larger than max_message, the next one in the same frame
  sock:send(bin(publish("t/big", string.rep("x", 5000)) .. publish("t/5", "five")))
  -- a large one again, cut across many small frames
  local big = publish("t/big2", string.rep("y", 3000)) .. publish("t/6", "six")
  for i = 1, #big, 100 do sock:send(bin(big:sub(i, i + 99))) end
  -- a QoS 2 message, sent twice before its PUBREL: delivered once
  sock:send(bin(publish("t/7", "seven", 2, 9) .. publish("t/7", "seven", 2, 9)))
  sock:send(bin("\98\2\0\9")) -- PUBREL
  -- what the client sends back until it leaves
  while read_packet(sock, scenario) do end
end

local function after_connack(extra)
  return function(sock, scenario)
    sock:send(extra)
    while read_packet(sock, scenario) do end
  end
end

SCRIPTS.masked = after_connack(frame(0x2, publish("t/1", "x"), true, true))
SCRIPTS.malformed = after_connack(bin("\48\255\255\255\255\1"))
SCRIPTS.close = after_connack(frame(0x8, "\3\232"))
SCRIPTS.text = after_connack(frame(0x1, publish("t/1", "x")))
SCRIPTS.pingresp = after_connack("") -- answers nothing: a PINGREQ goes unanswered
SCRIPTS.badtype = after_connack(bin("\16\0")) -- a CONNECT from the server

function _M.serve()
  local scenario = ngx.var.uri:match("^/hostile/([%w_]+)$")
  local key = ngx.var.http_sec_websocket_key or ""
  local accept = ngx.encode_base64(ngx.sha1_bin(key .. GUID))
  local sock = assert(ngx.req.socket(true))
  sock:settimeout(10000)
  if scenario == "status" then
    sock:send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    return
  end
  if scenario == "accept" then accept = ngx.encode_base64(ngx.sha1_bin("wrong")) end
  local proto_line = scenario == "proto" and "Sec-WebSocket-Protocol: other\r\n" or "Sec-WebSocket-Protocol: mqtt\r\n"
  sock:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
    "Sec-WebSocket-Accept: " .. accept .. "\r\n" .. proto_line .. "\r\n")
  local first = read_packet(sock, scenario) -- CONNECT
  if first ~= 0x10 then return end
  if scenario == "silent" then
    ngx.sleep(5)
    return
  end
  sock:send(bin("\32\2\0" .. (scenario == "connack5" and "\5" or "\0")))
  local script = SCRIPTS[scenario]
  if script then script(sock, scenario) end
end

return _M
