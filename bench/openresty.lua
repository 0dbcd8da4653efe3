--- Sections 4 and 6: quecapi inside nginx, measured with wrk on loopback.
--
-- The driver (bench/main.lua) starts the nginx under test with spec/support/nginx.lua
-- (a real nginx with the project's lua/ and build/luajit/ on its Lua paths) and
-- points it at the fake cloud as https://localhost:PORT: nginx verifies
-- certificates against host names, and the ngx transport maps "localhost" to
-- 127.0.0.1 without a resolver.
local nginx = require "support.nginx"
local config = require "quecapi.fakecloud.config"

local _M = {}

local format = string.format

-- Every location answers a small JSON summary of the page, so that what differs
-- between them is how the page was fetched.
local SUMMARY = [[ngx.say('{"total":', res.data.total, ',"devices":', #res.data.list, '}')]]

-- The session cookie wrk sends to the gateway location (the token key of the
-- user whose tokens init_by_lua stores).
_M.GATEWAY_COOKIE = "qsid=bench"

-- The http{} block: the token in a shared dict (set in init_by_lua, as a login
-- would have left it), the client configurations the locations use, and a
-- gateway (quecapi.gateway) allowing user_device_list, with the same user's token
-- stored under its session's key.
local function http_block(o)
  return format([[
lua_shared_dict quecapi 1m;
upstream fakecloud {
    server 127.0.0.1:%d;
    keepalive 32;
}
init_by_lua_block {
    local quecapi = require "quecapi"
    local base = {
        user_domain = %q, user_domain_secret = %q,
        token_store = "shdict", token_dict = "quecapi", token_key = "bench",
    }
    local function config(extra)
        local c = {}
        for k, v in pairs(base) do c[k] = v end
        for k, v in pairs(extra) do c[k] = v end
        return c
    end
    local bench = {
        -- cosockets: a client per request, as examples/nginx.conf does
        ngx = config { base_url = %q, transport = "ngx" },
        -- libcurl: one client per worker, so its keep-alive connection is reused
        curl = config { base_url = %q, transport = "curl", ca_file = %q },
    }
    -- tokens are kept per origin: one set for each base URL
    for _, c in ipairs { bench.ngx, bench.curl } do
        assert(assert(quecapi.new(c)):set_tokens { access_token = %q, access_expires = ngx.time() + 7200 })
    end
    bench.gateway = assert(require("quecapi.gateway").new {
        client = { user_domain = base.user_domain, user_domain_secret = base.user_domain_secret,
                   token_store = "shdict", token_dict = "quecapi", base_url = %q },
        operations = { "user_device_list" },
        prefix = "/gateway",
        token_key = function() return ngx.var.cookie_qsid end,
    })
    assert(bench.gateway:client("bench"):set_tokens { access_token = %q, access_expires = ngx.time() + 7200 })
    package.loaded["bench.app"] = bench
}
]], o.port, config.user_domain, config.user_domain_secret,
    "https://localhost:" .. o.port, "https://127.0.0.1:" .. o.port, o.ca, o.token,
    "https://localhost:" .. o.port, o.token)
end

-- The locations: /quecapi (ngx transport), /curl (curl transport), /proxy
-- (proxy_pass to the same URL with the same headers: the limit for nginx), and
-- /gateway/ (quecapi.gateway in access_by_lua, then the same proxy_pass; the
-- session cookie picks the token).
local PROXY_SETTINGS = [[
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host localhost:%d;
    proxy_ssl_server_name on;
    proxy_ssl_name localhost;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate %s;
    proxy_ssl_session_reuse on;
]]

local function server_block(o)
  return format([[
location = /quecapi {
    content_by_lua_block {
        local client = require("quecapi").new(require("bench.app").ngx)
        local res, err = client:user_device_list { pageSize = %d }
        if not res then ngx.status = 502; ngx.say(err); return end
        %s
    }
}
location = /curl {
    content_by_lua_block {
        local app = require "bench.app"
        app.curl_client = app.curl_client or require("quecapi").new(app.curl)
        local res, err = app.curl_client:user_device_list { pageSize = %d }
        if not res then ngx.status = 502; ngx.say(err); return end
        %s
    }
}
location = /proxy {
    proxy_pass https://fakecloud/v2/binding/enduserapi/userDeviceList?pageSize=%d;
    proxy_set_header Authorization %q;
    proxy_set_header Accept application/json;
%s}
location /gateway/ {
    access_by_lua_block { require("bench.app").gateway:access() }
    proxy_pass https://fakecloud/;
    proxy_set_header Cookie "";
    proxy_set_header Accept application/json;
%s}
]], o.page_size, SUMMARY, o.page_size, SUMMARY, o.page_size, o.token,
    format(PROXY_SETTINGS, o.port, o.ca), format(PROXY_SETTINGS, o.port, o.ca))
end

--- Start the nginx under test with one worker.
-- @tparam table o `port` (the upstream's HTTPS port: the fake cloud or the
--   replay), `ca`, `token`, `page_size`
function _M.start(o)
  return nginx.start {
    workers = 1,
    ca = o.ca,
    http = http_block(o),
    server = server_block(o),
  }
end

-- A port for the replay's TLS listener: above the fake cloud's range
-- (20000-27999), below the kernel's ephemeral ports.
local function free_port()
  for _ = 1, 20 do
    local f = assert(io.open("/dev/urandom", "rb"))
    local a, b = f:read(2):byte(1, 2)
    f:close()
    local port = 28000 + (a * 256 + b) % 4000
    if not nginx.run(format("ss -Htln 'sport = :%d' | grep -q .", port)) then return port end
  end
  error("no free port for the replay")
end

--- Start the replay: the fake cloud's answer to userDeviceList, recorded once
-- and served as a static file by plain nginx over HTTPS (the fake cloud's own
-- certificate), for the one access token. It answers in a few microseconds
-- where the fake cloud spends over a hundred building the page, so an nginx
-- measured against it is the bottleneck itself.
-- @tparam table o `dir` (the fake cloud's directory: certificate and key),
--   `body` (the recorded answer), `token`, `file` (where to keep the body)
-- @return the server; its `tls_port` is the replay's
function _M.start_replay(o)
  local f = assert(io.open(o.file, "wb"))
  f:write(o.body)
  f:close()
  local port = free_port()
  local srv = nginx.start {
    workers = 1,
    http = format([[
server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/server.pem;
    ssl_certificate_key %s/server.key;
    keepalive_requests 1000000;
    location = /v2/binding/enduserapi/userDeviceList {
        if ($http_authorization != %q) { return 401; }
        default_type application/json;
        alias %s;
    }
}
]], port, o.dir, o.dir, o.token, o.file),
  }
  srv.tls_port = port
  return srv
end

-- CPU seconds (user + system) a process has used, from /proc.
local function cpu_seconds(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return 0 end
  local stat = f:read("*a")
  f:close()
  -- fields after the command name (which may hold spaces): state is field 3
  local rest = stat:match("%) (.*)$")
  local fields = {}
  for v in rest:gmatch("%S+") do fields[#fields + 1] = v end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- utime, stime in ticks of 1/100 s
end
_M.cpu_seconds = cpu_seconds

--- The worker processes of an nginx whose master pid is in `dir`/nginx.pid.
function _M.workers(dir)
  local pid = nginx.output("cat " .. dir .. "/nginx.pid")
  local out = nginx.output("ps -o pid= --ppid " .. pid)
  local list = {}
  for p in out:gmatch("%d+") do list[#list + 1] = p end
  return list
end

local function total_cpu(pids)
  local s = 0
  for _, p in ipairs(pids) do s = s + cpu_seconds(p) end
  return s
end

--- One wrk run: requests/s, plus CPU microseconds per request spent by each
-- group of processes in `watch` ({ name = {pid, ...} }). Any non-2xx answer or
-- socket error fails the run: a fast error page must never pass for throughput.
-- `header` (optional): one "Name: value" request header to send.
function _M.wrk(url, connections, seconds, watch, header)
  local before = {}
  for name, pids in pairs(watch or {}) do before[name] = total_cpu(pids) end
  local threads = connections >= 2 and 2 or 1
  local h = header and ("-H '" .. header:gsub("'", "'\\''") .. "' ") or ""
  local out = nginx.output(format("wrk -t%d -c%d -d%ds --timeout 30s %s%s 2>&1", threads, connections, seconds, h,
    url))
  local rps = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  local total = tonumber(out:match("(%d+) requests in"))
  if not rps or not total or total == 0 then error("wrk " .. url .. " failed:\n" .. out, 2) end
  if out:find("Non%-2xx") or out:find("Socket errors") then
    error("wrk " .. url .. ": errors during the run:\n" .. out, 2)
  end
  local cpu = {}
  for name, pids in pairs(watch or {}) do
    cpu[name] = (total_cpu(pids) - before[name]) / total * 1e6
  end
  return rps, cpu
end

return _M
