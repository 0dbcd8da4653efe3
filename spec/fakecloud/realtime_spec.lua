-- The fake cloud's realtime channel (issue 14): a real mosquitto behind a TLS
-- WebSocket listener that takes the fake's access tokens, and the fake's
-- devices publishing on it. Checked with an App-side client that owes nothing
-- to quecapi's MQTT code (python3 paho-mqtt, quecapi.fakecloud.testing's
-- probe), which verifies the broker's certificate against the fake's CA.
local json = require "quecapi.json"
local core = require "quecapi.core"
local fake = require "support.fake"
local ctl = require "quecapi.fakecloud.ctl"

local PK = "p11pLZ"

local function write_rest(token, dk, data)
  local status, res = fake.api { method = "POST", path = "/v2/binding/enduserapi/batchControlDevice", token = token,
                                 json = { type = 2, data = data, deviceList = { { productKey = PK, deviceKey = dk } } } }
  assert(status == 200 and res.code == 200, "batchControlDevice: " .. tostring(res and res.code))
  return res.data
end

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

local function command(dk, fields)
  local c = { msgId = 1, productKey = PK, deviceKey = dk, cacheTime = 0, isCache = false, isCover = false }
  for k, v in pairs(fields) do c[k] = v end
  return c
end

describe("[14] the fake cloud's realtime channel", function()
  local probes

  -- A probe that must connect: the probe (closed after the spec).
  local function connected(opts)
    local p, ack = fake.probe(opts)
    assert(p, ack)
    probes[#probes + 1] = p
    assert.are.equal(0, ack.rc, "CONNACK " .. tostring(ack.rc))
    return p
  end

  -- What a connect with these options gets: the CONNACK's rc, or nil when none came.
  local function connack(opts)
    local p, ack = fake.probe(opts)
    if p then
      probes[#probes + 1] = p
      return ack.rc
    end
    return nil
  end

  -- A user with devices dev1 (online) and dev2 (offline): uid, token, login data.
  local function user(phone)
    return fake.session_user(phone, "pass1234", {
      { productKey = PK, deviceKey = "dev1", online = true, values = { brightness = 10, switch = false } },
      { productKey = PK, deviceKey = "dev2", online = false },
    })
  end

  before_each(function()
    probes = {}
    fake.reset()
  end)

  -- Every probe closed and gone from the broker's counts, so that the next
  -- spec counts from a still broker.
  after_each(function()
    fake.thaw()
    local ids = {}
    for _, p in ipairs(probes) do
      p:close()
      ids[p.client_id] = true
    end
    local _, gone = fake.broker_until(function(b)
      for _, id in ipairs(b.clients) do
        if ids[id] then return false end
      end
      return true
    end)
    assert(gone, "probes still connected")
  end)

  it("is described by the env file and GET /_fake/broker", function()
    local port = assert(fake.mqtt_url and fake.mqtt_url:match("^wss://localhost:(%d+)/ws/v2$"), fake.mqtt_url)
    assert.is_true(tonumber(port) > 0)
    local env = assert(ctl.read_env(fake.dir))
    assert.are.equal(fake.mqtt_url, env.FAKECLOUD_MQTT_URL)
    local b = fake.broker()
    assert.are.equal(fake.mqtt_url, b.url)
    assert.are.equal("running", b.broker)
    assert.is_number(b.connected)
    assert.is_table(b.clients)
  end)

  it("takes a valid token over TLS verified against the fake's CA, for localhost and 127.0.0.1", function()
    local uid, token = user("13800140001")
    local before = fake.broker()
    local id = "qu_" .. uid .. "_" .. string.format("%.0f", core.now_ms())
    local p = connected { token = token, client_id = id }
    local sub = assert(p:subscribe({ fake.topic(PK, "dev1", "bus_"), fake.topic(PK, "dev1", "ack_"),
                                     fake.topic(PK, "dev1", "onl_") }))
    assert.are.same({ 0, 0, 0 }, sub.granted)
    local b = fake.broker()
    assert.is_true(contains(b.clients, id))
    assert.are.equal(before.connects + 1, b.connects)
    -- the certificate names 127.0.0.1 too
    connected { token = token, url = fake.mqtt_url:gsub("localhost", "127.0.0.1") }
    -- and no other CA's clients trust it
    assert.is_nil(connack { token = token, ca = fake.dir .. "/unknownca.pem" })
  end)

  it("refuses expired, revoked, refreshed-away and unknown tokens, and any user name", function()
    local uid, token, data = user("13800140002")
    local before = fake.broker().refused
    -- a user name, even with a good token: Apps send an empty one
    assert.are.equal(5, connack { token = token, username = "user" })
    assert.are.equal(5, connack { token = "Bearer not.a.token" })
    assert.are.equal(5, connack { token = token:gsub("^Bearer ", "") })
    -- a client connected before its token runs out stays (the token is checked at connect)
    local early = connected { token = token }
    assert(early:subscribe(fake.topic(PK, "dev1", "bus_")))
    fake.expire { uid = uid, access_only = true }
    assert.are.equal(5, connack { token = token })
    fake.report(PK, "dev1", { values = { brightness = 11 } })
    assert(early:wait_messages(1, fake.topic(PK, "dev1", "bus_")))
    -- a refresh makes a new pair; the old one is refused, the new one taken
    local status, res = fake.api { method = "PUT", path = "/v2/enduser/enduserapi/refreshToken", token = token,
                                   query = { refreshToken = data.refreshToken.token } }
    assert(status == 200 and res.code == 200, "refreshToken: " .. tostring(res and res.code))
    local fresh = res.data.accessToken.token
    assert.are.equal(0, connack { token = fresh })
    -- logout revokes it
    status, res = fake.api { method = "DELETE", path = "/v2/enduser/enduserapi/userLogout", token = fresh }
    assert(status == 200 and res.code == 200, "userLogout: " .. tostring(res and res.code))
    assert.are.equal(5, connack { token = fresh })
    -- a clock running ahead past the token's life
    local _, later = fake.session_user("13800140012", "pass1234")
    fake.configure { clock_offset = 7300 }
    assert.are.equal(5, connack { token = later })
    fake.configure { clock_offset = 0 }
    assert.are.equal(0, connack { token = later })
    assert.are.equal(before + 6, fake.broker().refused)
  end)

  it("reports property changes made through batchControlDevice and /_fake/device on bus_", function()
    local _, token = user("13800140003")
    local p = connected { token = token }
    local bus = fake.topic(PK, "dev1", "bus_")
    assert(p:subscribe(bus))
    local t0 = core.now_ms()
    write_rest(token, "dev1", '[{"brightness":55},{"switch":true}]')
    local m = assert(p:wait_messages(1, bus))[1].data
    assert.are.equal(PK, m.productKey)
    assert.are.equal("dev1", m.deviceKey)
    assert.are.equal("MATTR", m.type)
    assert.are.equal("REPORT", m.subtype)
    assert.is_true(m.createdAt >= t0 - 1000 and m.createdAt <= core.now_ms() + 1000)
    assert.is_string(m.ticket)
    assert.is_number(m.data.packetId)
    assert.are.same({ brightness = 55, switch = true }, m.data.kv)
    -- a device's own report: partial, then with numbers as strings
    fake.report(PK, "dev1", { values = { brightness = 30 } })
    fake.report(PK, "dev1", { values = { brightness = 31, temperature = 21.5, mode = 2 }, as_strings = true })
    fake.report(PK, "dev1", { values = { color = { r = 1, g = 2, b = 3 }, schedule = { 60, 120 } } })
    local list = assert(p:wait_messages(4, bus))
    assert.are.same({ brightness = 30 }, list[2].data.data.kv)
    assert.are.same({ brightness = "31", temperature = "21.5", mode = "2" }, list[3].data.data.kv)
    assert.are.same({ color = { r = 1, g = 2, b = 3 }, schedule = { 60, 120 } }, list[4].data.data.kv)
    assert.are.equal(m.data.packetId + 3, list[4].data.data.packetId)
    -- what the device holds follows
    assert.are.equal(31, fake.device(PK, "dev1").values.brightness)
  end)

  it("applies a WRITE-ATTR, reports it on bus_ and acknowledges it on ack_; a bad one only fails", function()
    local uid, token = user("13800140004")
    local id = "qu_" .. uid .. "_1"
    local p = connected { token = token, client_id = id }
    local bus, ack = fake.topic(PK, "dev1", "bus_"), fake.topic(PK, "dev1", "ack_")
    assert(p:subscribe { bus, ack })
    local sys = fake.topic(PK, "dev1", "sys_")
    assert.are.equal("q/1/d/qdp11pLZdev1/sys_", sys)
    assert(p:publish(sys, command("dev1", { msgId = 4242, type = "WRITE-ATTR",
                                            kv = '[{"switch":true,"brightness":80}]' }), 1))
    local list = assert(p:wait_messages(2))
    assert.are.equal(bus, list[1].topic)  -- the report first, then the ack
    assert.are.same({ switch = true, brightness = 80 }, list[1].data.data.kv)
    assert.are.equal(ack, list[2].topic)
    local a = list[2].data
    assert.are.equal(4242, a.msgId)
    assert.are.equal("succ", a.status)
    assert.are.equal(PK, a.productKey)
    assert.are.equal("dev1", a.deviceKey)
    assert.is_string(a.ticket)
    local device = fake.device(PK, "dev1")
    assert.are.equal(80, device.values.brightness)
    assert.is_true(device.values.switch)
    local w = device.writes[#device.writes]
    assert.are.equal("mqtt", w.via)
    assert.are.equal(4242, w.msgId)
    assert.are.equal(id, w.clientId)
    -- refused by the thing model: a number as a string, a read-only property,
    -- an unknown one, kv as JSON instead of a JSON text, a msgId out of range
    local bad = {
      { msgId = 1, kv = '[{"brightness":"70"}]' },
      { msgId = 2, kv = '[{"temperature":20}]' },
      { msgId = 3, kv = '[{"nosuch":1}]' },
      { msgId = 4, kv = { { brightness = 70 } } },
      { msgId = 70000, kv = '[{"brightness":70}]' },
      { msgId = 6, kv = '[{"brightness":101}]' },
    }
    for _, b in ipairs(bad) do
      assert(p:publish(sys, command("dev1", { msgId = b.msgId, type = "WRITE-ATTR", kv = b.kv }), 1))
    end
    list = assert(p:wait_messages(2 + #bad))
    for i, b in ipairs(bad) do
      local m = list[2 + i]
      assert.are.equal(ack, m.topic, "no report for a refused write")
      assert.are.equal(b.msgId, m.data.msgId)
      assert.are.equal("fail", m.data.status)
    end
    assert.are.equal(80, fake.device(PK, "dev1").values.brightness)
    local commands = fake.broker().commands
    assert.are.equal(1 + #bad, #commands)
    assert.are.equal("succ", commands[1].outcome)
    assert.are.equal("fail", commands[2].outcome)
    assert.are.equal(uid, commands[1].uid)
  end)

  it("answers a READ-ATTR with a report of the values asked for, then an ack", function()
    local _, token = user("13800140005")
    local p = connected { token = token }
    assert(p:subscribe { fake.topic(PK, "dev1", "bus_"), fake.topic(PK, "dev1", "ack_") })
    local sys = fake.topic(PK, "dev1", "sys_")
    assert(p:publish(sys, command("dev1", { msgId = 9, type = "READ-ATTR", kv = '["switch","brightness"]' }), 1))
    local list = assert(p:wait_messages(2))
    assert.are.same({ switch = false, brightness = 10 }, list[1].data.data.kv)
    assert.are.same({ 9, "succ" }, { list[2].data.msgId, list[2].data.status })
    -- every property for an empty list; an unknown code fails
    assert(p:publish(sys, command("dev1", { msgId = 10, type = "READ-ATTR", kv = "[]" }), 1))
    assert(p:publish(sys, command("dev1", { msgId = 11, type = "READ-ATTR", kv = '["nosuch"]' }), 1))
    list = assert(p:wait_messages(5))
    local kv = list[3].data.data.kv
    for _, code in ipairs { "switch", "brightness", "temperature", "energy", "mode", "label", "updated", "color",
                            "schedule" } do
      assert.is_not_nil(kv[code], code)
    end
    assert.are.same({ 10, "succ" }, { list[4].data.msgId, list[4].data.status })
    assert.are.same({ 11, "fail" }, { list[5].data.msgId, list[5].data.status })
  end)

  it("sends errors to the one client concerned, without a subscription: 4021, 4007, and any on demand", function()
    local uid, token = user("13800140006")
    fake.user("13800140016", "pass1234", { { productKey = PK, deviceKey = "other", online = true } })
    local id = "qu_" .. uid .. "_2"
    local p = connected { token = token, client_id = id }
    local bystander = connected { token = token }
    assert(bystander:subscribe("q/1/u/+/sys_"))
    local mine = "q/1/u/" .. id .. "/sys_"
    -- a command to an offline device
    assert(p:publish(fake.topic(PK, "dev2", "sys_"),
      command("dev2", { msgId = 21, type = "WRITE-ATTR", kv = '[{"switch":true}]' }), 1))
    local e = assert(p:wait_messages(1, mine))[1].data
    assert.are.equal(4021, e.code)
    assert.are.equal("dev2", e.deviceKey)
    assert.are.equal(21, e.msgId)
    assert.is_false(fake.device(PK, "dev2").values.switch)
    -- a device bound to someone else
    assert(p:publish(fake.topic(PK, "other", "sys_"),
      command("other", { msgId = 22, type = "READ-ATTR", kv = '["switch"]' }), 1))
    e = assert(p:wait_messages(2, mine))[2].data
    assert.are.equal(4007, e.code)
    assert.are.equal("BUSI-ERROR", e.type)
    assert.are.equal("other", e.deviceKey)
    assert.matches("not bound$", e.msg)
    -- on demand
    assert.is_true(fake.broker_error { clientId = id, code = 4026, msg = "quota used up" }.connected)
    e = assert(p:wait_messages(3, mine))[3].data
    assert.are.same({ 4026, "quota used up" }, { e.code, e.msg })
    -- nobody else saw any of them, subscribed or not
    assert.are.equal(0, #bystander:messages())
    assert.is_false(fake.broker_error { clientId = "nobody", code = 4021 }.connected)
    local outcomes = {}
    for _, c in ipairs(fake.broker().commands) do outcomes[#outcomes + 1] = c.outcome end
    assert.are.same({ 4021, 4007 }, outcomes)
  end)

  it("publishes online and offline on onl_", function()
    local _, token = user("13800140007")
    local p = connected { token = token }
    local onl = fake.topic(PK, "dev2", "onl_")
    assert(p:subscribe(onl))
    fake.report(PK, "dev2", { online = true })
    fake.report(PK, "dev2", { online = false })
    fake.report(PK, "dev2", { online = 2 })
    local list = assert(p:wait_messages(3, onl))
    for i, value in ipairs { 1, 0, 2 } do
      assert.are.equal("ONLINE", list[i].data.type)
      assert.are.equal(value, list[i].data.data.value)
    end
    assert.is_true(fake.device(PK, "dev2").online)
  end)

  it("delivers a burst of 1,000 reports complete and in order within a few seconds", function()
    local _, token = user("13800140008")
    local p = connected { token = token }
    local bus = fake.topic(PK, "dev1", "bus_")
    assert(p:subscribe(bus))
    local t0 = core.monotonic()
    local answer = fake.burst(PK, "dev1", { count = 1000 })
    assert.are.equal(1000, answer.count)
    local list, err = p:wait_messages(1000, bus, 10)
    assert(list, err)
    local elapsed = core.monotonic() - t0
    assert.are.equal(1000, #list)
    local first = list[1].data.data.packetId
    for i, m in ipairs(list) do
      assert.are.equal(i, m.data.data.kv.brightness)
      assert.are.equal((first + i - 2) % 65535 + 1, m.data.data.packetId)
    end
    assert.is_true(elapsed < 5, string.format("1,000 reports took %.2f s", elapsed))
    -- as strings, on request
    fake.burst(PK, "dev1", { count = 3, code = "mode", as_strings = true })
    list = assert(p:wait_messages(1003, bus))
    assert.are.same({ mode = "3" }, list[1003].data.data.kv)
  end)

  it("counts connections: connects, disconnects and the client ids connected", function()
    local uid, token = user("13800140009")
    local before = fake.broker()
    local ids = {}
    for i = 1, 3 do
      ids[i] = "qu_" .. uid .. "_count" .. i
      connected { token = token, client_id = ids[i] }
    end
    local b = fake.broker()
    for _, id in ipairs(ids) do assert.is_true(contains(b.clients, id), id) end
    assert.are.equal(before.connected + 3, b.connected)
    assert.are.equal(#b.clients, b.connected)
    assert.are.equal(before.connects + 3, b.connects)
    probes[1]:close()
    local ok
    b, ok = fake.broker_until(function(x) return not contains(x.clients, ids[1]) end)
    assert.is_true(ok)
    assert.are.equal(before.connected + 2, b.connected)
    assert.are.equal(before.disconnects + 1, b.disconnects)
    -- a second client with the same id takes over: still one
    connected { token = token, client_id = ids[2] }
    b = fake.broker_until(function(x) return x.disconnects == before.disconnects + 2 end)
    local n = 0
    for _, id in ipairs(b.clients) do if id == ids[2] then n = n + 1 end end
    assert.are.equal(1, n)
    assert.truthy(probes[2]:wait("disconnect"))
  end)

  it("keeps Apps to commands: no spoofed reports, no view of the fake's own topics", function()
    local _, token = user("13800140010")
    local listener = connected { token = token }
    assert(listener:subscribe("#"))
    local p = connected { token = token }
    -- an App publishing a report is not the device
    p:publish(fake.topic(PK, "dev1", "bus_"), '{"data":{"kv":{"brightness":99}}}', 1)
    assert(p:publish(fake.topic(PK, "dev1", "sys_"), command("dev1", { type = "READ-ATTR", kv = '["switch"]' }), 1))
    local list = assert(listener:wait_messages(3))
    for _, m in ipairs(list) do
      assert.is_nil(m.topic:match("^fakecloud/"), m.topic)
      assert.is_nil(m.payload:match('"brightness":99'), m.payload)
    end
    assert.are.equal(10, fake.device(PK, "dev1").values.brightness)
  end)

  it("drops every App on request while the broker stays up", function()
    local _, token = user("13800140011")
    local a, b = connected { token = token }, connected { token = token }
    local dropped = fake.drop()
    assert.is_true(dropped.dropped >= 2)
    assert.are.equal(0, dropped.connected)
    assert.truthy(a:wait("disconnect"))
    assert.truthy(b:wait("disconnect"))
    assert.are.equal(0, fake.broker().connected)
    assert.are.equal("running", fake.broker().broker)
    local c = connected { token = token }
    assert(c:subscribe(fake.topic(PK, "dev1", "bus_")))
    fake.report(PK, "dev1", { values = { brightness = 12 } })
    assert(c:wait_messages(1))
  end)

  it("restarts the broker on the same port; the device side comes back with it", function()
    local _, token = user("13800140013")
    local p = connected { token = token }
    local before = fake.broker()
    local answer = fake.restart_broker()
    assert.is_number(answer.start_ms)
    assert.truthy(p:wait("disconnect"))
    local b = fake.broker()
    assert.are.equal(before.restarts + 1, b.restarts)
    assert.are.equal(before.url, b.url)
    assert.are.equal("running", b.broker)
    assert.are.equal(0, b.connected)
    local c = connected { token = token }
    assert(c:subscribe { fake.topic(PK, "dev1", "bus_"), fake.topic(PK, "dev1", "ack_") })
    assert.are.equal(before.connects + 1, fake.broker().connects)  -- counts go on across restarts
    -- commands reach the fake again, reports come back
    assert(c:publish(fake.topic(PK, "dev1", "sys_"),
      command("dev1", { msgId = 5, type = "WRITE-ATTR", kv = '[{"brightness":66}]' }), 1))
    local list = assert(c:wait_messages(2))
    assert.are.same({ brightness = 66 }, list[1].data.data.kv)
    assert.are.equal("succ", list[2].data.status)
  end)

  it("freezes the broker so that it answers nothing, then thaws it", function()
    local _, token = user("13800140014")
    local p = connected { token = token, keepalive = 1 }
    local bus = fake.topic(PK, "dev1", "bus_")
    assert(p:subscribe(bus))
    assert.are.same({ frozen = true }, fake.freeze())
    assert.are.equal("frozen", fake.broker().broker)
    fake.report(PK, "dev1", { values = { brightness = 13 } })
    -- no CONNACK for a newcomer, keepalive pings unanswered: the client gives up
    assert.is_nil(connack { token = token, keepalive = 1, timeout = 3 })
    assert.truthy(p:wait("disconnect", 5))
    assert.are.equal(0, #p:messages(bus))
    fake.thaw()
    assert.are.equal("running", fake.broker().broker)
    local c = connected { token = token }
    assert(c:subscribe(bus))
    fake.report(PK, "dev1", { values = { brightness = 14 } })
    local list = assert(c:wait_messages(1, bus))
    assert.are.same({ brightness = 14 }, list[1].data.data.kv)
    -- for some seconds only
    fake.freeze(0.5)
    assert.are.equal("frozen", fake.broker().broker)
    local _, ok = fake.broker_until(function(x) return x.broker == "running" end, 3)
    assert.is_true(ok)
  end)
end)

describe("[14] a fake cloud's broker, started and stopped with it", function()
  local function pid_alive(path)
    local f = io.open(path, "rb")
    local pid = f and tonumber(f:read("*a"):match("%d+"))
    if f then f:close() end
    return ctl.alive(pid), pid
  end

  it("starts mosquitto and the device side, writes FAKECLOUD_MQTT_URL, and leaves nothing behind", function()
    local dir = os.tmpname()
    os.remove(dir)
    dir = dir .. " broker"  -- a space in the path
    local env = assert(ctl.start { dir = dir })
    local ok, err = pcall(function()
      assert.matches("^wss://localhost:%d+/ws/v2$", env.FAKECLOUD_MQTT_URL)
      assert.are.equal(env.FAKECLOUD_MQTT_URL, ctl.read_env(dir).FAKECLOUD_MQTT_URL)
      assert.matches("FAKECLOUD_MQTT_URL", ctl.exports(env), 1, true)
      assert.is_true((pid_alive(dir .. "/mosquitto.pid")))
      assert.is_true((pid_alive(dir .. "/device.pid")))
    end)
    local _, broker = pid_alive(dir .. "/mosquitto.pid")
    local _, device = pid_alive(dir .. "/device.pid")
    ctl.stop(dir)
    assert(ok, err)
    assert.is_nil(ctl.status(dir))
    assert.is_false(ctl.alive(broker))
    assert.is_false(ctl.alive(device))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("starts without it when FAKECLOUD_BROKER=off", function()
    local dir = os.tmpname()
    os.remove(dir)
    local env = assert(ctl.start { dir = dir, getenv = function(k)
      if k == "FAKECLOUD_BROKER" then return "off" end
      return os.getenv(k)
    end })
    local ok, err = pcall(function()
      assert.is_nil(env.FAKECLOUD_MQTT_URL)
      assert.is_nil(ctl.read_env(dir).FAKECLOUD_MQTT_URL)
      local session = assert(core.session { ca_file = env.FAKECLOUD_CA })
      local status, body = session:request { method = "GET", url = env.FAKECLOUD_URL .. "/_fake/broker" }
      assert.are.equal(503, status)
      assert.matches("without its broker", json.decode(body).error, 1, true)
    end)
    ctl.stop(dir)
    assert(ok, err)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
