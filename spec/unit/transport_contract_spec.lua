-- The transport contract itself (quecapi.transport.contract): what `check` hands
-- both transports, what it refuses and what raises, and that the defaults and
-- limits exist once. The same requests through both transports, and their
-- answers from a real server: spec/nginx/transport_contract_spec.lua.
local contract = require "quecapi.transport.contract"

local DEFAULTS, LIMITS = contract.DEFAULTS, contract.LIMITS

describe("transport.contract", function()
  it("[12.6] completes a request with the defaults and the header limits", function()
    local r = assert(contract.check { url = "HTTP://Example.COM:80/a?b=1#frag" })
    assert.are.same({
      method = "GET", url = "http://example.com/a?b=1", scheme = "http", host = "example.com", port = 80,
      target = "/a?b=1", family = "name", names = {}, timeout = DEFAULTS.timeout,
      connect_timeout = DEFAULTS.connect_timeout, max_body = DEFAULTS.max_body, max_header = LIMITS.max_header_bytes,
      max_trailer_line = LIMITS.max_trailer_line,
    }, r)
  end)

  it("[12.6] keeps the caller's values, drops the framing headers, sorts the names", function()
    local headers = { ["X-B"] = "2", ["X-A"] = "1", ["content-length"] = "99", ["Transfer-Encoding"] = "chunked" }
    local r = assert(contract.check { method = "PATCH", url = "https://[::1]:8443", body = "b", headers = headers,
                                      timeout = 0.0004, connect_timeout = 2, max_body = 10.9 })
    assert.are.same({ "X-A", "X-B" }, r.names)
    assert.are.same({ ["X-A"] = "1", ["X-B"] = "2" }, r.headers)
    local count = 0
    for _ in pairs(headers) do count = count + 1 end
    assert.are.equal(4, count) -- the caller's table is left as it was
    assert.are.equal("https://[::1]:8443/", r.url)
    assert.are.equal("ipv6", r.family)
    assert.are.same({ "PATCH", "b", 0.0004, 2, 10 }, { r.method, r.body, r.timeout, r.connect_timeout, r.max_body })
    -- without framing headers the caller's table itself is handed on (nothing copied)
    local plain = { Accept = "application/json" }
    assert.are.equal(plain, assert(contract.check { url = "http://h/", headers = plain }).headers)
  end)

  it("[12.6] never gives HEAD a body", function()
    assert.is_nil(assert(contract.check { method = "HEAD", url = "http://h/", body = "x" }).body)
    assert.are.equal("x", assert(contract.check { method = "GET", url = "http://h/", body = "x" }).body)
  end)

  it("[12.6] refuses bad runtime data with nil, err, \"url\"", function()
    local cases = {
      { { url = "http://h/", method = "GE T" }, "invalid HTTP method" },
      { { url = "http://h/", method = "" }, "invalid HTTP method" },
      { { url = "http://h/\r\nHost: evil" }, "URL contains CR, LF or NUL" },
      { { url = "http://h/\0" }, "URL contains CR, LF or NUL" },
      { { url = "http://h/", headers = { ["X:Y"] = "1" } }, "invalid header name" },
      { { url = "http://h/", headers = { X = "1\n2" } }, "header value contains CR, LF or NUL" },
      { { url = "gopher://h/" }, "unsupported URL scheme 'gopher'" },
    }
    for _, c in ipairs(cases) do
      assert.are.same({ nil, c[2], "url" }, { contract.check(c[1]) })
    end
  end)

  it("[12.6] raises on programmer errors: wrong types, no url, numbers out of range", function()
    local nan, inf = 0 / 0, math.huge
    local cases = {
      { "x", "request must be a table" },
      { {}, "request.url is required" },
      { { url = 1 }, "request.url must be a string" },
      { { url = "http://h/", method = 1 }, "request.method must be a string" },
      { { url = "http://h/", body = {} }, "request.body must be a string" },
      { { url = "http://h/", headers = "h" }, "request.headers must be a table" },
      { { url = "http://h/", headers = { "v" } }, "request.headers must map strings to strings" },
      { { url = "http://h/", headers = { X = 1 } }, "request.headers must map strings to strings" },
      { { url = "http://h/", timeout = "5" }, "request.timeout must be a number" },
      { { url = "http://h/", timeout = 0 }, "timeouts must be between 0 and" },
      { { url = "http://h/", timeout = -1 }, "timeouts must be between 0 and" },
      { { url = "http://h/", timeout = nan }, "timeouts must be between 0 and" },
      { { url = "http://h/", timeout = inf }, "timeouts must be between 0 and" },
      { { url = "http://h/", timeout = LIMITS.max_timeout + 1 }, "timeouts must be between 0 and" },
      { { url = "http://h/", connect_timeout = 0 }, "timeouts must be between 0 and" },
      { { url = "http://h/", max_body = -1 }, "max_body must be between 0 and" },
      { { url = "http://h/", max_body = nan }, "max_body must be between 0 and" },
      { { url = "http://h/", max_body = LIMITS.max_body + 1 }, "max_body must be between 0 and" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(contract.check, c[1])
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
    end
    -- the bounds themselves are in range
    assert.truthy(contract.check { url = "http://h/", timeout = LIMITS.max_timeout, max_body = LIMITS.max_body })
    assert.truthy(contract.check { url = "http://h/", connect_timeout = 1e-9, max_body = 0 })
  end)

  it("[12.6] reports a programmer error at the caller of either transport", function()
    for _, name in ipairs { "curl", "ngx" } do
      local t = require("quecapi.transport." .. name).new {}
      local ok, err = pcall(function()
        local status = t:request { url = "http://h/", timeout = "5" } -- not a tail call: this line is the caller
        return status
      end)
      assert.is_false(ok)
      assert.matches("transport_contract_spec%.lua:%d+: request%.timeout must be a number", err, name)
    end
  end)

  it("[12.6] one set of defaults: the client's options take theirs from the contract", function()
    local config = require "quecapi.config"
    for k, v in pairs(DEFAULTS) do
      assert.are.equal(v, config.DEFAULTS[k], k)
    end
  end)

  it("[12.6] the C core's fallbacks for its own callers and its ranges are the contract's", function()
    local f = assert(io.open("csrc/http.c"), "run from the checkout's root")
    local src = f:read("*a")
    f:close()
    local function define(name)
      local expr = assert(src:match("\n#define " .. name .. " ([^\n]+)"), name)
      expr = expr:gsub("%(size_t%)", ""):gsub("%(double%)", "")
      return assert(load("return " .. expr))()
    end
    assert.are.equal(DEFAULTS.timeout, define("FALLBACK_TIMEOUT"))
    assert.are.equal(DEFAULTS.connect_timeout, define("FALLBACK_CONNECT_TIMEOUT"))
    assert.are.equal(DEFAULTS.max_body, define("FALLBACK_MAX_BODY"))
    assert.are.equal(LIMITS.max_timeout, define("MAX_TIMEOUT"))
    assert.are.equal(LIMITS.max_body, define("MAX_BODY"))
    -- the core's memory cap leaves room for the contract's limit
    assert.is_true(define("HEADER_CAP") >= LIMITS.max_header_bytes)
    assert.truthy(src:find("max_header must be between 0 and " .. define("HEADER_CAP"), 1, true))
  end)

  it("[12.6] names every failure kind a transport may report", function()
    local kinds = {}
    for k in pairs(contract.KINDS) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    assert.are.same({ "closed", "connect", "network", "timeout", "tls", "too_large", "url", "usage" }, kinds)
  end)
end)
