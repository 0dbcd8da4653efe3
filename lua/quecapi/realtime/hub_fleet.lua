--- The realtime hub's fleet mode: the node's side of a hub shared by several
-- nginx nodes (`quecapi.realtime.hub` with the `fleet` option).
--
-- Internal to `quecapi.realtime.hub`, which calls these functions where a
-- fleet differs from one nginx, and hands this module, once when it loads
-- (`bind`), the few of its own functions the node's side shares with it:
-- the log, the dict's keys, the ring, the devices' merged values, the
-- channel as `keep` runs it, the commands run on it. The Redis keys, scripts
-- and why a lease handed over on Redis's word alone is safe are in
-- `quecapi.realtime.fleet`.
--
-- In a fleet the worker holding the node's lease (the hub's, in its dict) is
-- the node's agent: one timer with light threads (`ngx.thread`), each free to
-- wait on Redis or the broker while the timer's own coroutine keeps time:
--
--  - lease: takes the fleet's lease on the account's connection (Redis,
--    quecapi.realtime.fleet) when it is free, renews it every ttl/4 while held;
--  - channel: while the lease is held (after the wait `acquire` asks for), the
--    channel as `keep` runs it, events published to Redis;
--  - intake: while the lease is held, the commands any node queued (BLPOP),
--    handed to the channel;
--  - subscriber: always, the account's events from Redis into this node's
--    ring, the device list, values and state into its dict.
--
-- The timer's coroutine looks every TICK: once the lease has gone unrenewed
-- for ttl minus the guard (Redis away), it kills the channel's thread — a
-- light thread killed while it waits on a cosocket has that socket closed —
-- and closes the connection, whatever the thread was doing: the session ends
-- before any other node can take the lease.
-- @module quecapi.realtime.hub_fleet

local json = require "quecapi.json"
local time = require "quecapi.time"
local redact = require "quecapi.redact"
local fleet = require "quecapi.realtime.fleet"

local type, pairs, tostring, tonumber, pcall, error = type, pairs, tostring, tonumber, pcall, error
local format, find, match, sub = string.format, string.find, string.match, string.sub
local min, max, floor = math.min, math.max, math.floor
local remove = table.remove
local monotonic = time.monotonic

local _M = {}

-- The hub's own functions, from bind (see quecapi.realtime.hub for each).
local nginx, now, log, usage, key, device_key, merge, ring_put, run_command, set_state, keep

--- Take the hub's functions this module shares (once, when the hub loads).
-- @tparam table hub `nginx`, `now`, `log`, `usage`, `key`, `device_key`,
--   `merge`, `ring_put`, `run_command`, `set_state`, `keep`
function _M.bind(hub)
  nginx, now, log, usage, key, device_key = hub.nginx, hub.now, hub.log, hub.usage, hub.key, hub.device_key
  merge, ring_put, run_command, set_state, keep = hub.merge, hub.ring_put, hub.run_command, hub.set_state, hub.keep
end

-- ------------------------------------------------------------------------
-- configuration
-- ------------------------------------------------------------------------

local OPTIONS = { redis = true, ttl = true, node = true }

--- Check the hub's `fleet` option.
-- @return true, or nil, err
function _M.check(f)
  if type(f) ~= "table" then return nil, "fleet must be a table { redis = ..., ttl = ..., node = ... }" end
  for k in pairs(f) do
    if not OPTIONS[k] then return nil, "unknown option 'fleet." .. redact.line(tostring(k)) .. "'" end
  end
  if type(f.redis) ~= "table" then
    return nil, "fleet.redis must be a quecapi.store.redis store or its options (url, host, sentinel, ...)"
  end
  if f.ttl ~= nil and not (type(f.ttl) == "number" and f.ttl >= 1 and f.ttl <= 600) then
    return nil, "fleet.ttl must be a number of seconds from 1 to 600"
  end
  if f.node ~= nil and (type(f.node) ~= "string" or not find(f.node, "^[%w._:-]+$") or #f.node > 64) then
    return nil, "fleet.node must be a name of letters, digits and . _ : - (at most 64)"
  end
  return true
end

-- This machine's name: a node's default name in a fleet.
local function host_name()
  local f = io.open("/proc/sys/kernel/hostname", "r")
  local name = f and f:read("*l")
  if f then f:close() end
  name = name and match(name, "^[%w._-]+$") and sub(name, 1, 64)
  return name or "node"
end

-- The fleet's Redis: a store given, or one made from its options.
local function fleet_store(redis)
  if type(redis.call) == "function" and type(redis.connection) == "function" then return redis end
  return require("quecapi.store.redis").new(redis)
end

--- A new hub joins the fleet (the `fleet` option, checked): its store, lease's
-- ttl and node name.
-- @return true, or nil, err
function _M.setup(self, f, default_ttl)
  local store, err = fleet_store(f.redis)
  if not store then return nil, "realtime hub: fleet.redis: " .. tostring(err) end
  self.fleet_ttl = f.ttl or default_ttl
  self.node = f.node or host_name()
  self.fleet = fleet.new(store, self.name, self.fleet_ttl)
  return true
end

-- ------------------------------------------------------------------------
-- the leader: the channel's state, values, events and commands through Redis
-- ------------------------------------------------------------------------

-- The fleet's leader: how long its lease is still good for (monotonic seconds).
local function guard(self)
  return max(0.3, self.fleet_ttl * 0.2)
end

local function term_valid(self)
  local fl = self.fl
  return fl.term ~= nil and fl.term == fl.channel_term and monotonic() < fl.valid - guard(self)
end

--- Publish the channel's state (the hub's set_state, in a fleet) while the
-- channel runs for a lease.
function _M.publish_state(self, state)
  state.node = self.node
  local fl = self.fl
  if fl.channel_term then
    local ok, err = self.fleet:set_state(fl.channel_term, json.encode(state))
    if ok == nil then
      log("warn", "realtime hub %s: cannot publish the connection's state: %s", self.name, fleet.describe(err))
    end
  end
end

--- The commands the node took from Redis (rt nil: not connected), answered.
function _M.commands(self, rt)
  local fl, f = self.fl, self.fleet
  local q = fl.queue
  while q[1] do
    local c = remove(q, 1)
    if monotonic() < c.deadline then
      -- a leader whose lease may be running out sends nothing more
      local answer = run_command(c, term_valid(self) and rt or nil)
      local ok, err = f:reply(c.id, json.encode(answer), self.command_timeout + 5)
      if not ok then
        log("warn", "realtime hub %s: cannot answer a command: %s", self.name, fleet.describe(err))
      end
    end
  end
end

-- In a fleet the leader keeps each device's values and publishes them with
-- the events; a publication Redis missed is made good by a `reconnected` event.
local function fleet_post(self, pk, dk, record_key, text)
  local fl = self.fl
  local record = record_key and json.encode(fl.values[record_key])
  local ok, err = self.fleet:event(fl.channel_term, pk or "", dk or "", record_key, record, text)
  if ok == nil then
    if record_key then fl.unsynced[record_key] = true end
    fl.gap = fl.gap or monotonic()
    if not fl.gap_logged then
      fl.gap_logged = true
      log("warn", "realtime hub %s: cannot publish events (%s): the devices' values are sent again when Redis "
        .. "answers", self.name, fleet.describe(err))
    end
  elseif ok == false then
    -- another node holds the lease now: stop (the lease's own check would see it at its next renewal)
    if fl.term == fl.channel_term then
      log("warn", "realtime hub %s: node %s no longer holds the lease on the account's connection", self.name,
        self.node)
      fl.term = nil
    end
  end
  return ok
end

--- Events Redis missed (see fleet_post) made good, at most every half second.
function _M.resync(self, client)
  local fl = self.fl
  if not fl.gap or monotonic() - fl.gap < 0.5 then return end
  fl.gap = monotonic() -- (again in half a second when Redis is still away)
  for k in pairs(fl.unsynced) do
    local pk, dk = match(k, "^(.-)\t(.*)$")
    local rec = fl.values[k]
    if pk and rec then
      local text = json.encode { type = "reconnected", productKey = pk, deviceKey = dk, values = rec.values,
                                 at = client:now_ms() }
      if fleet_post(self, pk, dk, k, text) == nil then return end
    end
    fl.unsynced[k] = nil
  end
  fl.gap, fl.gap_logged = nil, nil
  log("info", "realtime hub %s: publishing events again", self.name)
end

--- An event from the channel, to the fleet: published, with the device's
-- values when it changed them.
function _M.deliver(self, ev, client)
  local text, err = json.encode(ev)
  if not text then
    log("warn", "realtime hub %s: an event that cannot be encoded as JSON was dropped: %s", self.name, err)
    return
  end
  local pk, dk, k = ev.productKey, ev.deviceKey, nil
  if type(pk) == "string" and type(dk) == "string" then
    local vals = self.fl.values
    local dkey = device_key(pk, dk)
    if ev.type == "property" then
      vals[dkey], k = merge(vals[dkey], ev.values, ev.at), dkey
    elseif ev.type == "online" then
      vals[dkey], k = merge(vals[dkey], nil, nil, false, ev.online), dkey
    elseif ev.type == "reconnected" and ev.values then
      vals[dkey], k = merge(vals[dkey], ev.values, client:now_ms(), true), dkey
    end
  end
  fleet_post(self, pk, dk, k, text)
end

--- The device list of a channel just opened, published.
function _M.device_list(self, list)
  local ok, err = self.fleet:device_list(self.fl.channel_term, list)
  if not ok then
    log("warn", "realtime hub %s: cannot publish the device list: %s", self.name, fleet.describe(err))
  end
end

--- A device's values, read when the channel opened, published.
function _M.values_read(self, pk, dk, values, at)
  local fl = self.fl
  local dkey = device_key(pk, dk)
  fl.values[dkey] = merge(nil, values, at, true)
  local ok, err = self.fleet:values_of(fl.channel_term, pk, dk, dkey, json.encode(fl.values[dkey]))
  if ok == nil then
    fl.unsynced[dkey] = true
    fl.gap = fl.gap or monotonic()
    log("warn", "realtime hub %s: cannot publish %s/%s's values: %s", self.name, pk, dk, fleet.describe(err))
  end
end

--- May the channel go on (the hub has checked that this worker leads)? While
-- the lease it runs for holds.
function _M.still_leading(self)
  return not self.fl.stop and term_valid(self)
end

--- May the channel connect (again) now? Only on a lease renewed lately: a
-- connect takes a while, and must be over well before the lease could run out.
function _M.may_connect(self)
  return term_valid(self) and self.fl.valid - monotonic() > self.fleet_ttl / 2
end

-- ------------------------------------------------------------------------
-- the node's agent (see the top of this file)
-- ------------------------------------------------------------------------

local TICK = 0.05       -- seconds between two looks of the agent
local TRY_EVERY = 0.2   -- a node without the lease tries to take it this often
local INTAKE_WAIT = 1   -- seconds one BLPOP for commands waits in Redis
local SUB_READ = 0.5    -- seconds one read of the subscriber waits
local PING_EVERY = 2    -- a quiet subscriber pings Redis this often, and gives up after twice as long

local spawn, kill, wait_thread = function(...) return nginx().thread.spawn(...) end,
  function(t) return nginx().thread.kill(t) end, function(t) return nginx().thread.wait(t) end
local co_status = coroutine.status

local function dead(t)
  return t == nil or co_status(t) == "dead"
end

-- End a thread: killed unless it ended already (then waited for, so it is freed).
local function finish(t)
  if t == nil then return nil end
  if co_status(t) == "dead" then
    pcall(wait_thread, t)
  else
    kill(t)
  end
  return nil
end

local function left_state(self)
  return json.encode { connected = false, left = true, node = self.node, at = now() }
end

-- The lease thread.
local function lease_loop(self, fl)
  local f, ttl = self.fleet, self.fleet_ttl
  while fl.running do
    local t = monotonic()
    if fl.term then
      if t >= fl.renew_at then
        local term = fl.term
        local ok, redis_ms, kind = f:renew(term)
        if fl.term == term then
          if ok then
            fl.valid, fl.renew_at = t + ttl, t + ttl / 4
            fl.offset, fl.err = redis_ms - monotonic() * 1000, nil
          elseif ok == false then
            log("warn", "realtime hub %s: node %s lost the lease on the account's connection (Redis no longer "
              .. "holds it): closing the connection", self.name, self.node)
            fl.term = nil
          else
            fl.err, fl.kind = fleet.describe(redis_ms), kind
            fl.renew_at = monotonic() + TRY_EVERY
          end
        end
      end
    elseif t >= fl.try_at then
      -- leases given up while Redis was away, handed back now it answers: nobody waits for them
      for owner in pairs(fl.abandoned) do
        if f:release(owner, left_state(self)) ~= nil then fl.abandoned[owner] = nil end
      end
      local owner = fleet.owner(self.node)
      local won, a, b = f:acquire(owner)
      if won and fl.running then
        fl.term, fl.valid, fl.renew_at, fl.open_at = owner, t + ttl, t + ttl / 4, monotonic() + a
        fl.offset, fl.err, fl.holder = b - monotonic() * 1000, nil, owner
        fl.values, fl.unsynced, fl.gap = {}, {}, nil
        log("info", "realtime hub %s: node %s took the lease on the account's connection%s", self.name, self.node,
          a > 0 and format(" (connecting in %.1fs: the last lease may still be in use)", a) or "")
      elseif won then
        f:release(owner, left_state(self))
      elseif won == false then
        fl.holder, fl.err = a, nil
        fl.try_at = monotonic() + TRY_EVERY
      else
        fl.err, fl.kind = fleet.describe(a), b
        fl.try_at = monotonic() + TRY_EVERY
      end
    end
    local next_at = fl.term and fl.renew_at or fl.try_at
    nginx().sleep(min(TICK * 2, max(0.001, next_at - monotonic())))
  end
end

-- The channel thread, for lease `term`.
local function channel_loop(self, fl, term)
  fl.channel_term, fl.stop = term, false
  local ok, client = pcall(self.make_client)
  local err
  if not ok or type(client) ~= "table" then
    ok, err = false, "the client function failed: " .. tostring(client)
  else
    log("info", "realtime hub %s: node %s (worker %d) holds the account's connection", self.name, self.node,
      nginx().worker.id())
    ok, err = pcall(keep, self, client)
  end
  if not ok then
    log("error", "realtime hub %s: %s", self.name, tostring(err))
    fl.open_at = monotonic() + 5
  end
  if self.rt then pcall(self.rt.close, self.rt) end
  self.rt, self.was_up = nil, nil
  if fl.term == term then set_state(self, { connected = false }) end
  fl.channel_term = nil
end

-- The intake thread, for lease `term`: commands from Redis to the channel.
local function intake_loop(self, fl, term)
  local f = self.fleet
  local conn
  while fl.running and fl.term == term do
    if not conn then
      local err
      conn, err = f:commands_connection(INTAKE_WAIT)
      if not conn then
        fl.err = fleet.describe(err)
        nginx().sleep(TRY_EVERY)
      end
    end
    if conn then
      local ms, text = f:next_command(conn, INTAKE_WAIT)
      if ms == nil then
        conn:close()
        conn = nil
        nginx().sleep(TRY_EVERY)
      elseif ms then
        local c = json.decode(text)
        if type(c) == "table" and type(c.id) == "string" then
          local limit = tonumber(c.timeout_ms) or self.command_timeout * 1000
          local age = monotonic() * 1000 + fl.offset - ms
          if age < limit then
            c.deadline = monotonic() + (limit - age) / 1000
            if fl.channel_term == term then
              fl.queue[#fl.queue + 1] = c
            else
              f:reply(c.id, json.encode(run_command(c, nil)), self.command_timeout + 5)
            end
          end
        end
      end
    end
  end
  if conn then f:release_connection(conn) end
end

-- A message of the fleet's channel, into this node's ring and dict.
local function take(self, payload)
  local tag, a, b, c, d = fleet.parse(payload)
  local dict = self.dict
  if tag == "e" then
    ring_put(self, a, b, d)
    if c then dict:set(key(self, "v:" .. device_key(a, b)), c) end
  elseif tag == "v" then
    dict:set(key(self, "v:" .. device_key(a, b)), c)
  elseif tag == "d" then
    dict:set(key(self, "devices"), a)
  elseif tag == "s" then
    dict:set(key(self, "fl:state"), a, self.fleet_ttl + 1)
  end
end

-- What the fleet knows, into this node's dict, after a (re)subscription; after
-- a gap, every device's last values as a `reconnected` event.
local function sync(self, again)
  local devices, state, values = self.fleet:snapshot()
  if devices == nil then return nil, state end
  local dict = self.dict
  if devices then dict:set(key(self, "devices"), devices) end
  if state then dict:set(key(self, "fl:state"), state, self.fleet_ttl + 1) else dict:delete(key(self, "fl:state")) end
  for i = 1, #values - 1, 2 do
    local field, record = values[i], values[i + 1]
    dict:set(key(self, "v:" .. field), record)
    local pk, dk = match(field, "^(.-)\t(.*)$")
    local rec = again and pk and json.decode(record)
    if type(rec) == "table" then
      local text = json.encode { type = "reconnected", productKey = pk, deviceKey = dk, values = rec.values,
                                 at = rec.at }
      if text then ring_put(self, pk, dk, text) end
    end
  end
  return true
end

-- The subscriber thread.
local function subscriber_loop(self, fl)
  local f, dict = self.fleet, self.dict
  local synced, delay, lost_at = false, TRY_EVERY, nil
  while fl.running do
    local conn, err = f:subscribe(SUB_READ)
    if conn then
      local ok
      ok, err = sync(self, synced)
      if ok then
        if lost_at then
          log("info", "realtime hub %s: node %s receives the account's events again (after %.1fs)", self.name,
            self.node, monotonic() - lost_at)
        end
        synced, delay, lost_at = true, TRY_EVERY, nil
        fl.subscribed = true
        dict:set(key(self, "fl:sub"), true, SUB_READ * 4)
        local last_in, pinged_at = monotonic(), 0
        while fl.running do
          local res, rerr = conn:read_reply()
          local t = monotonic()
          if res then
            last_in = t
            if res[1] == "message" then take(self, res[3]) end
          elseif rerr ~= "timeout" then
            err = rerr
            break
          end
          if t - last_in >= PING_EVERY and pinged_at < last_in then
            -- quiet: is Redis still there? (its "pong" comes as a reply to read)
            pinged_at = t
            res, rerr = conn:ping()
            if res then
              last_in = monotonic()
              if res[1] == "message" then take(self, res[3]) end
            elseif rerr ~= "timeout" then
              err = rerr
              break
            end
          elseif pinged_at >= last_in and t - pinged_at >= PING_EVERY then
            err = "no answer to PING"
            break
          end
          dict:set(key(self, "fl:sub"), true, SUB_READ * 4)
        end
        err = f:failure(conn, err)
      end
      conn:close()
    end
    fl.subscribed = false
    dict:delete(key(self, "fl:sub"))
    if not fl.running then break end
    if not lost_at then
      lost_at = monotonic()
      log("warn", "realtime hub %s: node %s does not receive the account's events (%s); subscribing again",
        self.name, self.node, fleet.describe(err))
    end
    nginx().sleep(delay)
    delay = min(delay * 2, 2)
  end
end

-- What this node's agent is doing, for hub:status in every worker.
local function agent_status(self, fl)
  self.dict:set(key(self, "fl:node"), json.encode {
    leading = fl.term ~= nil, connecting_in = fl.term and max(0, fl.open_at - monotonic()) or nil,
    holder = fl.holder, err = fl.err,
  }, 2)
end

-- Stop the channel thread now: killed (its socket closed), the connection closed.
local function stop_channel(self, fl, t)
  t = finish(t)
  if self.rt then pcall(self.rt.close, self.rt) end
  self.rt, self.was_up, fl.channel_term, fl.queue = nil, nil, nil, {}
  return t
end

local function agent(self)
  local fl = {
    running = true, term = nil, valid = 0, renew_at = 0, try_at = 0, open_at = 0, offset = 0,
    abandoned = {}, queue = {}, values = {}, unsynced = {},
  }
  self.fl = fl
  local threads = { lease = spawn(lease_loop, self, fl), sub = spawn(subscriber_loop, self, fl) }
  local stop_at, status_at, sub_at = nil, 0, 0
  local ok, err = pcall(function()
    while self.leading and not nginx().worker.exiting() do
      local t = monotonic()
      if fl.term and t >= fl.valid - guard(self) then
        -- the fence: Redis has not confirmed the lease for too long
        log("error", "realtime hub %s: node %s could not renew its lease on the account's connection for %.1fs (%s): "
          .. "closing the connection before the lease can pass to another node", self.name, self.node,
          t - (fl.valid - self.fleet_ttl), tostring(fl.err))
        fl.abandoned[fl.term] = true
        fl.term = nil
        threads.channel = stop_channel(self, fl, threads.channel)
        threads.intake = finish(threads.intake)
      end
      if threads.channel then
        if dead(threads.channel) then
          threads.channel, stop_at = finish(threads.channel), nil
        elseif not fl.term or fl.term ~= fl.channel_term then
          -- the lease ended: a DISCONNECT if the thread gets to it soon, else the socket closed
          fl.stop = true
          stop_at = stop_at or min(t + 1, fl.valid - guard(self))
          if t >= stop_at then threads.channel, stop_at = stop_channel(self, fl, threads.channel), nil end
        end
      end
      if fl.term and not threads.channel and t >= fl.open_at then
        threads.channel = spawn(channel_loop, self, fl, fl.term)
      end
      if threads.intake and (dead(threads.intake) or fl.term == nil) then threads.intake = finish(threads.intake) end
      if fl.term and not threads.intake then threads.intake = spawn(intake_loop, self, fl, fl.term) end
      if dead(threads.lease) then
        threads.lease = finish(threads.lease)
        threads.lease = spawn(lease_loop, self, fl)
      end
      if dead(threads.sub) and t >= sub_at then
        threads.sub = finish(threads.sub)
        threads.sub, sub_at = spawn(subscriber_loop, self, fl), t + 1
      end
      if t >= status_at then
        status_at = t + 0.25
        agent_status(self, fl)
      end
      nginx().sleep(TICK)
    end
  end)
  -- leaving (the worker exits, or another worker of this node took over): the
  -- connection closed first, then the lease handed back
  fl.running = false
  threads.lease = finish(threads.lease)
  if threads.channel and not dead(threads.channel) then
    fl.stop = true
    local deadline = min(monotonic() + 1, fl.term and fl.valid - guard(self) or 0)
    while not dead(threads.channel) and monotonic() < deadline do nginx().sleep(0.01) end
  end
  threads.channel = stop_channel(self, fl, threads.channel)
  threads.intake = finish(threads.intake)
  threads.sub = finish(threads.sub)
  if fl.term then
    local released, rerr = self.fleet:release(fl.term, left_state(self))
    if released == nil then
      log("warn", "realtime hub %s: cannot hand the lease back (%s): another node takes over when it runs out",
        self.name, fleet.describe(rerr))
    end
    fl.term = nil
  end
  self.dict:delete(key(self, "fl:sub"))
  self.dict:delete(key(self, "fl:node"))
  if not ok then error(err, 0) end
end

--- The hub's holder timer in a fleet: the node's agent, until this worker
-- stops leading the node; then the node's lease in the dict given back.
function _M.hold(premature, self)
  local ok, err = true, nil
  if not premature then
    log("info", "realtime hub %s: worker %d runs node %s's part of the fleet", self.name, nginx().worker.id(),
      self.node)
    ok, err = pcall(agent, self)
  end
  if not ok then
    log("error", "realtime hub %s: %s", self.name, tostring(err))
    self.try_at = now() + 5
  end
  local dict = self.dict
  if dict:get(key(self, "lease")) == self.id then dict:delete(key(self, "lease")) end
  self.leading, self.holding = false, false
end

-- ------------------------------------------------------------------------
-- every node: commands, status
-- ------------------------------------------------------------------------

-- Redis's clock minus this worker's, from a Redis time read before now: never
-- more than the true difference, and less by the reply's time at most, which a
-- reply in time keeps under the store's timeout. The largest estimate is the best
-- one; one lower than it by more than the timeout means Redis's clock went back.
local function learn_offset(self, redis_ms)
  local estimate = redis_ms - monotonic() * 1000
  local known = self.redis_offset
  if known == nil or estimate > known or estimate < known - self.fleet.store.timeout * 1000 then
    self.redis_offset = estimate
  end
end

--- A command through the fleet: queued in Redis for whichever node leads, its
-- answer waited for in Redis (BLPOP). Redis away: at once, kind "network".
-- @return the msgId, or nil, err, code, kind
function _M.command(self, op, pk, dk, values)
  self.counter = self.counter + 1
  local id = format("%s:%s:%d:%s", self.node, self.id or nginx().worker.pid(), self.counter,
    require("quecapi.core").random_string(6))
  local text, err = json.encode { id = id, op = op, pk = pk, dk = dk, values = values,
                                  timeout_ms = floor(self.command_timeout * 1000) }
  if not text then return usage(op .. ": values cannot be encoded as JSON: " .. tostring(err)) end
  local f = self.fleet
  -- Redis's clock against this worker's, once: a command carries the last moment
  -- (Redis ms) its push may run, the end of this wait for the reply.
  if not self.redis_offset then
    local redis_ms, cerr, ckind = f:clock()
    if not redis_ms then
      return nil, "realtime hub: " .. op .. ": cannot reach the fleet's Redis: " .. fleet.describe(cerr), nil,
        ckind == "config" and "config" or "network"
    end
    learn_offset(self, redis_ms)
  end
  local not_after = monotonic() * 1000 + self.redis_offset + f.store.timeout * 1000
  local queued, redis_ms, kind = f:push(text, self.max_commands, self.command_timeout, not_after)
  if queued == nil then
    return nil, "realtime hub: " .. op .. ": cannot reach the fleet's Redis: " .. fleet.describe(redis_ms), nil,
      kind == "config" and "config" or "network"
  end
  learn_offset(self, redis_ms)
  if queued == -2 then
    return nil, "realtime hub: " .. op .. ": Redis ran the command later than its timeout allows; it "
      .. "was not queued", nil, "network"
  elseif queued == 0 then
    return nil, "realtime hub: " .. op .. ": no node holds the account's connection (one takes it over within "
      .. "the lease)", nil, "network"
  elseif queued == -1 then
    return nil, "realtime hub: " .. op .. ": too many commands waiting for the connection", nil, "rate_limited"
  end
  local answer
  answer, err, kind = f:answer(id, self.command_timeout)
  if answer == nil then
    return nil, "realtime hub: " .. op .. ": lost the fleet's Redis while waiting for the answer: "
      .. fleet.describe(err), nil, kind == "config" and "config" or "network"
  elseif answer == false then
    return nil, "realtime hub: " .. op .. ": the connection did not take the command in time", nil, "timeout"
  end
  local a = json.decode(answer) or {}
  if a.msgId then return a.msgId end
  return nil, a.err or "realtime: " .. op .. " failed", a.code, a.kind
end

--- The fleet's part of hub:status, into `out` (`state`: the leader's, as this
-- node last heard it).
function _M.status(self, out, state)
  local dict = self.dict
  local me = json.decode(dict:get(key(self, "fl:node")) or "") or {}
  local subscribed = dict:get(key(self, "fl:sub")) == true
  out.connected = out.connected and subscribed
  out.node = state.node
  out.fleet = { node = self.node, leading = me.leading == true, connecting_in = me.connecting_in,
                subscribed = subscribed, leader = me.holder and fleet.node_of(me.holder), err = me.err }
end

return _M
