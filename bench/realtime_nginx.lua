--- Section 7, nginx: the realtime channel fanned out by examples/realtime.conf
-- (quecapi.realtime.hub) to Server-Sent-Events clients, through one nginx worker.
--
--   local rows, verdicts = require("realtime_nginx").run { reps = 7, out = "build/bench" }
--
-- returns rows in the driver's table format ({ section, measurement, contender,
-- median, spread, ratio, target, met, note }, all strings) and verdicts
-- ({ label, met }). Also runs alone, with the environment bench/run sets up:
--
--   lua5.4 bench/realtime_nginx.lua        (BENCH_REPS runs, default 3)
--
-- What runs: a mosquitto of its own (TLS WebSocket listener with the fake cloud's
-- certificate, anonymous; a plain listener for the device); examples/realtime.conf
-- as shipped but for paths, port and `worker_processes 1`, its account a user of
-- the fake cloud (tokens and thing model over REST), its realtime URL that
-- mosquitto; 100 SSE clients in a load nginx of their own (spec/support/sse_load.lua);
-- the device a Paho connection in this process publishing property reports
-- (four properties, one of them the sequence number).
--
--  - fan-out: 1,000 reports published back to back; events per second from the
--    first publish to the last client receiving the last event (every client
--    must receive all 1,000, in order); CPU of the nginx worker per delivery;
--  - latency: 200 reports, one every 10 ms; from the publish to the client's
--    reading the `data:` line, both stamped with the machine's monotonic clock,
--    for 1 client and for each of 100 clients; median and p99.
local lib = require "lib"
local stats = require "stats"
local core = require "quecapi.core"
local json = require "quecapi.json"
local fake = require "support.fake"
local shell = require "support.sh"
local example = require "support.realtime_example"
local sse = require "support.sse_clients"

local format = string.format

local _M = {}

-- a user of its own in whatever fake cloud runs (one per run of the section)
local PHONE, PASSWORD = format("1330019%04d", math.floor(core.monotonic() * 1000) % 10000), "bench-rt-Pass-1"
local PK, DK = "p11pLZ", "D0001"
local TOPIC = "q/2/d/qdp11pLZD0001/bus_"
local CLIENTS, BURST, SAMPLES = 100, 1000, 200

local function report(n)
  return assert(json.encode {
    productKey = PK, deviceKey = DK, type = "MATTR", subtype = "REPORT", createdAt = 1744780781133 + n,
    ticket = "t" .. n, data = { packetId = n, kv = {
      switch = true, brightness = n % 101, energy = n, color = { r = 255, g = 0, b = 16 } } },
  })
end


-- mosquitto: anonymous, a TLS WebSocket listener for the App, a plain one for the device.
local function broker(dir)
  local plain, ws = lib.free_ports()
  assert(shell.run("mkdir -p " .. shell.quote(dir)))
  shell.write(dir .. "/mosquitto.conf", table.concat({
    "per_listener_settings true", "persistence false", "log_dest none", "user root",
    "max_queued_messages 100000", "pid_file " .. dir .. "/mosquitto.pid",
    "listener " .. plain .. " 127.0.0.1", "allow_anonymous true",
    "listener " .. ws .. " 127.0.0.1", "protocol websockets", "allow_anonymous true",
    "certfile " .. fake.dir .. "/server.pem", "keyfile " .. fake.dir .. "/server.key", "",
  }, "\n"))
  assert(shell.run("mosquitto -d -c " .. shell.quote(dir .. "/mosquitto.conf") .. " 2>/dev/null"),
    "mosquitto did not start")
  local device
  local deadline = core.monotonic() + 5
  repeat
    device = core.mqtt { url = "tcp://127.0.0.1:" .. plain, client_id = "bench-device", keepalive = 40 }
    if not device then core.sleep(0.05) end
  until device or core.monotonic() > deadline
  assert(device, "cannot reach the bench's mosquitto")
  return device, "wss://localhost:" .. ws .. "/ws/v2", function()
    device:close()
    local pid = shell.read(dir .. "/mosquitto.pid")
    if pid then shell.run("kill " .. pid:match("%d+")) end
  end
end

-- CPU seconds (user + system) of a process.
local function cpu(pid)
  local stat = shell.read("/proc/" .. pid .. "/stat") or ""
  local fields = {}
  for x in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = x end
  return ((tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)) / 100
end

local quantile, median, spread, num = stats.quantile, stats.median, stats.spread, stats.num


-- One run: n clients on the device; the publisher's calls; every client's arrivals.
local function clients_run(clients, srv, name, n, count)
  local list = {}
  for i = 1, n do list[i] = { path = "/events?pk=" .. PK .. "&dk=" .. DK, count = count } end
  clients:run(name, { host = "127.0.0.1", port = srv.port, clients = list, code = "energy", fast = true,
                      timeout = 120 })
  local _, ok = clients:wait(name, function(s) return s.streaming >= n end, 30)
  assert(ok, "the SSE clients did not connect")
  _, ok = srv:until_status(function(s) return s.subscribers >= n end, 10)
  assert(ok, "the hub does not count the clients")
end

local function finish(clients, name, count)
  local _, ok = clients:wait(name, function(s) return s.done >= s.streaming end, 120)
  clients:stop(name)
  local r = clients:result(name, 30)
  assert(ok, "not every client received " .. count .. " events")
  for i, c in ipairs(r.clients) do
    assert(#c.values == count, format("client %d received %d of %d events", i, #c.values, count))
    for k = 1, count do
      if c.values[k] ~= k then error(format("client %d: event %d out of order", i, k)) end
    end
  end
  return r
end

-- The load nginx's worker.
local function load_worker(clients)
  local master = (shell.read(clients.srv.dir .. "/nginx.pid") or ""):match("%d+")
  return tonumber(shell.output("pgrep -P " .. master .. " | head -n 1"))
end

-- The fan-out burst: events/s, the nginx worker's and the load client's CPU per delivery.
local function fan_out(clients, srv, device, worker, rep)
  local name = "burst" .. rep
  clients_run(clients, srv, name, CLIENTS, BURST)
  local payloads = {}
  for i = 1, BURST do payloads[i] = report(i) end
  local loader = load_worker(clients)
  local cpu0, load0 = cpu(worker), cpu(loader)
  local t0 = core.monotonic() * 1000
  for i = 1, BURST do assert(device:publish(TOPIC, payloads[i], 0)) end
  local r = finish(clients, name, BURST)
  local last = 0
  for _, c in ipairs(r.clients) do last = math.max(last, c.times[BURST]) end
  local seconds = (last - t0) / 1000
  local deliveries = BURST * CLIENTS
  return BURST / seconds, (cpu(worker) - cpu0) / deliveries * 1e6, (cpu(loader) - load0) / deliveries * 1e6
end

-- Paced reports: every (event, client) latency in ms.
local function latency(clients, srv, device, n, rep)
  local name = "lat" .. n .. "_" .. rep
  clients_run(clients, srv, name, n, SAMPLES)
  local sent = {}
  for i = 1, SAMPLES do
    local payload = report(i)
    sent[i] = core.monotonic() * 1000
    assert(device:publish(TOPIC, payload, 0))
    core.sleep(0.01)
  end
  local r = finish(clients, name, SAMPLES)
  local ms = {}
  for _, c in ipairs(r.clients) do
    for i = 1, SAMPLES do ms[#ms + 1] = c.times[i] - sent[i] end
  end
  return median(ms), quantile(ms, 0.99)
end

--- Run the section: `reps` runs (default 3), `out` a folder for the broker's files.
-- @return rows, verdicts (see the module's text)
function _M.run(o)
  o = o or {}
  local reps = o.reps or 3
  local out = o.out or "build/bench"
  fake.user(PHONE, PASSWORD, 1)
  local device, url, stop_broker = broker(out .. "/mosquitto-nginx")
  local srv, clients
  local ok, err = pcall(function()
    srv = example.start { phone = PHONE, password = PASSWORD, realtime_url = url,
                          swaps = { { "worker_processes 2;", "worker_processes 1;" } } }
    local st, up = srv:until_status(function(s) return s.connected end, 30)
    assert(up, "the hub did not connect: " .. json.encode(st))
    local worker = assert(srv:workers()[1], "no nginx worker")
    clients = sse.start()
    -- a first burst warms the JIT and the caches up
    fan_out(clients, srv, device, worker, 0)
    local m = { rate = {}, cpu = {}, load = {}, p50_1 = {}, p99_1 = {}, p50_n = {}, p99_n = {} }
    for rep = 1, reps do
      m.rate[rep], m.cpu[rep], m.load[rep] = fan_out(clients, srv, device, worker, rep)
      m.p50_1[rep], m.p99_1[rep] = latency(clients, srv, device, 1, rep)
      m.p50_n[rep], m.p99_n[rep] = latency(clients, srv, device, CLIENTS, rep)
    end
    local status = srv:status()
    assert(status.dropped == 0, "the hub dropped " .. status.dropped .. " events")
    _M.measured = m
  end)
  if clients then clients:close() end
  if srv then srv:stop() end
  stop_broker()
  if not ok then error(err, 0) end

  local m = _M.measured
  local S = "7"
  local fan = format("realtime in nginx: a %d-report burst fanned out to %d SSE clients, 1 worker", BURST, CLIENTS)
  local lat = "realtime in nginx: device publish -> SSE client reads the event (loopback, MQTT over TLS WebSocket)"
  local rows = {
    { S, fan, "quecapi.realtime.hub, examples/realtime.conf", num(median(m.rate), "ev/s"),
      format("%.0f%%", spread(m.rate)), "", "", "",
      format("%s; nginx worker CPU %.1f us per delivery (a whole core: %s), the load client's %.1f us; "
        .. "every client got every event, in order", num(median(m.rate) * CLIENTS, " deliveries/s"), median(m.cpu),
        num(1e6 / median(m.cpu), " deliveries/s"), median(m.load)) },
    { S, lat, "median, 1 client", num(median(m.p50_1), "ms"), format("%.0f%%", spread(m.p50_1)), "", "", "", "" },
    { S, lat, "p99, 1 client", num(median(m.p99_1), "ms"), format("%.0f%%", spread(m.p99_1)), "", "< 50 ms",
      median(m.p99_1) < 50 and "yes" or "**no**", format("%d reports, one every 10 ms", SAMPLES) },
    { S, lat, format("median, each of %d clients", CLIENTS), num(median(m.p50_n), "ms"),
      format("%.0f%%", spread(m.p50_n)), "", "", "", "" },
    { S, lat, format("p99, each of %d clients", CLIENTS), num(median(m.p99_n), "ms"),
      format("%.0f%%", spread(m.p99_n)), "", "< 50 ms", median(m.p99_n) < 50 and "yes" or "**no**",
      "the clients share one load nginx worker: the last one reads an event after the other 99" },
  }
  local verdicts = {
    { S .. " " .. lat .. ", p99, 1 client", median(m.p99_1) < 50 },
    { S .. " " .. lat .. ", p99, each of " .. CLIENTS .. " clients", median(m.p99_n) < 50 },
  }
  return rows, verdicts
end

-- Alone: print the rows.
if arg and arg[0] and arg[0]:match("realtime_nginx%.lua$") then
  local rows = _M.run { reps = tonumber(os.getenv("BENCH_REPS")) or 3, out = os.getenv("BENCH_OUT") }
  print("| § | measurement | contender | median | spread | ratio | target | met | note |")
  print("|---|---|---|---|---|---|---|---|---|")
  for _, r in ipairs(rows) do print("| " .. table.concat(r, " | ") .. " |") end
end

return _M
