-- quecapi.realtime.mqtt_codec: MQTT 3.1.1 packets as the nginx link writes and
-- reads them, and the WebSocket frame header; golden bytes from the
-- specification's layouts, every way a packet can arrive cut up, and hostile
-- bytes that must never raise.
local codec = require "quecapi.realtime.mqtt_codec"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
  return (h:gsub("%s", ""):gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

-- A byte generator that is the same on every run and interpreter.
local function prng(seed)
  local x = seed
  return function(n)
    x = (x * 1103515245 + 12345) % 2147483648
    return x % n
  end
end

describe("[15] mqtt_codec: encoding", function()
  it("writes CONNECT with the user name flag set for an empty name, the token as password, clean session", function()
    local p = assert(codec.connect { client_id = "qu_1_2", username = "", password = "Bearer t", keepalive = 40 })
    -- 0x10, length, "MQTT", level 4, flags user+password+clean, keepalive 40, id, "", password
    assert.are.equal("10" .. "1e" .. "00044d515454" .. "04" .. "c2" .. "0028" .. "0006" .. hex("qu_1_2") .. "0000" ..
      "0008" .. hex("Bearer t"), hex(p))
    -- no user name and no password: only clean session
    assert.are.equal("02", hex(assert(codec.connect { client_id = "x", keepalive = 0 })):sub(19, 20))
    -- a password alone gets the (empty) user name 3.1.1 requires with it
    assert.are.equal("c2", hex(assert(codec.connect { client_id = "x", password = "p" })):sub(19, 20))
  end)

  it("writes SUBSCRIBE, UNSUBSCRIBE, PUBLISH, the acknowledgements, PINGREQ and DISCONNECT", function()
    assert.are.equal("820b" .. "0007" .. "0001" .. hex("a") .. "00" .. "0002" .. hex("bc") .. "00",
      hex(assert(codec.subscribe(7, { "a", "bc" }, 0))))
    assert.are.equal("a2050009" .. "0001" .. hex("a"), hex(assert(codec.unsubscribe(9, { "a" }))))
    assert.are.equal("3207" .. "0001" .. hex("t") .. "0102" .. hex("xy"), hex(assert(codec.publish("t", "xy", 1, 258))))
    assert.are.equal("3005" .. "0001" .. hex("t") .. hex("xy"), hex(assert(codec.publish("t", "xy", 0))))
    assert.are.same({ "40020102", "50020102", "70020102" },
      { hex(codec.puback(258)), hex(codec.pubrec(258)), hex(codec.pubcomp(258)) })
    assert.are.same({ "c000", "e000" }, { hex(codec.PINGREQ), hex(codec.DISCONNECT) })
  end)

  it("writes remaining lengths of one to four bytes", function()
    for _, case in ipairs { { 0, "00" }, { 127, "7f" }, { 128, "8001" }, { 16383, "ff7f" }, { 16384, "808001" },
                            { 2097152, "80808001" } } do
      local payload = string.rep("p", case[1] - 3)
      local p = assert(codec.publish("t", payload, 0))
      if case[1] >= 3 then
        assert.are.equal("30" .. case[2], hex(p:sub(1, 1 + #case[2] / 2)))
        local first, rl, hlen = codec.fixed_header(p, 1)
        assert.are.same({ 0x30, case[1], 1 + #case[2] / 2 }, { first, rl, hlen })
      end
    end
  end)

  it("refuses what it cannot write, with a reason", function()
    assert.is_nil(codec.connect { client_id = "" })
    assert.is_nil(codec.connect { client_id = "x", keepalive = 70000 })
    assert.is_nil(codec.connect { client_id = "x", password = string.rep("p", 65536) })
    assert.is_nil(codec.subscribe(0, { "a" }, 0))
    assert.is_nil(codec.subscribe(1, {}, 0))
    assert.is_nil(codec.subscribe(1, { "a" }, 3))
    assert.is_nil(codec.publish("", "x", 0))
    local ok, err = codec.publish("t", "x", 1)
    assert.is_nil(ok)
    assert.matches("packet id", err)
  end)
end)

describe("[15] mqtt_codec: decoding", function()
  it("reads what a broker sends", function()
    assert.are.same({ "connack", 0, false }, { codec.packet(0x20, "\0\0") })
    assert.are.same({ "connack", 5, false }, { codec.packet(0x20, "\0\5") })
    assert.are.same({ "suback", 7, { 0, 0x80, 1 } }, { codec.packet(0x90, "\0\7\0\128\1") })
    assert.are.same({ "unsuback", 9 }, { codec.packet(0xB0, "\0\9") })
    assert.are.same({ "puback", 258 }, { codec.packet(0x40, "\1\2") })
    assert.are.same({ "pubrel", 3 }, { codec.packet(0x62, "\0\3") })
    assert.are.same({ "pingresp" }, { codec.packet(0xD0, "") })
    assert.are.same({ "publish", "a/b", "{}", 0, nil, false }, { codec.packet(0x30, "\0\3a/b{}") })
    assert.are.same({ "publish", "a/b", "", 1, 5, true }, { codec.packet(0x33, "\0\3a/b\0\5") })
    -- a body inside a larger string, by position
    local s = "xx\0\3a/bhello" .. "yy"
    assert.are.same({ "publish", "a/b", "hello", 0, nil, false }, { codec.packet(0x30, s, 3, #s - 2) })
  end)

  it("refuses malformed packets and those a server never sends", function()
    for _, case in ipairs {
      { 0x36, "\0\1t" },            -- QoS 3
      { 0x30, "\0" },               -- no topic length
      { 0x30, "\0\5ab" },           -- shorter than its topic
      { 0x32, "\0\1t\0" },          -- no room for the packet id
      { 0x32, "\0\1t\0\0" },        -- packet id 0
      { 0x30, "\0\0x" },            -- empty topic
      { 0x20, "\0" },               -- short CONNACK
      { 0x20, "\2\0" },             -- CONNACK flags
      { 0x21, "\0\0" },             -- reserved flags
      { 0x90, "\0\1" },             -- SUBACK without codes
      { 0x90, "\0\1\3" },           -- SUBACK code 3
      { 0xD0, "x" },                -- PINGRESP with a body
      { 0x40, "\0\1\2" },           -- long PUBACK
      { 0x10, "" },                 -- CONNECT
      { 0x82, "\0\1" },             -- SUBSCRIBE
      { 0xC0, "" },                 -- PINGREQ
      { 0x00, "" }, { 0xF0, "" },   -- reserved types
    } do
      local kind, err = codec.packet(case[1], case[2])
      assert.is_nil(kind, string.format("%02x %s", case[1], hex(case[2])))
      assert.is_string(err)
    end
  end)

  it("finds fixed headers, says when more bytes are needed, refuses a fifth length byte", function()
    assert.are.same({ 0x30, 321, 3 }, { codec.fixed_header("\48\193\2", 1) })
    assert.is_nil(codec.fixed_header("\48", 1))
    assert.is_nil(codec.fixed_header("\48\193", 1))
    assert.are.same({ 0x30, 0, 2 }, { codec.fixed_header("xx\48\0", 3) })
    local bad, err = codec.fixed_header("\48\255\255\255\255\1", 1)
    assert.is_false(bad)
    assert.matches("four bytes", err)
    -- the largest length MQTT allows
    assert.are.same({ 0x30, codec.MAX_REMAINING, 5 }, { codec.fixed_header("\48\255\255\255\127", 1) })
  end)

  it("reads a large PUBLISH's topic from its first bytes", function()
    local p = assert(codec.publish("q/2/d/qdPKDK/bus_", string.rep("x", 5000), 0))
    local first, rl, hlen = codec.fixed_header(p, 1)
    assert.are.same({ "q/2/d/qdPKDK/bus_", 5000 }, { codec.publish_topic(first, p:sub(hlen + 1, hlen + 30), rl) })
    assert.is_nil(codec.publish_topic(first, p:sub(hlen + 1, hlen + 5), rl))
    assert.is_false(codec.publish_topic(first, "\255\255", 10))
  end)

  it("decodes every packet it encodes, the same from any start in a stream", function()
    local stream = {}
    for i = 1, 50 do
      stream[#stream + 1] = assert(codec.publish("t/" .. i, string.rep("v", i * 37), i % 2, i))
    end
    local s = "junk" .. table.concat(stream)
    local pos, i = 5, 0
    while pos <= #s do
      local first, rl, hlen = codec.fixed_header(s, pos)
      local kind, topic, payload, qos, id = codec.packet(first, s, pos + hlen, pos + hlen + rl - 1)
      i = i + 1
      assert.are.same({ "publish", "t/" .. i, i * 37, i % 2 }, { kind, topic, #payload, qos })
      assert.are.equal(i % 2 == 1 and i or nil, id)
      pos = pos + hlen + rl
    end
    assert.are.equal(50, i)
  end)
end)

describe("[15] mqtt_codec: WebSocket frame headers", function()
  it("reads the three length forms, the mask and the opcode", function()
    assert.are.same({ true, 2, false, 5, 2 }, { codec.ws_header("\130\5hello", 1) })
    assert.are.same({ false, 0, false, 300, 4 }, { codec.ws_header("\0\126\1\44", 1) })
    assert.are.same({ true, 2, false, 70000, 10 }, { codec.ws_header(unhex("827f0000000000011170"), 1) })
    assert.are.same({ true, 9, true, 0, 6 }, { codec.ws_header("\137\128abcd", 1) })
    assert.are.same({ true, 8, false, 2, 2 }, { codec.ws_header("..\136\2\3\232", 3) })
  end)

  it("waits for the rest of a header", function()
    for _, h in ipairs { "\130", "\130\126\1", "\130\127\0\0\0\0\0\0\1", "\130\133abc" } do
      local fin, err = codec.ws_header(h, 1)
      assert.is_nil(fin)
      assert.is_nil(err) -- no reason: not malformed, only short
    end
  end)

  it("refuses reserved bits, unknown opcodes, long or fragmented control frames, absurd lengths", function()
    for _, h in ipairs { "\194\0", "\131\0", "\139\0", "\136\126\0\200", "\8\0",
                         unhex("827f8000000000000001"), unhex("827f0020000000000000") } do
      local fin, err = codec.ws_header(h, 1)
      assert.is_nil(fin, hex(h))
      assert.is_string(err)
    end
  end)
end)

describe("[15] mqtt_codec: hostile bytes", function()
  it("never raises on random or mutated input", function()
    local rand = prng(15)
    local good = {
      assert(codec.publish("q/2/d/qdPKDK/bus_", '{"data":{"kv":{"a":1}}}', 1, 7)),
      "\32\2\0\0", "\144\3\0\1\0", "\208\0", "\176\2\0\9",
    }
    local count = 0
    for _ = 1, 20000 do
      local s
      if rand(2) == 0 then
        local t = {}
        for k = 1, rand(40) do t[k] = string.char(rand(256)) end
        s = table.concat(t)
      else
        s = good[rand(#good) + 1]
        local b = {}
        for k = 1, #s do b[k] = s:sub(k, k) end
        for _ = 1, 1 + rand(3) do
          local at = rand(#b) + 1
          b[at] = string.char(rand(256))
        end
        s = table.concat(b, "", 1, rand(#b) + 1)
      end
      local first, rl, hlen = codec.fixed_header(s, 1)
      if first then
        local ok = pcall(codec.packet, first, s, 1 + hlen, math.min(#s, hlen + rl))
        assert.is_true(ok)
        assert.is_true(pcall(codec.publish_topic, first, s:sub(hlen + 1), rl))
        count = count + 1
      end
      assert.is_true(pcall(codec.ws_header, s, 1))
    end
    assert.is_true(count > 1000)
  end)
end)
