-- Nodes of a realtime fleet for specs and benchmarks: nginx instances running
-- quecapi.realtime.hub with the `fleet` option (support.realtime_fleet_nginx),
-- sharing one redis-server and the fake cloud's broker.
--
--   local fleet = require "support.realtime_fleet"
--   local a = fleet.node { name = "a", redis = r, phone = ..., password = ..., devices = "pk/dk,pk/dk" }
--   a:status()                        -- hub:status() of the node, decoded
--   a:until_status(check, seconds)    -- the status, and whether check(status) held in time
--   a:command { op = "write", pk = ..., dk = ..., values = {...} }
--   a.srv:json("/cost?n=N")           -- N token lookups through Redis and through a shared dict
--   a:kill()                          -- SIGKILL to the master and its workers: a node that dies
--   a:stop()
local nginx = require "support.nginx"
local json = require "quecapi.json"
local core = require "quecapi.core"
local poll = require "support.poll"
local shell = require "support.sh"

local _M = {}

local SERVER = [[
location = /status { content_by_lua_block { require("support.realtime_fleet_nginx").status() } }
location = /events { content_by_lua_block { require("support.realtime_fleet_nginx").events() } }
location = /command { content_by_lua_block { require("support.realtime_fleet_nginx").command() } }
location = /cost { content_by_lua_block { require("support.redis_nginx").cost() } }
]]

local HTTP = [[
lua_shared_dict realtime 4m;
lua_shared_dict tokens 1m;
lua_socket_log_errors off;
init_by_lua_block { require("support.realtime_fleet_nginx").init() }
init_worker_by_lua_block { require("support.realtime_fleet_nginx").start() }
]]

local Node = {}
Node.__index = Node

function Node:status()
  local status, v = self.srv:json("/status")
  assert(status == 200, "node " .. self.name .. ": /status answered " .. tostring(status) .. " " .. tostring(v))
  return v
end

--- Poll the status until check(status) holds, at most `timeout` seconds.
function Node:until_status(check, timeout)
  return poll(function() return self:status() end, check, timeout)
end

function Node:command(c)
  local status, v = self.srv:json("/command", c, 15)
  assert(status == 200, "node " .. self.name .. ": /command answered " .. tostring(status) .. " " .. tostring(v))
  return v
end

function Node:error_log()
  return self.srv:error_log()
end

function Node:pids()
  local master = (shell.read(self.srv.dir .. "/nginx.pid") or ""):match("%d+")
  local pids = { master }
  for pid in shell.output("pgrep -P " .. master .. " 2>/dev/null || true"):gmatch("%d+") do pids[#pids + 1] = pid end
  return pids
end

--- SIGKILL the master and every worker at once: no worker gets to give anything back.
function Node:kill()
  assert(shell.run("kill -KILL " .. table.concat(self:pids(), " ")))
  for _ = 1, 100 do
    local any = false
    for _, pid in ipairs(self:pids()) do
      if shell.run("kill -0 " .. pid .. " 2>/dev/null") then any = true end
    end
    if not any then break end
    core.sleep(0.02)
  end
end

function Node:stop()
  self.srv:stop()
end

--- Start a node: name, redis (a support.redis server), phone, password (the
-- account), devices ("pk/dk,..."), ttl (the fleet's lease, 2 s), workers (2);
-- sentinel (a support.redis sentinel) and master (its name for the master):
-- the node finds the master through the sentinel instead of `redis`'s port.
function _M.node(o)
  local main = table.concat({
    "env FAKECLOUD_URL;", "env FAKECLOUD_CA;", "env FAKECLOUD_MQTT_URL;",
    "env SPEC_PHONE=" .. o.phone .. ";", "env SPEC_PASSWORD=" .. o.password .. ";",
    "env SPEC_REDIS_PORT=" .. o.redis.port .. ";", "env SPEC_REDIS_PASSWORD=" .. (o.redis.password or "") .. ";",
    o.sentinel and ('env "SPEC_REDIS_SENTINEL=' .. o.master .. " " .. o.sentinel.port .. '";') or "",
    "env SPEC_NODE=" .. o.name .. ";", "env SPEC_TTL=" .. (o.ttl or 2) .. ";",
    "env SPEC_DEVICES=" .. o.devices .. ";",
  }, "\n")
  local srv = nginx.start { workers = o.workers or 2, main = main, http = HTTP, server = SERVER }
  return setmetatable({ name = o.name, srv = srv, port = srv.port, url = srv.url }, Node)
end

--- What the fake's broker saw since App connect number `since`: the most
-- sessions of client ids starting with `prefix` at once.
function _M.sessions(fake, since, prefix)
  local v = assert(fake.control("GET", ("/_fake/broker/sessions?since=%d&prefix=%s"):format(since, prefix)))
  return v
end

_M.json = json

return _M
