-- quecapi.realtime.hub in a real nginx (two workers) against the fake cloud's
-- broker: its options, subscriptions by device and for every device, the
-- bounded backlog of a reader that falls behind, writes and reads through the
-- worker holding the connection, the last known values, a reload that hands
-- the connection over at once, and the phases it refuses.
local fake = require "support.fake"
local nginx = require "support.nginx"
local core = require "quecapi.core"
local json = require "quecapi.json"
local shell = require "support.sh"

assert(fake.mqtt_url, "the fake cloud runs without its broker (no FAKECLOUD_MQTT_URL)")

local PHONE, PASSWORD = "13300180001", "rt-hub-Pass-1"
local PK = "p11pLZ"

local MAIN = ([[
env FAKECLOUD_URL;
env FAKECLOUD_CA;
env FAKECLOUD_MQTT_URL;
env SPEC_PHONE=%s;
env SPEC_PASSWORD=%s;
]]):format(PHONE, PASSWORD)

local HTTP = [[
lua_shared_dict realtime 4m;
lua_shared_dict tokens 1m;
lua_shared_dict probe 1m;
lua_socket_log_errors off;
init_by_lua_block {
    local hub = require "quecapi.realtime.hub"
    local app = require "support.in_nginx"
    assert(hub.new {
        name = "a", dict = "realtime",
        client = function()
            return app.client { token_store = "shdict", token_dict = "tokens", account = app.account() }
        end,
        devices = { { productKey = "p11pLZ", deviceKey = "D0001" }, { productKey = "p11pLZ", deviceKey = "D0002" } },
        realtime = { url = os.getenv("FAKECLOUD_MQTT_URL") },
        backlog = 5, wait = 0.5, lease = 2,
    })
    local bad = {}
    for _, o in ipairs {
        { name = "b" },
        { name = "b", dict = "nope", client = print },
        { name = "b c", dict = "realtime", client = print },
        { name = "b", dict = "realtime", client = print, poll = 0 },
        { name = "b", dict = "realtime", client = print, backlog = 1.5 },
        { name = "b", dict = "realtime", client = print, realtime = { devices = {} } },
        { name = "b", dict = "realtime", client = print, devices = { { productKey = "a/b", deviceKey = "c" } } },
        { name = "b", dict = "realtime", client = print, colour = "red" },
    } do
        local h, err = hub.new(o)
        bad[#bad + 1] = h == nil and err or "accepted"
    end
    package.loaded["spec.hub_bad"] = bad
}
init_worker_by_lua_block {
    local hub = require("quecapi.realtime.hub").get("a")
    assert(hub:start())
    -- no request here: subscribe refuses
    local it, err, _, kind = hub:subscribe("p11pLZ", "D0001")
    ngx.shared.probe:set("init_worker", require("quecapi.json").encode { ok = it ~= nil, err = err, kind = kind })
}
]]

local SERVER = [[
location = /status { content_by_lua_block {
    require("support.in_nginx").reply(require("quecapi.realtime.hub").get("a"):status())
} }
location = /bad { content_by_lua_block { require("support.in_nginx").reply(package.loaded["spec.hub_bad"]) } }
location = /probe { content_by_lua_block { ngx.say(ngx.shared.probe:get(ngx.var.arg_key) or "null") } }

# subscribe (pk, dk or neither), sleep `hold` seconds, then collect `n` events or `timeouts` empty waits
location = /sub {
    content_by_lua_block {
        local hub = require("quecapi.realtime.hub").get("a")
        local events, sub, code, kind = hub:subscribe(ngx.var.arg_pk, ngx.var.arg_dk)
        if not events then return require("support.in_nginx").reply { err = sub, code = code, kind = kind } end
        ngx.shared.probe:incr("subscribed", 1, 0)
        if ngx.var.arg_hold then ngx.sleep(tonumber(ngx.var.arg_hold)) end
        local out, timeouts = {}, 0
        local n, max_timeouts = tonumber(ngx.var.arg_n) or 1, tonumber(ngx.var.arg_timeouts) or 20
        for ev, text in events do
            if ev then
                out[#out + 1] = { type = ev.type, dk = ev.deviceKey, values = ev.values, msgId = ev.msgId,
                                  same = require("quecapi.json").decode(text).type == ev.type }
                if #out >= n then break end
            else
                timeouts = timeouts + 1
                if timeouts >= max_timeouts then break end
            end
        end
        local dropped = sub:dropped()
        sub:close()
        require("support.in_nginx").reply { events = out, timeouts = timeouts, dropped = dropped,
                                            after_close = { events() } }
    }
}
location = /command {
    content_by_lua_block {
        ngx.req.read_body()
        local c = require("quecapi.json").decode(ngx.req.get_body_data())
        local hub = require("quecapi.realtime.hub").get("a")
        local id, err, code, kind = hub[c.op](hub, c.pk, c.dk, c.values)
        require("support.in_nginx").reply { msgId = id, err = err, code = code, kind = kind }
    }
}
location = /values { content_by_lua_block {
    local values, at, online = require("quecapi.realtime.hub").get("a"):values(ngx.var.arg_pk, ngx.var.arg_dk)
    require("support.in_nginx").reply { values = values, at = at, online = online }
} }
location = /log_phase {
    content_by_lua_block { ngx.say("ok") }
    log_by_lua_block {
        local id, err, _, kind = require("quecapi.realtime.hub").get("a"):write("p11pLZ", "D0001", { switch = true })
        ngx.shared.probe:set("log_phase", require("quecapi.json").encode { ok = id ~= nil, err = err, kind = kind })
    }
}
]]

local srv

local function get(path)
  local status, text = srv:request { path = path }
  assert.are.equal(200, status, tostring(text))
  return json.decode(text)
end

local function command(c)
  local status, text = srv:request { method = "POST", path = "/command", body = json.encode(c) }
  assert.are.equal(200, status, tostring(text))
  return json.decode(text)
end

-- A request in the background (curl), its answer read later.
local function background(path)
  local out = srv.dir .. "/bg-" .. core.random_string(8)
  assert(shell.run(("curl -s -m 30 -o %s %s &"):format(shell.quote(out), shell.quote(srv.url .. path))))
  return function(timeout)
    local deadline = core.monotonic() + (timeout or 10)
    while core.monotonic() < deadline do
      local text = shell.read(out)
      if text and text ~= "" then return assert(json.decode(text), text) end
      core.sleep(0.05)
    end
    error("no answer to " .. path)
  end
end

-- Wait until `n` subscriptions more than `before` were made.
local function subscribed(before, n)
  for _ = 1, 200 do
    if (get("/probe?key=subscribed") or 0) >= before + n then return end
    core.sleep(0.02)
  end
  error("the subscriptions did not start")
end

setup(function()
  fake.reset()
  fake.user(PHONE, PASSWORD, 3)
  fake.report(PK, "D0001", { online = true })
  srv = nginx.start { workers = 2, main = MAIN, http = HTTP, server = SERVER }
  for _ = 1, 200 do
    if get("/status").connected then break end
    core.sleep(0.05)
  end
  assert.is_true(get("/status").connected, srv:error_log())
end)

teardown(function()
  if srv then srv:stop() end
end)

describe("[15] quecapi.realtime.hub", function()
  it("refuses bad options with a reason", function()
    local bad = get("/bad")
    assert.matches("dict must name", bad[1])
    assert.matches("no shared dict 'nope'", bad[2])
    assert.matches("name must be", bad[3])
    assert.matches("poll must be", bad[4])
    assert.matches("backlog must be", bad[5])
    assert.matches("realtime.devices", bad[6])
    assert.matches("devices%[1%]", bad[7])
    assert.matches("unknown option 'colour'", bad[8])
  end)

  it("hands a subscription its device's events only, and one without pk and dk every device's", function()
    local before = get("/probe?key=subscribed") or 0
    local one = background("/sub?pk=p11pLZ&dk=D0002&n=2")
    local all = background("/sub?n=3")
    subscribed(before, 2)
    fake.report(PK, "D0001", { values = { brightness = 1 } })
    fake.report(PK, "D0002", { values = { brightness = 2 } })
    fake.report(PK, "D0002", { values = { brightness = 3 } })
    local r = one()
    assert.are.same({ { "D0002", 2, true }, { "D0002", 3, true } },
      { { r.events[1].dk, r.events[1].values.brightness, r.events[1].same },
        { r.events[2].dk, r.events[2].values.brightness, r.events[2].same } })
    r = all()
    assert.are.same({ "D0001", "D0002", "D0002" }, { r.events[1].dk, r.events[2].dk, r.events[3].dk })
    -- a closed subscription's iterator ends
    assert.are.same({}, r.after_close)
  end)

  it("drops the oldest events of a reader that falls behind its backlog, and counts them", function()
    local dropped = get("/status").dropped
    local before = get("/probe?key=subscribed") or 0
    local slow = background("/sub?pk=p11pLZ&dk=D0001&n=5&hold=1.5")
    subscribed(before, 1)
    for i = 1, 8 do fake.report(PK, "D0001", { values = { brightness = 10 + i } }) end
    local r = slow()
    local got = {}
    for i, ev in ipairs(r.events) do got[i] = ev.values.brightness end
    -- a backlog of 5: the three oldest are gone
    assert.are.same({ 14, 15, 16, 17, 18 }, got)
    assert.are.equal(3, r.dropped)
    assert.are.equal(dropped + 3, get("/status").dropped)
  end)

  it("yields false, \"timeout\" when nothing comes within `wait`, and goes on", function()
    local t = core.monotonic()
    local r = get("/sub?pk=p11pLZ&dk=D0001&n=1&timeouts=3")
    assert.are.same({}, r.events)
    assert.are.equal(3, r.timeouts)
    assert.is_true(core.monotonic() - t >= 1.4)
  end)

  it("refuses a device the connection does not follow, and half a device", function()
    local r = get("/sub?pk=p11pLZ&dk=D0003")
    assert.are.equal("usage", r.kind)
    assert.matches("not a device the connection follows", r.err)
    r = get("/sub?pk=p11pLZ")
    assert.are.equal("usage", r.kind)
    r = get("/sub?pk=p11pLZ&dk=a+b") -- (ngx.var.arg_ keeps the query as sent)
    assert.matches("dk must not contain", r.err)
  end)

  it("writes and reads through the worker holding the connection: msgIds, the thing model's refusal", function()
    local before = get("/probe?key=subscribed") or 0
    local watch = background("/sub?pk=p11pLZ&dk=D0001&n=4")
    subscribed(before, 1)
    local w = command { op = "write", pk = PK, dk = "D0001", values = { brightness = 61 } }
    assert.is_number(w.msgId)
    local rd = command { op = "read", pk = PK, dk = "D0001", values = { "brightness" } }
    assert.is_number(rd.msgId)
    local r = watch()
    local acks = {}
    for _, ev in ipairs(r.events) do
      if ev.type == "ack" then acks[#acks + 1] = ev.msgId end
    end
    assert.are.same({ w.msgId, rd.msgId }, acks)
    assert.are.equal(61, fake.device(PK, "D0001").values.brightness)
    local bad = command { op = "write", pk = PK, dk = "D0001", values = { brightness = 1000 } }
    assert.are.same({ "usage" }, { bad.kind })
    assert.matches("brightness", bad.err)
    bad = command { op = "write", pk = PK, dk = "D0001", values = "x" }
    assert.are.equal("usage", bad.kind)
  end)

  it("keeps each device's last values: reads at the start, reports merged, online changes", function()
    fake.report(PK, "D0002", { online = false, values = { brightness = 44 } })
    local v
    for _ = 1, 100 do
      v = get("/values?pk=p11pLZ&dk=D0002")
      if v.values and v.values.brightness == 44 and v.online == false then break end
      core.sleep(0.02)
    end
    assert.are.equal(44, v.values.brightness)
    assert.is_false(v.online)
    -- other properties from the read when the connection started
    assert.is_not_nil(v.values.switch)
    assert.is_number(v.at)
    assert.are.same({}, get("/values?pk=p11pLZ&dk=D0009"))
  end)

  it("refuses outside a request handler or timer", function()
    local r = get("/probe?key=init_worker")
    assert.are.same({ false, "usage" }, { r.ok, r.kind })
    assert.are.equal(200, (srv:request { path = "/log_phase" }))
    for _ = 1, 50 do
      r = get("/probe?key=log_phase")
      if r then break end
      core.sleep(0.02)
    end
    assert.are.same({ false, "usage" }, { r.ok, r.kind })
    assert.matches("request handler", r.err)
  end)

  it("hands the connection to a new worker at once on a reload: the old one gives the lease back", function()
    local before = get("/status")
    local connects = fake.broker().connects
    local t0 = core.monotonic()
    local master = (shell.read(srv.dir .. "/nginx.pid") or ""):match("%d+")
    assert(shell.run("kill -HUP " .. master))
    local st
    for _ = 1, 300 do
      local status, text = srv:request { path = "/status" }
      st = status == 200 and json.decode(text)
      if st and st.connected and st.pid ~= before.pid then break end
      core.sleep(0.02)
    end
    local took = core.monotonic() - t0
    assert.is_true(st.connected and st.pid ~= before.pid, json.encode(st))
    -- no waiting for the lease to run out (2 s)
    assert.is_true(took < 1.5, ("the handover took %.2f s"):format(took))
    if os.getenv("SPEC_VERBOSE") then io.stderr:write(("[15] handover on a reload: %.2f s\n"):format(took)) end
    local b = fake.broker_until(function(x) return x.connected == 1 and x.connects == connects + 1 end, 5)
    assert.are.same({ 1, connects + 1 }, { b.connected, b.connects })
  end)
end)
