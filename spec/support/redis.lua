-- Real redis-server processes for specs: each on a free loopback port in its
-- own temp directory, stopped at the end (and at exit for forgotten ones).
-- Never the system's Redis.
--
--   local redis = require "support.redis"
--   local r = redis.start { password = "pw" }     -- a master; opts below
--   r:cli("GET", "k")                              -- redis-cli's answer, as text
--   r:stop()  r:start()                           -- SIGTERM (persisting), then again on the same port
--   r:pause() r:resume()                          -- SIGSTOP / SIGCONT: a server that hangs
--   local replica = redis.start { replica_of = r }
--   local s = redis.sentinel { master = r, name = "mymaster" }
--   s:cli("SENTINEL", "get-master-addr-by-name", "mymaster")
--
-- Options of start: password, port (default: a free one), dir (default: a new
-- temp dir), replica_of (a server), conf (more lines of redis.conf).
-- Data persist across stop/start: an append-only file fsynced on every write,
-- so a restart, even a SIGKILL, loses nothing (what a production setup with
-- `appendonly yes` gives within its fsync policy).
local core = require "quecapi.core"
local sh = require "support.sh"

local quote, run, output, read = sh.quote, sh.run, sh.output, sh.read

local _M = {}

local running = {} -- servers not stopped yet, for the exit-time finalizer

-- 0 .. n-1 from the kernel: LuaJIT's math.random starts from the same seed in
-- every process, so two spec runs would race for the same ports.
local function random_below(n)
  local f = io.open("/dev/urandom", "rb")
  local b = f and f:read(4) or tostring(os.time())
  if f then f:close() end
  local v = 0
  for i = 1, #b do v = (v * 256 + b:byte(i)) % 2147483647 end
  return v % n
end

-- Ports outside the kernel's ephemeral range (32768+), the fake cloud's
-- (20000-27999) and the nginx harness's (10000-18999).
local function pick_port()
  return 28000 + random_below(4500)
end

local function wait_for(pred, seconds)
  local deadline = core.monotonic() + seconds
  while not pred() do
    if core.monotonic() > deadline then return false end
    core.sleep(0.02)
  end
  return true
end

local Server = {}
Server.__index = Server

--- redis-cli against this server (the password through the environment, never
-- on a command line); what it printed. `args` are words, quoted here.
function Server:cli(...)
  local words = {}
  for i, w in ipairs { ... } do words[i] = quote(w) end
  local auth = self.password and ("REDISCLI_AUTH=" .. quote(self.password) .. " ") or ""
  return output(("%sredis-cli -h 127.0.0.1 -p %d --no-raw %s 2>&1"):format(auth, self.port,
    table.concat(words, " ")))
end

--- The raw text of redis-cli --raw: for values.
function Server:raw(...)
  local words = {}
  for i, w in ipairs { ... } do words[i] = quote(w) end
  local auth = self.password and ("REDISCLI_AUTH=" .. quote(self.password) .. " ") or ""
  return output(("%sredis-cli -h 127.0.0.1 -p %d --raw %s 2>&1"):format(auth, self.port,
    table.concat(words, " ")))
end

function Server:pid()
  return (read(self.dir .. "/redis.pid") or ""):match("%d+")
end

function Server:alive()
  local pid = self:pid()
  return pid ~= nil and run("kill -0 " .. pid .. " 2>/dev/null")
end

function Server:log()
  return read(self.dir .. "/redis.log") or ""
end

-- The whole configuration goes into a file (a password must not be on a command
-- line, where ps shows it); the command line names the file alone.
-- A value in redis.conf: double-quoted, backslashes and quotes escaped.
local function conf_quote(v)
  return '"' .. tostring(v):gsub('[\\"]', "\\%0") .. '"'
end
_M.conf_quote = conf_quote

local function write_conf(self)
  local lines = {
    "port " .. self.port, "bind 127.0.0.1", "dir " .. self.dir, "daemonize yes",
    "pidfile " .. self.dir .. "/redis.pid", "logfile " .. self.dir .. "/redis.log",
  }
  if self.sentinel_mode then
    for _, l in ipairs(self.sentinel_conf) do lines[#lines + 1] = l end
  else
    for _, l in ipairs { 'save ""', "appendonly yes", "appendfsync always" } do lines[#lines + 1] = l end
    if self.password then
      lines[#lines + 1] = "requirepass " .. conf_quote(self.password)
      lines[#lines + 1] = "masterauth " .. conf_quote(self.password) -- a promoted replica talks to the others with it
    end
    if self.replica_of then lines[#lines + 1] = "replicaof 127.0.0.1 " .. self.replica_of.port end
  end
  for _, l in ipairs(self.conf or {}) do lines[#lines + 1] = l end
  sh.write(self.conf_file, table.concat(lines, "\n") .. "\n")
end

local function answers(self)
  return self:cli("PING") == "PONG"
end

-- Start the process on self.port; true, or false.
local function launch(self)
  os.remove(self.dir .. "/redis.pid")
  write_conf(self)
  local cmd = "redis-server " .. quote(self.conf_file) .. (self.sentinel_mode and " --sentinel" or "")
  if not run(cmd .. " >>" .. quote(self.dir .. "/start.log") .. " 2>&1") then return false end
  return wait_for(function() return answers(self) end, 5)
end

--- Start (again) on the same port and directory: the data come back from the
-- append-only file. Waits until it answers PING.
function Server:start()
  assert(launch(self), "redis-server did not start again:\n" .. self:log())
  self.stopped = false
  running[self] = true
  return self
end

--- Stop: SIGTERM (redis writes its files and exits), waiting until it is gone.
function Server:stop(signal)
  if self.stopped then return end
  self.stopped = true
  running[self] = nil
  local pid = self:pid()
  if pid then
    run("kill -CONT " .. pid .. " 2>/dev/null") -- a paused server cannot exit
    run("kill -" .. (signal or "TERM") .. " " .. pid .. " 2>/dev/null")
    if not wait_for(function() return not run("kill -0 " .. pid .. " 2>/dev/null") end, 10) then
      run("kill -KILL " .. pid .. " 2>/dev/null")
      wait_for(function() return not run("kill -0 " .. pid .. " 2>/dev/null") end, 5)
    end
  end
end

--- SIGKILL: no goodbye, as a crashed machine.
function Server:kill()
  return self:stop("KILL")
end

--- SIGSTOP: the port still accepts connections (the kernel's backlog) but
-- nothing answers, as a hung or unreachable host does.
function Server:pause()
  assert(run("kill -STOP " .. assert(self:pid())))
end

function Server:resume()
  assert(run("kill -CONT " .. assert(self:pid())))
end

--- Stop and remove the directory (kept when REDIS_KEEP is set).
function Server:destroy()
  self:stop()
  if not os.getenv("REDIS_KEEP") then run("rm -rf " .. quote(self.dir)) end
end

-- At exit stop what a spec forgot to.
_M._finalizer = sh.on_collect(function()
  for srv in pairs(running) do pcall(srv.destroy, srv) end
end)

local function new_server(o)
  local self = setmetatable({
    password = o.password, replica_of = o.replica_of, conf = o.conf, sentinel_mode = o.sentinel_mode,
    sentinel_conf = o.sentinel_conf, dir = o.dir or sh.tempdir(), host = "127.0.0.1",
  }, Server)
  self.conf_file = self.dir .. (self.sentinel_mode and "/sentinel.conf" or "/redis.conf")
  for _ = 1, 10 do
    self.port = o.port or pick_port()
    if launch(self) then
      running[self] = true
      return self
    end
    local pid = self:pid()
    if pid then run("kill -KILL " .. pid .. " 2>/dev/null") end
    if o.port or not self:log():find("Address already in use", 1, true) then break end
    os.remove(self.dir .. "/redis.log")
  end
  local log = self:log() .. (read(self.dir .. "/start.log") or "")
  run("rm -rf " .. quote(self.dir))
  error("redis-server did not start:\n" .. log, 3)
end

--- A redis-server: see the options at the top.
function _M.start(opts)
  return new_server(opts or {})
end

--- A sentinel watching `master` under `name` (quorum 1: one sentinel may decide
-- a failover alone), declaring it down after `down_after` ms (500).
function _M.sentinel(opts)
  local master = assert(opts.master, "sentinel needs a master")
  local name = opts.name or "mymaster"
  local conf = {
    ("sentinel monitor %s 127.0.0.1 %d 1"):format(name, master.port),
    ("sentinel down-after-milliseconds %s %d"):format(name, opts.down_after or 500),
    ("sentinel failover-timeout %s %d"):format(name, opts.failover_timeout or 5000),
  }
  if master.password then conf[#conf + 1] = ("sentinel auth-pass %s %s"):format(name, conf_quote(master.password)) end
  return new_server { sentinel_mode = true, sentinel_conf = conf }
end

--- Wait until `pred()` is true, for at most `seconds`.
_M.wait_for = wait_for

return _M
