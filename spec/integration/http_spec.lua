-- The C core's libcurl session against the fake cloud: keep-alive, TLS checks,
-- limits, bad input, and its life cycle; and the curl transport on top of it,
-- which checks every request by the transport contract first (the contract's
-- cases, run through both transports, are in spec/nginx/transport_contract_spec.lua).
local core = require "quecapi.core"
local fake = require "support.fake"

local API = "/v2/binding/enduserapi/userDeviceList"
local LUA = jit and "luajit" or "lua5.4"

describe("core.session", function()
  before_each(function() fake.reset() end)

  it("answers status, body and lowercase headers", function()
    local s = assert(core.session { ca_file = fake.ca })
    local status, body, headers = s:request { url = fake.url .. "/_fake/health" }
    assert.are.equal(200, status)
    assert.are.equal('{"ok":true}', body)
    assert.are.equal("application/json", headers["content-type"])
    assert.are.equal(tostring(#body), headers["content-length"])
  end)

  it("reuses one connection for consecutive requests", function()
    local s = assert(core.session { ca_file = fake.ca })
    local seq = fake.seq()
    for _ = 1, 5 do assert(s:request { url = fake.url .. API }) end
    local reqs = fake.requests(seq)
    assert.are.equal(5, #reqs)
    for i = 2, 5 do assert.are.equal(reqs[1].connection, reqs[i].connection) end
    -- a second session opens its own connection
    local other = assert(core.session { ca_file = fake.ca })
    assert(other:request { url = fake.url .. API })
    local last = fake.requests(seq)[6]
    assert.are_not.equal(reqs[1].connection, last.connection)
  end)

  it("sends method, headers and body as given", function()
    local s = assert(core.session { ca_file = fake.ca })
    local seq = fake.seq()
    for _, m in ipairs { "PUT", "DELETE", "POST", "GET" } do
      assert(s:request { method = m, url = fake.url .. API .. "?a=1", body = m ~= "GET" and '{"m":"' .. m .. '"}' or nil,
                         headers = { ["Content-Type"] = "application/json", Authorization = "Bearer X" } })
    end
    local reqs = fake.requests(seq)
    assert.are.equal("PUT", reqs[1].method)
    assert.are.equal('{"m":"PUT"}', reqs[1].raw_body)
    assert.are.equal("DELETE", reqs[2].method)
    assert.are.equal('{"m":"DELETE"}', reqs[2].raw_body)
    assert.are.equal("POST", reqs[3].method)
    assert.are.equal("GET", reqs[4].method)
    assert.are.equal("", reqs[4].raw_body)
    assert.are.equal("1", reqs[4].args.a)
    assert.are.equal("Bearer X", reqs[4].authorization)
    assert.are.equal("application/json", reqs[1].content_type)
  end)

  it("carries nothing of one request's method into the next", function()
    local s = assert(core.session { ca_file = fake.ca })
    local seq = fake.seq()
    local status, body = s:request { method = "HEAD", url = fake.url .. API }
    assert.are.equal(404, status) -- the fake routes GET only; a HEAD answer has no body
    assert.are.equal("", body)
    assert(s:request { method = "PATCH", url = fake.url .. API, body = "x" })
    status, body = s:request { url = fake.url .. API }
    assert.are.equal(200, status)
    assert.matches('"code":5106', body, 1, true)
    local reqs = fake.requests(seq)
    assert.are.same({ "HEAD", "PATCH", "GET" }, { reqs[1].method, reqs[2].method, reqs[3].method })
    assert.are.equal("", reqs[3].raw_body)
  end)

  it("sends an empty POST with a zero Content-Length", function()
    local s = assert(core.session { ca_file = fake.ca })
    local seq = fake.seq()
    assert(s:request { method = "POST", url = fake.url .. API })
    assert.are.equal("", fake.requests(seq)[1].raw_body)
  end)

  it("[11.2] sends POST, PUT, PATCH and DELETE without a body with a zero Content-Length and no type", function()
    local s = assert(core.session { ca_file = fake.ca })
    local seq = fake.seq()
    for _, m in ipairs { "POST", "PUT", "PATCH", "DELETE" } do
      assert(s:request { method = m, url = fake.url .. API })
    end
    local reqs = fake.requests(seq)
    assert.are.same({ "POST", "PUT", "PATCH", "DELETE" }, { reqs[1].method, reqs[2].method, reqs[3].method,
                                                        reqs[4].method })
    for _, r in ipairs(reqs) do
      assert.are.equal("0", r.headers["content-length"], r.method)
      assert.is_nil(r.headers["content-type"], r.method)
      assert.are.equal("", r.raw_body)
    end
  end)

  it("works over plain HTTP too", function()
    local s = assert(core.session())
    assert.are.equal(200, (s:request { url = fake.http_url .. "/_fake/health" }))
  end)

  it("verifies the server certificate by default", function()
    local s = assert(core.session())
    local status, err, kind = s:request { url = fake.url .. "/_fake/health" }
    assert.is_nil(status)
    assert.are.equal("tls", kind)
    assert.is_string(err)
  end)

  it("refuses a certificate for another host name", function()
    local s = assert(core.session { ca_file = fake.ca })
    local status, err, kind = s:request { url = fake.wronghost_url .. "/_fake/health" }
    assert.is_nil(status)
    assert.are.equal("tls", kind)
    assert.matches("subject name", err, 1, true)
  end)

  it("refuses a certificate from an unknown CA", function()
    local s = assert(core.session { ca_file = fake.ca })
    local status, _, kind = s:request { url = fake.unknownca_url .. "/_fake/health" }
    assert.is_nil(status)
    assert.are.equal("tls", kind)
  end)

  it("skips verification only when told to", function()
    local s = assert(core.session { verify = false })
    assert.are.equal(200, (s:request { url = fake.url .. "/_fake/health" }))
  end)

  it("refuses a body over max_body", function()
    local s = assert(core.session { ca_file = fake.ca })
    local status, err, kind = s:request { url = fake.url .. "/_fake/health", max_body = 5 }
    assert.is_nil(status)
    assert.are.equal("too_large", kind)
    assert.matches("exceeds 5 bytes", err, 1, true)
    -- and the session still works
    assert.are.equal(200, (s:request { url = fake.url .. "/_fake/health" }))
  end)

  it("times out", function()
    fake.fault { kind = "delay", delay_ms = 1000, path = API }
    local s = assert(core.session { ca_file = fake.ca })
    local status, _, kind = s:request { url = fake.url .. API, timeout = 0.2 }
    assert.is_nil(status)
    assert.are.equal("timeout", kind)
  end)

  it("rejects header injection and bad methods without sending, through the curl transport", function()
    local t = require("quecapi.transport.curl").new { ca_file = fake.ca }
    finally(function() t:close() end)
    local seq = fake.seq()
    local status, err, kind = t:request { url = fake.url .. API, headers = { ["X-A"] = "1\r\nX-Evil: 1" } }
    assert.is_nil(status)
    assert.matches("CR, LF", err, 1, true)
    assert.are.equal("url", kind)
    status, err = t:request { url = fake.url .. API, headers = { ["Bad Name"] = "1" } }
    assert.is_nil(status)
    assert.matches("header name", err, 1, true)
    status, err = t:request { url = fake.url .. API, method = "GE T" }
    assert.is_nil(status)
    assert.matches("method", err, 1, true)
    status, err = t:request { url = fake.url .. API .. "\r\nHost: evil" }
    assert.is_nil(status)
    assert.matches("URL", err, 1, true)
    assert.are.equal(0, #fake.requests(seq))
    -- and the transport still works
    assert.are.equal(200, (t:request { url = fake.url .. "/_fake/health" }))
  end)

  it("refuses schemes other than http and https", function()
    local s = assert(core.session())
    local status, _, kind = s:request { url = "file:///etc/passwd" }
    assert.is_nil(status)
    assert.are.equal("url", kind)
    -- [12.6] still a URL refusal after the session has talked to a server: libcurl
    -- says "unsupported protocol" for an answer that is not HTTP too, which is the
    -- server's failure ("network"), and the core tells them apart per request
    assert.are.equal(200, (s:request { url = fake.http_url .. "/_fake/health" }))
    status, _, kind = s:request { url = "file:///etc/passwd" }
    assert.is_nil(status)
    assert.are.equal("url", kind)
  end)

  it("raises on programmer errors", function()
    local s = assert(core.session())
    assert.has_error(function() s:request "http://x" end)
    assert.has_error(function() s:request {} end)
    assert.has_error(function() s:request { url = 1 } end)
    assert.has_error(function() s:request { url = "http://x", headers = "h" } end)
    assert.has_error(function() s:request { url = "http://x", timeout = -1 } end)
    assert.has_error(function() core.session { verify = "yes" } end)
    assert.has_error(function() s.request({}, { url = "http://x" }) end)
  end)

  it("closes, and answers nil, err afterwards", function()
    local s = assert(core.session { ca_file = fake.ca })
    assert(s:request { url = fake.url .. "/_fake/health" })
    s:close()
    s:close()
    local status, err = s:request { url = fake.url .. "/_fake/health" }
    assert.is_nil(status)
    assert.are.equal("session is closed", err)
    assert.matches("closed", tostring(s))
  end)

  it("is collected without trouble", function()
    for _ = 1, 200 do
      local s = core.session { ca_file = fake.ca }
      s:request { url = fake.http_url .. "/_fake/health" }
    end
    collectgarbage()
    collectgarbage()
  end)

  if _VERSION == "Lua 5.4" then
    it("supports to-be-closed variables", function()
      local chunk = assert(load([[
        local core, url = ...
        local kept
        do
          local s <close> = core.session()
          kept = s
          assert(s:request { url = url })
        end
        return kept
      ]]))
      local s = chunk(core, fake.http_url .. "/_fake/health")
      assert.matches("closed", tostring(s))
    end)
  end

  it("honours proxy settings from the environment, as curl does", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write("package.cpath = ", string.format("%q", package.cpath), [[
      local s = require("quecapi.core").session()
      local status, err, kind = s:request { url = arg[1], connect_timeout = 2 }
      io.write(tostring(status), " ", status and "ok" or tostring(kind))
    ]])
    f:close()
    local url = fake.http_url .. "/_fake/health"
    local function run(env)
      local p = io.popen(env .. " " .. LUA .. " " .. script .. " " .. url)
      local out = p:read("*a")
      p:close()
      return out
    end
    finally(function() os.remove(script) end)
    assert.are.equal("nil connect", run("http_proxy=http://127.0.0.1:1 no_proxy="))
    assert.are.equal("200 ok", run("http_proxy=http://127.0.0.1:1 no_proxy=127.0.0.1"))
  end)
end)
