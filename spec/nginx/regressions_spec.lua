-- Inputs that once misbehaved in the C core, each called through the public
-- functions and checked for the right answer. Under `make check-asan` and
-- `make check-valgrind` (mk/check.mk) a regression here is also a memory error.
local core = require "quecapi.core"
local quecapi = require "quecapi"
local fake = require "support.fake"

-- A request table whose fields come from an __index metamethod, as fresh strings
-- with no other reference, with a full collection before every lookup.
local function proxy(t)
  return setmetatable({}, { __index = function(_, k)
    collectgarbage()
    local v = t[k]
    if type(v) == "string" then return (v .. "."):sub(1, -2) end
    return v
  end })
end

describe("regressions", function()
  -- The request's url, method and body strings were popped off the stack right
  -- after they were read; the collection run by the next lookup freed them before
  -- curl copied them (heap-use-after-free).
  it("keeps request strings alive when they come from __index", function()
    local s = assert(core.session())
    local url = fake.http_url .. "/_fake/health?" .. string.rep("q", 80)
    local status, body = s:request(proxy { url = url, method = "GET", timeout = 5 })
    assert.are.equal(200, status)
    assert.are.equal('{"ok":true}', body)
    local nothing, err, kind = s:request(proxy {
      url = "http://127.0.0.1:1/" .. string.rep("u", 80), method = "POST", body = string.rep("b", 80),
      headers = { ["Content-Type"] = "application/json" }, connect_timeout = 2,
    })
    assert.is_nil(nothing)
    assert.is_string(err)
    assert.are.equal("connect", kind)
  end)

  -- The NUL check used strlen, so it never saw a NUL, and curl was handed the URL
  -- (or method) cut at it. The C core keeps this check whoever calls it (the
  -- request rules are the transport contract's, in Lua): a NUL anywhere curl takes
  -- a C string is refused, and nothing is sent.
  it("refuses a URL, method or header with an embedded NUL", function()
    local s = assert(core.session())
    local seq = fake.seq()
    local health = fake.http_url .. "/_fake/health"
    local cases = {
      { { url = health .. "\0http://elsewhere/" }, "URL contains NUL" },
      { { url = health, method = "GET\0X" }, "HTTP method contains NUL" },
      { { url = health, headers = { ["X-A\0B"] = "1" } }, "header name contains NUL" },
      { { url = health, headers = { ["X-A"] = "1\0\r\nX-Evil: 1" } }, "header value contains NUL" },
    }
    for _, c in ipairs(cases) do
      local status, err, kind = s:request(c[1])
      assert.is_nil(status)
      assert.are.equal(c[2], err)
      assert.are.equal("url", kind)
    end
    assert.are.equal(0, #fake.requests(seq))
    -- and the session still works
    assert.are.equal(200, (s:request { url = health }))
  end)

  -- Repeated response headers were joined one at a time, each join copying the
  -- value so far: quadratic in the header block (found by the headers fuzz target,
  -- which ran out of memory on a block of one short line repeated). They are now
  -- gathered and joined once, in the order they came.
  it("joins many repeats of a response header, in order", function()
    local nginx = require "support.nginx"
    local srv = nginx.start { server = [[
      location /dup {
        content_by_lua_block {
          local t = {}
          for i = 1, 10000 do t[i] = tostring(i) end
          ngx.header["X-Dup"] = t
          ngx.header["X-Once"] = "1"
          ngx.say("ok")
        }
      }
    ]] }
    finally(function() srv:stop() end)
    local s = assert(core.session())
    local status, body, headers = s:request { url = srv.url .. "/dup", timeout = 10 }
    assert.are.equal(200, status)
    assert.are.equal("ok\n", body)
    local want = {}
    for i = 1, 10000 do want[i] = tostring(i) end
    assert.are.equal(table.concat(want, ", "), headers["x-dup"])
    assert.are.equal("1", headers["x-once"])
  end)

  -- libcurl 7.83 to 8.0 (Debian 12 has 7.88) keep a pointer to the last header
  -- they stored across the requests of an easy handle after freeing it
  -- (curl/curl#11101): an answer whose first header line is a continuation, on a
  -- session that had answered before, made libcurl read and free freed memory (a
  -- segfault here, or worse). Found by the contract spec's random header blocks.
  -- Each request now has an easy handle of its own.
  it("[12.6] survives a continuation as the first header line of a later answer", function()
    local nginx = require "support.nginx"
    local srv = nginx.start { server = [[
      location = /fold {
        content_by_lua_block {
          local sock = assert(ngx.req.socket(true))
          sock:send("HTTP/1.1 200 OK\r\n x: y\r\nContent-Length: 2\r\n\r\nok")
        }
      }
      location = /ok { return 200 "ok"; }
    ]] }
    finally(function() srv:stop() end)
    local s = assert(core.session())
    for _ = 1, 3 do
      assert.are.equal(200, (s:request { url = srv.url .. "/ok", timeout = 10 }))
      local status, err, kind = s:request { url = srv.url .. "/fold", timeout = 10 }
      assert.is_nil(status)
      assert.is_string(err)
      assert.are.equal("network", kind)
    end
    -- and keep-alive still works: consecutive requests share one connection
    local seq = fake.seq()
    local t = assert(core.session { ca_file = fake.ca })
    for _ = 1, 3 do assert(t:request { url = fake.url .. "/v2/binding/enduserapi/userDeviceList" }) end
    local reqs = fake.requests(seq)
    assert.are.equal(reqs[1].connection, reqs[3].connection)
  end)

  -- Seeds of fuzz/corpus/decrypt: the golden vectors and the malformed inputs.
  it("answers the decrypt seeds with the plain text or nil, err", function()
    assert.are.equal("china1234", quecapi.decrypt_password("lkZMvj0KDSJXlp66jBieHA==", "j1acpdj2bmtqZXVb"))
    assert.are.equal("abcd1234", quecapi.decrypt_password("KbbO5AsWloh9gulLei6NhQ==", "abcdef"))
    for _, bad in ipairs { "", "====", "a===", "QQ=A", "QR==", "QUJD", "lkZMvj0KDSJXlp66\njBieHA==",
                           string.rep("A", 4096) .. "=" } do
      local plain, err = quecapi.decrypt_password(bad, "k")
      assert.is_nil(plain)
      assert.is_string(err)
    end
  end)
end)
