-- examples/realtime.conf, as shipped, started against the fake cloud: only the
-- install paths, the CA bundle, the page's folder and the port are swapped for
-- this checkout's (as spec/nginx/example_nginx_spec.lua does for nginx.conf).
--
--   local example = require "support.realtime_example"
--   local srv = example.start { phone = ..., password = ..., swaps = { ... } }
--   srv:status()          -- GET /realtime/status, decoded
--   srv:request{...}, srv:error_log(), srv:stop()
local fake = require "support.fake"
local nginx = require "support.nginx"
local json = require "quecapi.json"
local core = require "quecapi.core"
local poll = require "support.poll"
local shell = require "support.sh"

local _M = {}

local function plain(s) return (s:gsub("%p", "%%%0")) end

-- A port from the kernel's randomness (LuaJIT's math.random starts the same in every process).
local function random_port()
  local f = assert(io.open("/dev/urandom", "rb"))
  local a, b = f:read(2):byte(1, 2)
  f:close()
  return 19000 + (a * 256 + b) % 900
end

local Server = {}
Server.__index = Server

function Server:request(req)
  if type(req) == "string" then req = { path = req } end
  self.session = self.session or assert(core.session())
  return self.session:request {
    method = req.method or (req.body and "POST" or "GET"), url = self.url .. (req.path or "/"),
    body = req.body, headers = req.headers, timeout = req.timeout or 30, connect_timeout = 5,
  }
end

function Server:status()
  local status, text = self:request "/realtime/status"
  assert(status == 200, tostring(text))
  return json.decode(text)
end

--- Wait until check(status) holds (at most `timeout` seconds): the status, and whether it held.
function Server:until_status(check, timeout)
  return poll(function() return self:status() end, check, timeout)
end

function Server:error_log()
  return shell.read(self.dir .. "/logs/error.log") or ""
end

-- The worker processes' pids (children of the master).
function Server:workers()
  local master = (shell.read(self.dir .. "/logs/nginx.pid") or ""):match("%d+")
  local out = nginx.output("pgrep -P " .. master .. " 2>/dev/null || true")
  local pids = {}
  for pid in out:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
  return pids
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  if self.session then self.session:close() end
  shell.run(("kill $(cat %s/logs/nginx.pid 2>/dev/null) 2>/dev/null; sleep 0.3; rm -rf %s"):format(self.dir,
    self.dir))
end

--- Start it: opts.phone, opts.password (the account), opts.swaps (more { from, to } pairs,
-- for the benchmark), opts.env (more NAME=value).
function _M.start(opts)
  local root = nginx.root
  local dir = shell.tempdir()
  assert(shell.run("mkdir -p " .. dir .. "/logs"))
  local conf = assert(shell.read(root .. "/examples/realtime.conf"))
  local swaps = {
    { "/usr/local/share/lua/5.1/?.lua;;", root .. "/lua/?.lua;;" },
    { "/usr/local/lib/lua/5.1/?.so;;", root .. "/build/luajit/?.so;;" },
    { "/etc/ssl/certs/ca-certificates.crt", fake.ca },
    { "root /usr/local/share/quecapi/examples;", "root " .. root .. "/examples;" },
  }
  for _, s in ipairs(opts.swaps or {}) do swaps[#swaps + 1] = s end
  for _, s in ipairs(swaps) do
    local n
    conf, n = conf:gsub(plain(s[1]), (s[2]:gsub("%%", "%%%%")))
    assert(n == 1, "examples/realtime.conf no longer holds " .. s[1])
  end
  conf = nginx.user_directive() .. "\n" .. conf
  local env = ("QUECAPI_BASE_URL=%s QUECAPI_USER_DOMAIN=%s QUECAPI_USER_DOMAIN_SECRET=%s QUECAPI_PHONE=%s " ..
    "QUECAPI_PASSWORD=%s QUECAPI_REALTIME_URL=%s %s"):format(
    fake.url:gsub("127%.0%.0%.1", "localhost"), fake.user_domain, fake.secret, opts.phone, opts.password,
    opts.realtime_url or fake.mqtt_url, opts.env or "")
  for _ = 1, 10 do
    local port = random_port()
    local f = assert(io.open(dir .. "/nginx.conf", "wb"))
    local text, n = conf:gsub("listen 127%.0%.0%.1:8080 ", "listen 127.0.0.1:" .. port .. " ")
    assert(n == 1, "examples/realtime.conf no longer listens on 127.0.0.1:8080")
    f:write(text)
    f:close()
    if shell.run(("env %s nginx -p %s -c %s/nginx.conf 2>>%s/logs/error.log"):format(env, dir, dir, dir)) then
      local srv = setmetatable({ dir = dir, port = port, url = "http://127.0.0.1:" .. port }, Server)
      for _ = 1, 100 do
        if srv:request { path = "/ping", timeout = 1 } == 200 then return srv end
        core.sleep(0.05)
      end
      local log = srv:error_log()
      srv:stop()
      error("examples/realtime.conf started but does not answer:\n" .. log)
    end
  end
  error("examples/realtime.conf did not start:\n" .. (shell.read(dir .. "/logs/error.log") or ""))
end

return _M
