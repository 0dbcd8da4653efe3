-- The Redis token store inside real nginx nodes (issue 17): cosockets and
-- their pool, phases, two nginx instances as two nodes of a fleet sharing one
-- redis-server, renewal single-flight across them, and Redis restarting or down.
local fake = require "support.fake"
local nginx = require "support.nginx"
local redis = require "support.redis"
local core = require "quecapi.core"
local json = require "quecapi.json"
local shell = require "support.sh"

local PHONE, PASSWORD = "13700001701", "fleet-pass-17"
local REDIS_PASSWORD = "redis-pw-17-Zq8"
local REFRESH_PATH = "/v2/enduser/enduserapi/refreshToken"
local LOGIN_PATH = "/v2/enduser/enduserapi/phonePwdLogin"

local function main(port, node)
  return ([[
env FAKECLOUD_URL;
env FAKECLOUD_CA;
env SPEC_PHONE=%s;
env SPEC_PASSWORD=%s;
env SPEC_REDIS_PORT=%d;
env SPEC_REDIS_PASSWORD=%s;
env SPEC_NODE=%s;
]]):format(PHONE, PASSWORD, port, REDIS_PASSWORD, node)
end

local HTTP = [[
lua_shared_dict tokens 1m;
lua_shared_dict results 1m;
]]

-- init_worker_by_lua may block: the store talks over LuaSocket there.
local INIT_WORKER = [[
init_worker_by_lua_block {
    if ngx.worker.id() ~= 0 then return end
    local s = require("support.redis_nginx").store()
    local ok, err = s:set("init-worker", { access_token = "from init_worker" })
    local t, gerr = s:get("init-worker")
    ngx.shared.results:set("init_worker", require("quecapi.json").encode {
        ok = ok, err = err or gerr, token = t and t.access_token })
}
]]

local SERVER = [[
location = /store { content_by_lua_block { require("support.redis_nginx").store_op() } }
location = /call { content_by_lua_block { require("support.redis_nginx").call() } }
location = /cost { content_by_lua_block { require("support.redis_nginx").cost() } }
location = /init_worker { content_by_lua_block { ngx.say(ngx.shared.results:get("init_worker") or "{}") } }
location = /in_log {
    content_by_lua_block { ngx.say("ok") }
    log_by_lua_block {
        local _, err, kind = require("support.redis_nginx").store():get("k")
        ngx.shared.results:set("log", require("quecapi.json").encode { err = err, kind = kind })
    }
}
location = /log_result { content_by_lua_block { ngx.say(ngx.shared.results:get("log") or "{}") } }
]]

local function start_node(r, node, workers)
  return nginx.start { workers = workers or 2, main = main(r.port, node), http = HTTP .. INIT_WORKER,
                       server = SERVER }
end

local function count(since, path)
  return #fake.received(since, path)
end

-- Fetch `paths` (on `servers`, in turn) all at once with one curl running them
-- in parallel; the bodies, in order.
local function parallel(servers, paths, dir)
  local conf = {}
  for i, p in ipairs(paths) do
    local srv = servers[(i - 1) % #servers + 1]
    conf[#conf + 1] = ('url = "%s%s"\noutput = "%s/out-%d"'):format(srv.url, p, dir, i)
  end
  shell.write(dir .. "/curl.conf", table.concat(conf, "\n") .. "\n")
  shell.run(("curl -s -Z --parallel-immediate --parallel-max %d -m 60 -K %s >/dev/null 2>&1"):format(#paths,
    shell.quote(dir .. "/curl.conf")))
  local bodies = {}
  for i = 1, #paths do bodies[i] = shell.read(("%s/out-%d"):format(dir, i)) or "" end
  return bodies
end

local function median_and_max(list)
  table.sort(list)
  return list[math.ceil(#list / 2)], list[#list]
end

describe("[17] redis token store in nginx", function()
  local r, a, b, dir

  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 4)
    r = redis.start { password = REDIS_PASSWORD }
    a = start_node(r, "a")
    b = start_node(r, "b")
    dir = shell.tempdir()
  end)

  teardown(function()
    if a then a:stop() end
    if b then b:stop() end
    if r then r:destroy() end
    if dir then shell.run("rm -rf " .. shell.quote(dir)) end
  end)

  local function call(srv, query, body)
    local status, out = srv:json("/store?" .. query, body)
    assert(status == 200, tostring(out) .. "\n" .. srv:error_log())
    return out
  end

  it("[17] round-trips tokens between the two nodes over cosockets", function()
    local tokens = { access_token = "Bearer a17", access_expires = os.time() + 600,
                     refresh_token = "Bearer r17", refresh_expires = os.time() + 86400 }
    assert.is_true(call(a, "op=set&key=rt", tokens).ok)
    assert.are.same(tokens, call(b, "op=get&key=rt").tokens)
    local ttl = tonumber(r:raw("PTTL", "quecapi:rt"))
    assert.is_true(ttl > 86390 * 1000 and ttl <= 86400 * 1000, "ttl " .. ttl)
    assert.is_true(call(b, "op=delete&key=rt").ok)
    assert.is_nil(call(a, "op=get&key=rt").tokens)
  end)

  it("[17] makes a locker on one node wait for the holder on the other", function()
    local t0 = core.monotonic()
    local bodies = parallel({ a, b }, { "/store?op=lock&key=l1&timeout=3&hold=0.5",
                                        "/store?op=lock&key=l1&timeout=3&hold=0.5" }, dir)
    local x, y = json.decode(bodies[1]), json.decode(bodies[2])
    assert.is_true(x.locked and y.locked, bodies[1] .. bodies[2])
    assert.is_true(x.unlocked and y.unlocked)
    local first, second = math.min(x.waited, y.waited), math.max(x.waited, y.waited)
    assert.is_true(first < 0.2, "first waited " .. first)
    assert.is_true(second >= 0.4 and second < 1.2, "second waited " .. second)
    assert.is_true(core.monotonic() - t0 < 3)
    assert.are_not.equal(x.handle, y.handle)
    assert.are.equal("(nil)", r:cli("GET", "quecapi:lock:l1")) -- released
  end)

  it("[17] times a locker out and leaves another holder's lock alone", function()
    local bodies = parallel({ a, b }, { "/store?op=lock&key=l2&timeout=0.2&hold=0.8",
                                        "/store?op=lock&key=l2&timeout=0.2&hold=0.8" }, dir)
    local x, y = json.decode(bodies[1]), json.decode(bodies[2])
    assert.is_true(x.locked ~= y.locked, bodies[1] .. bodies[2])
    local loser = x.locked and y or x
    assert.are.equal("timeout", loser.err)
    assert.is_true(loser.waited >= 0.19 and loser.waited < 0.6, "waited " .. loser.waited)
    -- an expired lock taken by another is not released by its first holder
    local first = call(a, "op=lock&key=l3&timeout=0&ttl=0.2&release=no")
    assert.is_true(first.locked)
    local second = call(b, "op=lock&key=l3&timeout=2&release=no")
    assert.is_true(second.locked)
    assert.is_true(second.waited >= 0.1 and second.waited < 1, "waited " .. second.waited)
    local out = call(a, "op=unlock&key=l3&handle=" .. first.handle)
    assert.are.equal("lock not held", out.err)
    assert.are.equal('"' .. second.handle .. '"', r:cli("GET", "quecapi:lock:l3"))
    assert.is_true(call(b, "op=unlock&key=l3&handle=" .. second.handle).ok)
  end)

  it("[17] pools its connections: a thousand lookups, a handful of connections", function()
    local before = tonumber(r:raw("INFO", "stats"):match("total_connections_received:(%d+)"))
    local status, cost = a:json("/cost?n=1000")
    assert.are.equal(200, status, a:error_log())
    assert.are.equal(1000, cost.redis.same)
    assert.are.equal(1000, cost.shdict.same)
    local after = tonumber(r:raw("INFO", "stats"):match("total_connections_received:(%d+)"))
    assert.is_true(after - before <= 2, (after - before) .. " new connections")
    print(("\n[17] token lookup in nginx: redis %.1f us, shdict %.1f us"):format(cost.redis.us, cost.shdict.us))
  end)

  it("[17] talks over LuaSocket in init_worker_by_lua, where nginx may block", function()
    local status, out = a:json("/init_worker")
    assert.are.equal(200, status)
    assert.are.equal("from init_worker", out.token, json.encode(out))
    assert.is_true(out.ok)
  end)

  it("[17] refuses, as a value, in a phase that can neither yield nor block", function()
    assert.are.equal(200, (a:request "/in_log"))
    local out
    assert.is_true(redis.wait_for(function()
      local _, v = a:json("/log_result")
      out = v
      return v and v.err ~= nil
    end, 5))
    assert.are.equal("config", out.kind)
    assert.matches("log phase", out.err, 1, true)
    assert.matches("ngx.timer.at", out.err, 1, true)
  end)

  describe("[17] two nodes, one account", function()
    -- every token value the spec has seen, to look for in the logs at the end
    local seen = {}
    local function stored()
      local keys = r:raw("KEYS", "quecapi:https*")
      local key = keys:match("[^\n]+")
      if not key then return nil end
      local t = json.decode(r:raw("GET", key))
      if t then
        seen[#seen + 1] = t.access_token
        seen[#seen + 1] = t.refresh_token
      end
      return t, key
    end

    teardown(function()
      fake.configure { delay_ms = 0 }
      -- no secret in either node's error log, whatever happened above
      for _, srv in ipairs { a, b } do
        local log = srv:error_log()
        for _, secret in ipairs { REDIS_PASSWORD, PASSWORD, table.unpack and table.unpack(seen) or unpack(seen) } do
          assert.is_nil(log:find(secret, 1, true), "a secret in the error log")
          local bare = secret:match("^Bearer (.+)$")
          if bare then assert.is_nil(log:find(bare, 1, true), "a token in the error log") end
        end
      end
    end)

    local function calls(n)
      local paths = {}
      for i = 1, n do paths[i] = "/call?i=" .. i end
      local bodies = parallel({ a, b }, paths, dir)
      local out = {}
      for i, body in ipairs(bodies) do
        out[i] = json.decode(body) or { err = "not JSON: " .. body }
      end
      return out
    end

    it("[17] logs in once, and both nodes use the tokens", function()
      local since = fake.seq()
      local status, first = a:json("/call")
      assert.are.equal(200, status)
      assert.are.equal(4, first.total, first.err)
      local _, second = b:json("/call")
      assert.are.equal(4, second.total, second.err)
      assert.are.equal(1, count(since, LOGIN_PATH))
      assert.is_table(stored())
    end)

    it("[17] after expiry, 200 concurrent requests over both nodes cause exactly one refresh", function()
      local before = stored()
      fake.expire { phone = PHONE, access_only = true }
      fake.configure { delay_ms = 50 } -- every answer takes a while: the requests overlap the refresh
      local since = fake.seq()
      local t0 = core.monotonic()
      local out = calls(200)
      local took = core.monotonic() - t0
      fake.configure { delay_ms = 0 }
      local nodes, ms, waits, held = {}, {}, {}, 0
      for i, v in ipairs(out) do
        assert.are.equal(4, v.total, "request " .. i .. ": " .. tostring(v.err))
        nodes[v.node] = (nodes[v.node] or 0) + 1
        ms[#ms + 1] = v.ms
        if v.lock_ms then waits[#waits + 1] = v.lock_ms end
        if v.held_ms then held = held + v.held_ms end
      end
      assert.are.equal(100, nodes.a)
      assert.are.equal(100, nodes.b)
      assert.are.equal(1, count(since, REFRESH_PATH))
      assert.are.equal(0, count(since, LOGIN_PATH))
      local after = stored()
      assert.are_not.equal(before.refresh_token, after.refresh_token) -- rotated once, kept for all
      assert.are_not.equal(before.access_token, after.access_token)
      local median, max = median_and_max(ms)
      local wait_median, wait_max = median_and_max(waits)
      print(("\n[17] 200 requests over 2 nodes after expiry: %.2f s in all, per request median %.0f ms, "
        .. "max %.0f ms; %d waited for the lock: median %.0f ms, max %.0f ms; held %.0f ms in all")
        :format(took, median, max, #waits, wait_median, wait_max, held))
    end)

    it("[17] after local expiry (the stored access token is past its time), still exactly one refresh", function()
      local before, key = stored()
      before.access_expires = os.time() - 10
      assert.are.equal("OK", r:raw("SET", key, json.encode(before)))
      local since = fake.seq()
      local out = calls(100)
      for i, v in ipairs(out) do assert.are.equal(4, v.total, "request " .. i .. ": " .. tostring(v.err)) end
      assert.are.equal(1, count(since, REFRESH_PATH))
      assert.are.equal(0, count(since, LOGIN_PATH))
      assert.is_true(stored().access_expires > os.time())
    end)

    it("[17] keeps working across a Redis restart, with the same tokens", function()
      local before = stored()
      r:stop()
      r:start()
      local since = fake.seq()
      local out = calls(20)
      for i, v in ipairs(out) do assert.are.equal(4, v.total, "request " .. i .. ": " .. tostring(v.err)) end
      assert.are.equal(0, count(since, REFRESH_PATH) + count(since, LOGIN_PATH))
      assert.are.same(before, stored())
    end)

    it("[17] fails fast while Redis is down, sends nothing, and recovers when it is back", function()
      local before = stored()
      r:stop()
      local since = fake.seq()
      local ok, err = pcall(function()
        for i, v in ipairs(calls(20)) do
          assert.is_nil(v.total)
          assert.matches("redis 127.0.0.1:" .. r.port .. ": connection refused", v.err, 1, true)
          assert.is_true(v.ms < 200, "request " .. i .. " took " .. v.ms .. " ms")
          assert.is_nil(v.err:find(REDIS_PASSWORD, 1, true))
        end
        assert.are.equal(0, #fake.requests(since)) -- no token, no call
      end)
      r:start()
      assert(ok, err)
      local out = calls(20)
      for i, v in ipairs(out) do assert.are.equal(4, v.total, "request " .. i .. ": " .. tostring(v.err)) end
      assert.are.equal(0, count(since, REFRESH_PATH) + count(since, LOGIN_PATH))
      assert.are.same(before, stored())
    end)

    it("[17] a call while Redis is down fails with kind \"network\"", function()
      r:stop()
      local ok, status, v = pcall(a.json, a, "/call")
      r:start()
      assert(ok, status)
      assert.are.equal(200, status)
      assert.matches("redis 127.0.0.1:" .. r.port .. ": connection refused", v.err, 1, true)
      assert.are.equal("network", v.kind)
    end)

    it("[17] does not hang on a Redis that stopped answering: one timeout, then at once", function()
      r:pause()
      local ok, err = pcall(function()
        -- one connection to node a, so one worker: it waits once, then fails at once
        local _, v = a:json("/call")
        assert.is_nil(v.total)
        assert.matches("redis 127.0.0.1:" .. r.port .. ": timed out", v.err, 1, true)
        assert.is_true(v.ms >= 450 and v.ms < 900, v.ms .. " ms") -- the store's timeout is 0.5 s
        _, v = a:json("/call")
        assert.matches("redis 127.0.0.1:" .. r.port .. ": not answering", v.err, 1, true)
        assert.is_true(v.ms < 50, v.ms .. " ms")
        -- and no request on any worker waits much beyond the timeout
        for i, c in ipairs(calls(16)) do
          assert.is_nil(c.total)
          assert.is_true(c.ms < 900, "request " .. i .. " took " .. c.ms .. " ms")
        end
      end)
      r:resume()
      assert(ok, err)
      core.sleep(0.6) -- the rest after a timeout is the store's timeout
      local out = calls(10)
      for i, v in ipairs(out) do assert.are.equal(4, v.total, "request " .. i .. ": " .. tostring(v.err)) end
    end)
  end)
end)

describe("[17] examples/fleet as shipped: two nodes, one Redis", function()
  local PHONE2, PASSWORD2 = "13700001703", "fleet-example-17"
  local r, nodes, session = nil, {}, nil
  local root = nginx.root

  local function plain(s) return (s:gsub("%p", "%%%0")) end

  -- Start examples/fleet/<name>.conf with only the install paths, the CA bundle
  -- and the port swapped for this checkout's; its port.
  local function start_example(name, listen)
    local dir = shell.tempdir()
    assert(shell.run("mkdir -p " .. dir .. "/logs"))
    local conf = assert(shell.read(root .. "/examples/fleet/" .. name .. ".conf"))
    for _, s in ipairs {
      { "/usr/local/share/lua/5.1/?.lua;;", root .. "/lua/?.lua;;" },
      { "/usr/local/lib/lua/5.1/?.so;;", root .. "/build/luajit/?.so;;" },
      { "/etc/ssl/certs/ca-certificates.crt", fake.ca },
    } do
      local n
      conf, n = conf:gsub(plain(s[1]), (s[2]:gsub("%%", "%%%%")))
      assert.are.equal(1, n, name .. ".conf no longer holds " .. s[1])
    end
    conf = nginx.user_directive() .. "\n" .. conf
    local env = ("QUECAPI_BASE_URL=%s QUECAPI_USER_DOMAIN=%s QUECAPI_USER_DOMAIN_SECRET=%s QUECAPI_PHONE=%s "
      .. "QUECAPI_PASSWORD=%s QUECAPI_REDIS_URL=%s"):format(shell.quote(fake.url:gsub("127%.0%.0%.1", "localhost")),
      shell.quote(fake.user_domain), shell.quote(fake.secret), PHONE2, PASSWORD2,
      shell.quote(("redis://:%s@127.0.0.1:%d/0"):format(REDIS_PASSWORD, r.port)))
    for _ = 1, 10 do
      local port = 19000 + math.random(0, 900)
      shell.write(dir .. "/nginx.conf", (conf:gsub(plain("listen 127.0.0.1:" .. listen .. ";"),
        "listen 127.0.0.1:" .. port .. ";")))
      if shell.run(("env %s nginx -p %s -c %s/nginx.conf 2>>%s/logs/error.log"):format(env, dir, dir, dir)) then
        nodes[#nodes + 1] = { dir = dir, port = port }
        return port, dir
      end
    end
    error("examples/fleet/" .. name .. ".conf did not start:\n" .. tostring(shell.read(dir .. "/logs/error.log")))
  end

  setup(function()
    fake.reset()
    fake.user(PHONE2, PASSWORD2, 2)
    r = redis.start { password = REDIS_PASSWORD }
    session = assert(core.session())
  end)

  teardown(function()
    for _, n in ipairs(nodes) do
      shell.run(("kill $(cat %s/logs/nginx.pid 2>/dev/null) 2>/dev/null; sleep 0.2; rm -rf %s"):format(n.dir, n.dir))
    end
    if r then r:destroy() end
  end)

  local function get(port)
    local status, text, headers = session:request { url = "http://127.0.0.1:" .. port .. "/devices", timeout = 20 }
    assert(status, text)
    return status, json.decode(text), headers
  end

  it("[17] share one login and one refresh between node A and node B", function()
    local a_port, a_dir = start_example("node-a", 8081)
    local b_port, b_dir = start_example("node-b", 8082)
    local since = fake.seq()
    local status, devices, headers = get(a_port)
    assert.are.equal(200, status, shell.read(a_dir .. "/logs/error.log"))
    assert.are.equal(2, #devices)
    assert.are.equal("a", headers["x-node"])
    status, devices, headers = get(b_port)
    assert.are.equal(200, status, shell.read(b_dir .. "/logs/error.log"))
    assert.are.equal(2, #devices)
    assert.are.equal("b", headers["x-node"])
    assert.are.equal(1, count(since, LOGIN_PATH))

    fake.expire { phone = PHONE2, access_only = true }
    since = fake.seq()
    local dir = shell.tempdir()
    local paths = {}
    for i = 1, 40 do paths[i] = "/devices?i=" .. i end
    local bodies = parallel({ { url = "http://127.0.0.1:" .. a_port }, { url = "http://127.0.0.1:" .. b_port } },
      paths, dir)
    shell.run("rm -rf " .. shell.quote(dir))
    for i, body in ipairs(bodies) do
      local list = json.decode(body)
      assert.is_true(type(list) == "table" and #list == 2, "request " .. i .. ": " .. body)
    end
    assert.are.equal(1, count(since, REFRESH_PATH))
    assert.are.equal(0, count(since, LOGIN_PATH))

    -- Redis down: 502 naming Redis, fast, on either node; back: served again, no new login
    r:stop()
    for _, port in ipairs { a_port, b_port } do
      local t0 = core.monotonic()
      local st, err = get(port)
      assert.are.equal(502, st)
      assert.matches("redis 127.0.0.1:" .. r.port .. ": connection refused", err.error, 1, true)
      assert.is_true(core.monotonic() - t0 < 0.5)
    end
    r:start()
    since = fake.seq()
    assert.are.equal(200, (get(a_port)))
    assert.are.equal(200, (get(b_port)))
    assert.are.equal(0, count(since, LOGIN_PATH) + count(since, REFRESH_PATH))
    for _, d in ipairs { a_dir, b_dir } do
      local log = shell.read(d .. "/logs/error.log") or ""
      assert.is_nil(log:find(REDIS_PASSWORD, 1, true))
      assert.is_nil(log:find(PASSWORD2, 1, true))
    end
  end)
end)
