-- quecapi.new: configuration checks, and no I/O at require time or in new.
local quecapi = require "quecapi"
local recorder = require "support.recorder"

local function cfg(over)
  local c = { user_domain = "C.DM.1.1", user_domain_secret = "s3cr3t-value" }
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end

describe("quecapi", function()
  it("exports the contract's names", function()
    assert.is_string(quecapi.VERSION)
    for _, f in ipairs { "new", "sha256_hex", "md5_hex", "encrypt_password", "decrypt_password", "random_string" } do
      assert.is_function(quecapi[f], f)
    end
  end)
end)

describe("quecapi.new", function()
  it("makes a client with defaults", function()
    local c = assert(quecapi.new(cfg()))
    assert.are.equal("https://iot-api.quectelcn.com", c.base_url)
    assert.are.equal(10, c.timeout)
    assert.are.equal(5, c.connect_timeout)
  end)

  it("takes a region and lets base_url win", function()
    assert.are.equal("https://iot-api.acceleronix.io", quecapi.new(cfg { region = "eu" }).base_url)
    assert.are.equal("https://x.example:8443",
      quecapi.new(cfg { region = "eu", base_url = "https://x.example:8443/" }).base_url)
  end)

  it("returns nil, err for bad configuration", function()
    local cases = {
      { nil, "config must be a table" },
      { cfg { user_domain = false }, "user_domain" },
      { { user_domain_secret = "x" }, "'user_domain' is required" },
      { { user_domain = "C.DM.1.1" }, "'user_domain_secret' is required" },
      { cfg { user_domain = "" }, "'user_domain' is required" },
      { cfg { base_url = "ftp://x" }, "base_url" },
      { cfg { base_url = "https://x/?a=1" }, "base_url" },
      { cfg { region = "mars" }, "unknown region" },
      { cfg { timeout = -1 }, "timeout" },
      { cfg { timeout = "10" }, "timeout" },
      { cfg { connect_timeout = 0 }, "connect_timeout" },
      { cfg { verify = "no" }, "verify" },
      { cfg { userDomain = "C.DM.1.1" }, "unknown option 'userDomain'" },
      { cfg { transport = "carrier-pigeon" }, "transport" },
    }
    for _, case in ipairs(cases) do
      local c, err = quecapi.new(case[1])
      assert.is_nil(c)
      assert.matches(case[2], err, 1, true)
    end
  end)

  it("never puts the secret in an error", function()
    local _, err = quecapi.new(cfg { user_domain_secret = "TOPSECRET", timeout = "x" })
    assert.is_nil(err:find("TOPSECRET", 1, true))
  end)

  it("sends nothing when a client is made", function()
    local t = recorder.new()
    assert(quecapi.new(cfg { transport = t }))
    assert.are.equal(0, #t.sent)
  end)

  it("does no network I/O in new with the curl transport", function()
    -- an unroutable address would make any connection attempt fail or hang
    local c = assert(quecapi.new(cfg { base_url = "https://192.0.2.1", connect_timeout = 0.001 }))
    assert.is_nil(rawget(c.transport, "session"))
  end)
end)
