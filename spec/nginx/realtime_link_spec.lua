-- client:realtime inside a real nginx: the channel of the plain-Lua version over
-- the cosocket link (quecapi.realtime.ngx_link), in a timer and in a content
-- handler, against the fake cloud's mosquitto over TLS WebSocket.
local fake = require "support.fake"
local nginx = require "support.nginx"
local core = require "quecapi.core"
local json = require "quecapi.json"

assert(fake.mqtt_url, "the fake cloud runs without its broker (no FAKECLOUD_MQTT_URL)")

local PK = "p11pLZ"
local PASSWORD = "rt-nginx-Pass-1"

local MAIN = [[
env FAKECLOUD_URL;
env FAKECLOUD_CA;
env FAKECLOUD_MQTT_URL;
env SPEC_PHONE=13300150000;
env SPEC_PASSWORD=unused;
]]

local HTTP = [[
lua_shared_dict rt 8m;
lua_shared_dict tokens 1m;
lua_socket_log_errors off;
init_worker_by_lua_block {
    -- no cosockets here, and Paho would block the worker: refused at once
    if ngx.worker.id() ~= 0 then return end
    local c = require("support.realtime_nginx").client()
    local rt, err, code, kind = c:realtime { devices = {}, url = os.getenv("FAKECLOUD_MQTT_URL") }
    ngx.shared.rt:set("init_worker", require("quecapi.json").encode { ok = rt ~= nil, err = err, kind = kind })
}
]]

local SERVER = [[
location = /ping { content_by_lua_block { ngx.say("pong") } }

location = /rt/start {
    content_by_lua_block {
        local h = require "support.realtime_nginx"
        ngx.req.read_body()
        local body = require("quecapi.json").decode(ngx.req.get_body_data())
        h.start(ngx.var.arg_name, require("quecapi.json").encode(body.opts), body.client)
        h.reply { ok = true }
    }
}
location = /rt/events { content_by_lua_block {
    local h = require "support.realtime_nginx"
    ngx.header["Content-Type"] = "application/json"
    ngx.say(require("quecapi.json").encode(h.events(ngx.var.arg_name)))
} }
location = /rt/write { content_by_lua_block {
    ngx.req.read_body()
    require("support.realtime_nginx").write(ngx.var.arg_name, ngx.req.get_body_data())
    ngx.say("ok")
} }
location = /rt/stop { content_by_lua_block {
    require("support.realtime_nginx").stop(ngx.var.arg_name)
    ngx.say("ok")
} }
location = /rt/logs { content_by_lua_block {
    ngx.say(require("quecapi.json").encode(require("support.realtime_nginx").logs()))
} }
location = /rt/secrets { content_by_lua_block {
    ngx.say(require("quecapi.json").encode(require("support.realtime_nginx").secrets()))
} }
location = /rt/get { content_by_lua_block { ngx.say(ngx.shared.rt:get(ngx.var.arg_key) or "null") } }

# a channel in a content handler: open, wait in receive (yielding), answer with the event
location = /rt/content {
    content_by_lua_block {
        local h = require "support.realtime_nginx"
        ngx.req.read_body()
        local body = require("quecapi.json").decode(ngx.req.get_body_data())
        local c = h.client(body.client)
        local rt, err, code, kind = c:realtime(h.options(require("quecapi.json").encode(body.opts)))
        if not rt then return h.reply { err = err, code = code, kind = kind } end
        ngx.shared.rt:set("content_ready", true)
        local t0 = ngx.now()
        local ev, rerr = rt:receive(tonumber(ngx.var.arg_wait))
        ngx.update_time()
        rt:close()
        h.reply { event = ev, err = rerr, phase = ngx.get_phase(), waited = ngx.now() - t0 }
    }
}

# the link alone: connect with the given options, answer what came back
location = /rt/link {
    content_by_lua_block {
        local h = require "support.realtime_nginx"
        ngx.req.read_body()
        local o = require("quecapi.json").decode(ngx.req.get_body_data())
        o.url = o.url or os.getenv("FAKECLOUD_MQTT_URL")
        local link, err, kind, connack = require("quecapi.realtime.ngx_link").connect(o)
        if not link then return h.reply { err = err, kind = kind, connack = connack } end
        local out = { connected = link:connected() }
        if o.subscribe then out.sub = { link:subscribe(o.subscribe, 0) } end
        if o.receive then out.received = { link:receive(o.receive) } end
        link:close()
        out.after_close = { link:receive(0) }
        out.publish_after_close = { link:publish("t", "x", 1) }
        out.connected_after_close = link:connected()
        h.reply(out)
    }
}

location = /rt/log_phase {
    content_by_lua_block { ngx.say("logged") }
    log_by_lua_block {
        local c = require("support.realtime_nginx").client()
        local rt, err, _, kind = c:realtime { devices = {}, url = os.getenv("FAKECLOUD_MQTT_URL") }
        ngx.shared.rt:set("log_phase", require("quecapi.json").encode { ok = rt ~= nil, err = err, kind = kind })
    }
}
]]

local srv
local phone_n = 0
local names = {}
local received = {}

local function post(path, value)
  local status, body = srv:request { method = "POST", path = path, body = json.encode(value),
                                     headers = { ["Content-Type"] = "application/json" } }
  assert.are.equal(200, status, tostring(body))
  return json.decode(body)
end

local function get(path)
  local status, body = srv:request { path = path }
  assert.are.equal(200, status, tostring(body))
  return json.decode(body)
end

-- A fresh user with n devices (D0001...), returns its phone and uid.
local function user(n)
  phone_n = phone_n + 1
  local phone = string.format("1330015%04d", phone_n)
  local uid = fake.user(phone, PASSWORD, n or 2)
  return phone, uid
end

local function devices(n)
  local list = {}
  for i = 1, n do list[i] = { productKey = PK, deviceKey = string.format("D%04d", i) } end
  return list
end

-- Start a channel in a timer of the spec's nginx: name, phone, options of client:realtime.
local function start(name, phone, opts, client)
  names[#names + 1] = name
  received[name] = {}
  local cl = { account = { phone = phone, password = PASSWORD }, token_key = phone }
  for k, v in pairs(client or {}) do cl[k] = v end
  local o = { devices = devices(2) }
  for k, v in pairs(opts or {}) do o[k] = v end
  post("/rt/start?name=" .. name, { opts = o, client = cl })
end

-- The next recorded event of a type (others before it are skipped), within `seconds`.
local function expect(name, kind, seconds, check)
  local deadline = core.monotonic() + (seconds or 5)
  local q = received[name]
  while true do
    while q[1] do
      local ev = table.remove(q, 1)
      if ev.type == kind and (not check or check(ev)) then return ev end
      assert.are_not.equal("open-failed", ev.type, json.encode(ev))
      assert.are_not.equal("receive-failed", ev.type, json.encode(ev))
    end
    assert(core.monotonic() < deadline, "no " .. kind .. " event in time\n" .. srv:error_log():sub(-3000))
    core.sleep(0.02)
    for _, ev in ipairs(get("/rt/events?name=" .. name)) do q[#q + 1] = ev end
  end
end

local function opened(name)
  local ev = expect(name, "opened", 10)
  assert.are.equal("timer", ev.phase)
  assert.are.equal("quecapi.realtime.ngx_link (connected)", ev.link)
end

local function logged(pattern)
  for _, l in ipairs(get("/rt/logs")) do
    if l:find(pattern) then return l end
  end
end

setup(function()
  srv = nginx.start { workers = 1, main = MAIN, http = HTTP, server = SERVER }
end)

teardown(function()
  if srv then srv:stop() end
end)

before_each(function()
  fake.reset()
  names = {}
end)

after_each(function()
  for _, name in ipairs(names) do
    srv:request { method = "POST", path = "/rt/stop?name=" .. name }
  end
  fake.thaw()
  fake.broker_until(function(b) return b.connected == 0 end, 5)
  -- no token in a log line: the channel's (the client's log hook) nor nginx's error log
  local text = table.concat(get("/rt/logs"), "\n") .. "\n" .. srv:error_log()
  local secrets = get("/rt/secrets")
  if #names > 0 then assert.is_true(#secrets > 0) end
  for _, t in ipairs(secrets) do
    assert.is_nil(text:find(t, 1, true), "a log line shows a token")
    assert.is_nil(text:find((t:gsub("^Bearer ", "")), 1, true), "a log line shows a token")
  end
end)

describe("[15] client:realtime inside nginx (cosocket link)", function()
  it("connects from a timer as qu_<uid>_<ms>, subscribes, and hands out typed events", function()
    local phone, uid = user(2)
    start("a", phone)
    opened("a")
    local b = fake.broker()
    assert.are.equal(1, b.connected)
    local ms = tonumber(b.clients[1]:match("^qu_" .. uid .. "_(%d+)$"))
    assert.is_true(ms and math.abs(ms - core.now_ms()) < 60000, b.clients[1])
    fake.report(PK, "D0002", { as_strings = true, values = { brightness = 55, switch = true } })
    local ev = expect("a", "property")
    assert.are.same({ PK, "D0002", "q/2/d/qdp11pLZD0002/bus_" }, { ev.productKey, ev.deviceKey, ev.topic })
    assert.are.same({ brightness = 55, switch = true }, ev.values)
    assert.is_number(ev.at)
    fake.report(PK, "D0001", { online = false })
    ev = expect("a", "online")
    assert.are.same({ false, 0, "D0001" }, { ev.online, ev.value, ev.deviceKey })
  end)

  it("writes and reads over the channel; the thing model refuses a bad value before anything is sent", function()
    local phone = user(1)
    start("w", phone, { devices = devices(1) })
    opened("w")
    fake.report(PK, "D0001", { online = true })
    expect("w", "online")
    post("/rt/write?name=w", { op = "write", pk = PK, dk = "D0001", values = { switch = true, brightness = 12 } })
    local id = expect("w", "write-result").msgId
    assert.is_number(id)
    assert.are.same({ switch = true, brightness = 12 }, expect("w", "property").values)
    local ack = expect("w", "ack")
    assert.are.same({ id, "succ", true }, { ack.msgId, ack.status, ack.ok })
    assert.are.equal(12, fake.device(PK, "D0001").values.brightness)
    post("/rt/write?name=w", { op = "read", pk = PK, dk = "D0001", values = { "brightness" } })
    local rid = expect("w", "write-result").msgId
    assert.are.same({ brightness = 12 }, expect("w", "property").values)
    assert.are.equal(rid, expect("w", "ack").msgId)
    local before = #fake.broker().commands
    post("/rt/write?name=w", { op = "write", pk = PK, dk = "D0001", values = { brightness = 101 } })
    local refused = expect("w", "write-result")
    assert.are.same({ "usage" }, { refused.kind })
    assert.matches("above the maximum 100", refused.err)
    assert.are.equal(before, #fake.broker().commands)
  end)

  it("hands out per-client errors (4021 for an offline device)", function()
    local phone = user(1)
    start("e", phone, { devices = devices(1) })
    opened("e")
    fake.report(PK, "D0001", { online = false })
    post("/rt/write?name=e", { op = "write", pk = PK, dk = "D0001", values = { switch = true } })
    local ev = expect("e", "error")
    assert.are.equal(4021, ev.code)
    assert.matches("^q/1/u/qu_.*/sys_$", ev.topic)
  end)

  it("renews a token the broker refuses and connects with the new one", function()
    local phone, uid = user(1)
    -- log in and fetch the thing model first, then let the access token run out
    start("t0", phone, { devices = devices(1) })
    opened("t0")
    srv:request { method = "POST", path = "/rt/stop?name=t0" }
    expect("t0", "closed")
    fake.expire { uid = uid, access_only = true }
    local refused = fake.broker().refused
    start("t", phone, { devices = devices(1) })
    opened("t")
    assert.are.equal(refused + 1, fake.broker().refused)
    assert.truthy(logged("refused the access token"))
    fake.report(PK, "D0001", { values = { brightness = 3 } })
    assert.are.equal(3, expect("t", "property").values.brightness)
  end)

  it("reconnects after a dropped connection with a fresh client id and reads what it missed", function()
    local phone = user(2)
    start("d", phone)
    opened("d")
    local before = fake.broker().clients[1]
    fake.drop()
    fake.report(PK, "D0001", { values = { brightness = 33 } })
    local ev = expect("d", "reconnected", 10, function(e) return e.deviceKey == "D0001" end)
    assert.are.equal(33, ev.values.brightness)
    local after = fake.broker().clients
    assert.are.equal(1, #after)
    assert.are_not.equal(before, after[1])
    fake.report(PK, "D0002", { values = { brightness = 4 } })
    assert.are.equal(4, expect("d", "property").values.brightness)
  end)

  it("reconnects after a broker restart, and when the broker goes silent (watchdog)", function()
    local phone = user(1)
    start("r", phone, { devices = devices(1), watchdog = 1.5, connect_timeout = 2 })
    opened("r")
    fake.restart_broker()
    fake.report(PK, "D0001", { values = { mode = 1 } })
    assert.are.equal(1, expect("r", "reconnected", 15).values.mode)
    local t = core.monotonic()
    fake.freeze(2.5)
    expect("r", "reconnected", 20)
    assert.is_true(core.monotonic() - t >= 1.5)
    assert.truthy(logged("watchdog"))
    assert.are.equal(1, fake.broker().connected)
  end)

  it("hands out 1,000 reports of a burst, all, in order", function()
    local phone = user(1)
    start("b", phone, { devices = devices(1) })
    opened("b")
    fake.burst(PK, "D0001", { count = 1000, code = "brightness" })
    for i = 1, 1000 do
      assert.are.equal(i, expect("b", "property", 10).values.brightness)
    end
  end)

  it("drops a message larger than max_message with a log line and goes on", function()
    local phone = user(1)
    start("m", phone, { devices = devices(1), max_message = 120 })
    opened("m")
    fake.report(PK, "D0001", { values = { label = string.rep("x", 32) } })
    fake.report(PK, "D0001", { online = true })
    assert.is_true(expect("m", "online").online)
    assert.truthy(logged("larger than max_message"))
  end)

  it("keeps a quiet session up with PINGREQs sent from receive", function()
    local phone = user(1)
    start("k", phone, { devices = devices(1), keepalive = 1, watchdog = false })
    opened("k")
    local connects = fake.broker().connects
    -- the broker drops a session 1.5 keepalives after the last packet it got
    core.sleep(4)
    local b = fake.broker()
    assert.are.same({ 1, connects }, { b.connected, b.connects })
    fake.report(PK, "D0001", { values = { brightness = 7 } })
    assert.are.equal(7, expect("k", "property").values.brightness)
  end)

  it("waits in receive inside a content handler without blocking the worker", function()
    local phone = user(1)
    local out = srv.dir .. "/content.out"
    local body = json.encode { opts = { devices = devices(1), url = fake.mqtt_url },
                               client = { account = { phone = phone, password = PASSWORD }, token_key = phone } }
    local bodyfile = srv.dir .. "/content.json"
    local f = assert(io.open(bodyfile, "w"))
    f:write(body)
    f:close()
    assert(nginx.run(("curl -s -m 20 -o %s --data-binary @%s %s/rt/content?wait=10 &"):format(out, bodyfile,
      srv.url)))
    local b = fake.broker_until(function(x) return x.connected == 1 end, 10)
    assert.are.equal(1, b.connected)
    -- the worker answers while the handler sits in receive
    local slowest = 0
    for _ = 1, 20 do
      local t = core.monotonic()
      assert.are.equal(200, (srv:request { path = "/ping" }))
      slowest = math.max(slowest, core.monotonic() - t)
      core.sleep(0.02)
    end
    assert.is_true(slowest < 0.05, "a /ping took " .. slowest .. " s")
    fake.report(PK, "D0001", { values = { brightness = 21 } })
    local answer
    for _ = 1, 200 do
      local f2 = io.open(out)
      local text = f2 and f2:read("*a")
      if f2 then f2:close() end
      if text and text ~= "" then
        answer = json.decode(text)
        break
      end
      core.sleep(0.05)
    end
    assert(answer, "the content handler did not answer")
    assert.are.same({ "content", "property", 21 }, { answer.phase, answer.event.type, answer.event.values.brightness })
    assert.is_true(answer.waited < 10)
  end)

  it("refuses where nginx has no cosockets (init_worker, log), naming ngx.timer.at", function()
    local r = get("/rt/get?key=init_worker")
    assert.are.same({ false, "usage" }, { r.ok, r.kind })
    assert.matches("init_worker", r.err)
    assert.matches("ngx.timer.at", r.err, 1, true)
    assert.are.equal(200, (srv:request { path = "/rt/log_phase" }))
    local v
    for _ = 1, 50 do
      v = get("/rt/get?key=log_phase")
      if v then break end
      core.sleep(0.02)
    end
    assert.are.same({ false, "usage" }, { v.ok, v.kind })
    assert.matches("log phase", v.err)
  end)
end)
