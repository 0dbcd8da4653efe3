--- Section 7 worker: the realtime channel.
--
--   lua bench/realtime.lua decode SECONDS
--       events decoded and typed per second: a property report of four
--       properties (numbers sent as strings, a struct) through
--       quecapi.realtime.events, against json.decode of the same payload alone
--   lua bench/realtime.lua latency SAMPLES
--       from a device's publish to rt:receive returning the typed event, on
--       loopback: a mosquitto of its own (TLS WebSocket listener with the fake
--       cloud's certificate, plain listener for the device), the device a second
--       Paho connection in the same process that publishes one report and waits
--       for it; the App a channel of client:realtime (tokens and thing model
--       from the fake cloud: FAKECLOUD_URL, FAKECLOUD_CA, FAKECLOUD_DIR,
--       BENCH_TOKEN). Median, p99 and max in milliseconds.
local lib = require "lib"
local core = require "quecapi.core"
local json = require "quecapi.json"
local events = require "quecapi.realtime.events"

local format = string.format
local prefix = lib.interpreter .. "_rt_"
local mode = arg[1]

local PK, DK = "p11pLZ", "D0001"
local TOPIC = "q/2/d/qdp11pLZD0001/bus_"

local function int(min, max) return { min = tostring(min), max = tostring(max), step = "1" } end
local PROPERTIES = {
  switch = { code = "switch", dataType = "BOOL" },
  brightness = { code = "brightness", dataType = "INT", specs = int(0, 100) },
  temperature = { code = "temperature", dataType = "FLOAT" },
  color = { code = "color", dataType = "STRUCT", specs = {
    { id = 1, code = "r", dataType = "INT", specs = int(0, 255) },
    { id = 2, code = "g", dataType = "INT", specs = int(0, 255) },
    { id = 3, code = "b", dataType = "INT", specs = int(0, 255) } } },
}

local function report(n)
  return assert(json.encode {
    productKey = PK, deviceKey = DK, type = "MATTR", subtype = "REPORT", createdAt = 1744780781133 + n,
    ticket = "t" .. n, data = { packetId = n, kv = {
      switch = "true", brightness = tostring(n % 101), temperature = 21.5, color = { r = "255", g = 0, b = "16" } } },
  })
end

if mode == "decode" then
  local seconds = tonumber(arg[2]) or 0.5
  local payload = report(55)
  local d = events.new()
  d:add(PK, DK)
  d:set_model(PK, PROPERTIES)
  local ev = assert(d:decode(TOPIC, payload))
  assert(ev.values.brightness == 55 and ev.values.switch == true and ev.values.color.r == 255)
  lib.emit(prefix .. "json", format("%.0f", (lib.rate(function() json.decode(payload) end, seconds, 100))))
  lib.emit(prefix .. "decode", format("%.0f", (lib.rate(function() d:decode(TOPIC, payload) end, seconds, 100))))
  return
end

assert(mode == "latency", "usage: realtime.lua decode SECONDS | latency SAMPLES")
local samples = tonumber(arg[2]) or 2000
local dir = os.getenv("FAKECLOUD_DIR")

local function sh(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end


local work = assert(os.getenv("BENCH_OUT"), "BENCH_OUT is required") .. "/mosquitto-" .. lib.interpreter
assert(sh("mkdir -p " .. work))
local plain_port, ws_port = lib.free_ports()
local conf = assert(io.open(work .. "/mosquitto.conf", "w"))
conf:write(table.concat({
  "per_listener_settings true", "persistence false", "log_dest none", "user root",
  "max_queued_messages 100000", "pid_file " .. work .. "/mosquitto.pid",
  "listener " .. plain_port .. " 127.0.0.1", "allow_anonymous true",
  "listener " .. ws_port .. " 127.0.0.1", "protocol websockets", "allow_anonymous true",
  "certfile " .. dir .. "/server.pem", "keyfile " .. dir .. "/server.key", "",
}, "\n"))
conf:close()
-- (as root it warns that it should not run as root: not news here)
assert(sh("mosquitto -d -c " .. work .. "/mosquitto.conf 2>/dev/null"), "mosquitto did not start")

local ok, err = pcall(function()
  -- the device: a plain MQTT connection to the broker's device listener
  local device
  local deadline = core.monotonic() + 5
  repeat
    device = core.mqtt { url = "tcp://127.0.0.1:" .. plain_port, client_id = "bench-device", keepalive = 40 }
    if not device then core.sleep(0.05) end
  until device or core.monotonic() > deadline
  assert(device, "cannot reach the bench's mosquitto")

  local quecapi = require "quecapi"
  local client = assert(quecapi.new {
    base_url = os.getenv("FAKECLOUD_URL"), ca_file = os.getenv("FAKECLOUD_CA"),
    user_domain = "C.DM.5903.1", user_domain_secret = require("quecapi.fakecloud.config").user_domain_secret,
  })
  assert(client:set_tokens { access_token = assert(os.getenv("BENCH_TOKEN")) })
  local rt = assert(client:realtime { url = "wss://localhost:" .. ws_port .. "/ws/v2",
    ca_file = os.getenv("FAKECLOUD_CA"), devices = { { productKey = PK, deviceKey = DK } }, watchdog = false })
  local times = {}
  for i = 1, samples + 200 do
    local payload = report(i)
    local t0 = core.monotonic()
    assert(device:publish(TOPIC, payload, 0))
    local ev = assert(rt:receive(2))
    local t1 = core.monotonic()
    assert(ev.type == "property" and ev.values.brightness == i % 101, "wrong event")
    if i > 200 then times[#times + 1] = (t1 - t0) * 1000 end -- the first ones warm up
  end
  rt:close()
  device:close()
  table.sort(times)
  local function q(p) return times[math.max(1, math.ceil(#times * p))] end
  lib.emit(prefix .. "lat_p50", format("%.3f", q(0.5)))
  lib.emit(prefix .. "lat_p99", format("%.3f", q(0.99)))
  lib.emit(prefix .. "lat_max", format("%.3f", times[#times]))
end)
local pid = io.open(work .. "/mosquitto.pid")
if pid then
  sh("kill " .. tonumber(pid:read("*a")))
  pid:close()
end
assert(ok, err)
