-- examples/nginx.conf, as shipped, started against the fake cloud: only the
-- install paths, the CA bundle and the port are swapped for this checkout's.
local fake = require "support.fake"
local core = require "quecapi.core"
local json = require "quecapi.json"
local nginx = require "support.nginx"

local PHONE, PASSWORD = "13400000001", "example-pass-1"

local shell = require "support.sh"
local read = shell.read

describe("examples/nginx.conf", function()
  local dir, port, session
  local root = nginx.root

  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 3)
    dir, port = nginx.start_example("nginx.conf", {
      { "/usr/local/share/lua/5.1/?.lua;;", root .. "/lua/?.lua;;" },
      { "/usr/local/lib/lua/5.1/?.so;;", root .. "/build/luajit/?.so;;" },
      { "/etc/ssl/certs/ca-certificates.crt", fake.ca },
    }, ("QUECAPI_BASE_URL=%s QUECAPI_USER_DOMAIN=%s QUECAPI_USER_DOMAIN_SECRET=%s QUECAPI_PHONE=%s QUECAPI_PASSWORD=%s")
      :format(fake.url:gsub("127%.0%.0%.1", "localhost"), fake.user_domain, fake.secret, PHONE, PASSWORD))
    session = assert(core.session())
  end)

  teardown(function()
    if dir then nginx.stop_example(dir) end
  end)

  local function call(method, path, body)
    local status, text = session:request { method = method, url = "http://127.0.0.1:" .. port .. path, body = body,
                                           headers = body and { ["Content-Type"] = "application/json" } or nil }
    assert(status, text)
    return status, json.decode(text), text
  end

  it("lists the account's devices", function()
    local status, devices = call("GET", "/devices")
    assert.are.equal(200, status, read(dir .. "/logs/error.log"))
    assert.are.equal(3, #devices)
    assert.are.equal("p11pLZ", devices[1].productKey)
  end)

  it("reads and writes a device's properties", function()
    local _, devices = call("GET", "/devices")
    local path = "/devices/" .. devices[1].productKey .. "/" .. devices[1].deviceKey
    local status, result, text = call("POST", path, '{"switch":true,"brightness":64}')
    assert.are.equal(200, status)
    assert.are.equal(1, #result.successList)
    -- [13.5] an empty list stays a list for the browser
    assert.matches('"failureList":[]', text, 1, true)
    local values
    status, values = call("GET", path)
    assert.are.equal(200, status)
    assert.is_true(values.switch)
    assert.are.equal(64, values.brightness)
    status, result = call("POST", path, '{"brightness":1000}')
    assert.are.equal(400, status)
    assert.matches("brightness", result.error, 1, true)
    assert.are.equal("usage", result.kind)
  end)
end)
