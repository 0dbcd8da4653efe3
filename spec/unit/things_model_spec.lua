-- client:thing_model (the decoded TSL the CLI's describer prints) and the
-- failure kinds of the typed helpers: a refusal before sending is "usage", an
-- inner call's failure keeps its code and kind under the helper's name.
local recorder = require "support.recorder"
local quecapi = require "quecapi"
local json = require "quecapi.json"

-- The routes the helpers call, as the recorder names them.
local BINDING = "/v2/binding/enduserapi/"
local TSL, ATTRS = "GET " .. BINDING .. "productTSL", "GET " .. BINDING .. "getDeviceBusinessAttributes"
local CONTROL = "POST " .. BINDING .. "batchControlDevice"

local MODEL = {
  properties = { { code = "switch", subType = "RW", dataType = "BOOL", specs = {} } },
  services = { { code = "blink", inputData = {} } },
  events = { { code = "overheat", outputData = {} } },
}

local function envelope(data) return 200, json.encode { code = 200, msg = "", data = data }, {} end

local function client(routes)
  local t = recorder.routes(routes)
  local c = assert(quecapi.new { user_domain = "C.DM.1.1", user_domain_secret = "s", transport = t })
  c:set_tokens { access_token = "Bearer t", access_expires = os.time() + 7200 }
  return c, t
end


-- Thing models are shared by the clients of a process; each spec starts afresh.
before_each(function() require("quecapi.things").MODELS:clear() end)

describe("[12.2] client:thing_model", function()
  it("gives the product's thing model with its events, fetched once and shared with the helpers", function()
    local c, t = client {
      [TSL] = function() return envelope(MODEL) end,
      [ATTRS] = function() return envelope { customizeTslInfo = {} } end,
    }
    local m = assert(c:thing_model("p11pLZ"))
    assert.are.equal("switch", m.properties[1].code)
    assert.are.equal("blink", m.services[1].code)
    assert.are.equal("overheat", m.events[1].code)
    assert(c:get_properties("p11pLZ", "D1"))
    assert.are.equal(m, c:thing_model("p11pLZ"))
    assert.are.equal(1, #t:to(TSL))
  end)

  it("decodes a model wrapped in tslJson, and anything else as an empty model", function()
    local c = client { [TSL] = function() return envelope { tslJson = json.encode(MODEL) } end }
    assert.are.equal("overheat", assert(c:thing_model("p11pLZ")).events[1].code)
    for _, data in ipairs { '"text"', "7", '{"tslJson":"not json"}' } do
      require("quecapi.things").MODELS:clear() -- each answer decoded afresh, not the cached model
      c = client { [TSL] = function() return 200, '{"code":200,"data":' .. data .. "}", {} end }
      assert.are.same({}, assert(c:thing_model("p11pLZ")), data)
    end
  end)

  it("fails under its own name with the inner call's code and kind", function()
    local c = client { [TSL] = function() return 200, '{"code":6015,"msg":"no such product"}', {} end }
    local m, err, code, kind = c:thing_model("nope")
    assert.is_nil(m)
    assert.matches("^thing_model: product_tsl: ", err)
    assert.are.equal(6015, code)
    assert.are.equal("platform", kind)
    m, err, code, kind = c:thing_model("")
    assert.is_nil(m)
    assert.matches("^thing_model: ", err)
    assert.is_nil(code)
    assert.are.equal("usage", kind)
  end)
end)

describe("[12.2] the typed helpers' failure kinds", function()
  local function model_client(control)
    return client {
      [TSL] = function() return envelope(MODEL) end,
      [ATTRS] = function() return nil, "connection refused", "connect" end,
      [CONTROL] = control or function() return envelope { successList = {}, failureList = {} } end,
    }
  end

  it("are usage for what they refuse before sending", function()
    local c, t = model_client()
    for _, case in ipairs {
      { c.set_properties, { "p11pLZ", "D1", { switch = "yes" } } },
      { c.set_properties, { "p11pLZ", "D1", { nosuch = 1 } } },
      { c.set_properties, { "p11pLZ", nil, { switch = true } } },
      { c.call_service, { "p11pLZ", "D1", "explode" } },
      { c.send_raw, { "p11pLZ", "D1", "zz", "hex" } },
      { c.get_properties, { "p11pLZ", 5 } },
    } do
      local res, err, code, kind = case[1](c, (unpack or table.unpack)(case[2], 1, 4))
      assert.is_nil(res)
      assert.is_string(err)
      assert.is_nil(code)
      assert.are.equal("usage", kind, err)
    end
    assert.are.equal(0, #t:to(CONTROL))
  end)

  it("keep the inner call's code and kind under the helper's name", function()
    local c = model_client(function() return 200, '{"code":5052,"msg":"Device is not bound"}', {} end)
    local res, err, code, kind = c:set_properties("p11pLZ", "D1", { switch = true })
    assert.is_nil(res)
    assert.matches("^set_properties: batch_control_device: ", err)
    assert.are.equal(5052, code)
    assert.are.equal("platform", kind)
    res, err, code, kind = c:get_properties("p11pLZ", "D1")
    assert.is_nil(res)
    assert.matches("^get_properties: get_device_business_attributes: ", err)
    assert.is_nil(code)
    assert.are.equal("connect", kind)
  end)

  it("are http for an answer without the data the helper reads", function()
    local c = client {
      [TSL] = function() return envelope(MODEL) end,
      [ATTRS] = function() return envelope { customizeTslInfo = "many" } end,
    }
    local res, err, _, kind = c:get_properties("p11pLZ", "D1")
    assert.is_nil(res)
    assert.matches("^get_properties: ", err)
    assert.are.equal("http", kind)
  end)
end)
