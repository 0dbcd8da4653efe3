-- The cosocket transport against servers that mean harm. The server is a real
-- nginx of its own on 127.0.0.1 that writes the bytes by hand: header blocks
-- built to cost CPU, pooled connections closed under the client, a TLS port that
-- accepts and never answers. The client is another real nginx (one worker, so a
-- stall shows in its other locations). The same header shapes in plain Lua,
-- to show that the parse cost grows linearly: spec/unit/ngx_parse_cost_spec.lua.
local core = require "quecapi.core"
local json = require "quecapi.json"
local fake = require "support.fake"
local nginx = require "support.nginx"
local sh = require "support.sh"


-- Lines of "X-R: a" in one hostile answer: with its status line and framing
-- headers, a header block just under the transport's 64 KiB limit.
local REPEATS = 8000

-- The hostile server. /repeat: one answer whose header block repeats X-R.
-- /once: answers the first request of a connection (keep-alive), then reads the
-- next request on it, counts it and closes without an answer, as a server whose
-- idle timeout fires just as the client reuses the connection; with drop=1 the
-- first request is dropped too. Every request is counted by its id. The extra
-- TLS port reads the ClientHello and then never says anything.
local HOSTILE = [=[
        listen 127.0.0.1:@TLS_PORT@ ssl;
        ssl_certificate @DIR@/server.pem;
        ssl_certificate_key @DIR@/server.key;
        ssl_certificate_by_lua_block { ngx.sleep(30) }

        location = /repeat {
            content_by_lua_block {
                local lines = { "HTTP/1.1 200 OK", "Content-Length: 2", "Connection: close" }
                for i = 1, tonumber(ngx.var.arg_n) do lines[#lines + 1] = "X-R: a" end
                local sock = assert(ngx.req.socket(true))
                sock:send(table.concat(lines, "\r\n") .. "\r\n\r\nok")
            }
        }

        location = /once {
            content_by_lua_block {
                local seen = ngx.shared.seen
                seen:incr(ngx.var.arg_id, 1, 0)
                local sock = assert(ngx.req.socket(true))
                if ngx.var.arg_drop then return end
                sock:send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                sock:settimeout(20000)
                local line = sock:receive("*l")
                if line then seen:incr(line:match("[?&]id=([%w_]+)") or "?", 1, 0) end
            }
        }

        location = /count {
            content_by_lua_block { ngx.print(ngx.shared.seen:get(ngx.var.arg_id) or 0) }
        }
]=]

-- The client. /run: requests through one transport, one after another, after
-- `warm` requests at once (so that many connections wait in the pool); each
-- result is { status, headers, body, elapsed } or { err, kind, elapsed }.
-- /load: n threads each fetching k answers, checking the repeated header.
-- /ping: what must keep answering meanwhile.
local CLIENT = [=[
        location = /run {
            content_by_lua_block {
                local json = require "quecapi.json"
                ngx.req.read_body()
                local job = json.decode(ngx.req.get_body_data())
                local t = require("quecapi.transport.ngx").new()
                if job.warm then
                    local threads = {}
                    for i = 1, job.warm.n do
                        threads[i] = ngx.thread.spawn(t.request, t, { url = job.warm.url })
                    end
                    for i = 1, #threads do assert(ngx.thread.wait(threads[i])) end
                end
                local out = {}
                for i, req in ipairs(job.requests) do
                    ngx.update_time()
                    local t0 = ngx.now()
                    local status, body, headers = t:request(req)
                    ngx.update_time()
                    local r = { elapsed = ngx.now() - t0 }
                    if status then
                        r.status, r.headers, r.body = status, headers, body
                    else
                        r.err, r.kind = body, headers
                    end
                    out[i] = r
                end
                ngx.header["Content-Type"] = "application/json"
                ngx.print(json.encode(out))
            }
        }

        location = /load {
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                local n, k, want = tonumber(args.n), tonumber(args.k), 3 * tonumber(args.repeats) - 2
                local t = require("quecapi.transport.ngx").new()
                local good, bad, first_err = 0, 0, nil
                local function fetch()
                    for _ = 1, k do
                        local status, body, headers = t:request { url = args.url, timeout = 30 }
                        -- "a, a, ..., a": every repeat, joined
                        if status == 200 and body == "ok" and #(headers["x-r"] or "") == want then
                            good = good + 1
                        else
                            bad = bad + 1
                            first_err = first_err or tostring(body)
                        end
                    end
                end
                ngx.update_time()
                local t0, cpu0 = ngx.now(), os.clock()
                local threads = {}
                for i = 1, n do threads[i] = ngx.thread.spawn(fetch) end
                for i = 1, n do ngx.thread.wait(threads[i]) end
                ngx.update_time()
                ngx.print(require("quecapi.json").encode {
                    good = good, bad = bad, err = first_err,
                    seconds = ngx.now() - t0, cpu = os.clock() - cpu0,
                })
            }
        }

        location = /ping {
            content_by_lua_block { ngx.print("pong") }
        }
]=]

-- A port for the hostile TLS listener: outside the harness's (10000-18999), the
-- fake cloud's (20000-27999) and the kernel's ephemeral range (32768+).
local function random_port()
  local f = assert(io.open("/dev/urandom", "rb"))
  local a, b = f:read(2):byte(1, 2)
  f:close()
  return 28000 + (a * 256 + b) % 4000
end

local function start_hostile()
  local last
  for _ = 1, 5 do
    local port = random_port()
    local conf = HOSTILE:gsub("@TLS_PORT@", tostring(port)):gsub("@DIR@", fake.dir)
    local ok, srv = pcall(nginx.start, { http = "lua_shared_dict seen 1m;", server = conf })
    if ok then
      srv.tls_port = port
      return srv
    end
    last = srv
    if not tostring(srv):find("Address already in use", 1, true) then break end
  end
  error(last, 2)
end

local function urlencode(s)
  return (s:gsub("[^%w]", function(c) return ("%%%02X"):format(c:byte()) end))
end

describe("transport.ngx against hostile servers", function()
  local hostile, client

  setup(function()
    hostile = start_hostile()
    client = nginx.start { server = CLIENT }
  end)

  teardown(function()
    if client then client:stop() end
    if hostile then hostile:stop() end
  end)

  local function run(job)
    local status, out = client:json("/run", job, 60)
    assert(status == 200, "client /run failed: " .. tostring(out) .. "\n" .. client:error_log())
    return out
  end

  local function count(id)
    local status, body = hostile:request("/count?id=" .. id)
    assert(status == 200, body)
    return tonumber(body)
  end

  it("[10.15] parses many 64 KiB blocks of a repeated header while /ping on the same worker answers within 200 ms",
    function()
      local n, k = 20, 15
      local out = client.dir .. "/load.json"
      local url = hostile.url .. "/repeat?n=" .. REPEATS
      local load = ("%s/load?n=%d&k=%d&repeats=%d&url=%s"):format(client.url, n, k, REPEATS, urlencode(url))
      -- in the background; the file appears, whole, when the load is over
      assert(sh.run(("{ curl -s -m 120 -o %s %s && mv %s %s; } >/dev/null 2>&1 &"):format(
        sh.quote(out .. ".tmp"), sh.quote(load), sh.quote(out .. ".tmp"), sh.quote(out))))
      local worst, samples = 0, 0
      local give_up = core.monotonic() + 120
      while not sh.read(out) and core.monotonic() < give_up do
        local t0 = core.monotonic()
        local status, body = client:request { path = "/ping", timeout = 10 }
        assert.are.equal(200, status, body)
        worst = math.max(worst, core.monotonic() - t0)
        samples = samples + 1
        core.sleep(0.01)
      end
      local result = assert(json.decode(assert(sh.read(out), "the load did not finish")))
      assert.are.equal(0, result.bad, result.err)
      assert.are.equal(n * k, result.good)
      -- the pings were taken while the answers were being parsed
      assert.is_true(samples >= 5, ("only %d pings during a %.2fs load"):format(samples, result.seconds))
      assert.is_true(worst < 0.2, ("/ping took %.0f ms while %d answers of %d repeated headers were parsed"):format(
        worst * 1000, n * k, REPEATS))
    end)

  it("[10.16] sends a request at most twice when pooled connections are closed under it", function()
    local warm = { url = hostile.url .. "/once?id=warm", n = 3 }
    -- three connections wait in the pool, each one will be closed when reused
    local res = run { warm = warm, requests = { { url = hostile.url .. "/once?id=sms" } } }
    assert.are.equal(3, count("warm"))
    -- the first pooled connection is closed under the request: sent again, once,
    -- on a new connection (not on the next stale one), and answered there
    assert.are.equal(200, res[1].status, res[1].err)
    assert.are.equal("ok", res[1].body)
    assert.are.equal(2, count("sms"))

    -- when the new connection is dropped too, the caller hears of it; still two sends
    res = run { warm = warm, requests = { { url = hostile.url .. "/once?id=sms2&drop=1" } } }
    assert.is_nil(res[1].status)
    assert.are.equal("network", res[1].kind)
    assert.are.equal(2, count("sms2"))

    -- a request on a new connection that is dropped is never sent again
    res = run { requests = { { url = hostile.url .. "/once?id=fresh&drop=1" } } }
    assert.are.equal("network", res[1].kind)
    assert.are.equal(1, count("fresh"))
  end)

  it("[10.17] bounds connect and TLS handshake by connect_timeout, not timeout", function()
    local url = ("https://localhost:%d/"):format(hostile.tls_port)
    local res = run { requests = {
      { url = url, timeout = 6, connect_timeout = 1 },
      { url = url, timeout = 0.5, connect_timeout = 5 }, -- the deadline comes first
    } }
    local r = res[1]
    assert.are.equal("timeout", r.kind, r.err)
    assert.are.equal(("TLS handshake with localhost:%d timed out after 1000 ms"):format(hostile.tls_port), r.err)
    assert.is_true(r.elapsed >= 0.95 and r.elapsed < 1.5, "elapsed " .. r.elapsed)
    r = res[2]
    assert.are.equal("timeout", r.kind, r.err)
    assert.are.equal(("timed out after 500 ms during the TLS handshake with localhost:%d"):format(hostile.tls_port),
      r.err)
    assert.is_true(r.elapsed >= 0.45 and r.elapsed < 1, "elapsed " .. r.elapsed)
  end)
end)
