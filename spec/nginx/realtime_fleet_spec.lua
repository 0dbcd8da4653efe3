-- quecapi.realtime.hub across nginx nodes (issue 17): two nginx instances as
-- two nodes of a fleet, one redis-server, the fake cloud's broker. One broker
-- connection for the account in the whole fleet, every event on every node,
-- writes from any node, a node killed, Redis restarted and away for a while.
--
-- The broker's connect log (GET /_fake/broker/sessions) is the witness for
-- "one session": every App connect records every App connected at that moment,
-- so two sessions of the account at once, however briefly, would show.
local fake = require "support.fake"
local redis = require "support.redis"
local fleet = require "support.realtime_fleet"
local sse = require "support.sse_clients"
local core = require "quecapi.core"
local json = require "quecapi.json"
local poll = require "support.poll"

assert(fake.mqtt_url, "the fake cloud runs without its broker (no FAKECLOUD_MQTT_URL)")

local PHONE, PASSWORD = "13700001702", "fleet-rt-Pass-17"
local REDIS_PASSWORD = "redis-pw-17-rt"
local PK, DK = "p11pLZ", "D0001"
local DEVICES = "p11pLZ/D0001,p11pLZ/D0002"
local TTL = 2
-- the fleet's lease, then the channel's first reconnect (backoff.lua: 0.5 s at
-- most, jittered) and the connect itself, with room for a busy 2-core machine
local TAKEOVER_LIMIT = TTL + 0.5 + 2.5

local r, nodes, clients, prefix, since, started
local verbose = os.getenv("SPEC_VERBOSE")

local function say(fmt, ...)
  if verbose then io.stderr:write(("[17] " .. fmt .. "\n"):format(...)) end
end

local function logs()
  local out = {}
  for name, n in pairs(nodes) do out[#out + 1] = "---- node " .. name .. "\n" .. n:error_log():sub(-3000) end
  return table.concat(out, "\n")
end

-- The node holding the account's connection, once one does and both nodes see it.
local function leader(timeout)
  local deadline = core.monotonic() + (timeout or 15)
  while core.monotonic() < deadline do
    local a, b = nodes.a:status(), nodes.b:status()
    if a.connected and b.connected and a.node and a.node == b.node then return nodes[a.node], nodes[a.node == "a"
      and "b" or "a"] end
    core.sleep(0.05)
  end
  error("no node holds the connection, or the nodes disagree: " .. json.encode { nodes.a:status(),
    nodes.b:status() } .. "\n" .. logs())
end

local function sessions()
  return fleet.sessions(fake, since, prefix)
end

-- Two SSE clients on each node (both unless `only` is given), each reading
-- `count` property reports of the device.
local run_n = 0
local function listen(count, only)
  run_n = run_n + 1
  local which = only or { nodes.a, nodes.b }
  -- one run per node (a run talks to one port)
  local runs = {}
  for _, n in ipairs(which) do
    local rn = "run" .. run_n .. n.name
    clients:run(rn, { host = "127.0.0.1", port = n.port, code = "brightness", timeout = 60,
                      clients = { { path = "/events?type=property&pk=" .. PK .. "&dk=" .. DK, count = count },
                                  { path = "/events?type=property&pk=" .. PK .. "&dk=" .. DK, count = count } } })
    runs[#runs + 1] = rn
  end
  for _, rn in ipairs(runs) do
    local _, ok = clients:wait(rn, function(s) return s.streaming >= 2 end, 10)
    assert(ok, "the SSE clients did not connect to " .. rn)
  end
  for _, n in ipairs(which) do
    local _, ok = n:until_status(function(s) return s.subscribers >= 2 end, 5)
    assert(ok, "node " .. n.name .. " does not count its SSE clients")
  end
  return runs
end

-- The brightness values each client of `runs` received, keeping only those of `want`.
local function received(runs, want, timeout)
  local set = {}
  for _, v in ipairs(want) do set[v] = true end
  local out = {}
  for _, rn in ipairs(runs) do
    clients:wait(rn, function(s) return s.done >= s.streaming end, timeout or 10)
    clients:stop(rn)
    local res = clients:result(rn, 10)
    for i, c in ipairs(res.clients) do
      local got = {}
      for _, v in ipairs(c.values) do
        if set[v] then got[#got + 1] = v end
      end
      out[rn .. "#" .. i .. " (" .. json.encode { err = c.err, status = c.status, values = c.values } .. ")"] = got
    end
  end
  return out
end

local function report_all(values)
  for _, v in ipairs(values) do fake.report(PK, DK, { values = { brightness = v } }) end
end

local function range(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = i end
  return t
end

-- Each of `clients_n` clients got every value of `want`, in order.
local function all_got(got, want, clients_n)
  local n = 0
  for name, list in pairs(got) do
    n = n + 1
    assert.are.same(want, list, "client " .. name)
  end
  assert.are.equal(clients_n or 4, n)
end

-- A write of `brightness` through node `n` fails with kind network, naming Redis,
-- within `limit` seconds (`how`: what Redis is doing, for the message).
local function write_fails(n, brightness, limit, how)
  local t0 = core.monotonic()
  local w = n:command { op = "write", pk = PK, dk = DK, values = { brightness = brightness } }
  local took = core.monotonic() - t0
  assert.are.same({ "network" }, { w.kind }, json.encode(w))
  assert.is_nil(w.msgId)
  assert.matches("redis", w.err)
  assert.is_true(took < limit, ("a write with Redis %s took %.2f s"):format(how, took))
end

-- A write of `brightness` through node `n` gets its msgId, within a few leases.
local function write_works(n, brightness)
  local w = poll(function()
    return n:command { op = "write", pk = PK, dk = DK, values = { brightness = brightness } }
  end, function(x) return x.msgId ~= nil end, TTL * 3)
  assert.is_number(w.msgId, json.encode(w))
end

-- A fresh account at the fake cloud and two nodes on `r`, through `sentinel`
-- (and `master`, its name for the master) when given; SSE clients to read them.
local function start_fleet(sentinel, master)
  fake.reset()
  local uid = fake.user(PHONE, PASSWORD, 3)
  prefix = "qu_" .. uid .. "_"
  fake.report(PK, DK, { online = true })
  since = fake.broker().connects
  started = core.monotonic()
  nodes = {}
  for _, name in ipairs { "a", "b" } do
    nodes[name] = fleet.node { name = name, redis = r, sentinel = sentinel, master = master, phone = PHONE,
                               password = PASSWORD, devices = DEVICES, ttl = TTL }
  end
  clients = sse.start()
end

local function stop_fleet()
  if clients then clients:close() end
  for _, n in pairs(nodes or {}) do n:stop() end
  clients, nodes = nil, nil
end

describe("[17] the realtime hub across two nginx nodes", function()
  setup(function()
    r = redis.start { password = REDIS_PASSWORD }
    start_fleet()
  end)

  teardown(function()
    stop_fleet()
    if r then r:destroy() end
  end)

  it("[17] opens one broker connection for the account, and SSE clients on both nodes get every event", function()
    local lead, other = leader()
    -- (a new fleet waits one lease first: nothing in Redis says when the last one ended)
    say("node %s leads, %.2f s after the nodes started", lead.name, core.monotonic() - started)
    local runs = listen(10)
    local want = range(1, 10)
    report_all(want)
    all_got(received(runs, want), want)
    local b = fake.broker()
    assert.are.equal(1, b.connected)
    local s = sessions()
    assert.are.equal(1, s.peak, json.encode(s))
    assert.are.equal(lead.name, other:status().node)
    assert.are.equal(0, lead:status().dropped + other:status().dropped)
  end)

  it("[17] takes a write on the node that does not lead: the leader sends it, the msgId comes back", function()
    local lead, other = leader()
    local w = other:command { op = "write", pk = PK, dk = DK, values = { brightness = 77 } }
    assert.is_number(w.msgId, json.encode(w))
    assert.are.equal(other.name, w.node)
    local device
    for _ = 1, 100 do
      device = fake.device(PK, DK)
      if device.values.brightness == 77 then break end
      core.sleep(0.02)
    end
    assert.are.equal(77, device.values.brightness, json.encode(fake.broker().commands))
    -- the fake's record of the command names the leader's session
    local cmd = fake.broker().commands
    cmd = cmd[#cmd]
    assert.are.equal(w.msgId, cmd.msgId)
    local rd = lead:command { op = "read", pk = PK, dk = DK, values = { "brightness" } }
    assert.is_number(rd.msgId, json.encode(rd))
    -- the thing model's refusal comes back as the leader's answer
    local bad = other:command { op = "write", pk = PK, dk = DK, values = { brightness = 1000 } }
    assert.are.same({ "usage" }, { bad.kind })
    assert.matches("brightness", bad.err)
    say("a write from the other node: %.1f ms", w.ms)
    assert.are.equal(1, sessions().peak)
  end)

  it("[17] moves the connection to the other node within the lease and the backoff when the leader is killed",
    function()
      local lead, other = leader()
      local t0 = core.monotonic()
      lead:kill()
      local st, ok = other:until_status(function(s)
        return s.connected and s.node == other.name
      end, TAKEOVER_LIMIT + 5)
      local took = core.monotonic() - t0
      assert.is_true(ok, json.encode(st) .. "\n" .. logs())
      say("node %s took over %.2f s after node %s was killed (limit %.1f s)", other.name, took, lead.name,
        TAKEOVER_LIMIT)
      assert.is_true(took <= TAKEOVER_LIMIT, ("the takeover took %.2f s"):format(took))
      -- events resume on the node left
      local runs = listen(5, { other })
      local want = range(21, 25)
      report_all(want)
      all_got(received(runs, want), want, 2)
      assert.are.equal(1, fake.broker().connected)
      -- the killed node comes back (a restart) and follows
      nodes[lead.name] = fleet.node { name = lead.name, redis = r, phone = PHONE, password = PASSWORD,
                                      devices = DEVICES, ttl = TTL }
      local new_lead = leader()
      assert.are.equal(other.name, new_lead.name)
      runs = listen(5)
      want = range(26, 30)
      report_all(want)
      all_got(received(runs, want), want)
      assert.are.equal(1, sessions().peak)
      assert.are.equal(1, fake.broker().connected)
    end)

  it("[17] survives a restart of Redis: no second session, events flow again on both nodes", function()
    leader()
    r:stop()
    r:start()
    local lead = leader(TTL * 3 + 10)
    say("after a Redis restart node %s leads", lead.name)
    local runs = listen(5)
    local want = range(31, 35)
    report_all(want)
    all_got(received(runs, want), want)
    assert.are.equal(1, sessions().peak, json.encode(sessions()))
    assert.are.equal(1, fake.broker().connected)
  end)

  it("[17] with Redis hanging (SIGSTOP): a write fails within the store's timeout with kind network and is "
    .. "never sent later; still one session", function()
    local _, other = leader()
    -- a write first, so the worker that takes the next one may already know Redis's clock
    assert.is_number(other:command { op = "write", pk = PK, dk = DK, values = { brightness = 7 } }.msgId)
    local writes = #fake.device(PK, DK).writes
    r:pause()
    local ok, perr = pcall(write_fails, other, 8, 2, "hanging")
    r:resume() -- within the lease: the push Redis holds is still unread, the leader still leads
    assert(ok, perr)
    leader(TTL * 3 + 10)
    write_works(other, 9)
    local device = poll(function() return fake.device(PK, DK) end, function(d) return d.values.brightness == 9 end, 5)
    assert.are.equal(9, device.values.brightness)
    for i = writes + 1, #device.writes do
      assert.are_not.equal(8, device.writes[i].values.brightness, json.encode(device.writes))
    end
    assert.are.equal(1, sessions().peak, json.encode(sessions()))
    assert.are.equal(1, fake.broker().connected)
  end)

  it("[17] with Redis down for a while: writes fail fast with kind network, the leader lets go, one session "
    .. "again when Redis is back", function()
    local lead, other = leader()
    r:stop()
    for _, n in ipairs { lead, other } do write_fails(n, 5, 1, "down") end
    -- the leader cannot renew its lease: it closes the connection before the lease could pass on
    local b, gone = fake.broker_until(function(x) return x.connected == 0 end, TTL + 3)
    assert.is_true(gone, json.encode(b) .. "\n" .. logs())
    local st, let_go = lead:until_status(function(x) return not x.fleet.leading end, 1)
    assert.is_true(let_go, json.encode(st))
    core.sleep(TTL) -- down longer than a lease
    assert.are.equal(0, fake.broker().connected)
    r:start()
    local t0 = core.monotonic()
    local new_lead = leader(TTL * 3 + 10)
    say("Redis back: node %s leads %.2f s later", new_lead.name, core.monotonic() - t0)
    local runs = listen(5)
    local want = range(41, 45)
    report_all(want)
    all_got(received(runs, want), want)
    local w = other:command { op = "write", pk = PK, dk = DK, values = { brightness = 6 } }
    assert.is_number(w.msgId, json.encode(w))
    local s = sessions()
    assert.are.equal(1, s.peak, json.encode(s))
    assert.are.equal(1, fake.broker().connected)
  end)
end)

describe("[17] the realtime hub across two nginx nodes, Redis through Sentinel", function()
  local NAME = "quecapi17rt"
  local servers, sentinel

  -- The server the sentinel names as master, and the other one.
  local function roles()
    local port = tonumber(sentinel:raw("SENTINEL", "get-master-addr-by-name", NAME):match("\n(%d+)"))
    if servers[1].port == port then return servers[1], servers[2] end
    return servers[2], servers[1]
  end

  setup(function()
    -- replicas sync at once (no 5 s wait for more replicas to share a transfer)
    local conf = { "repl-diskless-sync-delay 0" }
    r = redis.start { password = REDIS_PASSWORD, conf = conf }
    servers = { r, redis.start { password = REDIS_PASSWORD, conf = conf, replica_of = r } }
    sentinel = redis.sentinel { master = r, name = NAME }
    assert.is_true(redis.wait_for(function()
      local replicas = sentinel:raw("SENTINEL", "REPLICAS", NAME)
      return replicas:match("master%-link%-status\nok") ~= nil and replicas:match("\nflags\nslave\n") ~= nil
    end, 20), sentinel:raw("SENTINEL", "REPLICAS", NAME))
    start_fleet(sentinel, NAME)
  end)

  teardown(function()
    stop_fleet()
    if sentinel then sentinel:destroy() end
    for _, srv in ipairs(servers or {}) do srv:destroy() end
    r = nil
  end)

  it("[17] after SIGKILL of the master, the replica the sentinel promotes carries the fleet: never a second "
    .. "session, events and writes again on both nodes", function()
    local lead = leader()
    say("through Sentinel, node %s leads", lead.name)
    local runs = listen(5)
    local want = range(51, 55)
    report_all(want)
    all_got(received(runs, want), want)
    local old, new = roles()
    local t0 = core.monotonic()
    old:kill()
    assert.is_true(redis.wait_for(function() return roles() == new end, 20),
      sentinel:raw("SENTINEL", "get-master-addr-by-name", NAME))
    lead = leader(TTL * 3 + 15)
    say("Sentinel failover: node %s leads %.2f s after the master was killed", lead.name, core.monotonic() - t0)
    runs = listen(5)
    want = range(56, 60)
    report_all(want)
    all_got(received(runs, want), want)
    for _, n in pairs(nodes) do write_works(n, 61) end
    local s = sessions()
    assert.are.equal(1, s.peak, json.encode(s))
    assert.are.equal(1, fake.broker().connected)
  end)
end)
