--- The benchmark driver: `make bench` runs it through bench/run, which has
-- started the fake cloud and exported its FAKECLOUD_* variables.
--
-- Every measurement is repeated (BENCH_REPS runs, default 7; each run a fresh
-- process for the client-side sections) and reported as the median of the runs,
-- with their spread (interquartile range over the median). Contenders of a
-- section take turns within each repetition, on the same machine in the same
-- run, so a change of load hits them alike. The result is one table, printed
-- and written to build/bench/results.md.
--
-- Order: 1 primitives, 2 HTTPS round trips, 3 JSON, 5 memory (while nothing
-- else has loaded the fake cloud), 4 nginx, 6 nginx with 50 ms cloud latency,
-- 7 the realtime channel (decoding, and publish-to-receive latency through a
-- mosquitto of its own).
local core = require "quecapi.core"
local fake = require "support.fake"
local nginx = require "support.nginx"
local openresty = require "openresty"
local lib = require "lib"
local stats = require "stats"

local format = string.format
local ROOT = nginx.root
local OUT = ROOT .. "/build/bench"
local REPS = tonumber(os.getenv("BENCH_REPS")) or 7
local PAGE_SIZE = 10
local started = core.monotonic()
-- Other work on the machine shows in the spread; the load average says how much there was.
local LOAD_AT_START = lib.read("/proc/loadavg"):match("^(%S+ %S+ %S+)")

nginx.run("mkdir -p " .. OUT)

local function say(...)
  io.stderr:write(format(...), "\n")
end

---------------------------------------------------------------------------
-- running workers and collecting their numbers
---------------------------------------------------------------------------

local runs = {} -- name -> list of values, one per run
local extras = {} -- name -> the last run's extra field (a result to compare)

local function record(name, value, extra)
  runs[name] = runs[name] or {}
  table.insert(runs[name], tonumber(value))
  if extra then extras[name] = extra end
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The environment a worker needs: the project's Lua paths for its interpreter.
local function lua_env(lua)
  local path = format("%s/bench/?.lua;%s/lua/?.lua;%s/spec/?.lua;;", ROOT, ROOT, ROOT)
  local cpath = format("%s/build/%s/?.so;;", ROOT, lua)
  return format("LUA_PATH=%s LUA_PATH_5_4=%s LUA_CPATH=%s LUA_CPATH_5_4=%s",
    quote(path), quote(path), quote(cpath), quote(cpath))
end

-- Run a command that prints "name<TAB>value[<TAB>extra]" lines; record them.
local function collect(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  local n = 0
  for line in out:gmatch("[^\n]+") do
    local name, value, extra = line:match("^([%w_.]+)\t([%d.]+)\t?(.*)$")
    if name then
      record(name, value, extra ~= "" and extra or nil)
      n = n + 1
    end
  end
  if not ok or n == 0 then error("benchmark step failed: " .. cmd .. "\n" .. out, 2) end
end

local function lua_worker(lua, args, env)
  collect(format("%s %s %s bench/%s", env or "", lua_env(lua), lua, args))
end

local median, num = stats.median, stats.num

local function value(name)
  local list = runs[name]
  if not list then error("no measurement named " .. name) end
  return median(list)
end

-- The spread of a measurement's runs (see stats.spread).
local function spread(name)
  value(name)
  return stats.spread(runs[name])
end

---------------------------------------------------------------------------
-- the machine
---------------------------------------------------------------------------

local function first_line(cmd)
  return (nginx.output(cmd):match("[^\n]*"))
end

local function machine()
  local cpuinfo = lib.read("/proc/cpuinfo")
  return {
    cpu = cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown",
    cores = first_line("nproc"),
    kernel = first_line("uname -sr"),
    os = first_line(". /etc/os-release && echo \"$PRETTY_NAME\""),
    lua = first_line("lua5.4 -v"):match("^Lua %S+"),
    luajit = first_line("luajit -v"):match("^LuaJIT %S+"),
    nginx = first_line("nginx -v 2>&1"):match("nginx/%S+"),
    lua_module = first_line("dpkg-query -W -f='${Version}' libnginx-mod-http-lua"),
    openssl = first_line("openssl version"):match("^OpenSSL %S+"),
    libcurl = first_line("curl --version"):match("libcurl/%S+") or "unknown",
    cjson = first_line("dpkg-query -W -f='${Version}' lua-cjson"),
    wrk = first_line("dpkg-query -W -f='${Version}' wrk"),
    load = lib.read("/proc/loadavg"):match("^(%S+ %S+ %S+)"),
  }
end

---------------------------------------------------------------------------
-- setup: a user with PAGE_SIZE devices, logged in once
---------------------------------------------------------------------------

local PHONE = "13900000077"
local _, TOKEN = fake.session_user(PHONE, "bench-pass-1", PAGE_SIZE)
local URL = fake.url .. "/v2/binding/enduserapi/userDeviceList?pageSize=" .. PAGE_SIZE
local ENV = format("FAKECLOUD_URL=%s FAKECLOUD_CA=%s BENCH_TOKEN=%s BENCH_PAGE_SIZE=%d",
  quote(fake.url), quote(fake.ca), quote(TOKEN), PAGE_SIZE)

local PAGE1000, PAGE10 = OUT .. "/page1000.json", OUT .. "/page10.json"
for file, n in pairs { [PAGE1000] = 1000, [PAGE10] = 10 } do
  assert(nginx.run(format("%s lua5.4 bench/page.lua %d > %s", lua_env("lua5.4"), n, file)), "bench/page.lua failed")
end

local LUAS = { "lua5.4", "luajit" }

---------------------------------------------------------------------------
-- 1. primitives
---------------------------------------------------------------------------

say("1/7 primitives (%d runs)", REPS)
for _ = 1, REPS do
  collect(format("%s/prims %s %s %s 0.2", OUT, quote(lib.SIGNING_STRING), lib.PASSWORD, lib.RANDOM))
  for _, lua in ipairs(LUAS) do lua_worker(lua, "prims.lua 0.2") end
end
for _, what in ipairs { "sha", "enc" } do
  local want = extras["c_" .. what]
  for name, got in pairs(extras) do
    if name:match("_" .. what .. "$") and got ~= want then
      error(format("%s computed %s, the C loop %s", name, got, want))
    end
  end
end

---------------------------------------------------------------------------
-- 2. HTTP round trips
---------------------------------------------------------------------------

local CURL_CLI_REQUESTS = 20
local function curl_cli()
  local cmd = format("i=0; while [ $i -lt %d ]; do curl -sf -o /dev/null --cacert %s -H %s %s || exit 1; " ..
    "i=$((i+1)); done", CURL_CLI_REQUESTS, quote(fake.ca), quote("Authorization: " .. TOKEN), quote(URL))
  local t = core.monotonic()
  assert(nginx.run(cmd), "the curl loop failed")
  record("curl_cli", CURL_CLI_REQUESTS / (core.monotonic() - t))
end

say("2/7 HTTP round trips (%d runs)", REPS)
for _ = 1, REPS do
  collect(format("%s/http %s %s %s 0.7", OUT, quote(URL), quote(fake.ca), quote(TOKEN)))
  collect(format("%s/http %s %s %s 0.35 fresh", OUT, quote(URL), quote(fake.ca), quote(TOKEN)))
  for _, lua in ipairs(LUAS) do lua_worker(lua, "http.lua quecapi 0.7", ENV) end
  lua_worker("lua5.4", "http.lua luasec 0.5", ENV)
  curl_cli()
end

---------------------------------------------------------------------------
-- 3. JSON
---------------------------------------------------------------------------

say("3/7 JSON (%d runs)", REPS)
for _ = 1, REPS do
  for _, lua in ipairs(LUAS) do lua_worker(lua, "json.lua " .. PAGE1000 .. " 0.3") end
end

---------------------------------------------------------------------------
-- 5. memory (measured before nginx runs, on a quiet fake cloud)
---------------------------------------------------------------------------

say("5/7 memory")
for _, lua in ipairs(LUAS) do
  lua_worker(lua, "mem.lua " .. PAGE10, ENV)
end

---------------------------------------------------------------------------
-- 4. OpenResty: ngx transport vs proxy_pass
---------------------------------------------------------------------------

-- Against the fake cloud first; then, because the fake cloud (one worker of
-- Lua building every page) turns out the bottleneck for proxy_pass and quecapi
-- alike, against a replay of its answer that costs next to nothing to serve, so
-- that the nginx under test is what limits the throughput.
local fake_port = tonumber(fake.url:match(":(%d+)$"))
local OR_SECONDS, OR_CONNECTIONS = 2, 16

say("4/7 OpenResty (%d runs of %ds, %d connections)", REPS, OR_SECONDS, OR_CONNECTIONS)
local answered, _, _, recorded = fake.api { path = "/v2/binding/enduserapi/userDeviceList",
                                           query = { pageSize = PAGE_SIZE }, token = TOKEN }
assert(answered == 200 and recorded, "cannot record the fake cloud's answer")
local replay = openresty.start_replay { dir = fake.dir, body = recorded, token = TOKEN,
                                        file = OUT .. "/userDeviceList.json" }
local upstreams = {
  fake = { port = fake_port, workers = openresty.workers(fake.dir) },
  replay = { port = replay.tls_port, workers = openresty.workers(replay.dir) },
}
-- The locations measured: proxy_pass (the limit), quecapi decoding the page in
-- content_by_lua, and quecapi.gateway in access_by_lua in front of proxy_pass
-- (wrk sends its session cookie).
local GATEWAY_PATH = "/gateway/v2/binding/enduserapi/userDeviceList?pageSize=" .. PAGE_SIZE
local LOCATIONS = {
  { name = "proxy", path = "/proxy" },
  { name = "quecapi", path = "/quecapi" },
  { name = "gateway", path = GATEWAY_PATH, header = "Cookie: " .. openresty.GATEWAY_COOKIE },
}
local servers = {}
for name, up in pairs(upstreams) do
  local srv = openresty.start { port = up.port, ca = fake.ca, token = TOKEN, page_size = PAGE_SIZE }
  servers[name] = srv
  local checks = { { path = "/curl" } } -- every path answers, once
  for _, loc in ipairs(LOCATIONS) do
    checks[#checks + 1] = { path = loc.path, headers = { Cookie = openresty.GATEWAY_COOKIE } }
  end
  for _, c in ipairs(checks) do
    local code, body = srv:request(c)
    if code ~= 200 then
      error(format("%s %s: HTTP %s %s\n%s", name, c.path, tostring(code), tostring(body), srv:error_log()))
    end
  end
  -- the gateway answers the platform's bytes: the same page as proxy_pass
  local _, direct = srv:request("/proxy")
  local _, gated = srv:request { path = GATEWAY_PATH, headers = { Cookie = openresty.GATEWAY_COOKIE } }
  if direct ~= gated then error(name .. ": the gateway's answer differs from proxy_pass's") end
end
for _ = 1, REPS do
  for _, up in ipairs { "fake", "replay" } do
    local srv = servers[up]
    local watch = { nginx = openresty.workers(srv.dir), upstream = upstreams[up].workers }
    for _, l in ipairs(LOCATIONS) do
      local loc = l.name
      local rps, cpu = openresty.wrk(srv.url .. l.path, OR_CONNECTIONS, OR_SECONDS, watch, l.header)
      local key = format("or_%s_%s", up, loc)
      record(key, rps)
      record(key .. "_cpu_nginx", cpu.nginx)
      record(key .. "_cpu_upstream", cpu.upstream)
      record(key .. "_busy_upstream", cpu.upstream * rps / 1e4) -- percent of one core
    end
  end
end
servers.replay:stop()
replay:stop()
local srv = servers.fake -- section 6 runs against the fake cloud: it has the delay

---------------------------------------------------------------------------
-- 6. 50 ms cloud latency: ngx vs curl transport, 1 worker
---------------------------------------------------------------------------

-- When wrk stops, a worker blocked in libcurl still has the requests of the
-- closed connections to serve, 50 ms each, and the fake cloud may still be
-- sleeping on requests of the ngx transport: wait until nginx answers at once
-- and the fake has nothing in flight, or the next cell would measure that tail.
local function drain()
  for _ = 1, 600 do
    local t = core.monotonic()
    local status = srv:request { path = "/_harness/ping", timeout = 60 }
    if status == 200 and core.monotonic() - t < 0.02 and fake.stats().inflight == 0 then return end
    core.sleep(0.05)
  end
  error("the nginx under test does not settle")
end

local DELAY_MS, C_SECONDS, C_REPS = 50, 3, math.max(1, math.min(REPS, 3))
say("6/7 concurrency with %d ms latency (%d runs of %ds per cell)", DELAY_MS, C_REPS, C_SECONDS)
fake.configure { delay_ms = DELAY_MS }
local ok, err = pcall(function()
  for _ = 1, C_REPS do
    for _, c in ipairs { 1, 10, 100 } do
      for _, loc in ipairs { "quecapi", "curl" } do
        drain()
        fake.control("POST", "/_fake/stats/reset")
        record(format("c%d_%s", c, loc), (openresty.wrk(srv.url .. "/" .. loc, c, C_SECONDS)))
        record(format("c%d_%s_inflight", c, loc), fake.stats().inflight_max)
      end
    end
  end
end)
fake.configure { delay_ms = 0 }
if not ok then
  local log = srv:error_log()
  srv:stop()
  error(err .. "\nnginx error log (last 3000 bytes):\n" .. log:sub(-3000), 0)
end
srv:stop()

---------------------------------------------------------------------------
-- 7. the realtime channel
---------------------------------------------------------------------------

say("7/7 realtime channel (%d runs)", REPS)
local RT_ENV = format("%s BENCH_OUT=%s FAKECLOUD_DIR=%s", ENV, quote(OUT), quote(fake.dir))
for _ = 1, REPS do
  for _, lua in ipairs(LUAS) do
    lua_worker(lua, "realtime.lua decode 0.3")
    lua_worker(lua, "realtime.lua latency 1000", RT_ENV)
  end
end
say("7/7 realtime in nginx (%d runs)", REPS)
local rt_nginx_rows, rt_nginx_verdicts = require("realtime_nginx").run { reps = REPS, out = OUT }
say("7/7 two nginx nodes sharing Redis (%d runs)", REPS)
local fleet_rows, fleet_verdicts = require("fleet").run { reps = REPS, out = OUT }

---------------------------------------------------------------------------
-- the table
---------------------------------------------------------------------------

local rows = {}
local verdicts = {}


-- A row: section, what, contender, its median (formatted), spread, ratio to
-- the limit, target text and whether it is met (nil: no target).
local function row(section, what, who, name, unit, ratio, target, met, note)
  local v = name and value(name)
  rows[#rows + 1] = {
    section, what, who, v and num(v, unit) or "", name and format("%.0f%%", spread(name)) or "",
    ratio and format("%.2f", ratio) or "", target or "", met == nil and "" or (met and "yes" or "**no**"), note or "",
  }
  if met ~= nil then verdicts[#verdicts + 1] = { section .. " " .. what .. ", " .. who, met } end
end

local function ratio(a, b) return value(a) / value(b) end

-- 1
for _, what in ipairs { "sha", "enc" } do
  local label = what == "sha" and "sha256_hex, 97-byte signing string"
    or "encrypt_password (MD5 key, AES-128-CBC, Base64)"
  local limit = "c_" .. what
  row("1", label, "C loop, same EVP calls, implementations fetched once (limit)", limit, "ops/s", 1)
  for _, lua in ipairs(LUAS) do
    local r = ratio(lua .. "_" .. what, limit)
    row("1", label, "quecapi, " .. lua, lua .. "_" .. what, "ops/s", r, ">= 0.67", r >= 1 / 1.5)
  end
  row("1", label, "C loop, EVP getters (looked up on every call)", limit .. "_getter", "ops/s",
    ratio(limit .. "_getter", limit), "", nil, "what OpenSSL 3's EVP_sha256()-style getters cost")
  for _, lua in ipairs(LUAS) do
    row("1", label, "luaossl, " .. lua, lua .. "_luaossl_" .. what, "ops/s", ratio(lua .. "_luaossl_" .. what, limit))
  end
  if what == "sha" then
    for _, lua in ipairs(LUAS) do
      row("1", label, "pure-Lua SHA-256, " .. lua, lua .. "_pure_sha", "ops/s", ratio(lua .. "_pure_sha", limit))
    end
  end
end

-- 2
local label2 = format("user_device_list, %d devices, HTTPS", PAGE_SIZE)
row("2", label2, "C, libcurl, one reused handle (limit)", "c_http", "req/s", 1, "", nil,
  format("client CPU %.0f us/req; body kept, not decoded", value("c_http_cpu")))
for _, lua in ipairs(LUAS) do
  local r = ratio(lua .. "_http", "c_http")
  row("2", label2, "quecapi curl transport, " .. lua, lua .. "_http", "req/s", r, ">= 0.80", r >= 0.8,
    format("client CPU %.0f us/req; decoded and checked", value(lua .. "_http_cpu")))
end
row("2", label2, "curl CLI per request", "curl_cli", "req/s", ratio("curl_cli", "c_http"), "", nil,
  "new process, TCP and TLS each time")
-- Client CPU per call: what the host pays. The limit is libcurl's (the C loop)
-- plus decoding the page into tables, each measured alone; the target allows
-- 10 us more. Ratio: the call's CPU over that sum (lower is better).
local label2c = format("client CPU per call: user_device_list, %d devices, HTTPS", PAGE_SIZE)
row("2", label2c, "libcurl alone: C loop, one reused handle", "c_http_cpu", "us", nil, "", nil,
  "keeps the body as bytes")
row("2", label2c, "libcurl alone: C loop, a fresh easy handle per request", "c_http_fresh_cpu", "us", nil, "", nil,
  "as the core runs it (curl#11101): same share and multi handle, same options")
for _, lua in ipairs(LUAS) do
  local limit = value("c_http_cpu") + value(lua .. "_http_decode_cpu")
  local call = value(lua .. "_http_cpu")
  row("2", label2c, "decode alone, " .. lua, lua .. "_http_decode_cpu", "us", nil, "", nil,
    "quecapi.json.decode of the same answer, in a loop")
  row("2", label2c, "C core session alone, " .. lua, lua .. "_http_session_cpu", "us", nil, "", nil,
    "libcurl on a fresh easy handle, the request read from Lua, the answer made into Lua values")
  row("2", label2c, "C core session + decode, one loop, " .. lua, lua .. "_http_floor_cpu", "us", nil, "", nil,
    "the two C parts of a call together: the decode costs more after a request than in a loop of its own")
  row("2", label2c, "quecapi call, " .. lua, lua .. "_http_cpu", "us", call / limit,
    "<= libcurl + decode + 10 us", call <= limit + 10,
    format("%+.0f us over libcurl + decode (%.0f us); %+.0f us over the core session + decode in one loop",
      call - limit, limit, call - value(lua .. "_http_floor_cpu")))
end
row("2", label2, "LuaSec ssl.https, lua5.4", "lua5.4_luasec", "req/s", ratio("lua5.4_luasec", "c_http"), "", nil,
  "new TCP and TLS each time; Nagle stalls")

-- 3 (times: the ratio is quecapi's time over cjson's)
local label3 = "decode a 1,000-device page (1.5 MB)"
for _, lua in ipairs(LUAS) do
  local limit = lua .. "_json_cjson"
  row("3", label3, "cjson.decode, " .. lua .. " (limit)", limit, "ms", 1, "", nil, "nulls kept, floats")
  local r = ratio(lua .. "_json_quecapi", limit)
  row("3", label3, "quecapi.json.decode, " .. lua, lua .. "_json_quecapi", "ms", r, "<= 1.30 (time)", r <= 1.3,
    "C, one pass")
  row("3", label3, "cjson + Lua walk (0.1.0), " .. lua, lua .. "_json_cjson_walk", "ms",
    ratio(lua .. "_json_cjson_walk", limit), "", nil, "before")
end

-- 4
for _, up in ipairs { "fake", "replay" } do
  local label4 = format("nginx location, %d devices, %d connections, 1 worker; upstream: %s", PAGE_SIZE,
    OR_CONNECTIONS, up == "fake" and "the fake cloud" or "a replay of its answer (static file)")
  local function note(loc)
    local key = format("or_%s_%s", up, loc)
    return format("CPU per request: nginx worker %.0f us, upstream %.0f us (upstream %.0f%% of a core busy)",
      value(key .. "_cpu_nginx"), value(key .. "_cpu_upstream"), value(key .. "_busy_upstream"))
  end
  local limit = format("or_%s_proxy", up)
  row("4", label4, "proxy_pass, keep-alive upstream (limit)", limit, "req/s", 1, "", nil, note("proxy"))
  local rg = ratio(format("or_%s_gateway", up), limit)
  local r = ratio(format("or_%s_quecapi", up), limit)
  local on_replay = up == "replay"
  row("4", label4, "quecapi.gateway (access_by_lua) + proxy_pass, token from the shdict by session cookie",
    format("or_%s_gateway", up), "req/s", rg, on_replay and ">= 0.85" or "", on_replay and rg >= 0.85 or nil,
    note("gateway") .. "; answer byte for byte")
  row("4", label4, "quecapi ngx transport, page decoded in content_by_lua", format("or_%s_quecapi", up), "req/s", r,
    on_replay and ">= 0.50" or "", on_replay and r >= 0.5 or nil, note("quecapi"))
end
for _, loc in ipairs { "gateway", "quecapi" } do
  row("4", "nginx worker CPU per request (replay)", loc .. " (ratio: proxy_pass's CPU over " .. loc .. "'s)",
    "or_replay_" .. loc .. "_cpu_nginx", "us",
    ratio("or_replay_proxy_cpu_nginx", "or_replay_" .. loc .. "_cpu_nginx"), "", nil,
    "the throughput ratio when the nginx worker alone is the bottleneck")
end

-- 5
for _, lua in ipairs(LUAS) do
  local function alloc(what, name)
    row("5", "bytes allocated per call", what .. ", " .. lua, lua .. "_alloc_" .. name, "B")
  end
  alloc("sha256_hex", "sha")
  alloc("encrypt_password", "enc")
  alloc("client:prepare (no I/O)", "prepare")
  alloc("json.decode, 10-device page", "decode10")
  alloc("user_device_list over HTTPS", "call")
  for _, phase in ipairs { "start", "crypto", "http" } do -- KiB -> MiB
    local name = lua .. "_rss_" .. phase
    for i, v in ipairs(runs[name]) do runs[name][i] = v / 1024 end
  end
  row("5", "RSS", "start, " .. lua, lua .. "_rss_start", "MiB")
  row("5", "RSS", "after 100,000 sign + encrypt, " .. lua, lua .. "_rss_crypto", "MiB")
  row("5", "RSS", "after 10,000 HTTPS calls, " .. lua, lua .. "_rss_http", "MiB")
end

-- 6
for _, c in ipairs { 1, 10, 100 } do
  local label6 = format("%d ms cloud latency, %d client%s, 1 worker", DELAY_MS, c, c > 1 and "s" or "")
  local function inflight(loc)
    local n = value(format("c%d_%s_inflight", c, loc))
    return format("at most %d request%s in flight at the fake cloud", n, n == 1 and "" or "s")
  end
  row("6", label6, "curl transport (blocks the worker)", format("c%d_curl", c), "req/s", 1, "", nil, inflight("curl"))
  row("6", label6, "ngx transport (cosockets)", format("c%d_quecapi", c), "req/s",
    ratio(format("c%d_quecapi", c), format("c%d_curl", c)), "", nil, inflight("quecapi"))
end

-- 7
local label7 = "realtime: a 4-property report (numbers as strings, a struct) decoded and typed"
for _, lua in ipairs(LUAS) do
  local limit = lua .. "_rt_json"
  row("7", label7, "json.decode of the payload alone, " .. lua .. " (limit)", limit, "ev/s", 1)
  row("7", label7, "quecapi.realtime.events, " .. lua, lua .. "_rt_decode", "ev/s", ratio(lua .. "_rt_decode", limit),
    "", nil, "topic, JSON, kv, typing by the thing model")
end
local label7b = "realtime: device publish -> rt:receive returns the event (loopback, MQTT over TLS WebSocket)"
for _, lua in ipairs(LUAS) do
  row("7", label7b, "median, " .. lua, lua .. "_rt_lat_p50", "ms")
  row("7", label7b, "p99, " .. lua, lua .. "_rt_lat_p99", "ms", nil, "< 5 ms", value(lua .. "_rt_lat_p99") < 5,
    format("slowest of the last run: %.2f ms", value(lua .. "_rt_lat_max")))
end
for _, r in ipairs(rt_nginx_rows) do rows[#rows + 1] = r end
for _, v in ipairs(rt_nginx_verdicts) do verdicts[#verdicts + 1] = v end
for _, r in ipairs(fleet_rows) do rows[#rows + 1] = r end
for _, v in ipairs(fleet_verdicts) do verdicts[#verdicts + 1] = v end

local m = machine()
local elapsed = core.monotonic() - started
local lines = {
  "# quecapi benchmark",
  "",
  format("Machine: %s, %s cores, %s (%s); load average at the start: %s, at the end: %s.", m.cpu, m.cores,
    m.kernel, m.os, LOAD_AT_START, m.load),
  format("Software: %s; %s; %s (lua-nginx-module %s); %s; libcurl %s; lua-cjson %s; wrk %s.",
    m.lua, m.luajit, m.nginx, m.lua_module, m.openssl, m.libcurl:gsub("^libcurl/", ""), m.cjson, m.wrk),
  format("Method: median of %d runs per row (section 6: %d runs of %d s), contenders taking turns within each run; " ..
    "spread = interquartile range of the runs over their median. Fake cloud: nginx + Lua, 1 worker, HTTPS on " ..
    "127.0.0.1.",
    REPS, C_REPS, C_SECONDS),
  "Ratio: the row's median over its section's limit (throughput, higher is better), except section 3 (time, lower " ..
    "is better) and section 6 (ngx over curl transport); section 7's latencies have none.",
  "",
  "| § | measurement | contender | median | spread | ratio | target | met | note |",
  "|---|---|---|---|---|---|---|---|---|",
}
for _, r in ipairs(rows) do lines[#lines + 1] = "| " .. table.concat(r, " | ") .. " |" end
lines[#lines + 1] = ""
local met, missed = 0, {}
for _, v in ipairs(verdicts) do
  if v[2] then met = met + 1 else missed[#missed + 1] = v[1] end
end
lines[#lines + 1] = format("Targets met: %d of %d%s.", met, #verdicts,
  #missed > 0 and ("; missed: " .. table.concat(missed, "; ")) or "")
lines[#lines + 1] = format("Run time: %.0f s.", elapsed)
local text = table.concat(lines, "\n") .. "\n"
local f = assert(io.open(OUT .. "/results.md", "w"))
f:write(text)
f:close()
io.write(text)
io.stdout:flush()
say("written to build/bench/results.md")
