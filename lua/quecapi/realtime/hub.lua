--- One realtime connection per account per nginx, its events fanned out to
-- every worker, and every request that wants them.
--
-- A dashboard serves many browsers from several workers; the platform wants one
-- session per account (a second makes commands fail), and every session costs a
-- REST read per device at each reconnect. So one worker holds the account's
-- channel (`client:realtime` on cosockets, in a background timer), and the
-- others read what it receives from a shared dict.
--
--     http {
--         lua_shared_dict realtime 16m;   # the hub's ring, lease, commands, values
--         init_by_lua_block {
--             require("quecapi.realtime.hub").new {
--                 name = "main", dict = "realtime",
--                 client = function() return require("quecapi").new(config) end,
--             }
--         }
--         init_worker_by_lua_block { require("quecapi.realtime.hub").get("main"):start() }
--     }
--
--     -- in a request handler (content, access, rewrite):
--     local hub = require("quecapi.realtime.hub").get("main")
--     local events, sub = hub:subscribe(pk, dk, { wait = 15 })
--     for ev, text in events do          -- ev false, text "timeout": nothing for `wait` seconds
--         ...                            -- text: the event as JSON, ready for an SSE data: line
--     end
--     local id, err, code, kind = hub:write(pk, dk, { switch = true })   -- WRITE-ATTR, the msgId
--
-- How:
--
--  - **Who holds the connection.** A lease in the dict (`dict:add`, which only
--    one worker can win, with a time to live of `lease` seconds). Every worker's
--    background timer tries to take it every tenth of a second; the holder
--    renews it every `lease`/4 seconds from that same timer, and holds the
--    channel in a second timer. A worker that exits (a reload, a shutdown)
--    closes the channel and gives the lease back at once; one that dies
--    (SIGKILL, a crash) loses it when it runs out: another worker connects at
--    most `lease` seconds and a tenth later. A holder that finds the lease
--    taken by another (it was stalled longer than `lease`) closes its channel.
--  - **Fan-out.** The holder writes each event, as JSON, into a ring of `ring`
--    slots in the dict under a sequence number (`dict:incr`). Every worker's
--    timer looks at the sequence every `poll` seconds (5 ms; the holder's own
--    worker at once, woken by a semaphore), decodes each new event once, and
--    hands it to the subscriptions of that worker that want its device, waking
--    their requests (`ngx.semaphore`). Cost: a dict read per
--    worker per `poll` while idle, a dict read and a JSON decode per event per
--    worker; the README has the measurements.
--  - **Backpressure.** Handing an event out never waits: each subscription has
--    a backlog of at most `backlog` events; beyond it the oldest is dropped and
--    counted (`sub:dropped()`, `hub:status().dropped`). A reader that stops
--    reading loses its own events, never anyone else's, and never slows the
--    connection. A worker that falls `ring` events behind the holder loses the
--    ones overwritten, counted as `missed`.
--  - **Commands.** `hub:write` and `hub:read` put the command in a list in the
--    dict; the holder's timer takes it, runs `rt:write`/`rt:read` (the thing
--    model check included) and leaves the answer (msgId or error) for the asker,
--    who waits for it (yielding) at most `command_timeout` seconds.
--  - **Devices.** The account's devices (`user_device_list`, at each start of the
--    channel), or the list given. The holder also keeps each device's last
--    values (property reports merged, reconnect reads) for `hub:values`, so a
--    page can show the state before the next report (read over REST once per
--    device when the channel starts, unless `snapshot = false`).
--
-- Requests only read the dict and wait on semaphores: nothing here blocks a
-- worker. The hub owns the account's session: do not open another
-- `client:realtime` for the same account elsewhere.
--
-- **Many nodes** (`fleet = { redis = ..., ttl = ..., node = ... }`): the lease
-- above then picks the worker that does this node's part, and a second lease,
-- in Redis, picks the one node whose worker holds the account's connection. The
-- leader publishes events to Redis and every node, the leader included, takes
-- them from there into its own ring; commands from any node reach the leader
-- through Redis. quecapi.realtime.fleet has the keys and why a lease handed
-- over on Redis's word alone is safe; quecapi.realtime.hub_fleet has the
-- node's side, called from here where a fleet differs from one nginx.
-- @module quecapi.realtime.hub

local json = require "quecapi.json"
local time = require "quecapi.time"
local redact = require "quecapi.redact"
local topics = require "quecapi.realtime.topics"
local backoff_policy = require "quecapi.realtime.backoff"
local connection = require "quecapi.realtime.connection"
local hub_fleet = require "quecapi.realtime.hub_fleet"

local type, pairs, ipairs, tostring, tonumber, setmetatable, rawget, pcall, next =
  type, pairs, ipairs, tostring, tonumber, setmetatable, rawget, pcall, next
local format, find, match = string.format, string.find, string.match
local min, max, floor = math.min, math.max, math.floor
local concat = table.concat

local _M = {}

--- Defaults of the options.
_M.DEFAULTS = {
  lease = 3,            -- seconds a holder keeps the connection without renewing
  poll = 0.005,         -- seconds between two looks at the ring
  ring = 4096,          -- events kept in the dict
  backlog = 1000,       -- events waiting per subscription, the oldest dropped beyond
  command_timeout = 5,  -- seconds hub:write waits for the holder's answer
  max_commands = 1000,  -- commands waiting in the dict at most
  wait = 15,            -- seconds a subscription's iterator waits before yielding false, "timeout"
  snapshot = true,      -- read every device's values over REST when the channel starts
  fleet_ttl = 5,        -- seconds of a node's lease on the account's connection (fleet.ttl)
}

local OPTIONS = {
  name = true, dict = true, client = true, devices = true, realtime = true, lease = true, poll = true,
  ring = true, backlog = true, command_timeout = true, max_commands = true, wait = true, snapshot = true,
  fleet = true,
}

-- Events the pump hands out in one go before it lets the worker serve others.
local BATCH = 16

local SEP = "\n" -- between the fields of a ring slot, and the devices of the device list

local hubs = {} -- by name

local Hub = {}
local hub_mt = { __index = Hub }
local Sub = {}
local sub_mt = { __index = Sub }

local function nginx()
  return rawget(_G, "ngx")
end

local function now()
  local ngx = nginx()
  ngx.update_time()
  return ngx.now()
end

local function log(level, fmt, ...)
  local ngx = nginx()
  local ok, msg = pcall(format, fmt, ...)
  if not ok then msg = fmt end
  ngx.log(level == "error" and ngx.ERR or level == "warn" and ngx.WARN or ngx.INFO, redact.line(msg))
end

-- Keys have no control characters (topics.key_problem): a tab cannot be in one.
local function device_key(pk, dk)
  return pk .. "\t" .. dk
end

local function usage(err)
  return nil, "realtime hub: " .. err, nil, "usage"
end

-- ------------------------------------------------------------------------
-- configuration
-- ------------------------------------------------------------------------

local function positive(v, cap)
  return type(v) == "number" and v > 0 and v <= cap
end

local function check(o)
  if type(o) ~= "table" then return nil, "options must be a table" end
  for k in pairs(o) do
    if not OPTIONS[k] then return nil, "unknown option '" .. tostring(k) .. "'" end
  end
  if type(o.name) ~= "string" or o.name == "" or find(o.name, "[%c%s]") then
    return nil, "name must be a non-empty string without spaces (one hub per account)"
  end
  if type(o.dict) ~= "string" then return nil, "dict must name a lua_shared_dict" end
  if type(o.client) ~= "function" then return nil, "client must be a function returning a quecapi client" end
  if o.devices ~= nil then
    if type(o.devices) ~= "table" then return nil, "devices must be a list of { productKey, deviceKey }" end
    for i, d in ipairs(o.devices) do
      if type(d) ~= "table" or topics.key_problem(d.productKey) or topics.key_problem(d.deviceKey) then
        return nil, format("devices[%d] must be { productKey = ..., deviceKey = ... }", i)
      end
    end
  end
  if o.realtime ~= nil then
    if type(o.realtime) ~= "table" then return nil, "realtime must be a table (options of client:realtime)" end
    if o.realtime.devices ~= nil then return nil, "realtime.devices: give the hub's devices option instead" end
  end
  for _, k in ipairs { "lease", "poll", "command_timeout", "wait" } do
    if o[k] ~= nil and not positive(o[k], 3600) then return nil, k .. " must be a positive number of seconds" end
  end
  if o.poll ~= nil and o.poll > 1 then return nil, "poll must be at most 1 second" end
  for _, k in ipairs { "ring", "backlog", "max_commands" } do
    if o[k] ~= nil and not (positive(o[k], 1e7) and o[k] % 1 == 0) then
      return nil, k .. " must be a positive whole number"
    end
  end
  if o.snapshot ~= nil and type(o.snapshot) ~= "boolean" then return nil, "snapshot must be a boolean" end
  if o.fleet ~= nil then return hub_fleet.check(o.fleet) end
  return true
end

--- Make a hub and register it under its name (in `init_by_lua`: every worker
-- inherits it). Nothing runs until `start` (in `init_worker_by_lua`).
-- @tparam table opts `name` (one hub per account), `dict` (a `lua_shared_dict`,
--   e.g. 16m), `client` (a function returning a quecapi client; called in the
--   holder's timer), `devices` (default: every device of the account), `realtime`
--   (other options of `client:realtime`: url, keepalive, watchdog, ...), `lease`,
--   `poll`, `ring`, `backlog`, `command_timeout`, `max_commands`, `wait`,
--   `snapshot` (see `DEFAULTS`); `fleet` to share one connection among nginx
--   nodes: `{ redis = a quecapi.store.redis store or its options, ttl = seconds
--   of the leadership lease (5), node = this node's name (the host name) }`
-- @return the hub, or nil, err
function _M.new(opts)
  local ok, err = check(opts)
  if not ok then return nil, "realtime hub: " .. err end
  local ngx = nginx()
  if type(ngx) ~= "table" or type(ngx.shared) ~= "table" then
    return nil, "realtime hub: quecapi.realtime.hub works inside nginx only"
  end
  local dict = ngx.shared[opts.dict]
  if not dict then
    return nil, format("realtime hub: no shared dict '%s' (add lua_shared_dict %s 16m; to the http block)",
      opts.dict, opts.dict)
  end
  local d = _M.DEFAULTS
  local self = setmetatable({
    name = opts.name, dict = dict, dict_name = opts.dict, make_client = opts.client,
    devices = opts.devices, realtime = opts.realtime or {},
    lease = opts.lease or d.lease, poll = opts.poll or d.poll, ring = opts.ring or d.ring,
    backlog = opts.backlog or d.backlog, command_timeout = opts.command_timeout or d.command_timeout,
    max_commands = opts.max_commands or d.max_commands, wait = opts.wait or d.wait,
    snapshot = opts.snapshot == nil and d.snapshot or opts.snapshot,
    prefix = "hub:" .. opts.name .. ":",
    -- per worker, from start() on
    subs = {}, all = {}, count = 0, last_seq = nil, leading = false, started = false,
    missed = 0, worker_dropped = 0, counter = 0,
  }, hub_mt)
  if opts.fleet then
    local fok, ferr = hub_fleet.setup(self, opts.fleet, d.fleet_ttl)
    if not fok then return nil, ferr end
  end
  hubs[opts.name] = self
  return self
end

--- The hub registered under `name`, or nil.
function _M.get(name)
  return hubs[name]
end

local function key(self, what)
  return self.prefix .. what
end

-- ------------------------------------------------------------------------
-- the holder: the channel in a timer, events into the ring
-- ------------------------------------------------------------------------

-- One event into the ring: "<seq>\n<pk>\n<dk>\n<json>".
local function ring_put(self, pk, dk, text)
  local dict = self.dict
  local seq = dict:incr(key(self, "seq"), 1, 0)
  local ok, err = dict:set(key(self, "e:" .. seq % self.ring), concat({ seq, pk or "", dk or "", text }, SEP))
  if not ok then log("error", "realtime hub %s: cannot store an event in shared dict '%s': %s", self.name,
    self.dict_name, err) end
  -- this worker's readers need not wait for the next look
  local wake = self.wake
  if wake and wake:count() < 0 then wake:post(1) end
end

local function publish(self, ev)
  local text, err = json.encode(ev)
  if not text then
    log("warn", "realtime hub %s: an event that cannot be encoded as JSON was dropped: %s", self.name, err)
    return
  end
  ring_put(self, ev.productKey, ev.deviceKey, text)
end

-- What is known of a device after an event: values merged from reports (or
-- replaced by reads), `at` their time, `online` (nil: unchanged).
local function merge(known, values, at, replace, online)
  if type(known) ~= "table" then known = {} end
  local merged = not replace and type(known.values) == "table" and known.values or {}
  for code, v in pairs(values or {}) do merged[code] = v end
  if online == nil then online = known.online end
  return { values = merged, at = values and at or known.at, online = online }
end

-- A device's last values, for hub:values (see merge).
local function remember(self, pk, dk, values, at, replace, online)
  if type(pk) ~= "string" or type(dk) ~= "string" then return end
  local k = key(self, "v:" .. device_key(pk, dk))
  local text = json.encode(merge(json.decode(self.dict:get(k) or ""), values, at, replace, online))
  if text then self.dict:set(k, text) end
end

local function set_state(self, state)
  state.worker, state.pid, state.at = nginx().worker.id(), nginx().worker.pid(), now()
  if self.fleet then return hub_fleet.publish_state(self, state) end
  self.dict:set(key(self, "state"), json.encode(state))
end

-- Run one command on the channel (rt nil: not connected): the answer.
local function run_command(c, rt)
  if not rt then
    return { err = "realtime: " .. tostring(c.op) .. ": not connected (connecting again)", kind = "network" }
  end
  local id, err, code, kind
  if c.op == "read" then
    id, err, code, kind = rt:read(c.pk, c.dk, c.values)
  else
    id, err, code, kind = rt:write(c.pk, c.dk, c.values)
  end
  return { msgId = id, err = err, code = code, kind = kind }
end

-- The commands waiting (rt nil: not connected), answered: in the dict, or in a
-- fleet those the node took from Redis.
local function commands(self, rt)
  if self.fleet then return hub_fleet.commands(self, rt) end
  local dict = self.dict
  while true do
    local text = dict:lpop(key(self, "cmd"))
    if not text then return end
    local c = json.decode(text)
    if type(c) == "table" and type(c.id) == "string" and (tonumber(c.deadline) or 0) > now() then
      dict:set(key(self, "r:" .. c.id), json.encode(run_command(c, rt)), self.command_timeout + 5)
    end
  end
end

-- An event from the channel: into the ring (one nginx) or to the fleet.
local function deliver(self, ev, client)
  if self.fleet then return hub_fleet.deliver(self, ev, client) end
  publish(self, ev)
  if ev.type == "property" then
    remember(self, ev.productKey, ev.deviceKey, ev.values, ev.at)
  elseif ev.type == "online" then
    remember(self, ev.productKey, ev.deviceKey, nil, nil, false, ev.online)
  elseif ev.type == "reconnected" and ev.values then
    remember(self, ev.productKey, ev.deviceKey, ev.values, client:now_ms(), true)
  end
end

-- Open the channel: the devices, client:realtime, the device list for subscribers,
-- the values read once. -> rt | nil, err, code, kind
local function open(self, client)
  local devices = self.devices
  if not devices then
    local err, code, kind
    devices, err, code, kind = connection.account_devices(client)
    if not devices then return nil, "listing the account's devices failed: " .. tostring(err), code, kind end
  end
  local o = {}
  for k, v in pairs(self.realtime) do o[k] = v end
  o.devices = devices
  local rt, err, code, kind = client:realtime(o)
  if not rt then return nil, err, code, kind end
  self.rt = rt -- from here on, whatever ends this timer's work closes it
  local keys = {}
  for i, d in ipairs(devices) do keys[i] = device_key(d.productKey, d.deviceKey) end
  local list = SEP .. concat(keys, SEP) .. SEP
  if self.fleet then
    hub_fleet.device_list(self, list)
  else
    self.dict:set(key(self, "devices"), list)
  end
  if self.snapshot then
    for _, d in ipairs(devices) do
      local values, res = client:get_properties(d.productKey, d.deviceKey)
      if not values then
        log("warn", "realtime hub %s: reading %s/%s failed: %s", self.name, d.productKey, d.deviceKey, tostring(res))
      elseif self.fleet then
        hub_fleet.values_read(self, d.productKey, d.deviceKey, values, client:now_ms())
      else
        remember(self, d.productKey, d.deviceKey, values, client:now_ms(), true)
      end
    end
  end
  return rt
end

local function still_leading(self)
  if not self.leading or nginx().worker.exiting() then return false end
  if not self.fleet then return true end
  return hub_fleet.still_leading(self)
end

-- May the channel connect (again) now? Always on one nginx; in a fleet only on
-- a lease renewed lately.
local function may_connect(self)
  if not self.fleet then return true end
  return hub_fleet.may_connect(self)
end

-- The channel, kept open while this worker holds the lease. `self.rt` is the
-- open channel, for the cleanup after an error.
local function keep(self, client)
  local retry = backoff_policy.new()
  local retry_at, slice = 0, max(self.poll * 4, 0.02)
  set_state(self, { connected = false })
  while still_leading(self) do
    local rt = self.rt
    if not rt then
      if now() >= retry_at and may_connect(self) then
        local err, code, kind
        rt, err, code, kind = open(self, client)
        self.rt = rt
        if rt then
          retry = backoff_policy.new()
          self.was_up = true
          set_state(self, { connected = true, since = now() })
        else
          local delay = retry:failed()
          retry_at = now() + delay
          set_state(self, { connected = false, err = err, kind = kind, code = code, retry_in = delay })
          log("warn", "realtime hub %s: %s; trying again in %.1fs", self.name, tostring(err), delay)
        end
      end
      commands(self, rt)
      if not rt then
        local wait = retry_at - now()
        if wait <= 0 then wait = slice end -- (waiting for a fresher lease)
        nginx().sleep(min(slice, max(0.001, wait)))
      end
    else
      local ev, err, code, kind
      if rt:connected() or may_connect(self) then
        ev, err, code, kind = rt:receive(slice)
      else
        err = "timeout" -- (a reconnect waits for a fresher lease)
        nginx().sleep(slice)
      end
      if ev then
        deliver(self, ev, client)
      elseif err ~= "timeout" then
        -- the channel gave up (a token that cannot be renewed...): start it again later
        rt:close()
        rt, self.rt = nil, nil
        local delay = retry:failed()
        retry_at = now() + delay
        set_state(self, { connected = false, err = err, kind = kind, code = code, retry_in = delay })
        log("error", "realtime hub %s: %s; opening the channel again in %.1fs", self.name, tostring(err), delay)
      end
      if rt then
        local up = rt:connected()
        if up ~= self.was_up then
          self.was_up = up
          set_state(self, { connected = up, since = now() })
        end
      end
      commands(self, rt)
    end
    if self.fleet then hub_fleet.resync(self, client) end
  end
end

-- The holder's timer. Whatever ends it (the lease lost, the worker exiting, an
-- error), the channel is closed and the lease given back. In a fleet the
-- holder is the node's agent instead.
local function hold(premature, self)
  if self.fleet then return hub_fleet.hold(premature, self) end
  local ok, err = true, nil
  if not premature then
    local client
    ok, client = pcall(self.make_client)
    if not ok or type(client) ~= "table" then
      ok, err = false, "the client function failed: " .. tostring(client)
    else
      log("info", "realtime hub %s: worker %d holds the connection", self.name, nginx().worker.id())
      ok, err = pcall(keep, self, client)
    end
  end
  if not ok then
    log("error", "realtime hub %s: %s", self.name, tostring(err))
    self.try_at = now() + 5 -- another worker may take it meanwhile
  end
  if self.rt then pcall(self.rt.close, self.rt) end
  self.rt, self.was_up = nil, nil
  local dict = self.dict
  if dict:get(key(self, "lease")) == self.id then dict:delete(key(self, "lease")) end
  if not premature then set_state(self, { connected = false, left = true }) end
  self.leading, self.holding = false, false
  if not premature then
    log("info", "realtime hub %s: worker %d gave the connection up", self.name, nginx().worker.id())
  end
end

-- ------------------------------------------------------------------------
-- every worker: the lease, the ring into the subscriptions
-- ------------------------------------------------------------------------

-- Try to take the lease, or renew it. Starts or stops holding.
local function lease(self, t)
  local dict, k = self.dict, key(self, "lease")
  if self.leading then
    if t < self.renew_at then return end
    if dict:get(k) ~= self.id then
      log("warn", "realtime hub %s: worker %d lost the lease to another worker: closing its connection", self.name,
        nginx().worker.id())
      self.leading = false
      return
    end
    dict:set(k, self.id, self.lease)
    self.renew_at = t + self.lease / 4
  elseif t >= self.try_at and not self.holding then
    -- (a holder that is still closing its channel does not take the lease again yet)
    self.try_at = t + 0.1
    if dict:add(k, self.id, self.lease) then
      self.leading, self.holding = true, true
      self.renew_at = t + self.lease / 4
      local ok, err = nginx().timer.at(0, hold, self)
      if not ok then
        log("error", "realtime hub %s: cannot start the connection's timer: %s", self.name, err)
        self.leading, self.holding = false, false
        dict:delete(k)
      end
    end
  end
end

local function drop_count(self, n)
  self.worker_dropped = self.worker_dropped + n
  self.dict:incr(key(self, "dropped"), n, 0)
end

-- A subscription gets an event: queued, the oldest dropped beyond the backlog.
local function offer(self, sub_, ev, text)
  if sub_.closed then return end
  local tail = sub_.tail + 1
  sub_.tail = tail
  sub_.events[tail], sub_.texts[tail] = ev, text
  if tail - sub_.head + 1 > sub_.max then
    local h = sub_.head
    sub_.events[h], sub_.texts[h] = nil, nil
    sub_.head = h + 1
    sub_.dropped_n = sub_.dropped_n + 1
    drop_count(self, 1)
  end
  if sub_.sema:count() < 0 then sub_.sema:post(1) end
end

-- Events the holder wrote since the last look, to this worker's subscriptions.
local function pump(self)
  local dict = self.dict
  local seq = dict:get(key(self, "seq")) or 0
  local last = self.last_seq
  if last == nil or seq < last then
    -- the first look, or the dict was emptied (nginx reloaded with a new size)
    self.last_seq = seq
    return
  end
  if seq == last then return end
  if self.count == 0 then
    self.last_seq = seq
    return
  end
  if seq - last > self.ring then
    self.missed = self.missed + (seq - last - self.ring)
    last = seq - self.ring
  end
  -- a burst is taken a slice at a time: the worker serves its requests in between
  if seq - last > BATCH then seq = last + BATCH end
  for i = last + 1, seq do
    local v = dict:get(key(self, "e:" .. i % self.ring))
    local s, pk, dk, text
    if v then s, pk, dk, text = match(v, "^(%d+)\n([^\n]*)\n([^\n]*)\n(.*)$") end
    s = tonumber(s)
    if s == nil or s < i then
      -- counted but not yet written (the holder is between incr and set), or lost
      if s == nil and v ~= nil then
        self.missed = self.missed + 1
      else
        local t = now()
        self.wait_since = self.wait_since or t
        if t - self.wait_since < 1 then
          self.last_seq = i - 1
          return
        end
        self.missed = self.missed + 1
      end
    elseif s > i then
      self.missed = self.missed + 1 -- overwritten: this worker fell a ring behind
    else
      local set = self.subs[device_key(pk, dk)]
      local all = self.all
      if set or next(all) then
        local ev = json.decode(text)
        if type(ev) == "table" then
          if set then
            for s_ in pairs(set) do offer(self, s_, ev, text) end
          end
          for s_ in pairs(all) do offer(self, s_, ev, text) end
        end
      end
    end
    self.wait_since = nil
  end
  self.last_seq = seq
  return seq < (dict:get(key(self, "seq")) or 0)
end

-- This worker's subscriber count, for hub:status across workers.
local function publish_count(self)
  self.dict:set(key(self, "subs:" .. nginx().worker.id()), self.count, max(2, self.lease))
end

-- Every worker's background timer.
local function run(premature, self)
  local ngx = nginx()
  while not premature and not ngx.worker.exiting() do
    local t = now()
    local ok, err = pcall(lease, self, t)
    if not ok then log("error", "realtime hub %s: %s", self.name, err) end
    local more
    ok, more = pcall(pump, self)
    if not ok then log("error", "realtime hub %s: %s", self.name, more) end
    if t >= (self.count_at or 0) then
      self.count_at = t + 0.5
      publish_count(self)
    end
    if more == true then
      ngx.sleep(0.001) -- (not 0: without OpenResty's patches nginx warns on every ngx.sleep(0))
    else
      self.wake:wait(self.poll) -- woken at once when this worker holds the connection and publishes
    end
  end
  -- exiting: the subscriptions end (their iterators return nil), the holder lets go
  self.leading = false
  for _, set in pairs(self.subs) do
    for s_ in pairs(set) do s_:close() end
  end
  for s_ in pairs(self.all) do s_:close() end
end

--- Start the hub in this worker (in `init_worker_by_lua`): its background timer.
-- @return true, or nil, err
function Hub:start()
  local ngx = nginx()
  if self.started then return true end
  local phase = time.phase()
  if phase ~= "init_worker" and not time.YIELDING_PHASES[phase] then
    return nil, "realtime hub: start it in init_worker_by_lua (or a timer)"
  end
  self.id = format("%d:%d:%d", ngx.worker.pid(), ngx.worker.id(), floor(ngx.now() * 1000))
  self.wake = require("ngx.semaphore").new(0)
  self.try_at, self.renew_at = 0, 0
  local ok, err = ngx.timer.at(0, run, self)
  if not ok then return nil, "realtime hub: cannot start its timer: " .. tostring(err) end
  self.started = true
  return true
end

-- ------------------------------------------------------------------------
-- requests: subscribe, write, values, status
-- ------------------------------------------------------------------------

-- Is the device one the hub's connection subscribes? true; false; nil when not known yet.
local function knows(self, pk, dk)
  if self.devices then
    for _, d in ipairs(self.devices) do
      if d.productKey == pk and d.deviceKey == dk then return true end
    end
    return false
  end
  local list = self.dict:get(key(self, "devices"))
  if not list then return nil end
  return find(list, SEP .. device_key(pk, dk) .. SEP, 1, true) ~= nil
end

local function in_request()
  local phase = time.phase()
  return phase and time.YIELDING_PHASES[phase]
end

--- Subscribe this request to a device's events (or every device's, with pk and
-- dk nil). Waits (yielding) up to `timeout` seconds for the first device list
-- when the hub has none yet.
-- @tparam[opt] string pk product key
-- @tparam[opt] string dk device key
-- @tparam[opt] table opts `wait` (seconds before the iterator yields false,
--   "timeout"; the hub's `wait`), `backlog` (the hub's), `timeout` (5 s)
-- @return an iterator of `ev, text` (the event and its JSON) that ends when
--   the subscription is closed or the worker exits, and the `Sub`; or nil, err,
--   code, kind (kind "usage": not a device of the account; "network": the
--   connection has not come up yet)
function Hub:subscribe(pk, dk, opts)
  if not in_request() then return usage("subscribe in a request handler or a timer") end
  if not self.started then return usage("start() was not called in init_worker_by_lua") end
  opts = opts or {}
  if (pk == nil) ~= (dk == nil) then return usage("give both pk and dk, or neither (every device)") end
  if pk ~= nil then
    local problem = topics.key_problem(pk)
    if problem then return usage("pk " .. problem) end
    problem = topics.key_problem(dk)
    if problem then return usage("dk " .. problem) end
    local deadline = now() + (opts.timeout or 5)
    local known = knows(self, pk, dk)
    while known == nil and now() < deadline do
      nginx().sleep(0.05)
      known = knows(self, pk, dk)
    end
    if known == nil then
      return nil, "realtime hub: the connection has not come up yet (no device list)", nil, "network"
    end
    if not known then
      return nil, format("realtime hub: %s/%s is not a device the connection follows", pk, dk), nil, "usage"
    end
  end
  local wait = opts.wait or self.wait
  local s = setmetatable({
    hub = self, key = pk and device_key(pk, dk), events = {}, texts = {}, head = 1, tail = 0,
    max = opts.backlog or self.backlog, dropped_n = 0, closed = false,
    sema = require("ngx.semaphore").new(0),
  }, sub_mt)
  if s.key then
    self.subs[s.key] = self.subs[s.key] or {}
    self.subs[s.key][s] = true
  else
    self.all[s] = true
  end
  self.count = self.count + 1
  publish_count(self)
  local function iterate()
    return s:next(wait)
  end
  return iterate, s
end

--- A subscription.
-- @type Sub

--- The next event and its JSON text, waiting at most `wait` seconds.
-- @return ev, text; false, "timeout"; nil once closed
function Sub:next(wait)
  while true do
    local h = self.head
    if h <= self.tail then
      local ev, text = self.events[h], self.texts[h]
      self.events[h], self.texts[h] = nil, nil
      self.head = h + 1
      return ev, text
    end
    if self.closed then return nil end
    local ok, err = self.sema:wait(wait)
    if not ok and self.head > self.tail then
      if self.closed then return nil end
      if err == "timeout" then return false, "timeout" end
      return nil
    end
  end
end

--- Events waiting for this reader.
function Sub:pending()
  return self.tail - self.head + 1
end

--- Events dropped for this reader (its backlog was full).
function Sub:dropped()
  return self.dropped_n
end

--- End the subscription; its iterator ends (after the events already queued
-- are dropped). Idempotent.
function Sub:close()
  if self.closed then return end
  self.closed = true
  local hub = self.hub
  if self.key then
    local set = hub.subs[self.key]
    if set then
      set[self] = nil
      if next(set) == nil then hub.subs[self.key] = nil end
    end
  else
    hub.all[self] = nil
  end
  hub.count = hub.count - 1
  self.events, self.texts, self.head, self.tail = {}, {}, 1, 0
  publish_count(hub)
  local waiting = -self.sema:count()
  if waiting > 0 then self.sema:post(waiting) end
end

local function command(self, op, pk, dk, values)
  if not in_request() then return usage(op .. " in a request handler or a timer") end
  local problem = topics.key_problem(pk)
  if problem then return usage(op .. ": pk " .. problem) end
  problem = topics.key_problem(dk)
  if problem then return usage(op .. ": dk " .. problem) end
  if type(values) ~= "table" then return usage(op .. ": values must be a table") end
  if self.fleet then return hub_fleet.command(self, op, pk, dk, values) end
  local dict, ngx = self.dict, nginx()
  if (dict:llen(key(self, "cmd")) or 0) >= self.max_commands then
    return nil, "realtime hub: " .. op .. ": too many commands waiting for the connection", nil, "rate_limited"
  end
  self.counter = self.counter + 1
  local id = format("%s:%d", self.id or ngx.worker.pid(), self.counter)
  local deadline = now() + self.command_timeout
  local text, err = json.encode { id = id, op = op, pk = pk, dk = dk, values = values, deadline = deadline }
  if not text then return usage(op .. ": values cannot be encoded as JSON: " .. tostring(err)) end
  local ok
  ok, err = dict:rpush(key(self, "cmd"), text)
  if not ok then
    return nil, "realtime hub: " .. op .. ": cannot queue the command: " .. tostring(err), nil, "network"
  end
  local reply_key, step = key(self, "r:" .. id), 0.001
  while true do
    local answer = dict:get(reply_key)
    if answer then
      dict:delete(reply_key)
      local a = json.decode(answer) or {}
      if a.msgId then return a.msgId end
      return nil, a.err or "realtime: " .. op .. " failed", a.code, a.kind
    end
    local left = deadline - now()
    if left <= 0 then
      return nil, "realtime hub: " .. op .. ": the connection did not take the command in time", nil, "timeout"
    end
    ngx.sleep(min(step, left))
    step = min(step * 2, 0.01)
  end
end

--- Write properties of a device through the hub's connection (WRITE-ATTR,
-- checked against the thing model first by the holder, as `rt:write`).
-- @return the msgId, or nil, err, code, kind
function Hub:write(pk, dk, values)
  return command(self, "write", pk, dk, values)
end

--- Ask a device for property values (READ-ATTR), as `rt:read`.
-- @return the msgId, or nil, err, code, kind
function Hub:read(pk, dk, codes)
  return command(self, "read", pk, dk, codes)
end

--- The device's last known values (reports merged, reads after reconnects),
-- when (ms), and whether it is online (nil: no online event seen); or nil.
function Hub:values(pk, dk)
  if type(pk) ~= "string" or type(dk) ~= "string" then return nil end
  local v = json.decode(self.dict:get(key(self, "v:" .. device_key(pk, dk))) or "")
  if type(v) ~= "table" or type(v.values) ~= "table" then return nil end
  return v.values, v.at, v.online
end

--- What the hub is doing: `connected`, `holder` and `pid` (the worker holding
-- the connection: its id and process id), `since`, `err` (the last failure), `events` (handed out since
-- nginx started), `subscribers` (all workers; `per_worker` by worker id + 1), `dropped` (events dropped for
-- slow readers, all workers), `missed` (this worker), `worker` (this worker's id).
--
-- With `fleet`: the connection is the fleet's, so `connected` also needs this
-- node to receive its events; `node` names the node holding it (`holder` and
-- `pid` are on that node), and `fleet` says what this node does: `node` (its
-- name), `leading` (it holds the lease), `connecting_in` (seconds a new leader
-- still waits), `subscribed` (it receives the events), `leader` (the lease's
-- holder as this node last saw it), `err` (its last Redis failure).
function Hub:status()
  local dict = self.dict
  local state = json.decode(dict:get(key(self, self.fleet and "fl:state" or "state")) or "") or {}
  local subscribers, per_worker = 0, {}
  for i = 0, nginx().worker.count() - 1 do
    per_worker[i + 1] = dict:get(key(self, "subs:" .. i)) or 0
    subscribers = subscribers + per_worker[i + 1]
  end
  local out = {
    connected = state.connected == true and dict:get(key(self, "lease")) ~= nil,
    holder = state.worker, pid = state.pid, since = state.since, err = state.err, kind = state.kind,
    events = dict:get(key(self, "seq")) or 0, subscribers = subscribers, per_worker = per_worker,
    dropped = dict:get(key(self, "dropped")) or 0, missed = self.missed, worker = nginx().worker.id(),
  }
  if self.fleet then hub_fleet.status(self, out, state) end
  return out
end

-- The hub's own functions that the fleet mode shares (bound once, here, when
-- everything they call is defined).
hub_fleet.bind {
  nginx = nginx, now = now, log = log, usage = usage, key = key, device_key = device_key, merge = merge,
  ring_put = ring_put, run_command = run_command, set_state = set_state, keep = keep,
}

return _M
