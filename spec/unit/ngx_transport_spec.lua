-- The cosocket transport outside nginx: it loads, and refuses bad requests before
-- anything is sent, by the contract both transports share (the URL rules are in
-- spec/unit/transport_url_spec.lua, the wire in spec/unit/http1_spec.lua, the rest
-- runs in a real nginx: spec/nginx/ngx_transport_spec.lua).
local transport = require "quecapi.transport.ngx"

describe("transport.ngx outside nginx", function()
  it("loads in plain Lua and says where it works", function()
    local t = transport.new()
    local status, err, kind = t:request { url = "https://iot-api.quectelcn.com/v2/binding/enduserapi/userDeviceList" }
    assert.is_nil(status)
    assert.are.equal("network", kind)
    assert.matches("OpenResty", err)
  end)

  it("refuses bad requests before sending anything, by the transport contract", function()
    local t = transport.new()
    local cases = {
      { { url = "http://x/", method = "GE T" }, "invalid HTTP method" },
      { { url = "http://x/a\r\nb" }, "URL contains CR, LF or NUL" },
      { { url = "http://x/", headers = { ["Bad Name"] = "v" } }, "invalid header name" },
      { { url = "http://x/", headers = { X = "a\r\nInjected: 1" } }, "header value contains CR, LF or NUL" },
      { { url = "ftp://x/" }, "unsupported URL scheme" },
      { { url = "http://[::1]/" }, "IPv6" },
      { { url = "http://user:pw@x/" }, "credentials" },
      { { url = "http://x:99999/" }, "invalid port" },
      { { url = "http://300.1.1.1/" }, "invalid host" },
      { { url = "http:///path" }, "no host" },
      { { url = "not a url" }, "malformed URL" },
    }
    for _, c in ipairs(cases) do
      local status, err, kind = t:request(c[1])
      assert.is_nil(status)
      assert.are.equal("url", kind)
      assert.matches(c[2], err, 1, true)
    end
  end)

  it("raises on wrong argument types", function()
    local t = transport.new()
    assert.has_error(function() t:request {} end)
    assert.has_error(function() t:request { url = "http://x/", timeout = "5" } end)
    assert.has_error(function() t:request { url = "http://x/", headers = { 1 } } end)
    assert.has_error(function() transport.new { verify = "yes" } end)
  end)
end)
