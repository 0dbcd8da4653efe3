-- The cosocket transport inside a real nginx: requests as sent, response framing,
-- keep-alive, TLS verification, deadlines, limits, broken servers, and that the
-- worker never blocks.
local fake = require "support.fake"
local nginx = require "support.nginx"
local json = require "quecapi.json"

local API = "/v2/binding/enduserapi/userDeviceList"

-- nginx checks certificates against names only, so over HTTPS the fake is
-- addressed as localhost (the transport connects that to 127.0.0.1).
local function by_name(url)
  return (url:gsub("^https://127%.0%.0%.1:", "https://localhost:"))
end
local URL = by_name(fake.url)
local HTTP_URL = fake.http_url
local WRONGHOST_URL = by_name(fake.wronghost_url)
local UNKNOWNCA_URL = by_name(fake.unknownca_url)

-- Locations: /run runs a list of requests through one transport and answers
-- what each returned; /one does one GET (for concurrency); /origin/* are
-- servers that answer in ways the fake cloud does not.
local SERVER = [=[
        location = /run {
            content_by_lua_block {
                local json = require "quecapi.json"
                ngx.req.read_body()
                local job = json.decode(ngx.req.get_body_data() or "{}")
                local t = require("quecapi.transport.ngx").new(job.opts)
                local out = {}
                for i, req in ipairs(job.requests) do
                    ngx.update_time()
                    local t0 = ngx.now()
                    local status, body, headers = t:request(req)
                    ngx.update_time()
                    local r = { elapsed = ngx.now() - t0 }
                    if status then
                        r.status, r.headers, r.length = status, headers, #body
                        if #body <= 65536 then r.body = body end
                    else
                        r.err, r.kind = body, headers
                    end
                    out[i] = r
                end
                ngx.header["Content-Type"] = "application/json"
                ngx.print(json.encode(out))
            }
        }

        location = /one {
            content_by_lua_block {
                local t = require("quecapi.transport.ngx").new()
                local status, _, kind = t:request { url = ngx.req.get_uri_args().u, timeout = 10 }
                ngx.print(status or kind)
            }
        }

        location = /origin/conn {
            content_by_lua_block { ngx.print(ngx.var.connection) }
        }

        location = /origin/close {
            keepalive_timeout 0;
            content_by_lua_block { ngx.print(ngx.var.connection) }
        }

        location = /origin/nocontent { return 204; }

        # what the request said about its body's length, as a header (HEAD has no body)
        location = /origin/length {
            content_by_lua_block {
                ngx.req.read_body()
                ngx.header["X-Request-Length"] = ngx.var.http_content_length or "none"
                ngx.header["X-Request-Chunked"] = ngx.var.http_transfer_encoding or "none"
                ngx.print(ngx.req.get_body_data() or "")
            }
        }

        # n pieces of size bytes, each flushed: nginx frames them as chunks
        location = /origin/chunked {
            content_by_lua_block {
                local piece = string.rep("abcdefgh", math.floor(tonumber(ngx.var.arg_size) / 8))
                for i = 1, tonumber(ngx.var.arg_n) do
                    ngx.print(piece)
                    ngx.flush(true)
                end
            }
        }

        # Hand-written answers on the raw connection; nginx closes it afterwards.
        location = /origin/raw {
            content_by_lua_block {
                local case = ngx.var.arg_case
                local sock = assert(ngx.req.socket(true))
                local function trickle(s, delay)
                    for i = 1, #s do
                        if not sock:send(s:sub(i, i)) then return end
                        ngx.sleep(delay)
                    end
                end
                if case == "chunked_ext" then
                    sock:send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" ..
                              "5;name=value\r\nhello\r\n7 ; a=\"b;c\"\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n")
                elseif case == "until_close" then
                    sock:send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length, ends at close")
                elseif case == "http10" then
                    sock:send("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                elseif case == "continue" then
                    sock:send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n" ..
                              "Connection: close\r\n\r\nok")
                elseif case == "repeated" then
                    sock:send("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Folded: one\r\n" ..
                              "\ttwo\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                elseif case == "bad_status" then
                    sock:send("HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n")
                elseif case == "not_http" then
                    sock:send("SSH-2.0-OpenSSH_9.2\r\n\r\n")
                elseif case == "bad_chunk" then
                    sock:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
                elseif case == "bad_length" then
                    sock:send("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello")
                elseif case == "short" then
                    sock:send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                elseif case == "huge_header" then
                    local pad = string.rep("x", 1000)
                    local parts = { "HTTP/1.1 200 OK\r\n" }
                    for i = 1, 70 do parts[#parts + 1] = "X-Pad-" .. i .. ": " .. pad .. "\r\n" end
                    sock:send(table.concat(parts) .. "Content-Length: 0\r\n\r\n")
                elseif case == "trickle_head" then
                    sock:send("HTTP/1.1 200 OK\r\n")
                    trickle("X-Slow: " .. string.rep("s", 40) .. "\r\n\r\n", 0.1)
                elseif case == "trickle_body" then
                    sock:send("HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
                    trickle(string.rep("b", 40), 0.1)
                end
            }
        }
]=]

local srv

-- Run requests through one transport inside nginx; each result is
-- { status, headers, body, length, elapsed } or { err, kind, elapsed }.
local function run(opts, requests)
  local status, out = srv:json("/run", { opts = opts or {}, requests = requests }, 60)
  assert(status == 200, "nginx /run failed: " .. tostring(out) .. "\n" .. srv:error_log())
  return out
end

local function one(opts, req)
  return run(opts, { req })[1]
end

local function origin(path)
  return srv.url .. path
end

-- A fault kind this fake cloud knows (some are newer than others).
local function has_fault(kind)
  local ok = pcall(fake.fault, { kind = kind, path = "/_probe" })
  fake.reset()
  return ok
end

describe("transport.ngx in nginx", function()
  setup(function()
    srv = nginx.start { http = "client_body_buffer_size 1m;", server = SERVER }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    fake.reset()
  end)

  it("sends GET, POST, PUT and DELETE with their bodies as given", function()
    local seq = fake.seq()
    local headers = { ["Content-Type"] = "application/json", Authorization = "Bearer X" }
    local res = run({}, {
      { method = "GET", url = URL .. API .. "?a=1&b=%C3%A9", headers = headers },
      { method = "POST", url = URL .. API, headers = headers, body = '{"m":"POST"}' },
      { method = "PUT", url = URL .. API, headers = headers, body = '{"m":"PUT"}' },
      { method = "DELETE", url = URL .. API, headers = headers, body = '{"m":"DELETE"}' },
      { method = "POST", url = URL .. API, headers = { ["User-Agent"] = "quecapi-spec/1" } },
    })
    for i = 1, 5 do assert.is_number(res[i].status, res[i].err) end
    local reqs = fake.requests(seq)
    assert.are.equal(5, #reqs)
    assert.are.equal("GET", reqs[1].method)
    assert.are.equal("", reqs[1].raw_body)
    assert.are.equal("1", reqs[1].args.a)
    assert.are.equal("é", reqs[1].args.b)
    assert.are.equal("Bearer X", reqs[1].authorization)
    assert.is_nil(reqs[1].user_agent) -- only when the caller gives one
    for i, m in ipairs { "POST", "PUT", "DELETE" } do
      assert.are.equal(m, reqs[i + 1].method)
      assert.are.equal('{"m":"' .. m .. '"}', reqs[i + 1].raw_body)
      assert.are.equal("application/json", reqs[i + 1].content_type)
    end
    assert.are.equal("POST", reqs[5].method)
    assert.are.equal("", reqs[5].raw_body)
    assert.are.equal("quecapi-spec/1", reqs[5].user_agent)
    -- the answer is the fake's envelope, with its framing header
    local doc = json.decode(res[1].body)
    assert.are.equal(5032, doc.code) -- a made-up token: the platform's own answer
    assert.are.equal(tostring(res[1].length), res[1].headers["content-length"])
    assert.are.equal("application/json", res[1].headers["content-type"])
  end)

  it("announces an empty body as Content-Length: 0 for POST, PUT, PATCH and DELETE, never for GET or HEAD",
    function()
      local url = origin("/origin/length")
      local methods = { "POST", "PUT", "PATCH", "DELETE", "GET", "HEAD" }
      local requests = {}
      for i, m in ipairs(methods) do requests[i] = { method = m, url = url } end
      requests[#requests + 1] = { method = "DELETE", url = url, body = "{}" }
      local res = run({}, requests)
      for i, m in ipairs(methods) do
        local r = res[i]
        assert.are.equal(200, r.status, r.err)
        assert.are.equal((m == "GET" or m == "HEAD") and "none" or "0", r.headers["x-request-length"], m)
        assert.are.equal("none", r.headers["x-request-chunked"], m)
        assert.are.equal("", r.body, m)
      end
      assert.are.equal("2", res[7].headers["x-request-length"])
      assert.are.equal("{}", res[7].body)
    end)

  it("works over plain HTTP", function()
    local r = one({}, { url = HTTP_URL .. "/_fake/health" })
    assert.are.equal(200, r.status)
    assert.are.equal('{"ok":true}', r.body)
  end)

  it("reads chunked bodies, with extensions and trailers", function()
    local res = run({}, {
      { url = origin("/origin/chunked?n=40&size=4096") },
      { url = origin("/origin/raw?case=chunked_ext") },
    })
    assert.are.equal(200, res[1].status, res[1].err)
    assert.are.equal("chunked", res[1].headers["transfer-encoding"])
    assert.are.equal(40 * 4096, res[1].length)
    assert.are.equal(200, res[2].status, res[2].err)
    assert.are.equal("hello, world", res[2].body)
    assert.is_nil(res[2].headers["x-trailer"])
  end)

  it("reads a body that ends with the connection, HTTP/1.0, 1xx, repeated and folded headers", function()
    local res = run({}, {
      { url = origin("/origin/raw?case=until_close") },
      { url = origin("/origin/raw?case=http10") },
      { url = origin("/origin/raw?case=continue") },
      { url = origin("/origin/raw?case=repeated") },
    })
    assert.are.equal(200, res[1].status, res[1].err)
    assert.are.equal("no length, ends at close", res[1].body)
    assert.are.equal("ok", res[2].body)
    assert.are.equal(200, res[3].status, res[3].err)
    assert.are.equal("ok", res[3].body)
    assert.are.equal("a=1, b=2", res[4].headers["set-cookie"])
    assert.are.equal("one two", res[4].headers["x-folded"])
    assert.are.equal("", res[4].body)
  end)

  it("expects no body after HEAD, 204 and 304", function()
    local res = run({}, {
      { method = "HEAD", url = origin("/origin/conn") },
      { url = origin("/origin/nocontent") },
      { url = origin("/origin/conn") },
    })
    assert.are.equal(200, res[1].status, res[1].err)
    assert.are.equal("", res[1].body)
    assert.are.equal(204, res[2].status, res[2].err)
    assert.are.equal("", res[2].body)
    assert.are.equal(200, res[3].status, res[3].err)
  end)

  it("keeps the connection for the next request until either side says close", function()
    local seq = fake.seq()
    local res = run({}, {
      { url = URL .. API }, { url = URL .. API }, { url = URL .. API },
      { url = URL .. API, headers = { Connection = "close" } },
      { url = URL .. API },
    })
    for i = 1, 5 do assert.are.equal(200, res[i].status, res[i].err) end
    local reqs = fake.requests(seq)
    assert.are.equal(reqs[1].connection, reqs[2].connection)
    assert.are.equal(reqs[1].connection, reqs[3].connection)
    assert.are.equal(reqs[1].connection, reqs[4].connection)
    assert.are_not.equal(reqs[4].connection, reqs[5].connection)

    -- the server closing: nginx sends "Connection: close" where keepalive_timeout is 0
    res = run({}, {
      { url = origin("/origin/conn") }, { url = origin("/origin/conn") },
      { url = origin("/origin/close") }, { url = origin("/origin/conn") },
    })
    assert.are.equal(res[1].body, res[2].body)
    assert.are.equal(res[2].body, res[3].body)
    assert.are.equal("close", res[3].headers["connection"])
    assert.are_not.equal(res[3].body, res[4].body)
  end)

  it("pools connections per worker, across requests to nginx", function()
    local seq = fake.seq()
    one({}, { url = URL .. API })
    one({}, { url = URL .. API })
    local reqs = fake.requests(seq)
    assert.are.equal(reqs[1].connection, reqs[2].connection)
  end)

  it("recovers when a pooled connection was closed by the server", function()
    -- chunked_ext looks reusable (HTTP/1.1, no close) but the server then closes
    local res = run({}, {
      { url = origin("/origin/raw?case=chunked_ext") },
      { url = origin("/origin/conn") },
      { url = origin("/origin/conn") },
    })
    assert.are.equal(200, res[2].status, res[2].err)
    assert.are.equal(200, res[3].status, res[3].err)
  end)

  describe("TLS", function()
    it("verifies by default and succeeds with a trusted certificate for the name", function()
      local r = one({}, { url = URL .. "/_fake/health" })
      assert.are.equal(200, r.status, r.err)
    end)

    it("refuses a certificate for another name", function()
      local r = one({}, { url = WRONGHOST_URL .. "/_fake/health" })
      assert.is_nil(r.status)
      assert.are.equal("tls", r.kind)
      assert.matches("TLS handshake with localhost failed", r.err, 1, true)
    end)

    it("refuses a certificate from an unknown CA unless verify = false", function()
      local r = one({}, { url = UNKNOWNCA_URL .. "/_fake/health" })
      assert.are.equal("tls", r.kind)
      r = one({ verify = false }, { url = UNKNOWNCA_URL .. "/_fake/health" })
      assert.is_number(r.status, r.err) -- that server has the API only: 404
      -- the unverified connection now pooled is not handed to a verifying transport
      r = one({}, { url = UNKNOWNCA_URL .. "/_fake/health" })
      assert.are.equal("tls", r.kind)
    end)

    it("cannot verify an IP address and says so", function()
      local r = one({}, { url = fake.url .. "/_fake/health" })
      assert.are.equal("tls", r.kind, r.err)
      assert.matches("host names only", r.err)
      r = one({ verify = false }, { url = fake.url .. "/_fake/health" })
      assert.are.equal(200, r.status, r.err)
    end)
  end)

  describe("deadlines", function()
    it("gives up on a server that does not answer in time", function()
      fake.fault { kind = "delay", delay_ms = 3000 }
      local r = one({}, { url = URL .. API, timeout = 0.5 })
      assert.is_nil(r.status)
      assert.are.equal("timeout", r.kind)
      assert.is_true(r.elapsed >= 0.45 and r.elapsed < 1.5, "elapsed " .. r.elapsed)
    end)

    it("gives up on a server that trickles its header or its body", function()
      local res = run({}, {
        { url = origin("/origin/raw?case=trickle_head"), timeout = 1 },
        { url = origin("/origin/raw?case=trickle_body"), timeout = 1 },
      })
      for _, r in ipairs(res) do
        assert.are.equal("timeout", r.kind, r.err)
        assert.is_true(r.elapsed >= 0.95 and r.elapsed < 1.6, "elapsed " .. r.elapsed)
      end
    end)

    if has_fault("slow_body") then
      it("gives up on the fake's slow body", function()
        fake.fault { kind = "slow_body", delay_ms = 100 }
        local r = one({}, { url = URL .. API, timeout = 0.6 })
        assert.are.equal("timeout", r.kind, r.err)
        assert.is_true(r.elapsed < 1.2, "elapsed " .. r.elapsed)
      end)
    end

    if has_fault("slow_headers") then
      it("gives up on the fake's slow headers", function()
        fake.fault { kind = "slow_headers", delay_ms = 2000 }
        local r = one({}, { url = URL .. API, timeout = 0.5 })
        assert.are.equal("timeout", r.kind, r.err)
        assert.is_true(r.elapsed < 1.2, "elapsed " .. r.elapsed)
      end)
    end
  end)

  describe("limits", function()
    it("stops at max_body", function()
      local res = run({}, {
        { url = URL .. API, max_body = 10 },
        { url = origin("/origin/chunked?n=40&size=4096"), max_body = 10000 },
        { url = origin("/origin/raw?case=until_close"), max_body = 5 },
        { url = URL .. API, max_body = 1000000 },
      })
      assert.are.equal("too_large", res[1].kind)
      assert.are.equal("response body exceeds 10 bytes", res[1].err)
      assert.are.equal("too_large", res[2].kind)
      assert.are.equal("response body exceeds 10000 bytes", res[2].err)
      assert.are.equal("too_large", res[3].kind)
      assert.are.equal(200, res[4].status, res[4].err)
    end)

    if has_fault("huge") then
      it("stops reading the fake's huge body at once", function()
        fake.fault { kind = "huge", size = 4 * 1024 * 1024 }
        local r = one({}, { url = URL .. API, max_body = 65536 })
        assert.are.equal("too_large", r.kind)
        assert.are.equal("response body exceeds 65536 bytes", r.err)
        fake.fault { kind = "huge", size = 1024 * 1024 }
        r = one({}, { url = URL .. API })
        assert.are.equal(200, r.status, r.err)
        assert.are.equal(1024 * 1024, r.length)
      end)
    end

    it("refuses a response header over 64 KiB", function()
      local r = one({}, { url = origin("/origin/raw?case=huge_header") })
      assert.are.equal("network", r.kind)
      assert.matches("exceeds 65536 bytes", r.err)
    end)
  end)

  describe("connection failures", function()
    it("reports a refused connection as connect", function()
      local r = one({}, { url = "http://127.0.0.1:1/" })
      assert.are.equal("connect", r.kind)
      assert.matches("127.0.0.1:1", r.err)
    end)

    it("reports a name nginx cannot resolve as connect", function()
      local r = one({}, { url = "http://quecapi.invalid/" })
      assert.are.equal("connect", r.kind)
    end)
  end)

  describe("broken answers", function()
    it("handles the fake's faults", function()
      fake.fault { kind = "truncated" }
      local r = one({}, { url = URL .. API })
      assert.are.equal("network", r.kind)
      assert.matches("of 400 body bytes", r.err)
      fake.reset()

      -- as libcurl, a request that dies on a pooled connection goes again, once;
      -- a drop on every try is an error
      fake.fault { kind = "drop", count = 3 }
      r = one({}, { url = URL .. API })
      assert.are.equal("network", r.kind)
      fake.reset() -- the drops a fresh connection did not use up

      fake.fault { kind = "malformed" }
      r = one({}, { url = URL .. API })
      assert.are.equal(200, r.status)
      assert.are.equal("<html>upstream says hello</html>", r.body)

      fake.fault { kind = "empty" }
      r = one({}, { url = URL .. API })
      assert.are.equal(200, r.status)
      assert.are.equal("", r.body)

      fake.fault { kind = "status", status = 502 }
      r = one({}, { url = URL .. API })
      assert.are.equal(502, r.status)
      assert.matches("Bad Gateway", r.body)
    end)

    it("goes again once when a pooled connection is dropped, not on a fresh one", function()
      one({}, { url = URL .. API }) -- a connection in the pool
      local seq = fake.seq()
      fake.fault { kind = "drop", count = 1 }
      local r = one({}, { url = URL .. API })
      assert.are.equal(200, r.status, r.err)
      assert.are.equal(2, #fake.requests(seq))
    end)

    if has_fault("chunked") then
      it("reads the fake's chunked answer", function()
        fake.fault { kind = "chunked", chunks = 5 }
        local r = one({}, { url = URL .. API })
        assert.are.equal(200, r.status, r.err)
        assert.are.equal("chunked", r.headers["transfer-encoding"])
        assert.are.equal(5106, json.decode(r.body).code)
      end)
    end

    if has_fault("wrong_length") then
      it("reads what Content-Length says, no more, and fails when it promises too much", function()
        fake.fault { kind = "wrong_length", variant = "short" }
        local r = one({}, { url = URL .. API })
        assert.are.equal(200, r.status, r.err)
        assert.is_nil(json.decode(r.body)) -- cut JSON, for the client to reject
        fake.fault { kind = "wrong_length", variant = "long" }
        r = one({}, { url = URL .. API })
        assert.are.equal("network", r.kind)
      end)
    end

    if has_fault("reset") then
      it("reports a reset mid-body as network", function()
        fake.fault { kind = "reset" }
        local r = one({}, { url = URL .. API })
        assert.are.equal("network", r.kind, r.err)
      end)
    end

    it("refuses malformed framing", function()
      local res = run({}, {
        { url = origin("/origin/raw?case=bad_status") },
        { url = origin("/origin/raw?case=not_http") },
        { url = origin("/origin/raw?case=bad_chunk") },
        { url = origin("/origin/raw?case=bad_length") },
        { url = origin("/origin/raw?case=short") },
      })
      for _, r in ipairs(res) do assert.are.equal("network", r.kind, r.err) end
      assert.matches("status line", res[1].err)
      assert.matches("status line", res[2].err)
      assert.matches("chunk", res[3].err)
      assert.matches("Content%-Length", res[4].err)
      assert.matches("3 of 10 body bytes", res[5].err)
    end)
  end)

  it("does not block the worker: 20 requests wait for the fake together", function()
    fake.configure { delay_ms = 200 }
    fake.control("POST", "/_fake/stats/reset")
    local paths = {}
    local u = (URL .. API):gsub("[^%w]", function(c) return ("%%%02X"):format(c:byte()) end)
    for i = 1, 20 do paths[i] = "/one?u=" .. u end
    local bodies = srv:parallel(paths)
    for i = 1, 20 do assert.are.equal("200", bodies[i], srv:error_log()) end
    local stats = fake.stats()
    assert.is_true(stats.inflight_max > 10, "inflight_max " .. tostring(stats.inflight_max))
  end)
end)
