--- The realtime channel as the caller sees it (`client:realtime{...}`): one
-- session with the platform's broker, kept up, turned into events.
--
-- This module owns the session's life and nothing about bytes: it is given a
-- `connect` function that opens a link to the broker (the C core's Paho client
-- in plain Lua, see `quecapi.realtime.connection`; cosockets in nginx) with
-- `subscribe`, `unsubscribe`, `publish`, `receive` and `close`. What it does:
--
--  - connect: the access token renewed when about to expire (the client's
--    single-flight renewal), a fresh client id `qu_<uid>_<epoch-ms>`, the token
--    as the password (with its `Bearer ` prefix, as login returns it); a CONNECT
--    refused for the token renews it and tries once more; then every device's
--    topics subscribed, each SUBACK waited for;
--  - receive: the next message decoded (`quecapi.realtime.events`); a message
--    that does not decode is dropped with a log line, never raised;
--  - a lost connection (the link says so; keepalive runs inside the link) or an
--    inbound silence longer than `watchdog` seconds closes the link, and the
--    channel connects again after a backoff with jitter
--    (`quecapi.realtime.backoff`), with a fresh token and client id, subscribes
--    again and reads every device's properties over REST (`get_properties`):
--    reports sent while it was away are gone, so it hands out one `reconnected`
--    event per device with those `values`;
--  - never two sessions: the old link is closed before a new one opens, and a
--    process opens one channel per account at a time (the platform lets one
--    session per account work; a second makes commands fail);
--  - close() ends it at any point, also between the attempts of a reconnect.
--
-- Waits are cut into slices of at most a quarter second, so a signal (Ctrl-C in
-- the command-line tool) is seen promptly by the interpreter.
-- @module quecapi.realtime.channel

local things = require "quecapi.things"
local time = require "quecapi.time"
local redact = require "quecapi.redact"
local topics = require "quecapi.realtime.topics"
local events = require "quecapi.realtime.events"
local commands = require "quecapi.realtime.commands"
local backoff = require "quecapi.realtime.backoff"

local type, pairs, ipairs, tostring, setmetatable, next = type, pairs, ipairs, tostring, setmetatable, next
local format, find, match, sub, lower = string.format, string.find, string.match, string.sub, string.lower
local min = math.min
local remove = table.remove
local monotonic = time.monotonic

local _M = {}

--- Defaults of the options (seconds, bytes).
_M.DEFAULTS = {
  keepalive = 40,        -- MQTT keepalive (the platform's Apps use 40; 25-90 seen working)
  watchdog = 300,        -- reconnect after this long without any message (false: never)
  connect_timeout = 10,  -- TCP + TLS + WebSocket + CONNACK, and each SUBACK
  max_message = 1024 * 1024, -- larger messages are dropped
}

-- How long one wait lasts at most: the interpreter sees a signal between two.
local SLICE = 0.25
-- Devices per SUBSCRIBE (six topics each).
local BATCH = 10
-- How long the token renewal before a connect may take.
local TOKEN_DEADLINE = 30

local OPTIONS = {
  devices = true, url = true, ca_file = true, keepalive = true, watchdog = true, connect_timeout = true,
  max_message = true,
}

-- Failure kinds after which connecting again cannot help.
local FATAL = { usage = true, config = true, auth = true }

-- Open channels per account ("<url> <uid>"), weakly held: one session per account.
local open_channels = setmetatable({}, { __mode = "v" })

-- The insecure-TLS warning, once per URL in a process.
local warned_insecure = {}

local Channel = {}
local mt = { __index = Channel }

local function usage(what, err)
  return nil, "realtime: " .. (what and (what .. ": ") or "") .. err, nil, "usage"
end

-- A topic or other text from the network, fit for one log line.
local function shown(s)
  s = redact.line(tostring(s))
  if #s > 200 then s = sub(s, 1, 200) .. "..." end
  return s
end

-- ------------------------------------------------------------------------
-- options
-- ------------------------------------------------------------------------

local function positive(v, max)
  return type(v) == "number" and v > 0 and v <= max
end

local function is_loopback(host)
  return host == "localhost" or host == "[::1]" or find(host, "^127%.%d+%.%d+%.%d+$") ~= nil
end

-- wss:// anywhere; ws:// only to this machine (the token is the password).
local function check_url(url)
  if type(url) ~= "string" then return nil, "url must be a string" end
  local scheme, rest = match(url, "^(%a[%w+.%-]*)://(.+)$")
  if not scheme or find(url, "[%s%c]") then return nil, "url must be a wss:// URL" end
  scheme = lower(scheme)
  if scheme ~= "wss" and scheme ~= "ws" then return nil, "url must be a wss:// URL" end
  local host = match(rest, "^(%[[^%]]+%])") or match(rest, "^([^:/]+)")
  if not host then return nil, "url has no host" end
  if scheme == "ws" and not is_loopback(lower(host)) then
    return nil, "url is plain ws:// to " .. shown(host) .. ": the access token would cross the network unencrypted "
      .. "(use wss://)"
  end
  return true
end

-- The devices of a list, checked, without repeats: { {productKey, deviceKey}, ... }.
local function device_list(list, what)
  if type(list) ~= "table" then return nil, what .. " must be a list of { productKey, deviceKey }" end
  local out, seen = {}, {}
  for i, d in ipairs(list) do
    if type(d) ~= "table" then return nil, format("%s[%d] must be a table { productKey, deviceKey }", what, i) end
    local problem = topics.key_problem(d.productKey)
    if problem then return nil, format("%s[%d].productKey %s", what, i, problem) end
    problem = topics.key_problem(d.deviceKey)
    if problem then return nil, format("%s[%d].deviceKey %s", what, i, problem) end
    local key = d.productKey .. "\0" .. d.deviceKey
    if not seen[key] then
      seen[key] = true
      out[#out + 1] = { productKey = d.productKey, deviceKey = d.deviceKey }
    end
  end
  if next(list) ~= nil and #out == 0 and list[1] == nil then
    return nil, what .. " must be a list of { productKey, deviceKey }"
  end
  return out
end

local function check_options(opts)
  if type(opts) ~= "table" then return nil, "options must be a table (devices, url, ...)" end
  for k in pairs(opts) do
    if not OPTIONS[k] then return nil, format("unknown option '%s'", shown(k)) end
  end
  if opts.devices == nil then return nil, "devices is required (a list, which may be empty)" end
  if opts.ca_file ~= nil and type(opts.ca_file) ~= "string" then return nil, "ca_file must be a string" end
  if opts.keepalive ~= nil and not (positive(opts.keepalive, 65535) and opts.keepalive % 1 == 0) then
    return nil, "keepalive must be a whole number of seconds between 1 and 65535"
  end
  if opts.watchdog ~= nil and opts.watchdog ~= false and not positive(opts.watchdog, 1e9) then
    return nil, "watchdog must be a positive number of seconds, or false"
  end
  if opts.connect_timeout ~= nil and not positive(opts.connect_timeout, 3600) then
    return nil, "connect_timeout must be a positive number of seconds"
  end
  if opts.max_message ~= nil and not positive(opts.max_message, 256 * 1024 * 1024) then
    return nil, "max_message must be a positive number of bytes"
  end
  return true
end

-- ------------------------------------------------------------------------
-- the session
-- ------------------------------------------------------------------------

-- Client ids never repeat in a process, even two connects within a millisecond.
local last_id_ms = 0

local function client_id(self, uid)
  local ms = self.client:now_ms()
  if ms <= last_id_ms then ms = last_id_ms + 1 end
  last_id_ms = ms
  return format("qu_%s_%.0f", uid, ms)
end

-- The thing model of each product not yet known; nil, err, code, kind on failure.
local function load_models(self, devices, what)
  for _, d in ipairs(devices) do
    local pk = d.productKey
    if not self.models[pk] then
      local m, err, code, kind = things.model(self.client, pk, "realtime: " .. what)
      if not m then return nil, err, code, kind end
      self.models[pk] = m
      self.decoder:set_model(pk, m.properties)
    end
  end
  return true
end

-- Subscribe the devices' topics on a link, BATCH devices per SUBSCRIBE.
-- -> true, and the topics the broker refused (nil: none); or nil, err, kind.
local function subscribe(link, devices)
  local list, refused = {}, nil
  for i, d in ipairs(devices) do
    for _, t in ipairs(topics.device_topics(d.productKey, d.deviceKey)) do list[#list + 1] = t end
    if i % BATCH == 0 or i == #devices then
      local ok, these, kind = link:subscribe(list, 0)
      if not ok then return nil, these, kind end
      for _, t in ipairs(these or {}) do
        refused = refused or {}
        refused[#refused + 1] = t
      end
      list = {}
    end
  end
  return true, refused
end

local function unsubscribe(link, devices)
  local list = {}
  for i, d in ipairs(devices) do
    for _, t in ipairs(topics.device_topics(d.productKey, d.deviceKey)) do list[#list + 1] = t end
    if i % BATCH == 0 or i == #devices then
      local ok, err, kind = link:unsubscribe(list)
      if not ok then return nil, err, kind end
      list = {}
    end
  end
  return true
end

-- One session: token, client id, CONNECT (renewing the token once when it is
-- refused), every SUBACK. -> true, or nil, err, code, kind, fatal.
local function connect(self)
  local deadline = monotonic() + TOKEN_DEADLINE
  local tokens = self.tokens
  local token, err, code, kind = tokens:access(deadline)
  if not token then
    return nil, "realtime: no access token: " .. tostring(err), code, kind, FATAL[kind] or kind == "platform"
  end
  local uid
  uid, err = self.client:user_id()
  if not uid then
    return nil, "realtime: cannot read the user id of the access token: " .. tostring(err), nil, "auth", true
  end
  local key = self.url .. " " .. uid
  local other = open_channels[key]
  if other and other ~= self and not other.closed then
    return nil, "realtime: this account already has an open channel in this process (close it first: "
      .. "the platform keeps one session per account)", nil, "usage", true
  end
  self.key = key
  local link, id, connack
  for attempt = 1, 2 do
    id = client_id(self, uid)
    link, err, kind, connack = self.connect_link {
      url = self.url, client_id = id, username = "", password = token, keepalive = self.keepalive,
      timeout = self.connect_timeout, ca_file = self.ca_file, verify = self.verify, max_message = self.max_message,
    }
    if link or kind ~= "auth" or attempt == 2 then break end
    self.log("warn", "realtime: the broker refused the access token (%s): renewing it and connecting again", err)
    local rerr, rcode, rkind
    token, rerr, rcode, rkind = tokens:renew(token, monotonic() + TOKEN_DEADLINE)
    if not token then
      return nil, "realtime: the broker refused the access token and renewing it failed: " .. tostring(rerr), rcode,
        rkind == "timeout" and "timeout" or "auth", rkind ~= "timeout"
    end
  end
  if not link then
    if kind == "auth" then
      return nil, "realtime: the broker refused a renewed access token: " .. tostring(err), connack, "auth", true
    end
    return nil, "realtime: " .. tostring(err), connack, kind, kind == "usage"
  end
  local ok, refused, skind
  ok, refused, skind = subscribe(link, self.devices)
  if not ok then
    link:close()
    return nil, "realtime: subscribing failed: " .. tostring(refused), nil, skind == "closed" and "network" or skind
  end
  if refused then
    local what = format("the broker refused the subscription to %s%s", shown(refused[1]),
      #refused > 1 and format(" and %d more", #refused - 1) or "")
    if not self.link_ever then
      link:close()
      return nil, "realtime: " .. what, nil, "platform", true
    end
    -- a device unbound meanwhile, say: the others must not lose their channel
    self.log("warn", "realtime: %s; going on without it (tried again at the next reconnect)", what)
  end
  if self.closed then -- closed while this connect ran (from a log hook, say)
    link:close()
    return nil, "closed", nil, "usage", true
  end
  self.link, self.client_id, self.link_ever = link, id, true
  self.connected_at, self.last_inbound = monotonic(), monotonic()
  open_channels[key] = self
  return true
end

-- Close the link and plan the next attempt.
local function lose(self, why)
  if self.link then
    self.link:close()
    self.link = nil
  end
  local uptime = self.connected_at and monotonic() - self.connected_at
  self.connected_at = nil
  local delay = self.backoff:lost(uptime)
  self.retry_at = monotonic() + delay
  self.lost_at = self.lost_at or monotonic()
  self.log("warn", "realtime: %s; connecting again in %.1fs", why, delay)
end

local function push(self, ev)
  local q = self.queue
  q[#q + 1] = ev
end

-- After a reconnect: every device's values, read over REST.
local function read_back(self)
  for _, d in ipairs(self.devices) do
    local ev = { type = "reconnected", productKey = d.productKey, deviceKey = d.deviceKey }
    local values, res, code, kind = self.client:get_properties(d.productKey, d.deviceKey)
    if values then
      ev.values, ev.raw = values, res
    else
      ev.err, ev.code, ev.kind = res, code, kind
      self.log("warn", "realtime: reading %s/%s after the reconnect failed: %s", d.productKey, d.deviceKey,
        tostring(res))
    end
    push(self, ev)
  end
end

local function reconnect(self)
  self.attempts = self.attempts + 1
  local ok, err, code, kind, fatal = connect(self)
  if self.closed then return end
  if ok then
    self.log("info", "realtime: connected again after %.1fs (%d attempt%s)", monotonic() - self.lost_at,
      self.attempts, self.attempts == 1 and "" or "s")
    self.lost_at, self.attempts = nil, 0
    read_back(self)
    return
  end
  if fatal then
    self.failure = { err, code, kind }
    -- this channel is done: another one may take the account's session
    if self.key and open_channels[self.key] == self then open_channels[self.key] = nil end
    self.log("error", "%s: giving up", err)
    return
  end
  local delay = self.backoff:failed()
  self.retry_at = monotonic() + delay
  self.log("warn", "%s; connecting again in %.1fs", err, delay)
end

-- A message from the link -> an event, or nil (dropped, logged).
local function decode(self, topic, payload, size)
  if payload == false then
    self.log("warn", "realtime: dropped a %d-byte message on %s (larger than max_message, %d bytes)", size or 0,
      shown(topic), self.max_message)
    return nil
  end
  local ev, why = self.decoder:decode(topic, payload)
  if not ev then
    self.log("warn", "realtime: dropped a %d-byte message on %s: %s", #tostring(payload), shown(topic), why)
    return nil
  end
  if ev.invalid then
    for code, reason in pairs(ev.invalid) do
      self.log("warn", "realtime: %s/%s reported a value its thing model rejects (%s): %s", ev.productKey,
        ev.deviceKey, shown(code), shown(reason))
    end
  end
  return ev
end

-- ------------------------------------------------------------------------
-- the public methods
-- ------------------------------------------------------------------------

--- A realtime channel.
-- @type Channel

--- The next event, waiting at most `timeout` seconds (nil: as long as it takes).
-- While the connection is down it connects again (see the module's text); such
-- an attempt may run past `timeout` (at most `connect_timeout` and the reads).
-- @tparam[opt] number timeout seconds
-- @return an event; nil, "timeout" when none came in time; nil, "closed" after
--   `close()`; nil, err, code, kind when the channel gave up (a token that cannot
--   be renewed, a broker that refuses a fresh one)
function Channel:receive(timeout)
  if timeout ~= nil and not (type(timeout) == "number" and timeout >= 0 and timeout < 1e9) then
    return usage("receive", "timeout must be a number of seconds (>= 0) or nil")
  end
  local deadline = timeout and monotonic() + timeout
  local first = true
  while true do
    if self.closed then return nil, "closed" end
    if self.queue[1] then return remove(self.queue, 1) end
    if self.failure then return nil, self.failure[1], self.failure[2], self.failure[3] end
    local now = monotonic()
    local left = deadline and deadline - now or SLICE
    if left <= 0 and not first then return nil, "timeout" end
    first = false
    local wait = min(left > 0 and left or 0, SLICE)
    local link = self.link
    if link then
      local quiet = now - self.last_inbound
      if self.watchdog and quiet >= self.watchdog then
        lose(self, format("nothing received for %.0fs (watchdog)", quiet))
      else
        if self.watchdog then wait = min(wait, self.watchdog - quiet) end
        local topic, payload, extra = link:receive(wait)
        if topic then
          self.last_inbound = monotonic()
          local ev = decode(self, topic, payload, extra)
          if ev then return ev end
        elseif payload ~= "timeout" then
          lose(self, "connection lost (" .. tostring(payload) .. ")")
        end
      end
    elseif now >= self.retry_at then
      reconnect(self)
    elseif not time.sleep(min(wait, self.retry_at - now)) then
      return usage("receive", "cannot wait in this nginx phase (use ngx.timer.at)")
    end
  end
end

--- Iterate over the events; blocks. The loop ends after `close()` (also one
-- called in its body), or when the channel gives up: then it sees `false, err,
-- code, kind` once.
-- @usage for ev, err in rt:events() do if not ev then print(err) else ... end end
function Channel:events()
  local done = false
  return function()
    if done then return nil end
    local ev, err, code, kind = self:receive()
    if ev then return ev end
    done = true
    if err == "closed" then return nil end
    return false, err, code, kind
  end
end

local function check_device(what, pk, dk)
  local problem = topics.key_problem(pk)
  if problem then return nil, what .. ": pk " .. problem end
  problem = topics.key_problem(dk)
  if problem then return nil, what .. ": dk " .. problem end
  return true
end

local function send(self, what, pk, dk, payload, id)
  if not self.link then return nil, "realtime: " .. what .. ": not connected (connecting again)", nil, "network" end
  local ok, err, kind = self.link:publish(topics.command(pk, dk), payload, 1)
  if not ok then
    if kind == "closed" then lose(self, "connection lost (" .. tostring(err) .. ")") end
    return nil, "realtime: " .. what .. ": " .. tostring(err), nil, "network"
  end
  return id
end

--- Write properties of a device (WRITE-ATTR, QoS 1), checked against the
-- product's thing model first as `set_properties` checks them: nothing is sent
-- when a value does not fit. The device answers with an `ack` event (same
-- `msgId`) and, when values changed, a `property` event.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam table values `{ code = value }`
-- @return the msgId, or nil, err, code, kind
function Channel:write(pk, dk, values)
  if self.closed then return usage("write", "the channel is closed") end
  local ok, err = check_device("write", pk, dk)
  if not ok then return usage(nil, err) end
  local m, code, kind
  m, err, code, kind = things.model(self.client, pk, "realtime: write")
  if not m then return nil, err, code, kind end
  local list
  list, err = things.write_list(m.properties, values)
  if not list then return usage("write", err) end
  local id = commands.next_id(self.client:now_ms())
  local payload
  payload, err = commands.write(pk, dk, list, id)
  if not payload then return usage("write", err) end
  return send(self, "write", pk, dk, payload, id)
end

--- Ask a device for property values (READ-ATTR, QoS 1); the codes must be in
-- the product's thing model. The values come as a `property` event.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam {string,...} codes property codes
-- @return the msgId, or nil, err, code, kind
function Channel:read(pk, dk, codes)
  if self.closed then return usage("read", "the channel is closed") end
  local ok, err = check_device("read", pk, dk)
  if not ok then return usage(nil, err) end
  if type(codes) ~= "table" or codes[1] == nil then return usage("read", "codes must be a non-empty list") end
  local m, code, kind
  m, err, code, kind = things.model(self.client, pk, "realtime: read")
  if not m then return nil, err, code, kind end
  local list = {}
  for i, c in ipairs(codes) do
    if type(c) ~= "string" then return usage("read", "codes must be strings") end
    if not m.properties[c] then
      return usage("read", format("no property '%s' in the product's thing model", shown(c)))
    end
    list[i] = c
  end
  local id = commands.next_id(self.client:now_ms())
  local payload
  payload, err = commands.read(pk, dk, list, id)
  if not payload then return usage("read", err) end
  return send(self, "read", pk, dk, payload, id)
end

--- Subscribe more devices on the live connection (their thing models are
-- fetched first). A device already subscribed is left as it is. When the
-- connection drops meanwhile, they are subscribed with the others on the
-- reconnect.
-- @tparam table devices `{ { productKey, deviceKey }, ... }`
-- @return true, or nil, err, code, kind
function Channel:add(devices)
  if self.closed then return usage("add", "the channel is closed") end
  local list, err = device_list(devices, "devices")
  if not list then return usage("add", err) end
  local new = {}
  for _, d in ipairs(list) do
    if not self.known[d.productKey .. "\0" .. d.deviceKey] then new[#new + 1] = d end
  end
  if #new == 0 then return true end
  local ok, code, kind
  ok, err, code, kind = load_models(self, new, "add")
  if not ok then return nil, err, code, kind end
  if self.link then
    local refused
    ok, refused = subscribe(self.link, new)
    if not ok then
      lose(self, "subscribing failed (" .. tostring(refused) .. ")")
    elseif refused then
      -- none of them, then: the topics granted with the refused ones go too
      ok, err = unsubscribe(self.link, new)
      if not ok then lose(self, "unsubscribing failed (" .. tostring(err) .. ")") end
      return nil, "realtime: add: the broker refused the subscription to " .. shown(refused[1]), nil, "platform"
    end
  end
  for _, d in ipairs(new) do
    self.known[d.productKey .. "\0" .. d.deviceKey] = true
    self.devices[#self.devices + 1] = d
    self.decoder:add(d.productKey, d.deviceKey)
  end
  return true
end

--- Unsubscribe devices; their messages still in flight are dropped.
-- @tparam table devices `{ { productKey, deviceKey }, ... }`
-- @return true, or nil, err, code, kind
function Channel:remove(devices)
  if self.closed then return usage("remove", "the channel is closed") end
  local list, err = device_list(devices, "devices")
  if not list then return usage("remove", err) end
  local gone, keep = {}, {}
  local drop = {}
  for _, d in ipairs(list) do
    local key = d.productKey .. "\0" .. d.deviceKey
    if self.known[key] then
      drop[key] = true
      gone[#gone + 1] = d
    end
  end
  if #gone == 0 then return true end
  for _, d in ipairs(self.devices) do
    if drop[d.productKey .. "\0" .. d.deviceKey] then
      self.known[d.productKey .. "\0" .. d.deviceKey] = nil
      self.decoder:remove(d.productKey, d.deviceKey)
    else
      keep[#keep + 1] = d
    end
  end
  self.devices = keep
  if self.link then
    local ok, uerr = unsubscribe(self.link, gone)
    if not ok then lose(self, "unsubscribing failed (" .. tostring(uerr) .. ")") end
  end
  return true
end

--- Is the channel connected right now (false while it connects again)?
function Channel:connected()
  return self.link ~= nil and not self.closed
end

--- End the session (DISCONNECT) and the channel, at any point; idempotent.
-- `receive` answers nil, "closed" afterwards and `events()` ends.
-- @return true
function Channel:close()
  if self.closed then return true end
  self.closed = true
  if self.link then
    self.link:close()
    self.link = nil
  end
  if self.key and open_channels[self.key] == self then open_channels[self.key] = nil end
  self.queue = {}
  return true
end

-- ------------------------------------------------------------------------
-- opening
-- ------------------------------------------------------------------------

--- Open a channel: connected, every SUBACK in, when it returns.
-- @param client the client (its tokens, thing models, `user_id`, `get_properties`)
-- @tparam table opts `devices` (required, may be empty), `url`, `ca_file`,
--   `keepalive`, `watchdog`, `connect_timeout`, `max_message`
-- @tparam table env what the caller's side provides: `connect(link_opts)` -> link
--   or nil, err, kind, connack; `tokens` (the client's token keeper); `log`;
--   `verify`, `ca_file` (the client's); optional `random` for the backoff
-- @return a `Channel`, or nil, err, code, kind
function _M.open(client, opts, env)
  local ok, err = check_options(opts)
  if not ok then return usage(nil, err) end
  local devices
  devices, err = device_list(opts.devices, "devices")
  if not devices then return usage(nil, err) end
  local url = opts.url or client:realtime_url()
  if url == nil then
    return usage(nil, "no realtime URL is known for this base_url: pass url (wss://host:port/ws/v2)")
  end
  ok, err = check_url(url)
  if not ok then return usage(nil, err) end
  local d = _M.DEFAULTS
  local watchdog = opts.watchdog
  if watchdog == nil then watchdog = d.watchdog end
  local self = setmetatable({
    client = client, tokens = env.tokens, log = env.log, connect_link = env.connect,
    url = url, ca_file = opts.ca_file or env.ca_file, verify = env.verify ~= false,
    keepalive = opts.keepalive or d.keepalive, watchdog = watchdog,
    connect_timeout = opts.connect_timeout or d.connect_timeout, max_message = opts.max_message or d.max_message,
    devices = {}, known = {}, models = {}, decoder = events.new(), queue = {},
    backoff = backoff.new { random = env.random }, attempts = 0, closed = false,
  }, mt)
  if not self.verify and not warned_insecure[url] then
    warned_insecure[url] = true
    self.log("warn", "TLS certificate verification is disabled (verify = false) for the realtime channel")
  end
  local code, kind
  ok, err, code, kind = load_models(self, devices, "open")
  if not ok then return nil, err, code, kind end
  for _, dev in ipairs(devices) do
    self.known[dev.productKey .. "\0" .. dev.deviceKey] = true
    self.devices[#self.devices + 1] = dev
    self.decoder:add(dev.productKey, dev.deviceKey)
  end
  ok, err, code, kind = connect(self)
  if not ok then
    self.closed = true
    return nil, err, code, kind
  end
  return self
end

return _M
