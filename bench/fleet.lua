--- Section 7, many nodes: the realtime hub's `fleet` option across two nginx
-- nodes sharing one Redis, and the Redis token store against a shared dict.
--
--   local rows, verdicts = require("fleet").run { reps = 7, out = "build/bench" }
--
-- returns rows in the driver's table format ({ section, measurement, contender,
-- median, spread, ratio, target, met, note }, all strings) and verdicts
-- ({ label, met }), as bench/realtime_nginx.lua. Also runs alone, with the
-- environment bench/run sets up:
--
--   lua5.4 bench/fleet.lua        (BENCH_REPS runs, default 3)
--
-- What runs: a redis-server of its own (spec/support/redis.lua); two nginx
-- nodes of one worker each (spec/support/realtime_fleet.lua), their hubs
-- sharing that Redis and their account a user of the fake cloud, whose broker
-- they connect to (one of them: the leader); an SSE client on each node in a
-- load nginx (spec/support/sse_load.lua); the device a Paho connection in this
-- process publishing on the fake broker's device listener.
--
--  - latency: 200 property reports, one every 10 ms; from the publish to the
--    client's reading the `data:` line, both stamped with the machine's
--    monotonic clock. The leader publishes every event to Redis and every node,
--    the leader included, takes it from there: the client on the other node is
--    the cross-node figure, the one on the leader the same path without the
--    second machine (here, without a second nginx);
--  - token lookup: what `store:get` costs a request with the Redis store (a
--    pooled cosocket round trip and a JSON decode) and with the shdict store,
--    20,000 lookups in a request handler (ngx.now() counts milliseconds).
local stats = require "stats"
local core = require "quecapi.core"
local json = require "quecapi.json"
local fake = require "support.fake"
local shell = require "support.sh"
local redis = require "support.redis"
local fleet = require "support.realtime_fleet"
local sse = require "support.sse_clients"

local format = string.format

local _M = {}

-- a user of its own in whatever fake cloud runs (one per run of the section)
local PHONE, PASSWORD = format("1370019%04d", math.floor(core.monotonic() * 1000) % 10000), "bench-fleet-Pass-1"
local PK, DK = "p11pLZ", "D0001"
local TOPIC = "q/2/d/qdp11pLZD0001/bus_"
local SAMPLES, LOOKUPS = 200, 20000

local function report(n)
  return assert(json.encode {
    productKey = PK, deviceKey = DK, type = "MATTR", subtype = "REPORT", createdAt = 1744780781133 + n,
    ticket = "t" .. n, data = { packetId = n, kv = { brightness = n % 101, energy = n } },
  })
end

-- The device side of the fake's broker: its plain listener, the fake's device account.
local function device()
  local d = assert(json.decode(assert(shell.read(fake.dir .. "/device.json"), "no device.json: is the fake's "
    .. "broker running?")))
  return assert(core.mqtt { url = "tcp://127.0.0.1:" .. d.mqtt_port, client_id = "bench-fleet-device",
                            username = d.user, password = d.password, keepalive = 40 })
end

local quantile, median, spread, num = stats.quantile, stats.median, stats.spread, stats.num


-- Paced reports to one SSE client on each node: their latencies in ms, by node name.
local function latency(clients, nodes, dev, rep)
  local names = {}
  for _, n in ipairs(nodes) do
    local name = format("lat%s_%d", n.name, rep)
    names[n.name] = name
    clients:run(name, { host = "127.0.0.1", port = n.port, code = "energy", fast = true, timeout = 60,
                        clients = { { path = "/events?pk=" .. PK .. "&dk=" .. DK, count = SAMPLES } } })
  end
  for _, n in ipairs(nodes) do
    local _, ok = clients:wait(names[n.name], function(s) return s.streaming >= 1 end, 30)
    assert(ok, "the SSE client did not connect to node " .. n.name)
    _, ok = n:until_status(function(s) return s.subscribers >= 1 end, 10)
    assert(ok, "node " .. n.name .. " does not count its client")
  end
  local sent = {}
  for i = 1, SAMPLES do
    local payload = report(i)
    sent[i] = core.monotonic() * 1000
    assert(dev:publish(TOPIC, payload, 0))
    core.sleep(0.01)
  end
  local out = {}
  for _, n in ipairs(nodes) do
    local name = names[n.name]
    local _, ok = clients:wait(name, function(s) return s.done >= s.streaming end, 30)
    clients:stop(name)
    local c = clients:result(name, 30).clients[1]
    assert(ok and #c.values == SAMPLES, format("node %s's client received %d of %d events", n.name, #c.values,
      SAMPLES))
    local ms = {}
    for i = 1, SAMPLES do
      assert(c.values[i] == i, format("node %s's client: event %d out of order", n.name, i))
      ms[i] = c.times[i] - sent[i]
    end
    out[n.name] = ms
  end
  return out
end

-- Token lookups through the Redis store and the shdict store, in one of the nodes: us per lookup.
local function lookups(node)
  local status, v = node.srv:json("/cost?n=" .. LOOKUPS)
  assert(status == 200 and v.redis and v.shdict, "GET /cost: " .. tostring(status) .. " " .. json.encode(v))
  assert(v.redis.same == LOOKUPS and v.shdict.same == LOOKUPS, "a lookup did not find the tokens")
  return v.redis.us, v.shdict.us
end

--- Run the section: `reps` runs (default 3), `out` (unused: Redis and nginx keep to temp dirs).
-- @return rows, verdicts (see the module's text)
function _M.run(o)
  o = o or {}
  local reps = o.reps or 3
  fake.user(PHONE, PASSWORD, 1)
  local r, clients, dev
  local nodes = {}
  local ok, err = pcall(function()
    r = redis.start { password = "bench-fleet-redis" }
    for _, name in ipairs { "a", "b" } do
      nodes[#nodes + 1] = fleet.node { name = name, redis = r, phone = PHONE, password = PASSWORD,
                                       devices = PK .. "/" .. DK, workers = 1 }
    end
    local st, up = nodes[1]:until_status(function(s) return s.connected end, 30)
    assert(up, "the fleet did not connect: " .. json.encode(st))
    local _, both = nodes[2]:until_status(function(s) return s.connected and s.node == st.node end, 10)
    assert(both, "the nodes disagree on the leader")
    local leader, other = nodes[1], nodes[2]
    if st.node ~= leader.name then leader, other = other, leader end
    dev = device()
    clients = sse.start()
    latency(clients, { leader, other }, dev, 0) -- warms the JIT and the pools up
    local m = { p50_x = {}, p99_x = {}, p50_l = {}, p99_l = {}, redis = {}, shdict = {} }
    for rep = 1, reps do
      local ms = latency(clients, { leader, other }, dev, rep)
      m.p50_x[rep], m.p99_x[rep] = median(ms[other.name]), quantile(ms[other.name], 0.99)
      m.p50_l[rep], m.p99_l[rep] = median(ms[leader.name]), quantile(ms[leader.name], 0.99)
      m.redis[rep], m.shdict[rep] = lookups(other)
    end
    local b = fake.broker()
    assert(b.connected >= 1, "the fleet lost its connection during the run")
    _M.measured = m
  end)
  if dev then dev:close() end
  if clients then clients:close() end
  for _, n in ipairs(nodes) do n:stop() end
  if r then r:destroy() end
  if not ok then error(err, 0) end

  local m = _M.measured
  local S = "7"
  local lat = "realtime across 2 nginx nodes (hub fleet, Redis pub/sub): device publish -> SSE client reads the event"
  local tok = "token lookup per request in nginx (store:get, 20,000 in a handler)"
  local ratio = median(m.redis) / median(m.shdict)
  local rows = {
    { S, lat, "median, client on the other node", num(median(m.p50_x), "ms"), format("%.0f%%", spread(m.p50_x)),
      "", "", "", format("%d reports, one every 10 ms; 1 worker per node", SAMPLES) },
    { S, lat, "p99, client on the other node", num(median(m.p99_x), "ms"), format("%.0f%%", spread(m.p99_x)), "",
      "< 50 ms", median(m.p99_x) < 50 and "yes" or "**no**", "" },
    { S, lat, "median, client on the leader", num(median(m.p50_l), "ms"), format("%.0f%%", spread(m.p50_l)), "", "",
      "", "the same path: the leader takes its own events back from Redis" },
    { S, lat, "p99, client on the leader", num(median(m.p99_l), "ms"), format("%.0f%%", spread(m.p99_l)), "", "",
      "", "" },
    { S, tok, "quecapi.store.redis (pooled cosocket)", num(median(m.redis), "us"), format("%.0f%%",
      spread(m.redis)), format("%.0fx", ratio), "", "", "a round trip to a local redis-server and a JSON decode" },
    { S, tok, "quecapi.store.shdict", num(median(m.shdict), "us"), format("%.0f%%", spread(m.shdict)), "1x", "", "",
      "" },
  }
  local verdicts = {
    { S .. " " .. lat .. ", p99, client on the other node", median(m.p99_x) < 50 },
  }
  return rows, verdicts
end

-- Alone: print the rows.
if arg and arg[0] and arg[0]:match("fleet%.lua$") then
  local rows = _M.run { reps = tonumber(os.getenv("BENCH_REPS")) or 3, out = os.getenv("BENCH_OUT") }
  print("| § | measurement | contender | median | spread | ratio | target | met | note |")
  print("|---|---|---|---|---|---|---|---|---|")
  for _, r in ipairs(rows) do print("| " .. table.concat(r, " | ") .. " |") end
end

return _M
