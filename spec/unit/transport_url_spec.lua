-- URLs as both transports take them (quecapi.transport.url): split, checked, and
-- rebuilt for the wire. How each transport answers a refused URL is in the
-- contract spec (spec/nginx/transport_contract_spec.lua).
local url = require "quecapi.transport.url"

describe("transport.url", function()
  it("splits URLs", function()
    assert.are.same({ "https", "example.com", 8443, "/a?b=1", "name" },
      { url.parse("HTTPS://Example.COM:8443/a?b=1#frag") })
    assert.are.same({ "http", "10.0.0.1", 80, "/?q", "ipv4" }, { url.parse("http://10.0.0.1?q") })
  end)

  it("[12.6] takes the scheme's port by default, and IPv6 literals in brackets", function()
    local cases = {
      { "http://h", { "http", "h", 80, "/", "name" } },
      { "https://h:/x", { "https", "h", 443, "/x", "name" } },
      { "http://h:00080/", { "http", "h", 80, "/", "name" } },
      { "https://a-b.c-d.example:65535/p/q?x=%20#f g", { "https", "a-b.c-d.example", 65535, "/p/q?x=%20", "name" } },
      { "http://[::1]:8080/x", { "http", "::1", 8080, "/x", "ipv6" } },
      { "http://[2001:DB8::1]/", { "http", "2001:db8::1", 80, "/", "ipv6" } },
      { "http://[::ffff:192.0.2.1]", { "http", "::ffff:192.0.2.1", 80, "/", "ipv6" } },
      { "http://[1:2:3:4:5:6:7:8]/", { "http", "1:2:3:4:5:6:7:8", 80, "/", "ipv6" } },
      { "http://[1:2:3:4:5:6::]/", { "http", "1:2:3:4:5:6::", 80, "/", "ipv6" } },
      { "http://[::]/", { "http", "::", 80, "/", "ipv6" } },
      { "http://localhost:1/", { "http", "localhost", 1, "/", "name" } },
      { "http://" .. (("a"):rep(60) .. "."):rep(4) .. ("b"):rep(9) .. "/", -- 253 bytes, the longest name
        { "http", (("a"):rep(60) .. "."):rep(4) .. ("b"):rep(9), 80, "/", "name" } },
    }
    for _, c in ipairs(cases) do
      assert.are.same(c[2], { url.parse(c[1]) }, c[1])
    end
  end)

  it("[12.6] refuses what neither transport may send, with one line saying why", function()
    local cases = {
      { "not a url", "malformed URL" },
      { "//h/x", "malformed URL" },
      { "ftp://h/", "unsupported URL scheme 'ftp'" },
      { "FILE:///etc/passwd", "unsupported URL scheme 'file'" },
      { "http://user:pw@h/", "credentials in URLs are not supported" },
      { "http://h\\@evil/", "credentials in URLs are not supported" },
      { "http:///x", "URL has no host" },
      { "http://:80/x", "URL has no host" },
      { "http://h:x/", "malformed host or port in URL" },
      { "http://h:1:2/", "malformed host or port in URL" },
      { "http://h:0/", "invalid port in URL" },
      { "http://h:65536/", "invalid port in URL" },
      { "http://h:123456/", "invalid port in URL" },
      { "http://300.1.1.1/", "invalid host name in URL" },
      { "http://1.2.3.1234/", "invalid host name in URL" },
      { "http://1.2.3/", "invalid host name in URL" },
      { "http://123/", "invalid host name in URL" },
      { "http://bad_host/", "invalid host name in URL" },
      { "http://-x.example/", "invalid host name in URL" },
      { "http://x-.example/", "invalid host name in URL" },
      { "http://a..b/", "invalid host name in URL" },
      { "http://trailing.dot./", "invalid host name in URL" },
      { "http://" .. ("a"):rep(64) .. ".example/", "invalid host name in URL" },
      { "http://" .. (("a"):rep(60) .. "."):rep(4) .. ("b"):rep(10) .. "/", "invalid host name in URL" }, -- 254 bytes
      { "http://h\195\169/", "invalid host name in URL" },
      { "http://[::g]/", "invalid IPv6 address in URL" },
      { "http://[1:2:3:4:5:6:7:8:9]/", "invalid IPv6 address in URL" },
      { "http://[1:2:3:4:5:6:7]/", "invalid IPv6 address in URL" },
      { "http://[1::2::3]/", "invalid IPv6 address in URL" },
      { "http://[1:2:3:4:5:6:7::8]/", "invalid IPv6 address in URL" },
      { "http://[:1::2]/", "invalid IPv6 address in URL" },
      { "http://[12345::1]/", "invalid IPv6 address in URL" },
      { "http://[fe80::1%25eth0]/", "invalid IPv6 address in URL" },
      { "http://[::1.2.3.4.5]/", "invalid IPv6 address in URL" },
      { "http://[1.2.3.4::]/", "invalid IPv6 address in URL" },
      { "http://[::1/", "invalid IPv6 address in URL" },
      { "http://[::1]x/", "malformed host or port in URL" },
      { "http://h/a b", "URL contains spaces or control characters" },
      { "http://h/a\tb", "URL contains spaces or control characters" },
      { "http://h/a\127", "URL contains spaces or control characters" },
    }
    for _, c in ipairs(cases) do
      local ok, err = url.parse(c[1])
      assert.is_nil(ok, c[1])
      assert.are.equal(c[2], err, c[1])
    end
  end)

  it("[12.6] rebuilds the URL from its parts: what goes to libcurl is what was checked", function()
    local function rebuilt(u) return url.format(url.parse(u)) end
    assert.are.equal("https://example.com/a?b=1", rebuilt("HTTPS://Example.COM:443/a?b=1#frag"))
    assert.are.equal("http://example.com:8080/?q", rebuilt("http://example.com:8080?q"))
    assert.are.equal("http://[::1]:8080/x", rebuilt("http://[::1]:8080/x"))
    assert.are.equal("http://[::1]/", rebuilt("http://[::1]:80"))
    assert.are.equal("example.com:8443", url.authority("https", "example.com", 8443, "name"))
    assert.are.equal("example.com", url.authority("http", "example.com", 80, "name"))
  end)
end)
