-- A real nginx for specs: render a config around the caller's locations, start
-- it on a free loopback port, talk to it, stop it.
--
--   local nginx = require "support.nginx"
--   local srv = nginx.start {
--     workers = 1,                                  -- worker_processes
--     http = "lua_shared_dict tokens 1m;",          -- extra http{} directives
--     server = "location /t { content_by_lua_block { ngx.say('hi') } }",
--     main = "env FOO;",                            -- extra main-context directives
--   }
--   local status, body, headers = srv:request { path = "/t" }
--   local status, value = srv:json("/t", { a = 1 }) -- POST JSON, decode the answer
--   local bodies = srv:parallel { "/t", "/t" }      -- at once, one curl each
--   srv:stop()                                      -- also done at exit for forgotten ones
--
-- nginx.run(cmd) and nginx.output(cmd) run shell commands for specs (see clean).
--
-- From inside nginx, reach the fake cloud over HTTPS as https://localhost:PORT:
-- nginx checks certificates against names, never IP addresses, and the ngx
-- transport connects "localhost" to 127.0.0.1 without a resolver.
--
-- The Lua code in nginx runs on nginx's LuaJIT and finds the project through
-- lua_package_path (lua/, spec/) and lua_package_cpath (build/luajit/, so run
-- `make LUA=luajit` first). TLS trust for cosockets is the fake cloud's CA.
-- This file runs in the busted process (Lua 5.4 or LuaJIT) and talks to nginx
-- with the C core's libcurl session.
local core = require "quecapi.core"
local json = require "quecapi.json"

local _M = {}

local sh = require "support.sh"
local shell_quote, run, output = sh.quote, sh.run, sh.output
local read_file, write_file = sh.read, sh.write
_M.run, _M.output = run, output

-- The checkout this file belongs to: spec/support/nginx.lua -> the root.
local function repo_root()
  local src = debug.getinfo(1, "S").source
  local path = src:match("^@(.*)$") or "spec/support/nginx.lua"
  local root = path:match("^(.*)/spec/support/nginx%.lua$") or "."
  if root:sub(1, 1) ~= "/" then
    local cwd = output("pwd")
    root = root == "." and cwd or cwd .. "/" .. root
  end
  return root
end
_M.root = repo_root()

local function sleep(s)
  if core.sleep then return core.sleep(s) end
  run("sleep " .. s)
end

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

local tempdir = sh.tempdir

local MODULES = os.getenv("NGINX_MODULES") or "/usr/lib/nginx/modules"

--- The `user` directive an nginx started by the specs needs: as root, nginx runs
-- its workers as `nobody`, which cannot read a checkout in a private directory
-- (a clone in root's 0700 home); the workers then run as the invoking user.
-- Empty when not root: the workers are the invoking user already.
function _M.user_directive()
  if core.getuid() ~= 0 then return "" end
  local name = output("id -un")
  return "user " .. (name ~= "" and name or "root") .. ";"
end

local function render(o)
  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  -- OpenResty's nginx has the Lua module built in; Debian's loads it.
  for _, m in ipairs { "ndk_http_module.so", "ngx_http_lua_module.so" } do
    local f = io.open(MODULES .. "/" .. m)
    if f then
      f:close()
      add("load_module " .. MODULES .. "/" .. m .. ";")
    end
  end
  local dir, root = o.dir, _M.root
  add(_M.user_directive())
  add("worker_processes " .. o.workers .. ";")
  add("daemon on;")
  add("pid " .. dir .. "/nginx.pid;")
  add("error_log " .. dir .. "/error.log " .. o.log_level .. ";")
  add(o.main)
  add("events { worker_connections 1024; }")
  add("http {")
  add("    access_log off;")
  -- Debian's nginx keeps temp files under /var/lib/nginx; keep ours to ourselves.
  for _, t in ipairs { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" } do
    add(("    %s_temp_path %s/%s_temp;"):format(t, dir, t))
  end
  add(('    lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;;";'):format(root, root, root))
  add(('    lua_package_cpath "%s/build/luajit/?.so;;";'):format(root))
  if o.ca then
    add("    lua_ssl_trusted_certificate " .. o.ca .. ";")
    add("    lua_ssl_verify_depth 3;")
  end
  add(o.http)
  add("    server {")
  add("        listen 127.0.0.1:" .. o.port .. ";")
  add('        location = /_harness/ping { return 200 "pong\\n"; }')
  add(o.server)
  add("    }")
  add("}")
  return table.concat(lines, "\n") .. "\n"
end

local Server = {}
Server.__index = Server

local running = {} -- servers not stopped yet, for the exit-time finalizer

--- Send one request to the server: { method, path, body, headers, timeout }.
-- @return status, body, headers (or nil, err, kind)
function Server:request(req)
  if type(req) == "string" then req = { path = req } end
  self.session = self.session or assert(core.session())
  return self.session:request {
    method = req.method or (req.body and "POST" or "GET"),
    url = self.url .. (req.path or "/"),
    body = req.body,
    headers = req.headers,
    timeout = req.timeout or 30,
    connect_timeout = 5,
  }
end

--- POST a table as JSON, decode the JSON answer: status, value (or nil, err).
function Server:json(path, value, timeout)
  local body = value ~= nil and assert(json.encode(value)) or nil
  local status, text = self:request { method = body and "POST" or "GET", path = path, body = body,
                                      timeout = timeout,
                                      headers = body and { ["Content-Type"] = "application/json" } }
  if not status then return nil, text end
  local v, err = json.decode(text)
  if v == nil and err then return nil, "HTTP " .. status .. ", not JSON: " .. text end
  return status, v
end

--- The error log so far (for assertion messages).
function Server:error_log()
  return read_file(self.dir .. "/error.log") or ""
end

--- Fetch several paths at once, each by its own curl process; the bodies, in order.
-- Concurrency that does not depend on the busted process being able to do it.
function Server:parallel(paths, timeout)
  local cmds = {}
  for i, p in ipairs(paths) do
    local out = ("%s/parallel-%d.out"):format(self.dir, i)
    os.remove(out)
    cmds[#cmds + 1] = ("curl -s -m %d -o %s %s &"):format(timeout or 30, shell_quote(out),
      shell_quote(self.url .. p))
  end
  run("{ " .. table.concat(cmds, " ") .. " wait; } 2>/dev/null")
  local bodies = {}
  for i = 1, #paths do
    bodies[i] = read_file(("%s/parallel-%d.out"):format(self.dir, i)) or ""
  end
  return bodies
end

local function pid_alive(pid)
  return run("kill -0 " .. pid .. " 2>/dev/null")
end

--- Stop nginx and remove its directory (kept when NGINX_KEEP is set). Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  running[self] = nil
  if self.session then
    self.session:close()
    self.session = nil
  end
  local pid = (read_file(self.dir .. "/nginx.pid") or ""):match("%d+")
  if pid then
    run("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not pid_alive(pid) then break end
      sleep(0.05)
    end
    if pid_alive(pid) then run("kill -KILL " .. pid .. " 2>/dev/null") end
  end
  if not os.getenv("NGINX_KEEP") then
    run("rm -rf " .. shell_quote(self.dir))
  end
end

-- At exit stop what a spec forgot to.
_M._finalizer = sh.on_collect(function()
  for srv in pairs(running) do pcall(srv.stop, srv) end
end)

--- Start an nginx. Options: workers (1), http, server, main (config text),
-- ca (default $FAKECLOUD_CA), log_level ("warn"), dir (default a new temp dir).
-- @return a server { url, port, dir, request, json, parallel, error_log, stop }
function _M.start(opts)
  opts = opts or {}
  local o = {
    workers = opts.workers or 1,
    http = opts.http or "",
    server = opts.server or "",
    main = opts.main or "",
    ca = opts.ca or os.getenv("FAKECLOUD_CA"),
    log_level = opts.log_level or "warn",
    dir = opts.dir or tempdir(),
  }
  local nginx_bin = os.getenv("NGINX") or "nginx"
  local started, last_log
  for _ = 1, 10 do
    -- Outside the kernel's ephemeral range (32768+) and the fake cloud's (20000-27999).
    o.port = 10000 + random_below(9000)
    local conf = o.dir .. "/nginx.conf"
    write_file(conf, render(o))
    write_file(o.dir .. "/error.log", "")
    if run(("%s -p %s -c %s -e %s 2>>%s"):format(shell_quote(nginx_bin), shell_quote(o.dir),
        shell_quote(conf), shell_quote(o.dir .. "/error.log"), shell_quote(o.dir .. "/error.log"))) then
      started = true
      break
    end
    last_log = read_file(o.dir .. "/error.log") or ""
    if not last_log:find("Address already in use", 1, true) then break end
  end
  if not started then
    local dir = o.dir
    if not os.getenv("NGINX_KEEP") then run("rm -rf " .. shell_quote(dir)) end
    error("nginx did not start:\n" .. (last_log or ""), 2)
  end
  local srv = setmetatable({ port = o.port, dir = o.dir, url = "http://127.0.0.1:" .. o.port }, Server)
  running[srv] = true
  for _ = 1, 100 do
    local status = srv:request { path = "/_harness/ping", timeout = 1 }
    if status == 200 then return srv end
    sleep(0.05)
  end
  local log = srv:error_log()
  srv:stop()
  error("nginx started but does not answer:\n" .. log, 2)
end

local function plain(s) return (s:gsub("%p", "%%%0")) end

--- Start one of examples/*.conf as shipped but for `swaps` and its port: each
-- swap `{ from, to[, count] }` replaces plain text that must be found `count`
-- times (default 1: an example that changed fails loudly), and the example's
-- `listen 127.0.0.1:8080;` becomes a free port. `env` ("NAME=value ...") is
-- the environment its `env` directives pass on. Stop it with `stop_example(dir)`.
-- @return dir (the prefix, with logs/), port
function _M.start_example(name, swaps, env)
  local dir = tempdir()
  run("mkdir -p " .. shell_quote(dir .. "/logs"))
  local conf = read_file(_M.root .. "/examples/" .. name)
  for _, sw in ipairs(swaps) do
    local n
    conf, n = conf:gsub(plain(sw[1]), (sw[2]:gsub("%%", "%%%%")))
    if n ~= (sw[3] or 1) then error("examples/" .. name .. " no longer holds " .. sw[1], 2) end
  end
  conf = _M.user_directive() .. "\n" .. conf
  for _ = 1, 10 do
    local port = 19000 + random_below(900)
    write_file(dir .. "/nginx.conf", (conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")))
    if run(("env %s nginx -p %s -c %s/nginx.conf 2>>%s/logs/error.log"):format(env or "", shell_quote(dir),
      shell_quote(dir), shell_quote(dir))) then
      return dir, port
    end
  end
  error("examples/" .. name .. " did not start:\n" .. (read_file(dir .. "/logs/error.log") or ""), 2)
end

--- Stop an example started by `start_example` and remove its prefix.
function _M.stop_example(dir)
  run(("kill $(cat %s/logs/nginx.pid 2>/dev/null) 2>/dev/null; sleep 0.2; rm -rf %s"):format(shell_quote(dir),
    shell_quote(dir)))
end

return _M
