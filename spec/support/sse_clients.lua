-- The busted side of support.sse_load: a load nginx of its own (one worker) that
-- runs many SSE clients against another server, and the calls to drive it.
--
--   local clients = require("support.sse_clients").start()
--   clients:run("a", { host = "127.0.0.1", port = 8080, clients = { { path = "/events?..." } }, ping = {...} })
--   clients:wait("a", function(status) return status.streaming == 200 end, 10)
--   local result = clients:result("a")     -- after clients:stop("a"), or when every client is done
--   clients:close()
local nginx = require "support.nginx"
local json = require "quecapi.json"
local poll = require "support.poll"
local load = require "support.sse_load"

local _M = {}

local Clients = {}
Clients.__index = Clients

function _M.start()
  local srv = nginx.start { workers = 1, server = load.SERVER, http = load.HTTP,
                            main = "worker_rlimit_nofile 4096;" }
  return setmetatable({ srv = srv }, Clients)
end

local function call(self, method, path, body)
  local status, text = self.srv:request { method = method, path = path, body = body, timeout = 30 }
  assert(status == 200, "load nginx: " .. tostring(status) .. " " .. tostring(text) .. "\n" ..
    self.srv:error_log():sub(-2000))
  return json.decode(text)
end

--- Start a run: o = { host, port, clients = { { path, count, stall, last_event_id } }, code, ping, timeout }.
function Clients:run(name, o)
  return call(self, "POST", "/load/start?name=" .. name, assert(json.encode(o)))
end

function Clients:status(name)
  return call(self, "GET", "/load/status?name=" .. name)
end

--- Poll the run's status until check(status) holds (at most `timeout` seconds); the status and whether it held.
function Clients:wait(name, check, timeout)
  return poll(function() return self:status(name) end, check, timeout)
end

function Clients:stop(name)
  return call(self, "POST", "/load/stop?name=" .. name)
end

--- The run's results, once it finished (stopped first unless every client is done).
function Clients:result(name, timeout)
  local _, ok = self:wait(name, function(s) return s.finished end, timeout or 10)
  assert(ok, "the load run " .. name .. " did not finish")
  return call(self, "GET", "/load/result?name=" .. name)
end

function Clients:close()
  self.srv:stop()
end

return _M
