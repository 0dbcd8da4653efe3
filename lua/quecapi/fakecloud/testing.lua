--- The fake cloud from a test's side: where the running one listens, its control
-- API (seed users, products and devices, read the SMS and email codes it sent,
-- play a device, inject faults, read what it received, drive the realtime
-- channel's broker), a quecapi client configured for it, and an App-side MQTT
-- client of its own (`probe`) to watch the realtime channel.
--
--   local fakecloud = require "quecapi.fakecloud.testing"
--   assert(fakecloud.reset())
--   assert(fakecloud.user { phone = "13800000000", password = "pass1234" })   -- owns 3 devices
--   local client = assert(fakecloud.client())
--   assert(client:login { phone = "13800000000", password = "pass1234" })
--
-- Every function returns its answer, or nil and an error. This is the client
-- side, for your specs: the fake cloud itself (what runs in nginx) never uses
-- quecapi's modules, so it checks the client instead of agreeing with it.
-- @module quecapi.fakecloud.testing

local core = require "quecapi.core"
local json = require "quecapi.json"
local ctl = require "quecapi.fakecloud.ctl"
local config = require "quecapi.fakecloud.config"

local type, pairs, ipairs, tostring, format = type, pairs, ipairs, tostring, string.format
local gsub, byte = string.gsub, string.byte

local _M = {
  --- The fake's App: its user domain and that domain's secret (fixed test values).
  user_domain = config.user_domain,
  user_domain_secret = config.user_domain_secret,
}

--- The running fake cloud: `FAKECLOUD_URL`, `FAKECLOUD_CA`, ... from the
-- environment (`eval "$(quecapi fakecloud env)"`), else from the env file of
-- the fake cloud started in FAKECLOUD_DIR or the default directory.
-- @return the variables, or nil, err
function _M.env()
  local url = os.getenv("FAKECLOUD_URL")
  if url and url ~= "" then
    local env = {}
    for _, name in ipairs(ctl.VARIABLES) do env[name] = os.getenv(name) end
    return env
  end
  local env = ctl.status(ctl.default_dir())
  if env then return env end
  return nil, "no fake cloud is running: start one with `quecapi fakecloud start`"
end

-- The fake cloud in use (its env) and a session trusting its CA.
local current, session

--- Talk to the fake cloud `env` describes (`FAKECLOUD_URL`, `FAKECLOUD_CA`)
-- rather than the one `env()` finds.
-- @return true, or nil, err
function _M.use(env)
  local s, err = core.session { ca_file = env.FAKECLOUD_CA }
  if not s then return nil, err end
  current, session = env, s
  return true
end

local function connect()
  if current then return true end
  local env, err = _M.env()
  if not env then return nil, err end
  return _M.use(env)
end

--- Call the control API: `method`, `path` (below `/_fake/`), an optional body
-- table sent as JSON.
-- @return the decoded answer, or nil, err
function _M.control(method, path, body)
  local ok, err = connect()
  if not ok then return nil, err end
  local text
  if body ~= nil then
    text, err = json.encode(body)
    if not text then return nil, err end
  end
  local status, answer = session:request {
    method = method, url = current.FAKECLOUD_URL .. path, body = text,
    headers = text and { ["Content-Type"] = "application/json" } or nil,
  }
  if not status then return nil, format("%s %s: %s", method, path, tostring(answer)) end
  if status ~= 200 then return nil, format("%s %s: HTTP %d %s", method, path, status, tostring(answer)) end
  return json.decode(answer)
end

local function escape(s)
  return (gsub(tostring(s), "[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

--- Forget everything: users, devices, codes, faults, settings.
function _M.reset() return _M.control("POST", "/_fake/reset") end

--- Change the fake's settings (token lifetimes, `signup_devices`, `clock_offset`,
-- `delay_ms`, `daily_quota`, ...): `{ setting = value }`.
function _M.configure(settings) return _M.control("POST", "/_fake/config", settings) end

--- A user, as if registered: `{ phone (with internationalCode, default "86") or
-- email, password, nickname, userDomain, devices }`. `devices` is how many
-- starter devices the user owns (default 3; 0 for none).
-- @return the uid, or nil, err
function _M.user(u)
  local res, err = _M.control("POST", "/_fake/users", u)
  if not res then return nil, err end
  return res.uid
end

--- Bind devices to a user: `owner` is `{ phone = ... }`, `{ email = ... }` or
-- `{ uid = ... }`; `devices` a list of `{ productKey, deviceKey, deviceName,
-- online, values = { code = value } }` or a count of generated ones.
function _M.devices(owner, devices)
  local body = {}
  for k, v in pairs(owner) do body[k] = v end
  if type(devices) == "number" then body.count = devices else body.devices = devices end
  return _M.control("POST", "/_fake/devices", body)
end

--- A product with its thing model: `{ productKey, productName, tsl = { properties, services, events } }`.
function _M.product(p) return _M.control("POST", "/_fake/products", p) end

--- What a device holds and received: values, writes, service calls, raw data.
function _M.device(productKey, deviceKey)
  return _M.control("GET", "/_fake/device?productKey=" .. escape(productKey) .. "&deviceKey=" .. escape(deviceKey))
end

--- The device speaks: `{ online, values = { code = value }, ts, as_strings }`
-- (reported values go to its history). On the realtime channel it publishes
-- onl_ when `online` is given (true, false, or the value 0, 1, 2) and a bus_
-- report of the values given, numbers as strings with `as_strings`.
function _M.report(productKey, deviceKey, fields)
  local body = { productKey = productKey, deviceKey = deviceKey }
  for k, v in pairs(fields or {}) do body[k] = v end
  return _M.control("POST", "/_fake/device", body)
end

--- The last SMS code sent to a phone (`codeType` default 3, registration).
function _M.sms_code(phone, codeType, internationalCode)
  local res, err = _M.control("GET", format("/_fake/code?phone=%s&codeType=%s&internationalCode=%s",
    escape(phone), escape(codeType or 3), escape(internationalCode or "86")))
  if not res then return nil, err end
  return res.code
end

--- The last code emailed to an address (`emailType` default 1, registration).
function _M.email_code(email, emailType)
  local res, err = _M.control("GET", "/_fake/code?email=" .. escape(email) .. "&emailType=" .. escape(emailType or 1))
  if not res then return nil, err end
  return res.code
end

--- Make the next calls fail: `{ kind, path, count, ... }` (kinds: the README's fault list).
function _M.fault(f) return _M.control("POST", "/_fake/faults", f) end

--- Drop every queued fault.
function _M.clear_faults() return _M.control("DELETE", "/_fake/faults") end

--- Tokens run out now: `{ phone | email | uid, access_only }`.
function _M.expire(who) return _M.control("POST", "/_fake/expire", who or {}) end

--- The API requests received after sequence number `since` (default all kept),
-- and the newest sequence number.
function _M.requests(since)
  local res, err = _M.control("GET", "/_fake/requests?since=" .. escape(since or 0))
  if not res then return nil, err end
  return res.requests or {}, res.seq
end

--- The realtime channel's topics: `topic(pk, dk, "bus_")` is
-- "q/2/d/qd<pk><dk>/bus_" (also "ack_", "onl_"), `topic(pk, dk, "sys_")` the
-- command topic "q/1/d/qd<pk><dk>/sys_".
function _M.topic(productKey, deviceKey, kind)
  local direction = kind == "sys_" and "1" or "2"
  return "q/" .. direction .. "/d/qd" .. productKey .. deviceKey .. "/" .. kind
end

--- The broker: `{ url, broker = "running" | "frozen" | "stopped", connected,
-- clients = { client ids }, connects, disconnects, refused, restarts,
-- start_ms, commands = { the commands Apps published, with their outcome } }`.
function _M.broker() return _M.control("GET", "/_fake/broker") end

--- The most Apps connected at once since App connect number `since`, counting
-- client ids that start with `prefix` (all when nil) -> `{ connects, peak, at }`.
function _M.sessions(since, prefix)
  return _M.control("GET", "/_fake/broker/sessions?since=" .. escape(since or 0) .. "&prefix=" .. escape(prefix or ""))
end

--- Disconnect every App (the broker stays up) -> `{ dropped, connected }`.
function _M.drop() return _M.control("POST", "/_fake/broker/drop") end

--- Stop the broker and start it again on the same port -> `{ start_ms }`.
function _M.restart_broker() return _M.control("POST", "/_fake/broker/restart") end

--- The broker stops answering (until `thaw()`, or for `seconds`).
function _M.freeze(seconds) return _M.control("POST", "/_fake/broker/freeze", { seconds = seconds }) end

--- The broker answers again.
function _M.thaw() return _M.control("POST", "/_fake/broker/thaw") end

--- An error for one client on q/1/u/<clientId>/sys_: `{ clientId, code, msg,
-- productKey, deviceKey, msgId }` (4021 offline, 4007 not bound, 4026 quota)
-- -> `{ connected }`, whether that client is connected.
function _M.broker_error(e) return _M.control("POST", "/_fake/broker/error", e) end

--- `count` (default 1000) bus_ reports in a row from a device, kv `{ code = i }`
-- for i = 1..count (`code` default "brightness"; `as_strings` sends "i") ->
-- `{ count, ms }`. Nothing is recorded on the device.
function _M.burst(productKey, deviceKey, opts)
  local body = { productKey = productKey, deviceKey = deviceKey }
  for k, v in pairs(opts or {}) do body[k] = v end
  return _M.control("POST", "/_fake/device/burst", body)
end

local function shell_quote(s)
  return "'" .. gsub(tostring(s), "'", "'\\''") .. "'"
end

-- An App-side MQTT client of its own (probe.py in the fake's directory:
-- python3 paho-mqtt), fed commands on its stdin, its events read from a file;
-- `client_id` is the id it connected with.
local Probe = {}
Probe.__index = Probe

--- An independent App-side client of the realtime channel (python3 with
-- paho-mqtt; nothing of quecapi's MQTT code), to check the broker and the
-- device side: `opts` `token` (the password: the access token, with
-- "Bearer "), `client_id` (default a fresh one), `username` (default "", the
-- flag set; false for none), `keepalive` (30), `url` (FAKECLOUD_MQTT_URL), `ca`
-- (FAKECLOUD_CA), `insecure`, `timeout` (5 s for the CONNACK).
-- @return the probe and its connack event (`rc` 0 when accepted, 5 "not
-- authorized"), or nil, err (no CONNACK in time: the probe, closed, is the third value)
function _M.probe(opts)
  opts = opts or {}
  local ok, err = connect()
  if not ok then return nil, err end
  local python, url = opts.python or current.FAKECLOUD_PYTHON, opts.url or current.FAKECLOUD_MQTT_URL
  if not python or python == "" or not url or url == "" then
    return nil, "this fake cloud runs without its broker (no FAKECLOUD_MQTT_URL)"
  end
  local out = os.tmpname()
  local pipe = io.popen(format("%s %s %s >/dev/null 2>>%s", shell_quote(python),
    shell_quote(current.FAKECLOUD_DIR .. "/probe.py"), shell_quote(out), shell_quote(out .. ".err")), "w")
  if not pipe then return nil, "cannot start the probe" end
  local client_id = opts.client_id or format("probe_%.0f_%d", core.now_ms(), math.random(1e6))
  local self = setmetatable({ pipe = pipe, out = out, events = {}, cursor = 0, offset = 0, partial = "",
                              client_id = client_id }, Probe)
  local username = opts.username
  if username == nil then username = "" elseif username == false then username = json.null end
  self:send { op = "connect", url = url, ca = opts.ca or current.FAKECLOUD_CA, password = opts.token,
              client_id = client_id, username = username, keepalive = opts.keepalive or 30,
              insecure = opts.insecure or false }
  local ev = self:wait(function(e) return e.ev == "connack" or e.ev == "exit" end, opts.timeout or 5)
  if not ev or ev.ev ~= "connack" then
    self:close()
    return nil, "no CONNACK" .. (ev and " (the probe ended: " .. self:describe() .. ")" or " in time"), self
  end
  return self, ev
end

--- Send one command to the probe (`{ op = "subscribe" | "unsubscribe" | "publish" | "close", ... }`).
function Probe:send(cmd)
  if not self.pipe then return nil, "the probe is closed" end
  self.pipe:write(assert(json.encode(cmd)), "\n")
  self.pipe:flush()
  return true
end

--- Read the events that arrived since the last look; every event so far.
-- Events: connack {rc}, suback {mid, granted}, published {mid}, puback {mid},
-- message {topic, payload, qos, data = the decoded payload}, disconnect {rc},
-- error {msg}, exit; each with `t`, the probe's clock (epoch seconds).
function Probe:poll()
  local f = io.open(self.out, "rb")
  if not f then return self.events end
  f:seek("set", self.offset)
  local chunk = f:read("*a") or ""
  f:close()
  self.offset = self.offset + #chunk
  local text = self.partial .. chunk
  local last = 1
  for line, stop in text:gmatch("([^\n]*)\n()") do
    local ev = json.decode(line)
    if type(ev) == "table" then
      if ev.ev == "message" then ev.data = json.decode(ev.payload or "") end
      if ev.ev == "exit" then self.ended = true end
      self.events[#self.events + 1] = ev
    end
    last = stop
  end
  self.partial = text:sub(last)
  return self.events
end

--- The first event after the last one `wait` returned that `match` accepts
-- (an event name, or a function of the event), waiting up to `timeout`
-- seconds (default 5). -> the event, or nil, "timeout".
function Probe:wait(match, timeout)
  local pred = match
  if type(match) == "string" then pred = function(e) return e.ev == match end end
  local deadline = core.monotonic() + (timeout or 5)
  repeat
    self:poll()
    for i = self.cursor + 1, #self.events do
      if pred(self.events[i]) then
        self.cursor = i
        return self.events[i]
      end
    end
    if core.monotonic() >= deadline then return nil, "timeout" end
    core.sleep(0.01)
  until false
end

--- The messages received so far (on `topic` when given), oldest first.
function Probe:messages(topic)
  local out = {}
  for _, e in ipairs(self:poll()) do
    if e.ev == "message" and (topic == nil or e.topic == topic) then out[#out + 1] = e end
  end
  return out
end

--- Wait until `n` messages (on `topic` when given) arrived, up to `timeout`
-- seconds (default 5). -> the messages, or nil, "timeout", those that came.
function Probe:wait_messages(n, topic, timeout)
  local deadline = core.monotonic() + (timeout or 5)
  repeat
    local list = self:messages(topic)
    if #list >= n then return list end
    if core.monotonic() >= deadline then return nil, "timeout", list end
    core.sleep(0.01)
  until false
end

--- Subscribe to `topics` (a list, or one topic) and wait for the SUBACK.
-- -> the suback event (`granted`: the QoS per topic, 128 refused), or nil, err
function Probe:subscribe(topics, qos)
  if type(topics) == "string" then topics = { topics } end
  local ok, err = self:send { op = "subscribe", topics = topics, qos = qos or 0 }
  if not ok then return nil, err end
  return self:wait("suback")
end

--- Publish `payload` (a string, or a table sent as JSON) on `topic`; with qos
-- 1 wait for the PUBACK. -> the published (or puback) event, or nil, err
function Probe:publish(topic, payload, qos)
  if type(payload) == "table" then payload = assert(json.encode(payload)) end
  local ok, err = self:send { op = "publish", topic = topic, payload = payload or "", qos = qos or 0 }
  if not ok then return nil, err end
  local published
  published, err = self:wait("published")
  if not published or (qos or 0) == 0 then return published, err end
  return self:wait(function(e) return e.ev == "puback" and e.mid == published.mid end)
end

-- What the probe wrote to its error output, on one line.
function Probe:describe()
  local f = io.open(self.out .. ".err", "rb")
  local text = f and f:read("*a") or ""
  if f then f:close() end
  return (text:gsub("%s+", " "))
end

--- Disconnect cleanly and end the probe (waits up to 3 s).
function Probe:close()
  if not self.pipe then return true end
  self:poll()
  if not self.ended then
    self:send { op = "close" }
    self:wait("exit", 3)
  end
  self.pipe:close()
  self.pipe = nil
  os.remove(self.out)
  os.remove(self.out .. ".err")
  return true
end

--- A quecapi client for the fake cloud; `overrides` replaces any option.
-- @return the client, or nil, err
function _M.client(overrides)
  local ok, err = connect()
  if not ok then return nil, err end
  local options = {
    base_url = current.FAKECLOUD_URL, ca_file = current.FAKECLOUD_CA,
    user_domain = config.user_domain, user_domain_secret = config.user_domain_secret,
  }
  for k, v in pairs(overrides or {}) do options[k] = v end
  return require("quecapi").new(options)
end

return _M
