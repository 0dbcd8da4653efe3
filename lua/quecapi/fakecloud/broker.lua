--- The fake cloud's MQTT broker, from quecapi.fakecloud.ctl: a real mosquitto
-- with a TLS WebSocket listener for Apps (`wss://localhost:PORT/ws/v2`) and a
-- plain loopback listener for the fake's device side, both on 127.0.0.1.
--
-- At every start it writes into the run directory what it runs: the broker's
-- plugin (C source from quecapi.fakecloud.broker_plugin, compiled there with
-- `cc -shared -fPIC` when it changed), `mosquitto.conf`, the device side
-- (`device.py`, quecapi.fakecloud.device_py) and the test client (`probe.py`,
-- quecapi.fakecloud.probe_py). The device side starts mosquitto as its child
-- and tells when both are ready; nginx reaches it on a loopback port.
--
-- Files in the run directory besides those: `broker-tokens` (the valid access
-- tokens, rewritten by nginx), `broker-clients` (counters and connected Apps,
-- rewritten by the plugin; `broker-clients.log`, a line per App connect),
-- `mosquitto.log`, `device.log`, `device.ready`,
-- `device.pid`, `mosquitto.pid`.
--
-- Plain Lua and shell commands (cc, python3, mosquitto), as ctl.
-- @module quecapi.fakecloud.broker

local shell = require "quecapi.fakecloud.shell"
local plugin_source = require "quecapi.fakecloud.broker_plugin"
local device_source = require "quecapi.fakecloud.device_py"
local probe_source = require "quecapi.fakecloud.probe_py"

local format, gsub, find, match = string.format, string.gsub, string.find, string.match
local tostring, tonumber, ipairs = tostring, tonumber, ipairs

local _M = {}

--- The device side's user name on the plain listener (its password is made per start).
_M.DEVICE_USER = "fakecloud-device"

local quote, run, read_text, write_text = shell.quote, shell.run, shell.read, shell.write

local function sleep(seconds)
  run("sleep " .. seconds)
end

local function random_hex(n)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(n) or tostring(os.time()) .. tostring(math.random())
  if f then f:close() end
  return (gsub(bytes, ".", function(c) return format("%02x", c:byte()) end))
end

-- A JSON string (the device side's settings are written without a JSON library).
local function json_string(s)
  return '"' .. gsub(s, '[%c"\\]', function(c) return format("\\u%04x", c:byte()) end) .. '"'
end

-- The first of `chosen` (a setting, may be nil) and `candidates` that passes `check`.
local function first_command(chosen, candidates, check)
  if chosen and chosen ~= "" then return run(check(chosen)) and chosen or nil end
  for _, c in ipairs(candidates) do
    if run(check(c)) then return c end
  end
end

-- The tools it needs, each found or named in the error: mosquitto (MOSQUITTO),
-- a C compiler (CC), python3 with paho-mqtt (PYTHON).
local function tools(getenv)
  local mosquitto = first_command(getenv("MOSQUITTO"), { "mosquitto", "/usr/sbin/mosquitto" },
    function(c) return "command -v " .. quote(c) .. " >/dev/null 2>&1" end)
  if not mosquitto then
    return nil, "the fake cloud's broker needs mosquitto (Debian: apt-get install mosquitto; MOSQUITTO names another)"
  end
  -- CC may carry words of its own ("ccache gcc"): the first is the command
  local cc = first_command(getenv("CC"), { "cc", "gcc", "clang" },
    function(c) return "command -v " .. quote(match(c, "^%s*(%S+)") or c) .. " >/dev/null 2>&1" end)
  if not cc then
    return nil, "the fake cloud's broker needs a C compiler to build its mosquitto plugin"
      .. " (Debian: apt-get install gcc mosquitto-dev; CC names another)"
  end
  -- Debian's own python3 first: another one earlier on PATH may lack paho
  local python = first_command(getenv("PYTHON"), { "/usr/bin/python3", "python3" },
    function(c) return quote(c) .. " -c 'import paho.mqtt.client' >/dev/null 2>&1" end)
  if not python then
    return nil, "the fake cloud's device side needs python3 with paho-mqtt"
      .. " (Debian: apt-get install python3-paho-mqtt; PYTHON names another python3)"
  end
  return { mosquitto = mosquitto, cc = cc, python = python }
end

-- The plugin, compiled again only when its source changed.
local function build_plugin(dir, cc)
  local c, so = dir .. "/broker-plugin.c", dir .. "/broker-plugin.so"
  if read_text(c) == plugin_source and read_text(so) then return true end
  local ok, err = write_text(c, plugin_source)
  if not ok then return nil, "cannot write " .. c .. ": " .. tostring(err) end
  os.remove(so)
  local log = dir .. "/broker-plugin.log"
  if not run(format("%s -shared -fPIC -O2 -Wall -Wextra -o %s %s >%s 2>&1", cc, quote(so), quote(c), quote(log))) then
    os.remove(c)
    return nil, "cannot compile the broker's plugin with " .. cc .. " (Debian: apt-get install mosquitto-dev):\n"
      .. (read_text(log) or "")
  end
  return true
end

local CONF = [[
# The fake cloud's broker, rendered by quecapi.fakecloud.broker.
per_listener_settings false
allow_anonymous false
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
# a burst of reports must not be cut short by the default queue of 1000
max_queued_messages 100000
# as root, the invoking user (not "mosquitto", who may not read this directory)
user @USER@
plugin @DIR@/broker-plugin.so
plugin_opt_tokens @DIR@/broker-tokens
plugin_opt_stats @DIR@/broker-clients
plugin_opt_device_user @DEVICE_USER@
plugin_opt_device_password @DEVICE_PASSWORD@

# Apps: MQTT over secure WebSocket (any path; the platform's is /ws/v2)
listener @WSS_PORT@ 127.0.0.1
protocol websockets
# without it libwebsockets listens on every address, IPv6 included
socket_domain ipv4
certfile @DIR@/server.pem
keyfile @DIR@/server.key

# the fake's device side
listener @MQTT_PORT@ 127.0.0.1
protocol mqtt
]]

local function pid_in(path)
  return tonumber(match(read_text(path) or "", "^%s*(%d+)"))
end

-- ctl has loaded this module: requiring it back is no cycle
local function alive(pid)
  return require("quecapi.fakecloud.ctl").alive(pid)
end

--- The URL Apps connect to.
function _M.url(wss_port)
  return "wss://localhost:" .. wss_port .. "/ws/v2"
end

--- Start the broker and the device side.
-- @tparam string dir the run directory (certificates made)
-- @tparam table opts `wss_port`, `mqtt_port`, `http_port` (nginx's plain
-- port, where the device side posts commands), `user`, `getenv`
-- @return `{ device_port, url, python, start_ms }`, or nil, err, retry (true when a port was taken)
function _M.start(dir, opts)
  local getenv = opts.getenv or os.getenv
  local found, err = tools(getenv)
  if not found then return nil, err end
  local ok
  ok, err = build_plugin(dir, found.cc)
  if not ok then return nil, err end
  _M.stop(dir)
  local password = random_hex(16)
  local values = {
    DIR = dir, USER = opts.user, DEVICE_USER = _M.DEVICE_USER, DEVICE_PASSWORD = password,
    WSS_PORT = tostring(opts.wss_port), MQTT_PORT = tostring(opts.mqtt_port),
  }
  local conf = gsub(CONF, "@([%u_]+)@", function(name) return values[name] end)
  local config = format('{"dir": %s, "mosquitto": %s, "broker_conf": %s, "mqtt_port": %d, "http_port": %d,'
    .. ' "user": %s, "password": %s}', json_string(dir), json_string(found.mosquitto),
    json_string(dir .. "/mosquitto.conf"), opts.mqtt_port, opts.http_port, json_string(_M.DEVICE_USER),
    json_string(password))
  for _, file in ipairs {
    { "mosquitto.conf", conf }, { "device.json", config }, { "device.py", device_source },
    { "probe.py", probe_source }, { "broker-tokens", "" }, { "mosquitto.log", "" }, { "device.log", "" },
  } do
    ok, err = write_text(dir .. "/" .. file[1], file[2])
    if not ok then return nil, "cannot write " .. dir .. "/" .. file[1] .. ": " .. tostring(err) end
  end
  for _, name in ipairs { "broker-clients", "broker-clients.log", "device.ready", "device.failed" } do
    os.remove(dir .. "/" .. name)
  end
  run(format("cd %s && umask 077 && %s device.py device.json </dev/null >>device.log 2>&1 &",
    quote(dir), quote(found.python)))
  for _ = 1, 300 do
    local ready = read_text(dir .. "/device.ready")
    if ready then
      local port = tonumber(match(ready, '"port": *(%d+)'))
      return { device_port = port, url = _M.url(opts.wss_port), python = found.python,
               start_ms = tonumber(match(ready, '"start_ms": *([%d%.]+)')) }
    end
    local failed = read_text(dir .. "/device.failed")
    if failed then
      _M.stop(dir)
      return nil, "the fake cloud's broker did not start:\n" .. failed,
        find(failed, "in use", 1, true) ~= nil or find(failed, "Unable to create websockets listener", 1, true) ~= nil
    end
    local pid = pid_in(dir .. "/device.pid")
    if pid and not alive(pid) then break end
    sleep(0.05)
  end
  local log = read_text(dir .. "/device.log") or ""
  _M.stop(dir)
  return nil, "the fake cloud's device side did not start:\n" .. log
end

--- Stop the device side and its broker (nothing to do when none runs).
function _M.stop(dir)
  local device = pid_in(dir .. "/device.pid")
  if alive(device) then
    run("kill " .. device)
    for _ = 1, 100 do
      if not alive(device) then break end
      sleep(0.05)
    end
  end
  -- the broker ends with the device side; a leftover one all the same
  local broker = pid_in(dir .. "/mosquitto.pid")
  if alive(broker) and find(read_text("/proc/" .. broker .. "/comm") or "mosquitto", "mosquitto", 1, true) then
    run("kill -CONT " .. broker .. " 2>/dev/null; kill " .. broker)
  end
  for _, name in ipairs { "device.pid", "device.ready", "mosquitto.pid" } do os.remove(dir .. "/" .. name) end
  return true
end

return _M
