--- What the realtime hub of several nginx nodes keeps in Redis: who leads an
-- account's connection, the events it publishes, the commands any node sends
-- it and their answers, and what a node joining later must know.
--
-- `quecapi.realtime.hub` with the `fleet` option drives this; it holds no
-- state of its own beyond the store and the names. Every key of one account
-- carries the hub's name as a Redis Cluster hash tag, so the account's keys
-- live in one slot and a script may touch several of them:
--
--     <prefix>rt:{<name>}:leader    the lease: the leader's owner value, PX ttl
--     <prefix>rt:{<name>}:seen      "<ms> <run_id> <owner>": when the last lease ends (Redis's clock)
--     <prefix>rt:{<name>}:cmd       commands waiting for the leader: "<ms> <json>" (a list)
--     <prefix>rt:{<name>}:r:<id>    the answer to one command (a list of one, PX)
--     <prefix>rt:{<name>}:devices   the devices the connection follows
--     <prefix>rt:{<name>}:values    each device's last values (a hash)
--     <prefix>rt:{<name>}:state     the leader's connection state (PX ttl, renewed with the lease)
--     <prefix>rt:{<name>}:ev        the pub/sub channel every node subscribes to
--
-- Messages on the channel start with a letter: `e` an event ("pk\ndk\nrecord\njson",
-- record the device's merged values when the event changed them, else empty),
-- `v` a device's values replaced ("pk\ndk\nrecord"), `d` the device list, `s` the
-- state.
--
-- Why a lease handed over on Redis's evidence alone is safe: a leader counts
-- its lease from the moment it *sent* the renewal (before Redis set the new
-- expiry), on its own monotonic clock, and gives the connection up before that
-- count runs out; nobody else can take the lease before Redis lets it expire.
-- When the lease vanished some other way (Redis restarted or failed over, the
-- key was deleted or evicted), `seen` tells: the next leader waits until the
-- last lease `seen` would have ended, and a whole `ttl` when `seen` is missing
-- or was written by another Redis process (its run_id differs).
-- @module quecapi.realtime.fleet

local core = require "quecapi.core"
local redact = require "quecapi.redact"

local type, tostring, tonumber, setmetatable, rawget = type, tostring, tonumber, setmetatable, rawget
local format, match, sub = string.format, string.match, string.sub
local ceil, floor, max = math.ceil, math.floor, math.max

local _M = {}

-- Redis's clock in ms, in a script.
local NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

-- KEYS leader, seen, state; ARGV owner, ttl ms, run_id.
-- -> { 1, now, previous seen } | { 0, now, holder }
local ACQUIRE = NOW .. [[
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local prev = redis.call('get', KEYS[2])
  redis.call('set', KEYS[2], string.format('%.0f', now + tonumber(ARGV[2])) .. ' ' .. ARGV[3] .. ' ' .. ARGV[1])
  redis.call('del', KEYS[3])
  return { 1, now, prev or '' }
end
return { 0, now, redis.call('get', KEYS[1]) or '' }]]

-- KEYS leader, seen, state; ARGV owner, ttl ms, run_id, channel.
-- -> { 1, now } renewed (the state lives as long, and is published again) | { 0, now } not ours
local RENEW = NOW .. [[
if redis.call('get', KEYS[1]) ~= ARGV[1] then return { 0, now } end
redis.call('pexpire', KEYS[1], ARGV[2])
redis.call('set', KEYS[2], string.format('%.0f', now + tonumber(ARGV[2])) .. ' ' .. ARGV[3] .. ' ' .. ARGV[1])
local state = redis.call('get', KEYS[3])
if state then
  redis.call('pexpire', KEYS[3], ARGV[2])
  redis.call('publish', ARGV[4], 's' .. state)
end
return { 1, now }]]

-- KEYS leader, seen, state; ARGV owner, run_id, channel, state. -> 1 | 0 (not ours)
local RELEASE = NOW .. [[
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
redis.call('set', KEYS[2], string.format('%.0f', now) .. ' ' .. ARGV[2] .. ' ' .. ARGV[1])
redis.call('set', KEYS[3], ARGV[4], 'PX', 60000)
redis.call('publish', ARGV[3], 's' .. ARGV[4])
return 1]]

-- KEYS leader, state; ARGV owner, ttl ms, channel, state. -> 1 | 0 (not ours)
local STATE = [[
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[4], 'PX', ARGV[2])
redis.call('publish', ARGV[3], 's' .. ARGV[4])
return 1]]

-- KEYS leader, target; ARGV owner, how ("set" | "hset" | ""), field, value, channel, message.
-- Only the leader writes; -> receivers | -1 (not ours)
local POST = [[
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
if ARGV[2] == 'set' then redis.call('set', KEYS[2], ARGV[4])
elseif ARGV[2] == 'hset' then redis.call('hset', KEYS[2], ARGV[3], ARGV[4]) end
return redis.call('publish', ARGV[5], ARGV[6])]]

-- KEYS leader, cmd; ARGV command, max waiting, list ttl ms, not after (Redis ms).
-- -> { 1 | 0 (no leader) | -1 (full) | -2 (too late: its sender stopped waiting), now }
-- A command that reaches Redis late (a Redis that hung, a slow link) may find
-- its sender gone, told the write failed: it must not be sent after all.
local PUSH = NOW .. [[
if now > tonumber(ARGV[4]) then return { -2, now } end
if redis.call('exists', KEYS[1]) == 0 then return { 0, now } end
if redis.call('llen', KEYS[2]) >= tonumber(ARGV[2]) then return { -1, now } end
redis.call('rpush', KEYS[2], string.format('%.0f', now) .. ' ' .. ARGV[1])
redis.call('pexpire', KEYS[2], ARGV[3])
return { 1, now }]]

-- KEYS reply; ARGV answer, ttl ms.
local REPLY = "redis.call('rpush', KEYS[1], ARGV[1]) redis.call('pexpire', KEYS[1], ARGV[2]) return 1"

local Fleet = {}
local mt = { __index = Fleet }

--- The Redis side of one hub (one account).
-- @param store a `quecapi.store.redis` store
-- @tparam string name the hub's name
-- @tparam number ttl seconds of the leadership lease
function _M.new(store, name, ttl)
  local base = "rt:{" .. name .. "}:"
  local function k(what) return store:key(base .. what) end
  return setmetatable({
    store = store, ttl = ttl, ttl_ms = format("%d", ceil(ttl * 1000)),
    leader = k("leader"), seen = k("seen"), cmd = k("cmd"), devices = k("devices"), values = k("values"),
    state = k("state"), channel = k("ev"), reply_prefix = k("r:"), run = "-",
  }, mt)
end

local function failed(err, kind)
  return nil, tostring(err), kind or "network"
end

-- The Redis process's run_id: it changes at every restart, and a replica
-- promoted by a failover has its own.
function Fleet:run_id()
  local info, err, kind = self.store:call("info", "server")
  if type(info) ~= "string" then return failed(err or "INFO answered no text", kind) end
  local id = match(info, "run_id:(%x+)")
  if not id then return failed("INFO server has no run_id", "network") end
  self.run = id
  return id
end

--- Try to take the lease for `owner`.
-- @return true, wait (seconds before connecting), redis ms; false, holder, redis ms;
--   or nil, err, kind
function Fleet:acquire(owner)
  local r, err, kind = self.store:call("eval", ACQUIRE, 3, self.leader, self.seen, self.state, owner, self.ttl_ms,
    self.run)
  if type(r) ~= "table" then return failed(err or "bad reply", kind) end
  local now = tonumber(r[2]) or 0
  if r[1] ~= 1 then return false, r[3] ~= "" and r[3] or nil, now end
  -- won: how long may the last leader have believed it led?
  local exp, run = match(tostring(r[3]), "^(%d+) (%S+)")
  local current = self:run_id()
  local wait
  if exp and current and run == current then
    wait = max(0, (tonumber(exp) - now) / 1000)
  else
    wait = self.ttl -- unknown: Redis lost or changed its data, or never had a leader
  end
  if current and current ~= run then
    -- `seen` names the Redis process that wrote it: ours now
    self.store:call("eval", RENEW, 3, self.leader, self.seen, self.state, owner, self.ttl_ms, current, self.channel)
  end
  return true, wait, now
end

--- Renew the lease.
-- @return true, redis ms; false (not ours any more); or nil, err, kind
function Fleet:renew(owner)
  local r, err, kind = self.store:call("eval", RENEW, 3, self.leader, self.seen, self.state, owner, self.ttl_ms,
    self.run, self.channel)
  if type(r) ~= "table" then return failed(err or "bad reply", kind) end
  return r[1] == 1, tonumber(r[2])
end

--- Give the lease back (the connection is closed): the next leader need not wait.
-- @tparam string owner the lease's owner value
-- @tparam string state the state to leave behind (JSON)
-- @return true | false (not ours) | nil, err, kind
function Fleet:release(owner, state)
  local r, err, kind = self.store:call("eval", RELEASE, 3, self.leader, self.seen, self.state, owner, self.run,
    self.channel, state)
  if r == nil then return failed(err, kind) end
  return r == 1
end

--- The leader's connection state, kept as long as its lease and published.
function Fleet:set_state(owner, state)
  local r, err, kind = self.store:call("eval", STATE, 2, self.leader, self.state, owner, self.ttl_ms, self.channel,
    state)
  if r == nil then return failed(err, kind) end
  return r == 1
end

local function post(self, owner, target, how, field, value, message)
  local r, err, kind = self.store:call("eval", POST, 2, self.leader, target, owner, how, field or "", value or "",
    self.channel, message)
  if r == nil then return failed(err, kind) end
  if r == -1 then return false end
  return true
end

--- Publish an event (its JSON `text`); `record`, when the event changed the
-- device's values, is kept in the values hash under `field` first.
-- @return true | false (not the leader) | nil, err, kind
function Fleet:event(owner, pk, dk, field, record, text)
  local message = "e" .. pk .. "\n" .. dk .. "\n" .. (record or "") .. "\n" .. text
  if record then return post(self, owner, self.values, "hset", field, record, message) end
  return post(self, owner, self.values, "", nil, nil, message)
end

--- A device's values replaced (the reads when the connection starts).
function Fleet:values_of(owner, pk, dk, field, record)
  return post(self, owner, self.values, "hset", field, record, "v" .. pk .. "\n" .. dk .. "\n" .. record)
end

--- The device list (the dict's form).
function Fleet:device_list(owner, text)
  return post(self, owner, self.devices, "set", nil, text, "d" .. text)
end

--- What a node needs when it (re)subscribes: devices text, state JSON, and the
-- values hash as a flat list { field, record, ... }.
-- @return devices, state, values; or nil, err, kind
function Fleet:snapshot()
  local store = self.store
  local devices, err, kind = store:call("get", self.devices)
  if err then return failed(err, kind) end
  local state
  state, err, kind = store:call("get", self.state)
  if err then return failed(err, kind) end
  local values
  values, err, kind = store:call("hgetall", self.values)
  if err then return failed(err, kind) end
  return devices or false, state or false, type(values) == "table" and values or {}
end

--- Redis's clock.
-- @return Redis ms; or nil, err, kind
function Fleet:clock()
  local r, err, kind = self.store:call("time")
  if type(r) ~= "table" or not tonumber(r[1]) then return failed(err or "TIME answered no time", kind) end
  return tonumber(r[1]) * 1000 + floor((tonumber(r[2]) or 0) / 1000)
end

--- Queue a command for the leader, unless Redis runs it after `not_after`
-- (Redis ms): its sender no longer waits for it then.
-- @return 1 queued, 0 no leader, -1 too many waiting, -2 too late; and Redis ms
--   when it ran; or nil, err, kind
function Fleet:push(text, max_waiting, timeout, not_after)
  local r, err, kind = self.store:call("eval", PUSH, 2, self.leader, self.cmd, text, format("%d", max_waiting),
    format("%d", ceil((timeout + 5) * 1000)), format("%.0f", not_after))
  if type(r) ~= "table" then return failed(err or "bad reply", kind) end
  return tonumber(r[1]), tonumber(r[2])
end

--- Wait up to `timeout` seconds for the answer to command `id`.
-- @return the answer (JSON), false (none in time), or nil, err, kind
function Fleet:answer(id, timeout)
  local store = self.store
  local conn, err, kind = store:connection(timeout + 1)
  if not conn then return failed(err, kind) end
  local res
  res, err = conn:blpop(self.reply_prefix .. id, format("%.3f", max(0.001, timeout)))
  if res == nil or res == false then
    local e, k = store:failure(conn, err, res == false)
    conn:close()
    return failed(e, k)
  end
  store:release(conn)
  if type(res) == "table" and type(res[2]) == "string" then return res[2] end
  return false
end

--- Leave the answer to command `id` for its asker (kept `ttl` seconds).
function Fleet:reply(id, text, ttl)
  local r, err, kind = self.store:call("eval", REPLY, 1, self.reply_prefix .. id, text,
    format("%d", ceil(ttl * 1000)))
  if r == nil then return failed(err, kind) end
  return true
end

--- A connection of its own to take commands (BLPOP), `wait` seconds a try.
function Fleet:commands_connection(wait)
  return self.store:connection(wait + 1)
end

--- Give back a connection of `commands_connection` after a normal end.
function Fleet:release_connection(conn)
  return self.store:release(conn)
end

--- The next command on `conn`, waiting at most `wait` seconds: its age-stamp
-- (Redis ms) and JSON; false when none came; nil, err, kind when the
-- connection failed (close it then).
function Fleet:next_command(conn, wait)
  local res, err = conn:blpop(self.cmd, format("%.3f", wait))
  if res == nil or res == false then
    local e, k = self.store:failure(conn, err, res == false)
    return failed(e, k)
  end
  if type(res) ~= "table" or type(res[2]) ~= "string" then return false end
  local ms, text = match(res[2], "^(%d+) (.*)$")
  if not ms then return false end
  return tonumber(ms), text
end

--- A subscriber connection: SUBSCRIBEd to the account's channel, reads waiting
-- at most `timeout` seconds.
-- @return conn, or nil, err, kind
function Fleet:subscribe(timeout)
  local store = self.store
  local conn, err, kind = store:connection(timeout)
  if not conn then return failed(err, kind) end
  local res
  res, err = conn:subscribe(self.channel)
  if type(res) ~= "table" or res[1] ~= "subscribe" then
    local e, k = store:failure(conn, err or "SUBSCRIBE was not confirmed", res == false)
    conn:close()
    return failed(e, k)
  end
  return conn
end

--- Words for a failure on a subscriber or commands connection.
function Fleet:failure(conn, err, replied)
  return self.store:failure(conn, err, replied)
end

--- A message of the channel, split: tag, and its parts (see the module's text).
function _M.parse(payload)
  if type(payload) ~= "string" or payload == "" then return nil end
  local tag, rest = sub(payload, 1, 1), sub(payload, 2)
  if tag == "e" then
    local pk, dk, record, text = match(rest, "^([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$")
    if not pk then return nil end
    return tag, pk, dk, record ~= "" and record or nil, text
  elseif tag == "v" then
    local pk, dk, record = match(rest, "^([^\n]*)\n([^\n]*)\n(.*)$")
    if not pk then return nil end
    return tag, pk, dk, record
  elseif tag == "d" or tag == "s" then
    return tag, rest
  end
  return nil
end

--- A value for an owner: the node's name, the worker's pid, and randomness.
function _M.owner(node)
  local ngx = rawget(_G, "ngx")
  local pid = ngx and ngx.worker.pid() or 0
  return format("%s/%d/%s", node, pid, core.random_string(10))
end

--- The node's part of an owner value ("-" when none).
function _M.node_of(owner)
  return match(tostring(owner or ""), "^(.-)/%d+/") or "-"
end

--- A short, secret-free line for a Redis failure.
function _M.describe(err)
  return redact.line(tostring(err))
end

return _M
