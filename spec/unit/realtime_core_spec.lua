-- The C core's MQTT entry point without a broker: wrong arguments raise, a
-- URL it cannot use and a port nobody listens on come back as values.
local core = require "quecapi.core"

describe("[14] core.mqtt arguments", function()
  it("raises on wrong arguments", function()
    local cases = {
      {}, { url = "wss://localhost:1/ws/v2" }, { client_id = "a" },
      { url = 1, client_id = "a" }, { url = "wss://h/", client_id = "" },
      { url = "wss://h/", client_id = "a\0b" }, { url = "wss://h/", client_id = "a", keepalive = 1.5 },
      { url = "wss://h/", client_id = "a", keepalive = -1 }, { url = "wss://h/", client_id = "a", timeout = 0 },
      { url = "wss://h/", client_id = "a", timeout = 0 / 0 },
      { url = "wss://h/", client_id = "a", max_message = 2 ^ 40 },
      { url = "wss://h/", client_id = "a", verify = "yes" }, { url = "wss://h/", client_id = "a", password = {} },
      { url = "wss://h/", client_id = "a", ca_file = "x\0y" },
    }
    for i, o in ipairs(cases) do
      assert.has_error(function() core.mqtt(o) end, nil, "case " .. i)
    end
    assert.has_error(function() core.mqtt() end)
    assert.has_error(function() core.mqtt "wss://h/" end)
  end)

  it("refuses a URL scheme it does not speak, as a usage failure", function()
    local conn, err, kind = core.mqtt { url = "http://localhost/ws/v2", client_id = "qu_1_2" }
    assert.is_nil(conn)
    assert.are.equal("usage", kind)
    assert.is_string(err)
  end)

  it("reports a port nobody listens on as a connect failure", function()
    local t = core.monotonic()
    local conn, err, kind = core.mqtt { url = "ws://127.0.0.1:1/ws/v2", client_id = "qu_1_2", timeout = 3 }
    assert.is_nil(conn)
    assert.are.equal("connect", kind)
    assert.matches("cannot connect", err)
    assert.is_true(core.monotonic() - t < 3)
  end)
end)
