-- The realtime channel's pure parts: topic names, payload decoding and typing
-- by the thing model, command payloads, the reconnect backoff. No network.
local topics = require "quecapi.realtime.topics"
local events = require "quecapi.realtime.events"
local commands = require "quecapi.realtime.commands"
local backoff = require "quecapi.realtime.backoff"
local json = require "quecapi.json"

local function int(min, max) return { min = tostring(min), max = tostring(max), step = "1", unit = "" } end

-- The thing model's properties by code, as quecapi.things.model indexes them.
local PROPERTIES = {
  switch = { code = "switch", dataType = "BOOL", subType = "RW" },
  brightness = { code = "brightness", dataType = "INT", subType = "RW", specs = int(0, 100) },
  temperature = { code = "temperature", dataType = "FLOAT", subType = "R" },
  mode = { code = "mode", dataType = "ENUM", subType = "RW",
           specs = { { value = "0", name = "auto" }, { value = "1", name = "manual" } } },
  label = { code = "label", dataType = "TEXT", subType = "RW", specs = { length = "8" } },
  color = { code = "color", dataType = "STRUCT", subType = "RW", specs = {
    { id = 1, code = "r", dataType = "INT", specs = int(0, 255) },
    { id = 2, code = "g", dataType = "INT", specs = int(0, 255) } } },
  schedule = { code = "schedule", dataType = "ARRAY", subType = "RW",
               specs = { size = "3", dataType = "INT", specs = int(0, 1440) } },
}

local PK, DK = "p11pLZ", "655001"
local BUS = "q/2/d/qdp11pLZ655001/bus_"

local function decoder()
  local d = events.new()
  d:add(PK, DK)
  d:set_model(PK, PROPERTIES)
  return d
end

local function report(kv, extra)
  local p = { productKey = PK, deviceKey = DK, type = "MATTR", subtype = "REPORT", createdAt = 1744780781133,
              ticket = "t1", data = { packetId = 7, kv = kv } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return assert(json.encode(p))
end

describe("[14] realtime topics", function()
  it("names a device's topics, its command topic and the per-client error topic", function()
    assert.are.same({
      "q/2/d/qdp11pLZ655001/bus_", "q/2/d/qdp11pLZ655001/ack_", "q/2/d/qdp11pLZ655001/onl_",
      "q/2/d/qdp11pLZ655001/ota_", "q/2/d/qdp11pLZ655001/inf_", "q/2/d/qdp11pLZ655001/loc_",
    }, topics.device_topics(PK, DK))
    assert.are.equal("q/1/d/qdp11pLZ655001/sys_", topics.command(PK, DK))
    assert.are.equal("q/1/u/qu_C1_1700000000000/sys_", topics.errors("qu_C1_1700000000000"))
  end)

  it("keeps the keys' case (lowercasing the channel breaks it)", function()
    assert.are.equal("qdAbCdEfXyZ", topics.channel("AbCdEf", "XyZ"))
  end)

  it("parses what it names and nothing else", function()
    assert.are.same({ "device", "qdp11pLZ655001", "bus_" }, { topics.parse(BUS) })
    assert.are.same({ "client", "qu_C1_17" }, { topics.parse("q/1/u/qu_C1_17/sys_") })
    for _, t in ipairs { "q/2/d/qdp11pLZ655001/xyz_", "q/2/d/qdp11pLZ655001/bus_/x", "q/2/d//bus_",
                         "q/1/d/qdp11pLZ655001/sys_", "", "q/2/d/qdX/BUS_", "a/b" } do
      assert.is_nil(topics.parse(t), t)
    end
    assert.is_nil(topics.parse(nil))
  end)

  it("refuses keys that would change the topic", function()
    for _, k in ipairs { "", "a/b", "a+b", "a#", "a\0b", "a\nb", string.rep("x", 129), 7, false } do
      assert.is_string(topics.key_problem(k), tostring(k))
    end
    assert.is_nil(topics.key_problem("p11pLZ"))
  end)
end)

describe("[14] realtime event decoding", function()
  it("types a property report by the thing model, as get_properties does", function()
    local ev = assert(decoder():decode(BUS, report {
      brightness = "55", switch = "1", temperature = "21.5", mode = "1", label = 42,
      color = { r = "255", g = 3 }, schedule = { "60", 120 } }))
    assert.are.equal("property", ev.type)
    assert.are.equal(PK, ev.productKey)
    assert.are.equal(DK, ev.deviceKey)
    assert.are.equal(BUS, ev.topic)
    assert.are.equal(1744780781133, ev.at)
    assert.are.same({ brightness = 55, switch = true, temperature = 21.5, mode = 1, label = "42",
                      color = { r = 255, g = 3 }, schedule = { 60, 120 } }, ev.values)
    if math.type then assert.are.equal("integer", math.type(ev.values.brightness)) end
    assert.are.equal(7, ev.raw.data.packetId)
    assert.is_nil(ev.invalid)
  end)

  it("carries only what a partial report names", function()
    local ev = assert(decoder():decode(BUS, report { brightness = 10 }))
    assert.are.same({ brightness = 10 }, ev.values)
  end)

  it("reads kv at the top level, as a list of one-key objects and as JSON text", function()
    local d = decoder()
    local forms = {
      json.encode { type = "MATTR", kv = { brightness = "1" } },
      json.encode { data = { kv = { { brightness = "1" }, { switch = "false" } } } },
      json.encode { data = { kv = '{"brightness":"1"}' } },
      json.encode { data = { kv = '[{"brightness":1}]' } },
    }
    for i, text in ipairs(forms) do
      local ev = assert(d:decode(BUS, text), "form " .. i)
      assert.are.equal(1, ev.values.brightness, "form " .. i)
    end
  end)

  it("keeps codes the model does not know as sent, and leaves out values their type cannot hold", function()
    local ev = assert(decoder():decode(BUS, report { brightness = "bright", extra = { a = 1 }, switch = true }))
    assert.are.same({ extra = { a = 1 }, switch = true }, ev.values)
    assert.matches("brightness", ev.invalid.brightness)
  end)

  it("passes values untyped for a product without a model", function()
    local d = events.new()
    d:add(PK, DK)
    local ev = assert(d:decode(BUS, report { brightness = "55" }))
    assert.are.equal("55", ev.values.brightness)
  end)

  it("decodes online changes: 0 offline, 1 online, 2 back online", function()
    local d = decoder()
    for value, online in pairs { [0] = false, [1] = true, [2] = true } do
      for _, v in ipairs { value, tostring(value) } do
        local ev = assert(d:decode("q/2/d/qdp11pLZ655001/onl_", json.encode { type = "ONLINE", data = { value = v } }))
        assert.are.equal("online", ev.type)
        assert.are.equal(value, ev.value)
        assert.are.equal(online, ev.online)
        assert.are.equal(DK, ev.deviceKey)
      end
    end
  end)

  it("decodes acknowledgements", function()
    local d = decoder()
    local ev = assert(d:decode("q/2/d/qdp11pLZ655001/ack_",
      json.encode { msgId = 4242, ticket = "x", productKey = PK, deviceKey = DK, status = "succ" }))
    assert.are.same({ "ack", 4242, "succ", true }, { ev.type, ev.msgId, ev.status, ev.ok })
    ev = assert(d:decode("q/2/d/qdp11pLZ655001/ack_", json.encode { data = { msgId = "17", status = "fail" } }))
    assert.are.same({ 17, "fail", false }, { ev.msgId, ev.status, ev.ok })
  end)

  it("decodes per-client errors, finding the product of a device named by its key alone", function()
    local d = decoder()
    local ev = assert(d:decode("q/1/u/qu_C1_17/sys_", '{"code":4021}'))
    assert.are.same({ "error", 4021 }, { ev.type, ev.code })
    assert.is_nil(ev.productKey)
    ev = assert(d:decode("q/1/u/qu_C1_17/sys_",
      json.encode { deviceKey = DK, code = 4007, msg = "device not bound", type = "BUSI-ERROR" }))
    assert.are.same({ 4007, "device not bound", PK, DK }, { ev.code, ev.msg, ev.productKey, ev.deviceKey })
    -- two products with the device key: no guess
    d:add("other", DK)
    ev = assert(d:decode("q/1/u/qu_C1_17/sys_", json.encode { deviceKey = DK, code = 4007 }))
    assert.is_nil(ev.productKey)
  end)

  it("hands out OTA, info and location messages decoded", function()
    local d = decoder()
    for suffix, kind in pairs { ota_ = "ota", inf_ = "info", loc_ = "location" } do
      local ev = assert(d:decode("q/2/d/qdp11pLZ655001/" .. suffix, '{"data":{"x":1}}'))
      assert.are.equal(kind, ev.type)
      assert.are.same({ data = { x = 1 } }, ev.raw)
    end
  end)

  it("refuses, with a reason and without raising, what it cannot read", function()
    local d = decoder()
    local cases = {
      { BUS, "{not json" }, { BUS, "[1,2]" }, { BUS, '"text"' }, { BUS, "" }, { BUS, nil },
      { BUS, '{"type":"MEVENT","data":{"kv":{"a":1}}}' }, { BUS, '{"data":{}}' },
      { "q/2/d/qdunknownDEV/bus_", report { brightness = 1 } },
      { "q/2/d/qdp11pLZ655001/nope_", report { brightness = 1 } }, { "weird", "{}" },
      { "q/2/d/qdp11pLZ655001/onl_", '{"data":{}}' }, { "q/2/d/qdp11pLZ655001/ack_", '{"msgId":1}' },
      { "q/1/u/qu_C1_17/sys_", '{"msg":"no code"}' },
    }
    for i, c in ipairs(cases) do
      local ev, why = d:decode(c[1], c[2])
      assert.is_nil(ev, "case " .. i)
      assert.is_string(why, "case " .. i)
    end
  end)

  it("never raises on random bytes", function()
    local d = decoder()
    math.randomseed(14)
    for _ = 1, 2000 do
      local n = math.random(0, 40)
      local b = {}
      for i = 1, n do b[i] = string.char(math.random(0, 255)) end
      local payload = table.concat(b)
      local ok = pcall(d.decode, d, BUS, payload)
      assert.is_true(ok)
      ok = pcall(d.decode, d, "q/1/u/x/sys_", '{"code":' .. payload .. "}")
      assert.is_true(ok)
    end
  end)

  it("forgets a removed device", function()
    local d = decoder()
    d:remove(PK, DK)
    assert.is_nil((d:decode(BUS, report { brightness = 1 })))
  end)
end)

describe("[14] realtime commands", function()
  it("writes WRITE-ATTR with kv as JSON text of native values", function()
    local text = assert(commands.write(PK, DK, { { brightness = 80 }, { switch = false } }, 1234))
    local c = assert(json.decode(text))
    assert.are.same({ msgId = 1234, productKey = PK, deviceKey = DK, type = "WRITE-ATTR",
                      kv = '[{"brightness":80,"switch":false}]', cacheTime = 0, isCache = false, isCover = false }, c)
    assert.are.same({ { brightness = 80, switch = false } }, json.decode(c.kv))
  end)

  it("writes READ-ATTR with the codes as JSON text", function()
    local c = assert(json.decode(assert(commands.read(PK, DK, { "switch", "brightness" }, 9))))
    assert.are.equal("READ-ATTR", c.type)
    assert.are.equal('["switch","brightness"]', c.kv)
    assert.are.equal(9, c.msgId)
  end)

  it("numbers commands with 16-bit ids that wrap, seeded once", function()
    local first = commands.next_id(1e12)
    assert.is_true(first >= 1 and first <= 65535)
    local last = first
    for _ = 1, 70000 do
      local id = commands.next_id(0)
      assert.is_true(id >= 1 and id <= 65535)
      assert.are.equal(last % 65535 + 1, id)
      last = id
    end
  end)
end)

describe("[14] realtime reconnect backoff", function()
  it("doubles from about 1 s to 30 s, with jitter between half and all of it", function()
    local lo = backoff.new { random = function() return 0 end }
    local hi = backoff.new { random = function() return 0.999999 end }
    local want = { 1, 2, 4, 8, 16, 30, 30, 30 }
    for n, d in ipairs(want) do
      assert.are.equal(d / 2, lo:delay(n))
      assert.is_true(math.abs(hi:delay(n) - d) < 1e-4, n)
    end
  end)

  it("starts again only after a connection that stayed up", function()
    local b = backoff.new { random = function() return 0 end }
    assert.are.equal(0.5, b:lost(nil))
    assert.are.equal(1, b:failed())
    assert.are.equal(2, b:lost(5))   -- up 5 s: the storm goes on at the growing pace
    assert.are.equal(0.5, b:lost(31)) -- up longer than `stable`: from the start
  end)

  it("draws its jitter from the C core's generator, in [0, 1)", function()
    local seen = {}
    for _ = 1, 200 do
      local f = backoff.fraction()
      assert.is_true(f >= 0 and f < 1)
      seen[math.floor(f * 10)] = true
    end
    local buckets = 0
    for _ in pairs(seen) do buckets = buckets + 1 end
    assert.is_true(buckets >= 8)
  end)
end)
