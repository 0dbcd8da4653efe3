-- The realtime channel end to end: quecapi's C core (Paho) and Lua against the
-- fake cloud's mosquitto over TLS WebSocket, its device side and its REST API.
local fake = require "support.fake"
local core = require "quecapi.core"
local json = require "quecapi.json"

assert(fake.mqtt_url, "the fake cloud runs without its broker (no FAKECLOUD_MQTT_URL)")

local PK = "p11pLZ"
local PASSWORD = "realtime-Pass-1"

-- Wait until `check()` is true (polling every 50 ms) for at most `seconds`.
local function wait(check, seconds)
  local deadline = core.monotonic() + (seconds or 5)
  repeat
    if check() then return true end
    core.sleep(0.05)
  until core.monotonic() > deadline
  return check()
end
local phone_n = 0

local lines, client, channels, tokens_seen

local function remember_tokens()
  local t = client:get_tokens()
  if t then
    tokens_seen[#tokens_seen + 1] = t.access_token
    tokens_seen[#tokens_seen + 1] = t.refresh_token
  end
end

-- A fresh user with `n` devices (D0001...) and a client logged in as that user.
local function user(n, overrides)
  phone_n = phone_n + 1
  local phone = string.format("1330014%04d", phone_n)
  local uid = fake.user(phone, PASSWORD, n or 2)
  local cfg = { account = { phone = phone, password = PASSWORD }, ca_file = fake.ca,
                log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end }
  for k, v in pairs(overrides or {}) do cfg[k] = v end
  client = fake.client(cfg)
  assert(client:login())
  remember_tokens()
  return uid
end

local function devices(n)
  local list = {}
  for i = 1, n do list[i] = { productKey = PK, deviceKey = string.format("D%04d", i) } end
  return list
end

local function open(opts)
  local o = { devices = devices(2), url = fake.mqtt_url }
  for k, v in pairs(opts or {}) do o[k] = v end
  local rt, err, code, kind = client:realtime(o)
  if rt then channels[#channels + 1] = rt end
  remember_tokens()
  return rt, err, code, kind
end

-- The next event of a type (others before it are skipped), within `seconds`.
local function expect(rt, kind, seconds, check)
  local deadline = core.monotonic() + (seconds or 5)
  while true do
    local left = deadline - core.monotonic()
    assert(left > 0, "no " .. kind .. " event in time")
    local ev, err = rt:receive(left)
    assert(ev or err == "timeout", tostring(err))
    if ev and ev.type == kind and (not check or check(ev)) then return ev end
  end
end

local function logged(pattern)
  for _, l in ipairs(lines) do
    if l:find(pattern) then return l end
  end
end

before_each(function()
  fake.reset()
  lines, channels, tokens_seen = {}, {}, {}
end)

after_each(function()
  for _, rt in ipairs(channels) do rt:close() end
  fake.thaw()
  for _, l in ipairs(lines) do
    for _, t in ipairs(tokens_seen) do
      assert(not l:find(t, 1, true), "a log line shows a token: " .. l)
      assert(not l:find(t:gsub("^Bearer ", ""), 1, true), "a log line shows a token: " .. l)
    end
  end
end)

describe("[14] realtime against the fake cloud's broker", function()
  it("connects as qu_<uid>_<ms> and subscribes every device", function()
    local uid = user(2)
    local rt = assert(open())
    assert.is_true(rt:connected())
    local b = fake.broker()
    assert.are.equal(1, b.connected)
    local ms = tonumber(b.clients[1]:match("^qu_" .. uid .. "_(%d+)$"))
    assert.is_true(ms and math.abs(ms - core.now_ms()) < 60000, b.clients[1])
    -- subscribed: a report of the second device arrives
    fake.report(PK, "D0002", { values = { brightness = 9 } })
    local ev = expect(rt, "property")
    assert.are.same({ PK, "D0002", 9 }, { ev.productKey, ev.deviceKey, ev.values.brightness })
    assert.are.equal("q/2/d/qdp11pLZD0002/bus_", ev.topic)
  end)

  it("types reports by the thing model: numbers sent as strings arrive as numbers, partial reports too", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    fake.report(PK, "D0001", { as_strings = true, values = { brightness = 55, switch = true, temperature = 21.5 } })
    local ev = expect(rt, "property")
    assert.are.same({ brightness = 55, switch = true, temperature = 21.5 }, ev.values)
    if math.type then assert.are.equal("integer", math.type(ev.values.brightness)) end
    assert.is_number(ev.at)
    assert.are.equal("table", type(ev.raw))
    fake.report(PK, "D0001", { values = { mode = 2 } })
    ev = expect(rt, "property")
    assert.are.same({ mode = 2 }, ev.values)
  end)

  it("hands out online changes", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    fake.report(PK, "D0001", { online = false })
    local ev = expect(rt, "online")
    assert.are.same({ false, 0, "D0001" }, { ev.online, ev.value, ev.deviceKey })
    fake.report(PK, "D0001", { online = 2 })
    ev = expect(rt, "online")
    assert.are.same({ true, 2 }, { ev.online, ev.value })
  end)

  it("writes over the channel: the device reports and acknowledges", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    fake.report(PK, "D0001", { online = true })
    local id = assert(rt:write(PK, "D0001", { switch = true, brightness = 12 }))
    local report = expect(rt, "property")
    assert.are.same({ switch = true, brightness = 12 }, report.values)
    local ack = expect(rt, "ack")
    assert.are.same({ id, "succ", true, "D0001" }, { ack.msgId, ack.status, ack.ok, ack.deviceKey })
    assert.are.equal(12, fake.device(PK, "D0001").values.brightness)
    -- READ-ATTR: the values come as a report, then the ack
    local rid = assert(rt:read(PK, "D0001", { "brightness" }))
    assert.are.same({ brightness = 12 }, expect(rt, "property").values)
    assert.are.equal(rid, expect(rt, "ack").msgId)
  end)

  it("sends nothing when the thing model refuses a write", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    fake.report(PK, "D0001", { online = true })
    local before = #fake.broker().commands
    local id, err, _, kind = rt:write(PK, "D0001", { brightness = 101 })
    assert.is_nil(id)
    assert.are.equal("usage", kind)
    assert.matches("above the maximum 100", err)
    assert.are.equal(nil, (rt:write(PK, "D0001", { temperature = 3 }))) -- read-only
    -- a good command after them is the only one the broker saw
    assert(rt:write(PK, "D0001", { brightness = 1 }))
    expect(rt, "ack")
    local commands = fake.broker().commands
    assert.are.equal(before + 1, #commands)
  end)

  it("hands out the platform's per-client errors: 4021 for an offline device", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    fake.report(PK, "D0001", { online = false })
    assert(rt:write(PK, "D0001", { switch = true }))
    local ev = expect(rt, "error")
    assert.are.equal(4021, ev.code)
    assert.matches("^q/1/u/qu_.*/sys_$", ev.topic)
    -- and one the fake sends on request
    fake.broker_error { clientId = fake.broker().clients[1], code = 4026, msg = "quota" }
    ev = expect(rt, "error", 5, function(e) return e.code == 4026 end)
    assert.are.equal("quota", ev.msg)
  end)

  it("renews a token the broker refuses and connects with the new one", function()
    local uid = user(1)
    -- the thing model first: fetched with the expired token, it would renew it
    -- over REST before the broker could refuse it
    assert(client:thing_model(PK))
    local stale = client:get_tokens().access_token
    fake.expire { uid = uid, access_only = true }
    local refused = fake.broker().refused
    local rt = assert(open { devices = devices(1) })
    remember_tokens()
    assert.are.equal(refused + 1, fake.broker().refused)
    assert.are_not.equal(stale, client:get_tokens().access_token)
    assert.truthy(logged("refused the access token"))
    fake.report(PK, "D0001", { values = { brightness = 3 } })
    assert.are.equal(3, expect(rt, "property").values.brightness)
  end)

  it("reconnects after a dropped connection and reads the values it missed", function()
    user(2)
    local rt = assert(open())
    local before = fake.broker().clients[1]
    fake.drop()
    -- reported while the App was away: lost on the channel, read back over REST
    fake.report(PK, "D0001", { values = { brightness = 33 } })
    local ev = expect(rt, "reconnected", 10, function(e) return e.deviceKey == "D0001" end)
    assert.are.equal(33, ev.values.brightness)
    local other = expect(rt, "reconnected", 5)
    assert.are.equal("D0002", other.deviceKey)
    local after = fake.broker().clients
    assert.are.equal(1, #after)
    assert.are_not.equal(before, after[1])
    -- subscribed again
    fake.report(PK, "D0002", { values = { brightness = 4 } })
    assert.are.equal(4, expect(rt, "property").values.brightness)
  end)

  it("reconnects after a broker restart", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    fake.restart_broker()
    fake.report(PK, "D0001", { values = { mode = 1 } })
    local ev = expect(rt, "reconnected", 15)
    assert.are.equal(1, ev.values.mode)
    assert.are.equal(1, fake.broker().connected)
  end)

  it("reconnects when the broker goes silent (watchdog)", function()
    user(1)
    local rt = assert(open { devices = devices(1), watchdog = 1.5, connect_timeout = 2 })
    fake.freeze(2.5)
    local t = core.monotonic()
    local ev = expect(rt, "reconnected", 20)
    assert.are.equal("D0001", ev.deviceKey)
    assert.is_true(core.monotonic() - t >= 1.5)
    assert.truthy(logged("watchdog"))
  end)

  it("ends cleanly when closed in the middle of a reconnect", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    local connects = fake.broker().connects
    fake.drop()
    assert.are.same({ nil, "timeout" }, { rt:receive(0.2) })
    assert.is_false(rt:connected())
    rt:close()
    assert.are.same({ nil, "closed" }, { rt:receive(0.5) })
    core.sleep(1.5)
    local b = fake.broker()
    assert.are.equal(0, b.connected)
    assert.are.equal(connects, b.connects)
  end)

  it("hands out 1,000 reports of a burst, all, in order", function()
    user(1)
    local rt = assert(open { devices = devices(1) })
    local t = core.monotonic()
    fake.burst(PK, "D0001", { count = 1000, code = "brightness" })
    for i = 1, 1000 do
      local ev = expect(rt, "property", 10)
      assert.are.equal(i, ev.values.brightness)
    end
    assert.is_true(core.monotonic() - t < 10)
    assert.are.same({ nil, "timeout" }, { rt:receive(0.2) })
  end)

  it("drops a message larger than max_message with a log line and goes on", function()
    user(1)
    local rt = assert(open { devices = devices(1), max_message = 120 })
    fake.report(PK, "D0001", { values = { label = string.rep("x", 32) } })
    fake.report(PK, "D0001", { online = true })
    local ev = expect(rt, "online")
    assert.is_true(ev.online)
    assert.truthy(logged("larger than max_message"))
  end)

  it("honours verify = false with the usual warning", function()
    user(1)
    -- no CA given: only verify = false lets it trust the fake's certificate
    client = assert(require("quecapi").new { base_url = fake.url, user_domain = fake.user_domain,
      user_domain_secret = fake.secret, verify = false, account = client.account,
      log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end })
    local rt = assert(open { devices = devices(1) })
    assert.is_true(rt:connected())
    assert.truthy(logged("verification is disabled"))
  end)

  it("trusts the client's ca_file by default, and refuses a broker it cannot verify", function()
    user(1)
    assert(open { devices = devices(1) }):close()
    local unknown = fake.dir .. "/unknownca.pem"
    local rt, err, _, kind = open { devices = devices(1), ca_file = unknown }
    assert.is_nil(rt)
    assert.are.equal("tls", kind)
    assert.matches("certificate verify failed", err)
  end)
end)

describe("[14] realtime: the C core's connection", function()
  local token, uid

  before_each(function()
    uid, token = fake.session_user("13300149999", PASSWORD, 1)
  end)

  local function connect(o)
    local opts = { url = fake.mqtt_url, client_id = "qu_" .. uid .. "_" .. core.now_ms(), username = "",
                   password = token, ca_file = fake.ca, keepalive = 40, timeout = 5 }
    for k, v in pairs(o or {}) do opts[k] = v end
    return core.mqtt(opts)
  end

  local function threads()
    local f = assert(io.open("/proc/self/status"))
    local n = tonumber(f:read("*a"):match("Threads:%s*(%d+)"))
    f:close()
    return n
  end

  it("runs no thread of its own and keeps a quiet session up while the caller sits in receive", function()
    local before = threads()
    local conn = assert(connect { keepalive = 2 })
    assert(conn:subscribe({ "q/2/d/qdp11pLZD0001/bus_" }, 0))
    assert.are.equal(before, threads())
    -- the broker closes a session 1.5 keepalives after the last packet it got:
    -- only the PINGREQs sent from inside this receive keep it up
    local t = core.monotonic()
    assert.are.same({ nil, "timeout", "timeout" }, { conn:receive(7) })
    assert.is_true(core.monotonic() - t >= 6.9)
    assert.are.equal(before, threads())
    assert.is_true(conn:connected())
    fake.report(PK, "D0001", { values = { brightness = 8 } })
    local topic, payload = conn:receive(5)
    assert.are.equal("q/2/d/qdp11pLZD0001/bus_", topic)
    assert.are.equal(8, json.decode(payload).data.kv.brightness)
    local disconnects = fake.broker().disconnects
    conn:close()
    assert.is_true(wait(function() return fake.broker().disconnects == disconnects + 1 end))
    assert.are.equal(0, fake.broker().connected)
  end)

  it("reports a refused CONNECT as auth with the CONNACK code", function()
    local conn, err, kind, connack = connect { password = "Bearer not.a.token" }
    assert.is_nil(conn)
    assert.are.same({ "auth", 5 }, { kind, connack })
    assert.matches("not authorized", err)
    assert.is_nil(err:find("not.a.token", 1, true))
  end)

  it("reports an unreachable broker as connect, and a closed connection as closed", function()
    local port = tonumber(fake.mqtt_url:match(":(%d+)/"))
    local conn, _, kind = connect { url = "wss://localhost:" .. (port + 7) .. "/ws/v2" }
    assert.is_nil(conn)
    assert.are.equal("connect", kind)
    conn = assert(connect())
    conn:close()
    assert.are.same({ nil, "the connection is closed", "closed" }, { conn:receive(0) })
    assert.are.equal("closed", select(3, conn:publish("t", "x", 1)))
    assert.is_false(conn:connected())
  end)
end)
