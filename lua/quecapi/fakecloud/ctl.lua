--- Start, stop and describe a fake cloud: nginx with the Lua module on 127.0.0.1,
-- HTTPS with a CA made at the first start (the `openssl` command), plain HTTP
-- beside it, two servers with certificates a client must refuse, and the
-- realtime channel's MQTT broker (mosquitto) with the fake's device side
-- (quecapi.fakecloud.broker).
--
--   local ctl = require "quecapi.fakecloud.ctl"
--   local env = assert(ctl.start())     -- { FAKECLOUD_URL = "https://127.0.0.1:...", FAKECLOUD_CA = ..., ... }
--   ...
--   ctl.stop()
--
-- A run lives in one directory (`dir`): certificates, nginx.conf, logs, the pid
-- file and the env file `env` (`FAKECLOUD_URL`, `FAKECLOUD_HTTP_URL`,
-- `FAKECLOUD_WRONGHOST_URL`, `FAKECLOUD_UNKNOWNCA_URL`, `FAKECLOUD_CA`,
-- `FAKECLOUD_DIR`, `FAKECLOUD_USER_DOMAIN`, `FAKECLOUD_MQTT_URL`,
-- `FAKECLOUD_PYTHON`), one `NAME=value` a line, which a shell can source. The
-- directory is FAKECLOUD_DIR, else $XDG_RUNTIME_DIR/quecapi-fakecloud, else
-- /tmp/quecapi-fakecloud-$USER. FAKECLOUD_BROKER=off (or `broker = false`)
-- starts it without the broker.
--
-- Plain Lua and shell commands only (nginx, openssl, id, kill; for the broker
-- mosquitto, cc and python3): nothing here needs quecapi's library or C core,
-- so the fake stays independent of what it tests and runs wherever nginx and
-- its Lua module do. `quecapi fakecloud` is this module on the command line.
-- @module quecapi.fakecloud.ctl

local shell = require "quecapi.fakecloud.shell"
local template = require "quecapi.fakecloud.nginx_conf"
local config = require "quecapi.fakecloud.config"

local ipairs, tostring, tonumber = ipairs, tostring, tonumber
local format, gsub, match, byte, find = string.format, string.gsub, string.match, string.byte, string.find
local concat = table.concat

local _M = {}

--- The env file's variables, in the order it lists them.
_M.VARIABLES = {
  "FAKECLOUD_URL", "FAKECLOUD_HTTP_URL", "FAKECLOUD_WRONGHOST_URL", "FAKECLOUD_UNKNOWNCA_URL",
  "FAKECLOUD_CA", "FAKECLOUD_DIR", "FAKECLOUD_USER_DOMAIN", "FAKECLOUD_MQTT_URL", "FAKECLOUD_PYTHON",
}

local quote, run, output, exists = shell.quote, shell.run, shell.output, shell.exists

-- This module's folder two levels up: where `quecapi/fakecloud/*.lua` are found,
-- in a checkout (lua/) or where luarocks installed them. Absolute, because
-- nginx resolves the package path from its own working directory.
local function lua_dir()
  local source = debug.getinfo(1, "S").source
  local dir = match(source, "^@(.*)/quecapi/fakecloud/[^/]+$") or "."
  if not find(dir, "^/") then dir = output("pwd") .. "/" .. dir end
  return dir
end

--- The run directory: `getenv("FAKECLOUD_DIR")`, else
-- $XDG_RUNTIME_DIR/quecapi-fakecloud, else /tmp/quecapi-fakecloud-<user>.
-- @tparam[opt] function getenv (os.getenv)
function _M.default_dir(getenv)
  getenv = getenv or os.getenv
  local dir = getenv("FAKECLOUD_DIR")
  if dir and dir ~= "" then return dir end
  local runtime = getenv("XDG_RUNTIME_DIR")
  if runtime and find(runtime, "^/") then return runtime .. "/quecapi-fakecloud" end
  local user = getenv("USER")
  if not user or user == "" or find(user, "[^%w%._%-]") then user = output("id -un") end
  return "/tmp/quecapi-fakecloud-" .. user
end

--- The variables of a run's env file, or nil, err when there is none.
-- @tparam string dir
function _M.read_env(dir)
  local f = io.open(dir .. "/env", "rb")
  if not f then return nil, "no fake cloud has been started in " .. dir end
  local env = {}
  for line in f:lines() do
    local k, v = match(line, "^([%w_]+)=(.*)$")
    if k then
      -- a value the file quotes for the shell: '...' with '\'' for a quote
      if find(v, "^'.*'$") then v = gsub(v:sub(2, -2), "'\\''", "'") end
      env[k] = v
    end
  end
  f:close()
  return env
end

local function write_env(dir, env)
  local lines = {}
  for _, k in ipairs(_M.VARIABLES) do
    local v = env[k]
    if v then lines[#lines + 1] = k .. "=" .. (find(v, "^[%w%._/:%-]+$") and v or quote(v)) end
  end
  local f, err = io.open(dir .. "/env", "wb")
  if not f then return nil, err end
  f:write(concat(lines, "\n"), "\n")
  f:close()
  return true
end

--- The env file's variables as shell `export` lines, in the file's order.
function _M.exports(env)
  local lines = {}
  for _, k in ipairs(_M.VARIABLES) do
    if env[k] then lines[#lines + 1] = "export " .. k .. "=" .. quote(env[k]) end
  end
  return concat(lines, "\n") .. "\n"
end

local function pid_of(dir)
  local f = io.open(dir .. "/nginx.pid", "rb")
  if not f then return nil end
  local pid = tonumber(match(f:read("*a") or "", "^%s*(%d+)"))
  f:close()
  return pid
end

--- Is process `pid` alive? One that exited counts as gone though nobody reaped
-- it yet: daemons are adopted by init, which may reap them late.
-- @tparam number|nil pid
function _M.alive(pid)
  if pid == nil then return false end
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if f then
    local state = match(f:read("*a") or "", ".*%) (%a)")
    f:close()
    if state == "Z" or state == "X" then return false end
  end
  return run("kill -0 " .. pid .. " 2>/dev/null")
end
local alive = _M.alive

--- Is a fake cloud running in `dir`?
-- @return its env (as `read_env`), or nil, err
function _M.status(dir)
  dir = dir or _M.default_dir()
  if not alive(pid_of(dir)) then return nil, "no fake cloud is running in " .. dir end
  return _M.read_env(dir)
end

-- The CA clients trust, a server certificate for 127.0.0.1 / localhost, one of
-- that CA for another name (host-name checks) and one for the right name from a
-- CA nobody trusts (chain checks). Made once per directory.
local function certificates(dir)
  if exists(dir .. "/server.pem") then return true end
  local d = quote(dir)
  local function leaf(name, subject, san)
    return format("openssl req -newkey rsa:2048 -nodes -subj %s -keyout %s/%s.key -out %s/%s.csr"
        .. " && printf %s > %s/%s.ext"
        .. " && openssl x509 -req -in %s/%s.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial -days 30"
        .. " -extfile %s/%s.ext -out %s/%s.pem",
      quote(subject), d, name, d, name, quote("subjectAltName=" .. san .. "\nbasicConstraints=CA:FALSE\n"),
      d, name, d, name, d, d, d, name, d, name)
  end
  local steps = {
    format("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj %s -keyout %s/ca.key -out %s/ca.pem",
      quote("/CN=quecapi fake cloud CA"), d, d),
    leaf("server", "/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost"),
    leaf("wronghost", "/CN=wrong.example", "DNS:wrong.example"),
    format("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj %s -addext %s -keyout %s/unknownca.key"
      .. " -out %s/unknownca.pem", quote("/CN=127.0.0.1"), quote("subjectAltName=IP:127.0.0.1,DNS:localhost"), d, d),
  }
  for _, cmd in ipairs(steps) do
    if not run("( " .. cmd .. " ) >/dev/null 2>&1") then
      os.remove(dir .. "/server.pem")
      return nil, "cannot make the certificates with openssl (is the openssl command installed?)"
    end
  end
  return true
end

-- The nginx to run: NGINX, else the first found.
local function nginx_binary(getenv)
  local chosen = getenv("NGINX")
  if chosen and chosen ~= "" then return chosen end
  local found = output("command -v nginx 2>/dev/null || command -v openresty 2>/dev/null")
  if found and found ~= "" then return found end
  for _, path in ipairs { "/usr/sbin/nginx", "/usr/local/openresty/bin/openresty", "/usr/local/nginx/sbin/nginx" } do
    if exists(path) then return path end
  end
  return "nginx"
end

-- The lua module of a packaged nginx (Debian's libnginx-mod-http-lua); an
-- OpenResty build has it compiled in and needs no line.
local MODULES = {
  "/usr/lib/nginx/modules/ndk_http_module.so",
  "/usr/lib/nginx/modules/ngx_http_lua_module.so",
}

local function render(values)
  return (gsub(template, "@([%u_]+)@", function(name) return values[name] or ("@" .. name .. "@") end))
end

-- Two ports of four in a range the kernel does not hand out as ephemeral.
local function random_base()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(2) or ""
  if f then f:close() end
  local n = #bytes == 2 and byte(bytes, 1) * 256 + byte(bytes, 2) or math.random(0, 65535)
  return (n % 2000) * 2 + 20000
end

local function wait_until(check, tries)
  for _ = 1, tries do
    if check() then return true end
    run("sleep 0.1")
  end
  return check()
end

local function read_text(path)
  return shell.read(path) or ""
end

-- The broker is on unless FAKECLOUD_BROKER (or opts.broker) says off.
local function broker_wanted(opts, getenv)
  if opts.broker ~= nil then return opts.broker and true or false end
  local v = getenv("FAKECLOUD_BROKER")
  return not (v == "off" or v == "0" or v == "no" or v == "false")
end

--- Start a fake cloud (a no-op when one runs in `dir` already).
-- @tparam[opt] table opts `dir` (default `default_dir()`), `getenv` (os.getenv),
-- `broker` (default true unless FAKECLOUD_BROKER=off: the MQTT broker and the device side)
-- @return the env (as `read_env`) and whether it was already running, or nil, err
function _M.start(opts)
  opts = opts or {}
  local getenv = opts.getenv or os.getenv
  local dir = opts.dir or _M.default_dir(getenv)
  local running = _M.status(dir)
  if running then return running, true end
  local nginx, lua = nginx_binary(getenv), lua_dir()
  -- both go into nginx.conf inside double quotes
  for _, path in ipairs { dir, lua } do
    if find(path, '["\\$;{}%c]') then
      return nil, "the fake cloud cannot run from " .. path .. ": choose a plainer path"
    end
  end
  if not run("mkdir -p -m 0700 " .. quote(dir)) then return nil, "cannot create " .. dir end
  local ok, err = certificates(dir)
  if not ok then return nil, err end
  local modules = {}
  for _, path in ipairs(MODULES) do
    if exists(path) then modules[#modules + 1] = "load_module " .. path .. ";" end
  end
  local user, user_name = "", output("id -un")
  if output("id -u") == "0" then user = "user " .. user_name .. ";" end
  -- loaded here, not at require time: the command line loads this module for
  -- every `quecapi fakecloud` action
  local broker = broker_wanted(opts, getenv) and require "quecapi.fakecloud.broker"
  local base, realtime
  for attempt = 1, 10 do
    base = random_base()
    local retry
    if broker then
      -- ports 28000..31999, below the kernel's ephemeral range, as the others
      realtime, err, retry = broker.start(dir, { wss_port = base + 8000, mqtt_port = base + 8001,
                                                 http_port = base + 1, user = user_name, getenv = getenv })
      if not realtime then
        if attempt == 10 or not retry then return nil, err end
      end
    end
    if realtime or not broker then
      local conf = render {
        DIR = dir, LUA = lua, USER = user, MODULES = concat(modules, "\n"),
        HTTPS_PORT = tostring(base), HTTP_PORT = tostring(base + 1),
        WRONGHOST_PORT = tostring(base + 4000), UNKNOWNCA_PORT = tostring(base + 4001),
        DEVICE_PORT = realtime and tostring(realtime.device_port) or "nil",
        MQTT_URL = realtime and realtime.url or "",
      }
      local f = io.open(dir .. "/nginx.conf", "wb")
      if not f then
        if broker then broker.stop(dir) end
        return nil, "cannot write " .. dir .. "/nginx.conf"
      end
      f:write(conf)
      f:close()
      local log = quote(dir .. "/error.log")
      run(": > " .. log)
      if run(format("%s -p %s -c %s -e %s 2>>%s", quote(nginx), quote(dir), quote(dir .. "/nginx.conf"), log, log)) then
        break
      end
      if broker then broker.stop(dir) end
      -- a port in use is worth another try; anything else fails the same way again
      if attempt == 10 or not find(read_text(dir .. "/error.log"), "Address already in use", 1, true) then
        return nil, "the fake cloud failed to start (" .. nginx .. "):\n" .. read_text(dir .. "/error.log")
      end
    end
  end
  local env = {
    FAKECLOUD_URL = "https://127.0.0.1:" .. base,
    FAKECLOUD_HTTP_URL = "http://127.0.0.1:" .. (base + 1),
    FAKECLOUD_WRONGHOST_URL = "https://127.0.0.1:" .. (base + 4000),
    FAKECLOUD_UNKNOWNCA_URL = "https://127.0.0.1:" .. (base + 4001),
    FAKECLOUD_CA = dir .. "/ca.pem",
    FAKECLOUD_DIR = dir,
    FAKECLOUD_USER_DOMAIN = config.user_domain,
    FAKECLOUD_MQTT_URL = realtime and realtime.url or nil,
    FAKECLOUD_PYTHON = realtime and realtime.python or nil,
  }
  ok, err = write_env(dir, env)
  if not ok then
    _M.stop(dir)
    return nil, "cannot write the env file: " .. tostring(err)
  end
  -- nginx has bound its ports before it returns; the workers answer soon after
  local healthy = wait_until(function()
    return run(format("curl -fsS --max-time 2 -o /dev/null --cacert %s %s/_fake/health 2>/dev/null",
      quote(env.FAKECLOUD_CA), quote(env.FAKECLOUD_URL))) or not run("command -v curl >/dev/null 2>&1")
  end, 50)
  if not healthy then
    _M.stop(dir)
    return nil, "the fake cloud did not answer:\n" .. read_text(dir .. "/error.log")
  end
  return env, false
end

--- Stop the fake cloud of `dir` (nothing to do when none runs) and remove its env file.
-- @return true
function _M.stop(dir)
  dir = dir or _M.default_dir()
  local pid = pid_of(dir)
  if alive(pid) then
    run("kill " .. pid)
    wait_until(function() return not alive(pid) end, 50)
  end
  -- the broker and the device side, when this run has them
  if exists(dir .. "/device.pid") or exists(dir .. "/mosquitto.pid") then
    require("quecapi.fakecloud.broker").stop(dir)
  end
  os.remove(dir .. "/env")
  return true
end

return _M
