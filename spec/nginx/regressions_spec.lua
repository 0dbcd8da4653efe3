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
  -- (or method) cut at it.
  it("refuses a URL or method with an embedded NUL", function()
    local s = assert(core.session())
    local status, err, kind = s:request { url = fake.http_url .. "/_fake/health\0http://elsewhere/" }
    assert.is_nil(status)
    assert.are.equal("URL contains CR, LF or NUL", err)
    assert.are.equal("url", kind)
    status, err, kind = s:request { url = fake.http_url .. "/_fake/health", method = "GET\0X" }
    assert.is_nil(status)
    assert.are.equal("invalid HTTP method", err)
    assert.are.equal("url", kind)
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
