-- What the layering promises: the public catalog is data nobody writes to, a
-- transport never sees a plaintext secret, and the state that clients made per
-- request should share is shared ([12.x] of the architecture issue).
local quecapi = require "quecapi"
local json = require "quecapi.json"
local recorder = require "support.recorder"

local TSL = "GET /v2/binding/enduserapi/productTSL"
local ATTRS = "GET /v2/binding/enduserapi/getDeviceBusinessAttributes"

-- A transport that records what it is given and answers every call with a login
-- answer (tokens included), so any call succeeds.
local function platform()
  local t = { sent = {} }
  function t.request(_, req)
    t.sent[#t.sent + 1] = req
    return 200, json.encode { code = 200, data = {
      accessToken = { token = "Bearer a.b.c", expirationTime = os.time() + 7200 } } }, {}
  end
  return t
end

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return out
end

before_each(function() require("quecapi.things").MODELS:clear() end)

describe("[12.1] the public catalog", function()
  it("keeps only its documented schema, before and after calls", function()
    local before = deep_copy(quecapi.endpoints)
    for _, row in ipairs(quecapi.endpoints) do
      for _, derived in ipairs { "method_name", "passwords", "query_set", "secret_set", "row" } do
        assert.is_nil(row[derived], row.name .. " carries " .. derived)
      end
    end
    local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = platform() })
    assert(c:phone_pwd_login { phone = "1", password = "p" })
    assert(c:user_device_list {})
    assert(c:prepare("set_user_pwd", { old_password = "a", new_password = "b" }))
    assert.are.same(before, quecapi.endpoints)
  end)
end)

describe("[12.5] what a custom transport receives", function()
  it("carries no plaintext password and no list of the call's secrets", function()
    local t = platform()
    local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = t })
    assert(c:phone_pwd_login { phone = "13800138000", password = "Pl41n-Passw0rd" })
    assert(c:set_user_pwd { old_password = "0ld-Passw0rd", new_password = "N3w-Passw0rd" })
    assert.are.equal(2, #t.sent)
    for _, req in ipairs(t.sent) do
      assert.is_nil(req.secrets)
      local all = json.encode(req)
      for _, plain in ipairs { "Pl41n-Passw0rd", "0ld-Passw0rd", "N3w-Passw0rd" } do
        assert.is_nil(all:find(plain, 1, true), plain .. " reached the transport")
      end
    end
  end)
end)

describe("[12.7] state clients share", function()
  it("fetches a product's thing model once for many per-request clients", function()
    local t = recorder.routes {
      [TSL] = function()
        return 200, json.encode { code = 200, data = { properties = {
          { code = "switch", dataType = "BOOL", subType = "RW" } } } }, {}
      end,
      [ATTRS] = function()
        return 200, json.encode { code = 200, data = { customizeTslInfo = {
          { resourceCode = "switch", resourceValce = "true" } } } }, {}
      end,
    }
    for _ = 1, 5 do
      -- as in nginx: a client made for each request, the same transport
      local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = t })
      c:set_tokens { access_token = "Bearer t" }
      assert.is_true(assert(c:get_properties("p11pLZ", "D1")).switch)
    end
    assert.are.equal(1, #t:to(TSL))
    assert.are.equal(5, #t:to(ATTRS))
    -- another platform is another cache entry
    local other = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = t, region = "eu" })
    other:set_tokens { access_token = "Bearer t" }
    assert(other:get_properties("p11pLZ", "D1"))
    assert.are.equal(2, #t:to(TSL))
  end)

  it("warns about verify = false once per base URL in a process, not per client", function()
    local lines = {}
    local function hook(_, msg) lines[#lines + 1] = msg end
    for _ = 1, 3 do
      local c = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = recorder.new(),
                                     verify = false, log = hook, base_url = "https://insecure-once.example" })
      assert(c:send_email { email = "a@b.c", emailType = 1 })
    end
    local warnings = 0
    for _, l in ipairs(lines) do
      if l:find("verification is disabled", 1, true) then warnings = warnings + 1 end
    end
    assert.are.equal(1, warnings)
  end)

  it("has one version string, the C core's", function()
    assert.are.equal(require("quecapi.core").VERSION, quecapi.VERSION)
    assert.matches("^%d+%.%d+%.%d+$", quecapi.VERSION)
  end)
end)
