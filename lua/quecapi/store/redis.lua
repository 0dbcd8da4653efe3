--- Token store in Redis: one truth for every node of a fleet (nginx nodes, cron
-- jobs, the command line on other hosts), with a lock that makes token renewal
-- single-flight across all of them.
--
--     local store = require("quecapi.store.redis").new {
--       url = "redis://:PASSWORD@10.0.0.5:6379/0",   -- or host, port, password, db
--     }
--     local store = require("quecapi.store.redis").new {      -- through Redis Sentinel
--       sentinel = { master = "mymaster", hosts = { "10.0.0.7:26379", "10.0.0.8:26379" } },
--       password = "...",
--     }
--
-- Tokens are the JSON of the tokens under "<prefix><key>" (prefix "quecapi:"
-- unless given; the key is the client's, origin and account), living until the
-- refresh token expires (or the access token, when there is no refresh token),
-- as in the shdict store: an entry that vanished with the access token would
-- throw away a refresh token still good for days and turn every expiry into a
-- full login, which needs the password on every node.
--
-- The lock is "<prefix>lock:<key>", set with `SET NX PX lock_ttl` to a random
-- owner value (the C core's RAND_bytes) inside a short script that also
-- recognises its own owner, so a poll repeated after a lost reply never locks
-- itself out. Only the owner releases it: a compare-and-delete script. A
-- holder that dies leaves it to expire after `lock_ttl` (30 s; keep it above
-- your longest call deadline, `retry.deadline`, 30 s by default: a holder never
-- holds the lock longer than the call that took it). Waiters poll with a
-- growing sleep (2 ms doubling to 50 ms, each randomised by half a step either
-- way so that waiters do not poll in step) through quecapi.time: ngx.sleep in
-- nginx, so the worker serves other requests meanwhile.
--
-- Where it talks from: in nginx's request handlers and timers over cosockets
-- (lua-resty-redis: Debian's lua-nginx-redis as `nginx.redis`, or OpenResty's
-- `resty.redis`), pooled per worker (set_keepalive); in plain Lua, and in
-- init_by_lua and init_worker_by_lua where nginx may block, over LuaSocket
-- (`quecapi.store.redis_socket`), one connection per store kept open between
-- calls outside nginx. In other nginx phases (log, header filter, ...) every
-- method returns an error naming ngx.timer.at.
--
-- Failures are values, never raised: `nil, err, kind`, kind "network" when
-- Redis cannot be reached or cannot serve (refused, timed out, closed, LOADING,
-- READONLY after a failover...), "config" when it refuses us (wrong password,
-- no such db, a Redis Cluster redirect, another program's data under the
-- prefix). A timeout makes that address rest for `timeout` seconds in this
-- process (nginx worker): calls meanwhile fail at once instead of waiting
-- again, so a call never waits for a hung Redis much longer than `timeout`. An
-- idle connection the server dropped (a restart) is replaced once, silently;
-- through Sentinel, a command the old master refused or lost is sent once more
-- to the master the sentinels name now (every command here may be repeated).
-- Nothing else is retried, and nothing needs restarting when Redis comes back:
-- the next call connects again.
--
-- Errors name Redis by host:port, never by URL: the password never appears in
-- them, nor in the store's fields. The store writes no logs.
-- @module quecapi.store.redis

local core = require "quecapi.core"
local json = require "quecapi.json"
local time = require "quecapi.time"
local redact = require "quecapi.redact"
local redis_socket = require "quecapi.store.redis_socket"

local type, tostring, tonumber, pairs, ipairs, pcall, setmetatable, rawget = type, tostring, tonumber, pairs,
  ipairs, pcall, setmetatable, rawget
local format, match, find, lower, gsub, char, sub, byte = string.format, string.match, string.find, string.lower,
  string.gsub, string.char, string.sub, string.byte
local floor, ceil, min = math.floor, math.ceil, math.min
local concat = table.concat

local _M = {}
local mt = { __index = _M }

local E = "quecapi.store.redis: "

_M.DEFAULTS = {
  port = 6379,
  db = 0,
  prefix = "quecapi:",
  timeout = 1,         -- seconds for each connect, send and receive
  lock_ttl = 30,       -- seconds a lock outlives a holder that died
  pool_size = 30,      -- idle connections kept per nginx worker and address
  keepalive = 60,      -- seconds an idle pooled connection is kept
}
local DEFAULTS = _M.DEFAULTS

local FIRST_STEP, MAX_STEP = 0.002, 0.05 -- seconds between two tries for a lock
local OWNER_LENGTH = 24                  -- [0-9A-Za-z]: about 142 bits

-- SET NX PX, or the lock is already ours (a poll repeated after its reply was lost).
local ACQUIRE = "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end "
  .. "if redis.call('get', KEYS[1]) == ARGV[1] then return 1 end return 0"
-- Delete the lock only while it holds the caller's owner value.
local RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

local OPTIONS = {
  url = "string", host = "string", port = "number", username = "string", password = "string", db = "number",
  prefix = "string", sentinel = "table", timeout = "number", lock_ttl = "number", pool_size = "number",
  keepalive = "number",
}
local SENTINEL_OPTIONS = { master = "string", hosts = "table", username = "string", password = "string" }

-- Per process (per nginx worker): address -> monotonic time before which it is
-- not tried again after a timeout; sentinel set -> the master it named last.
local resting = {}
local masters = {}

-- Passwords, kept out of the store's fields (a dump of a client's settings
-- must not show them); weak, so a store dropped is collected.
local secrets = setmetatable({}, { __mode = "k" })

-- ---------------------------------------------------------------------------
-- options
-- ---------------------------------------------------------------------------

local function is_int(v, low, high)
  return type(v) == "number" and v == floor(v) and v >= low and v <= high
end

local function positive(v)
  return type(v) == "number" and v > 0 and v < 1e9
end

local function unescape(s)
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

-- "host:port" or { host = , port = } -> { host, port }, or nil.
local function address(v, default_port)
  local host, port
  if type(v) == "table" then
    host, port = v.host, v.port or default_port
  elseif type(v) == "string" then
    host, port = match(v, "^([^:/%s]+):(%d+)$")
    if not host then host, port = match(v, "^([^:/%s]+)$"), default_port end
    port = tonumber(port)
  end
  if type(host) ~= "string" or host == "" or not is_int(port, 1, 65535) then return nil end
  -- cosockets resolve names through nginx's resolver, which may not know localhost
  if host == "localhost" then host = "127.0.0.1" end
  return { host = host, port = port }
end

-- redis://[[username]:password@]host[:port][/db] -> fields, or nil, err (never quoting the URL).
local function parse_url(url)
  local scheme, rest = match(url, "^(%a[%w+.%-]*)://(.*)$")
  scheme = scheme and lower(scheme)
  if scheme == "rediss" then
    return nil, "TLS to Redis (rediss://) is not supported: reach it over a private network or a local TLS tunnel"
  end
  if scheme ~= "redis" then return nil, "option 'url' must look like redis://[:password@]host[:port][/db]" end
  local out = {}
  local userinfo, hostpart = match(rest, "^(.*)@([^@]*)$")
  if userinfo then
    local user, pass = match(userinfo, "^([^:]*):(.*)$")
    if user then
      if user ~= "" then out.username = unescape(user) end
      out.password = unescape(pass)
    elseif userinfo ~= "" then
      out.username = unescape(userinfo)
    end
  else
    hostpart = rest
  end
  local host, port, db = match(hostpart, "^([^:/?#]+):?(%d*)/?(%d*)$")
  if not host then return nil, "option 'url' has no valid host[:port][/db] part" end
  out.host = host
  if port ~= "" then out.port = tonumber(port) end
  if db ~= "" then out.db = tonumber(db) end
  return out
end

local function check_sentinel(s)
  for k, v in pairs(s) do
    local want = SENTINEL_OPTIONS[k]
    if not want then return nil, "sentinel: unknown option '" .. redact.line(tostring(k)) .. "'" end
    if type(v) ~= want then return nil, format("sentinel.%s must be a %s", k, want) end
  end
  if not s.master or s.master == "" then return nil, "sentinel.master (the master's name) is required" end
  local hosts = {}
  for i, h in ipairs(s.hosts or {}) do
    hosts[i] = address(h, 26379)
    if not hosts[i] then return nil, format("sentinel.hosts[%d] must be \"host:port\" or {host=, port=}", i) end
  end
  if #hosts == 0 then return nil, "sentinel.hosts must list at least one sentinel" end
  local names = {}
  for i, h in ipairs(hosts) do names[i] = h.host .. ":" .. h.port end
  return { master = s.master, hosts = hosts, id = s.master .. "@" .. concat(names, ",") }
end

-- Tells pools apart by credentials (a digest: the pool name is no secret).
local function identity(username, password)
  if not password then return "-" end
  return sub(core.sha256_hex((username or "") .. "\0" .. password), 1, 16)
end

--- Make a store. Nothing is connected or sent here.
-- @tparam table opts `url` (`redis://[[user]:password@]host[:port][/db]`) or
--   `host`, `port` (6379), `username`, `password`, `db` (0); or `sentinel =
--   { master, hosts = { "host:port", ... }, username, password }` (the
--   sentinels' own credentials; `password`/`username`/`db` are the data
--   servers'); `prefix` ("quecapi:"), `timeout` (seconds for each connect,
--   send and receive, 1), `lock_ttl` (seconds, 30), `pool_size` (30) and
--   `keepalive` (seconds, 60) for the nginx connection pool
-- @return store, or nil, err
function _M.new(opts)
  if type(opts) ~= "table" then return nil, E .. "options must be a table" end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then return nil, E .. "unknown option '" .. redact.line(tostring(k)) .. "'" end
    if type(v) ~= want then return nil, format("%soption '%s' must be a %s", E, k, want) end
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.url then
    if o.host or o.sentinel then return nil, E .. "give one of 'url', 'host' and 'sentinel'" end
    local parsed, err = parse_url(o.url)
    if not parsed then return nil, E .. err end
    for k, v in pairs(parsed) do
      if o[k] ~= nil then return nil, format("%s'%s' is given both in the url and as an option", E, k) end
      o[k] = v
    end
  end
  if o.host and o.sentinel then return nil, E .. "give one of 'url', 'host' and 'sentinel'" end
  if not is_int(o.db or 0, 0, 1e6) then return nil, E .. "option 'db' must be a whole number from 0" end
  for _, k in ipairs { "timeout", "lock_ttl", "keepalive" } do
    if o[k] ~= nil and not positive(o[k]) then return nil, format("%soption '%s' must be a positive number", E, k) end
  end
  if o.pool_size ~= nil and not is_int(o.pool_size, 1, 1e6) then
    return nil, E .. "option 'pool_size' must be a positive whole number"
  end
  if o.password == "" then o.password = nil end
  local self = {
    prefix = o.prefix or DEFAULTS.prefix,
    db = o.db or DEFAULTS.db,
    timeout = o.timeout or DEFAULTS.timeout,
    lock_ttl = o.lock_ttl or DEFAULTS.lock_ttl,
    pool_size = o.pool_size or DEFAULTS.pool_size,
    keepalive = o.keepalive or DEFAULTS.keepalive,
    conns = {}, -- plain Lua: pool name -> idle connection
  }
  local sentinel_auth
  if o.sentinel then
    local s, err = check_sentinel(o.sentinel)
    if not s then return nil, E .. err end
    self.sentinel = s
    local sp = o.sentinel.password ~= "" and o.sentinel.password or nil
    sentinel_auth = { username = o.sentinel.username, password = sp, identity = identity(o.sentinel.username, sp) }
  else
    self.addr = address({ host = o.host or "127.0.0.1", port = o.port }, DEFAULTS.port)
    if not self.addr then return nil, E .. "option 'port' must be a whole number from 1 to 65535" end
  end
  self.pool_tag = self.db .. ":" .. identity(o.username, o.password)
  self = setmetatable(self, mt)
  secrets[self] = { username = o.username, password = o.password, sentinel = sentinel_auth }
  return self
end

-- ---------------------------------------------------------------------------
-- talking to Redis: two ways, one calling convention (lua-resty-redis's)
-- ---------------------------------------------------------------------------

local resty_redis -- the cosocket client, loaded on first use in nginx

local cosocket = {}

function cosocket.connect(self, addr, pool)
  if not resty_redis then
    local ok, mod = pcall(require, "nginx.redis")
    if not ok then ok, mod = pcall(require, "resty.redis") end
    if not ok then
      return nil, "lua-resty-redis is not installed (Debian: apt-get install lua-nginx-redis)", "config"
    end
    resty_redis = mod
  end
  local red, err = resty_redis.new()
  if not red then return nil, err end
  red:set_timeout(self.timeout * 1000)
  local ok
  ok, err = red:connect(addr.host, addr.port, { pool = pool })
  if not ok then return nil, err end
  return red, (red:get_reused_times() or 0) == 0
end

function cosocket.release(self, red)
  red:set_keepalive(self.keepalive * 1000, self.pool_size)
end

function cosocket.close(_, red)
  red:close()
end

function cosocket.null()
  return rawget(_G, "ngx").null
end

local plain = {}

-- Kept between calls only outside nginx: a socket opened in init_by_lua would
-- be shared by every worker nginx forks.
function plain.connect(self, addr, pool)
  local conn = self.conns[pool]
  if conn then
    self.conns[pool] = nil
    return conn, false
  end
  conn = redis_socket.new()
  conn:set_timeout(self.timeout * 1000)
  local ok, err = conn:connect(addr.host, addr.port)
  if not ok then return nil, err end
  return conn, true
end

function plain.release(self, conn, pool)
  if time.phase() ~= nil then return conn:close() end
  local old = self.conns[pool]
  if old then old:close() end
  self.conns[pool] = conn
end

function plain.close(_, conn)
  conn:close()
end

function plain.null()
  return redis_socket.null
end

-- The way to Redis from here, or nil, err.
local function driver_here()
  local phase = time.phase()
  if phase == nil or time.BLOCKING_PHASES[phase] then return plain end
  if time.YIELDING_PHASES[phase] then return cosocket end
  return nil, format("redis: Redis cannot be reached in nginx's %s phase (no cosockets there, and it must "
    .. "not block): do this in a request handler or from a timer (ngx.timer.at)", tostring(phase))
end

-- Redis errors that mean "refuses you" (a setting to fix) rather than "cannot
-- serve now": credentials, permissions, Redis Cluster redirects, another
-- program's data under our prefix.
local CONFIG_ERRORS = { NOAUTH = true, WRONGPASS = true, NOPERM = true, MOVED = true, ASK = true, WRONGTYPE = true }

local function error_kind(err)
  local word = match(tostring(err), "^(%u+)")
  if CONFIG_ERRORS[word] or find(tostring(err), "^ERR invalid password") or find(tostring(err), "^ERR DB index")
      or find(tostring(err), "^ERR AUTH") then
    return "config"
  end
  return "network"
end

local function describe(where, err)
  if err == "timeout" then return "redis " .. where .. ": timed out" end
  return "redis " .. where .. ": " .. redact.line(tostring(err))
end

-- A network failure at `where`: an address that timed out rests for a while.
local function unreachable(self, where, err)
  if err == "timeout" then resting[where] = time.monotonic() + self.timeout end
  return describe(where, err)
end

-- Run one command on a connection; the reply (nil for Redis's null) or
-- nil, err, kind. `bad` is true when the connection must not be reused.
local function run(driver, conn, name, ...)
  local ok, res, err = pcall(conn[name], conn, ...)
  if not ok then return nil, "bad reply from Redis", "network", true, "raised" end
  if res == nil then return nil, err, "network", true, err end
  if res == false then
    local kind = error_kind(err)
    return nil, err, kind, kind == "network", nil
  end
  if res == driver.null() then return nil end
  return res
end

-- One command to `addr`: connect (or reuse an idle connection), greet a new
-- connection with `hello(self, conn, driver)`, send, give the connection back.
-- -> reply (nil for null), or nil, err, kind
local function exchange(self, driver, addr, pool, hello, name, ...)
  local where = addr.host .. ":" .. addr.port
  local rest_until = resting[where]
  if rest_until then
    if time.monotonic() < rest_until then
      return nil, "redis " .. where .. ": not answering (it timed out moments ago)", "network"
    end
    resting[where] = nil
  end
  for attempt = 1, 2 do
    local conn, fresh, ckind = driver.connect(self, addr, pool)
    if not conn then return nil, unreachable(self, where, fresh), ckind or "network" end
    local err, kind, bad, neterr
    if fresh and hello then
      err, kind, neterr = hello(self, conn, driver)
      if err then
        driver.close(self, conn)
        if neterr then return nil, unreachable(self, where, neterr), "network" end
        return nil, "redis " .. where .. ": " .. redact.line(tostring(err)), kind
      end
    end
    local res
    res, err, kind, bad, neterr = run(driver, conn, name, ...)
    if err == nil then
      driver.release(self, conn, pool)
      return res
    end
    if bad then driver.close(self, conn) else driver.release(self, conn, pool) end
    -- an idle connection the server dropped (a restart): once more on a new one
    local retry = neterr and neterr ~= "timeout" and neterr ~= "raised" and not fresh and attempt == 1
    if not retry then
      if neterr then return nil, unreachable(self, where, neterr), "network" end
      return nil, "redis " .. where .. ": " .. redact.line(tostring(err)), kind, err
    end
  end
end

-- AUTH [username] password on a new connection: nil, or err, kind, neterr.
local function authenticate(driver, conn, auth, what)
  if not auth.password then return nil end
  local _, err, kind, neterr
  if auth.username then
    _, err, kind, _, neterr = run(driver, conn, "auth", auth.username, auth.password)
  else
    _, err, kind, _, neterr = run(driver, conn, "auth", auth.password)
  end
  if not err then return nil end
  if neterr then return err, kind, neterr end
  return what .. " failed: " .. tostring(err), "config"
end

-- A new connection to a data server: AUTH, SELECT, and through Sentinel a
-- check that it is the master still. nil, or err, kind, neterr.
local function greet(self, conn, driver)
  local err, kind, neterr = authenticate(driver, conn, secrets[self], "authentication")
  if err then return err, kind, neterr end
  if self.db ~= 0 then
    local _, serr, skind, _, sneterr = run(driver, conn, "select", self.db)
    if serr then return serr, skind, sneterr end
  end
  if self.sentinel then
    local role, rerr, rkind, _, rneterr = run(driver, conn, "role")
    if rerr then return rerr, rkind, rneterr end
    if type(role) ~= "table" or role[1] ~= "master" then
      masters[self.sentinel.id] = nil
      return "not the master (any more): a failover is under way", "network"
    end
  end
  return nil
end

local function greet_sentinel(self, conn, driver)
  return authenticate(driver, conn, secrets[self].sentinel, "sentinel authentication")
end

-- The master's address: the configured one, or the one the sentinels name.
local function master(self, driver)
  local s = self.sentinel
  if not s then return self.addr end
  local known = masters[s.id]
  if known then return known, true end
  local auth = secrets[self].sentinel
  local problems = {}
  for _, addr in ipairs(s.hosts) do
    local pool = "quecapi:sentinel:" .. addr.host .. ":" .. addr.port .. ":" .. auth.identity
    local res, err = exchange(self, driver, addr, pool, greet_sentinel, "sentinel", "get-master-addr-by-name",
      s.master)
    local found = type(res) == "table" and type(res[1]) == "string" and address { host = res[1],
      port = tonumber(res[2]) }
    if found then
      masters[s.id] = found
      return found
    end
    problems[#problems + 1] = err or format("redis sentinel %s:%d does not know master '%s'", addr.host,
      addr.port, redact.line(s.master))
  end
  return nil, format("redis: no sentinel named the master '%s' (%s)", redact.line(s.master), concat(problems, "; ")),
    "network"
end

-- One command to the master: reply (nil for null), or nil, err, kind.
local function command(self, name, ...)
  local driver, err = driver_here()
  if not driver then return nil, err, "config" end
  for attempt = 1, 2 do
    local addr, known, kind = master(self, driver)
    if not addr then return nil, known, kind end
    local pool = "quecapi:redis:" .. addr.host .. ":" .. addr.port .. ":" .. self.pool_tag
    local res, raw
    res, err, kind, raw = exchange(self, driver, addr, pool, greet, name, ...)
    if not err then return res end
    if not (self.sentinel and kind == "network") then return nil, err, kind end
    -- Through Sentinel the master may have moved (a demoted master refuses
    -- writes with READONLY, or drops its clients and answers ROLE as a
    -- replica): ask the sentinels, and when the address was an old answer of
    -- theirs, send the command once more. Every command here may be repeated.
    masters[self.sentinel.id] = nil
    if attempt == 2 or not (known or find(tostring(raw), "^READONLY")) then return nil, err, kind end
  end
end

-- ---------------------------------------------------------------------------
-- the store interface
-- ---------------------------------------------------------------------------

-- Milliseconds the entry should live: until the refresh token (or, without one,
-- the access token) expires; nil (no limit) when the tokens carry no expiry.
local function lifetime_ms(tokens, now)
  local at = tonumber(tokens.refresh_expires)
  if not at and tokens.refresh_token == nil then at = tonumber(tokens.access_expires) end
  if not at or at ~= at then return nil end
  -- the platform sends seconds; a millisecond timestamp would be 1000 times too far away
  if at > 1e11 then at = at / 1000 end
  -- expired already: kept a moment (PX needs a positive number)
  local ms = ceil((at - now) * 1000)
  if ms < 1000 then ms = 1000 end
  if ms > 1e15 then return nil end
  return ms
end

--- The tokens stored under `key`; nil when there are none (or what is stored
-- is not a tokens table); nil, err, kind when Redis cannot answer.
function _M:get(key)
  if type(key) ~= "string" then return nil, "key must be a string" end
  local text, err, kind = command(self, "get", self.prefix .. key)
  if err then return nil, err, kind end
  if type(text) ~= "string" then return nil end
  local tokens = json.decode(text)
  if type(tokens) == "table" then return tokens end
  return nil
end

--- Store `tokens` under `key`, living until the refresh token expires.
-- @return true, or nil, err, kind
function _M:set(key, tokens)
  if type(key) ~= "string" then return nil, "key must be a string" end
  if type(tokens) ~= "table" then return nil, "tokens must be a table" end
  local text, err = json.encode(tokens)
  if not text then return nil, "cannot encode the tokens: " .. tostring(err) end
  local ms = lifetime_ms(tokens, time.now_ms() / 1000)
  local ok, kind
  if ms then
    ok, err, kind = command(self, "set", self.prefix .. key, text, "PX", format("%d", ms))
  else
    ok, err, kind = command(self, "set", self.prefix .. key, text)
  end
  if err then return nil, err, kind end
  if ok ~= "OK" then return nil, "redis: SET answered " .. redact.line(tostring(ok)), "network" end
  return true
end

--- Forget the tokens under `key`.
-- @return true, or nil, err, kind
function _M:delete(key)
  if type(key) ~= "string" then return nil, "key must be a string" end
  local _, err, kind = command(self, "del", self.prefix .. key)
  if err then return nil, err, kind end
  return true
end

--- Wait up to `timeout` seconds to hold the lock for `key`, across every
-- process and node using this Redis.
-- @return a handle for unlock, or nil, "timeout", or nil, err, kind
function _M:lock(key, timeout)
  if type(key) ~= "string" then return nil, "key must be a string" end
  timeout = tonumber(timeout) or 0
  if timeout ~= timeout or timeout < 0 then timeout = 0 end
  local lock_key = self.prefix .. "lock:" .. key
  local owner = core.random_string(OWNER_LENGTH)
  local ttl = format("%d", ceil(self.lock_ttl * 1000))
  local deadline = time.monotonic() + timeout
  local step = FIRST_STEP
  -- Waiters that started together must not poll together (only the first of a
  -- burst gets the lock, the others would all sleep a whole step): each sleep is
  -- 0.5 to 1.5 steps, from a sequence seeded by this call's random owner value.
  local seed = byte(owner, 1) * 65536 + byte(owner, 2) * 256 + byte(owner, 3)
  while true do
    local got, err, kind = command(self, "eval", ACQUIRE, 1, lock_key, owner, ttl)
    if err then return nil, err, kind end
    if got == 1 then return owner end
    local left = deadline - time.monotonic()
    if left <= 0 then return nil, "timeout" end
    seed = (seed * 1103515245 + 12345) % 2147483648
    local nap = step * (0.5 + seed / 2147483648)
    if not time.sleep(nap < left and nap or left) then
      return nil, "the lock is held and this nginx phase cannot wait"
    end
    step = min(step * 2, MAX_STEP)
  end
end

--- Release the lock taken with `handle`; a lock that expired and was taken by
-- someone else is left alone (the check and the delete are one script).
-- @return true, or nil, "lock not held", or nil, err, kind
function _M:unlock(key, handle)
  if type(key) ~= "string" then return nil, "key must be a string" end
  if type(handle) ~= "string" then return nil, "lock not held" end
  local n, err, kind = command(self, "eval", RELEASE, 1, self.prefix .. "lock:" .. key, handle)
  if err then return nil, err, kind end
  if n ~= 1 then return nil, "lock not held" end
  return true
end

-- ---------------------------------------------------------------------------
-- for other quecapi modules that share the store's Redis (the realtime hub)
-- ---------------------------------------------------------------------------

--- `name` under the store's prefix.
function _M:key(name)
  return self.prefix .. name
end

--- One command to the master, with the store's connections, greeting,
-- Sentinel and failure handling: the reply (nil for Redis's null), or nil,
-- err, kind ("network" or "config", as for the store's own methods).
function _M:call(name, ...)
  local _, err = driver_here()
  if err then return nil, err, "config" end
  return command(self, name, ...)
end

-- Connections handed out by `connection`: the pool each came from (weak keys).
local lent = setmetatable({}, { __mode = "k" })

--- A connection to the master for the caller alone (SUBSCRIBE, BLPOP):
-- greeted (AUTH, SELECT, through Sentinel checked to be the master), with
-- `timeout` seconds for each send and receive. Give it back with
-- `store:release(conn)` when it is in a normal state, else `conn:close()`.
-- @return conn (lua-resty-redis's calling convention), or nil, err, kind
function _M:connection(timeout)
  local driver, err = driver_here()
  if not driver then return nil, err, "config" end
  local addr, merr, mkind = master(self, driver)
  if not addr then return nil, merr, mkind end
  local where = addr.host .. ":" .. addr.port
  local rest_until = resting[where]
  if rest_until and time.monotonic() < rest_until then
    return nil, "redis " .. where .. ": not answering (it timed out moments ago)", "network"
  end
  local pool = "quecapi:redis:" .. where .. ":" .. self.pool_tag
  local conn, fresh, ckind = driver.connect(self, addr, pool)
  if not conn then
    if self.sentinel then masters[self.sentinel.id] = nil end
    return nil, unreachable(self, where, fresh), ckind or "network"
  end
  if fresh then
    local gerr, gkind, neterr = greet(self, conn, driver)
    if gerr then
      driver.close(self, conn)
      if neterr then return nil, unreachable(self, where, neterr), "network" end
      return nil, "redis " .. where .. ": " .. redact.line(tostring(gerr)), gkind
    end
  end
  conn:set_timeout(ceil((tonumber(timeout) or self.timeout) * 1000))
  lent[conn] = { driver = driver, pool = pool, where = where }
  return conn
end

--- Give back a connection from `connection` (to the pool in nginx).
function _M:release(conn)
  local l = lent[conn]
  if not l then return end
  lent[conn] = nil
  conn:set_timeout(ceil(self.timeout * 1000))
  l.driver.release(self, conn, l.pool)
end

--- The words and kind for a failure on a connection from `connection`:
-- `replied` true when Redis answered with an error, else a network failure
-- (a timeout makes the address rest, as for the store's own calls). Names
-- Redis by host:port, never by URL.
-- @return err, kind
function _M:failure(conn, err, replied)
  local l = lent[conn]
  local where = l and l.where or "?"
  if replied then return "redis " .. where .. ": " .. redact.line(tostring(err)), error_kind(err) end
  return unreachable(self, where, err), "network"
end

--- Close the connections this store keeps open (plain Lua). Optional: they
-- close when the store is collected or the process ends.
function _M:close()
  for pool, conn in pairs(self.conns) do
    conn:close()
    self.conns[pool] = nil
  end
  return true
end

return _M
