-- The typed helpers with a scripted platform: every TSL data type read and
-- written, and every invalid value refused before anything is sent.
local quecapi = require "quecapi"
local json = require "quecapi.json"
local recorder = require "support.recorder"

local TSL = "GET /v2/binding/enduserapi/productTSL"
local ATTRS = "GET /v2/binding/enduserapi/getDeviceBusinessAttributes"
local CONTROL = "POST /v2/binding/enduserapi/batchControlDevice"

local function int(min, max) return { min = tostring(min), max = tostring(max), step = "1", unit = "" } end

-- A thing model with every data type, in the platform's TSL shape.
local MODEL = {
  productKey = "p11pLZ",
  properties = {
    { id = 1, code = "switch", name = "Switch", type = "PROPERTY", subType = "RW", dataType = "BOOL",
      specs = { { value = "true", name = "on" }, { value = "false", name = "off" } } },
    { id = 2, code = "brightness", type = "PROPERTY", subType = "RW", dataType = "INT", specs = int(0, 100) },
    { id = 3, code = "temperature", type = "PROPERTY", subType = "R", dataType = "FLOAT",
      specs = { min = "-20", max = "60", step = "0.1", unit = "C" } },
    { id = 4, code = "energy", type = "PROPERTY", subType = "RW", dataType = "DOUBLE",
      specs = { min = "0", max = "100000", step = "0.001" } },
    { id = 5, code = "mode", type = "PROPERTY", subType = "RW", dataType = "ENUM",
      specs = { { value = "0", name = "auto" }, { value = "1", name = "manual" }, { value = "2", name = "night" } } },
    { id = 6, code = "label", type = "PROPERTY", subType = "RW", dataType = "TEXT", specs = { length = "8" } },
    { id = 7, code = "updated", type = "PROPERTY", subType = "RW", dataType = "DATE", specs = {} },
    { id = 8, code = "color", type = "PROPERTY", subType = "RW", dataType = "STRUCT", specs = {
      { id = 1, code = "r", dataType = "INT", specs = int(0, 255) },
      { id = 2, code = "g", dataType = "INT", specs = int(0, 255) },
      { id = 3, code = "b", dataType = "INT", specs = int(0, 255) } } },
    { id = 9, code = "schedule", type = "PROPERTY", subType = "RW", dataType = "ARRAY",
      specs = { size = "3", dataType = "INT", specs = int(0, 1440) } },
    { id = 10, code = "presets", type = "PROPERTY", subType = "RW", dataType = "ARRAY",
      specs = { size = "2", dataType = "STRUCT", specs = {
        { id = 1, code = "r", dataType = "INT", specs = int(0, 255) },
        { id = 2, code = "on", dataType = "BOOL", specs = {} } } } },
  },
  services = {
    { id = 20, code = "blink", type = "SERVICE", inputData = {
      { id = 1, code = "times", dataType = "INT", specs = int(1, 10) },
      { id = 2, code = "interval", dataType = "INT", specs = int(100, 5000) } }, outputData = {} },
  },
  events = {},
}

local CURRENT = {
  switch = { "BOOL", "true" }, brightness = { "INT", "42" }, temperature = { "FLOAT", "23.5" },
  energy = { "DOUBLE", "1234.5678" }, mode = { "ENUM", "1" }, label = { "TEXT", "hallway" },
  updated = { "DATE", "1744780781133" }, color = { "STRUCT", '{"r":"255","g":"0","b":"16"}' },
  schedule = { "ARRAY", '["60","120"]' }, presets = { "ARRAY", '[{"r":"1","on":"true"},{"r":"2","on":"false"}]' },
}

local function envelope(data) return 200, json.encode { code = 200, msg = "", data = data }, {} end

local function client(current)
  local t = recorder.routes {
    [TSL] = { function() return envelope(MODEL) end },
    [ATTRS] = { function(req)
      local wanted = recorder.args(req).codeList
      local info = {}
      for code, v in pairs(current or CURRENT) do
        if not wanted or (("," .. wanted .. ","):find("," .. code .. ",", 1, true)) then
          info[#info + 1] = { resourceCode = code, dataType = v[1], resourceValce = v[2], subType = "RW", type = "PROPERTY" }
        end
      end
      return envelope { customizeTslInfo = info }
    end },
    [CONTROL] = { function() return envelope {
      successList = { { data = { productKey = "p11pLZ", deviceKey = "D1" }, ticket = "t-1" } }, failureList = {} } end },
  }
  local c = assert(quecapi.new { user_domain = "C.DM.1.1", user_domain_secret = "s", transport = t })
  c:set_tokens { access_token = "Bearer t", access_expires = os.time() + 7200 }
  return c, t
end


-- Thing models are shared by the clients of a process; each spec starts afresh.
before_each(function() require("quecapi.things").MODELS:clear() end)

describe("get_properties", function()
  it("converts every data type", function()
    local c = client()
    local v = assert(c:get_properties("p11pLZ", "D1"))
    assert.are.equal(true, v.switch)
    assert.are.equal(42, v.brightness)
    assert.are.equal(23.5, v.temperature)
    assert.are.equal(1234.5678, v.energy)
    assert.are.equal(1, v.mode)
    assert.are.equal("hallway", v.label)
    assert.are.equal(1744780781133, v.updated)
    assert.are.same({ r = 255, g = 0, b = 16 }, v.color)
    assert.are.same({ 60, 120 }, v.schedule)
    assert.are.same({ { r = 1, on = true }, { r = 2, on = false } }, v.presets)
    if math.type then
      assert.are.equal("integer", math.type(v.brightness))
      assert.are.equal("integer", math.type(v.updated))
      assert.are.equal("integer", math.type(v.color.r))
      assert.are.equal("float", math.type(v.temperature))
    end
  end)

  it("reads structs sent as a list of pairs and asks only for the codes given", function()
    local c, t = client { color = { "STRUCT", '[{"r":"1"},{"g":"2"},{"b":"3"}]' }, switch = { "BOOL", "false" } }
    local v = assert(c:get_properties("p11pLZ", "D1", { "color", "switch" }))
    assert.are.same({ r = 1, g = 2, b = 3 }, v.color)
    assert.are.equal(false, v.switch)
    local args = recorder.args(t:to(ATTRS)[1])
    assert.are.equal("color,switch", args.codeList)
    assert.are.equal("2", args.type)
    assert.are.equal("D1", args.dk)
  end)

  it("reports a value that does not fit its data type", function()
    local c = client { brightness = { "INT", "bright" } }
    local v, err = c:get_properties("p11pLZ", "D1")
    assert.is_nil(v)
    assert.matches("brightness", err, 1, true)
  end)

  it("fetches the thing model once per product", function()
    local c, t = client()
    assert(c:get_properties("p11pLZ", "D1"))
    assert(c:get_properties("p11pLZ", "D2"))
    assert.are.equal(1, #t:to(TSL))
  end)
end)

-- A client whose platform answers productTSL and getDeviceBusinessAttributes with
-- the given JSON texts (the envelope's data), to feed get_properties odd shapes.
local function scripted(tsl_data, attrs_data)
  local function answer(data) return 200, '{"code":200,"msg":"","data":' .. data .. '}', {} end
  local t = recorder.routes {
    [TSL] = { function() return answer(tsl_data) end },
    [ATTRS] = { function() return answer(attrs_data) end },
  }
  local c = assert(quecapi.new { user_domain = "C.DM.1.1", user_domain_secret = "s", transport = t })
  c:set_tokens { access_token = "Bearer t", access_expires = os.time() + 7200 }
  return c, t
end

local GOOD_TSL = json.encode(MODEL)

describe("get_properties with odd answers", function()
  it("[10.22] skips customizeTslInfo items that are not objects or name no property", function()
    local c = scripted(GOOD_TSL, '{"customizeTslInfo":[5,"x",true,null,[],' ..
      '{"resourceCode":7,"resourceValce":"1"},{"resourceCode":{"a":1},"resourceValce":"1"},{"resourceValce":"1"},' ..
      '{"resourceCode":"brightness","dataType":"INT","resourceValce":"42"},null,' ..
      '{"resourceCode":"switch","dataType":"BOOL","resourceValce":"true"}]}')
    local v, err = c:get_properties("p11pLZ", "D1")
    assert.are.same({ brightness = 42, switch = true }, v, err)
  end)

  it("[10.22] reads native values and refuses a table where TEXT is expected, without raising", function()
    local c = scripted(GOOD_TSL, '{"customizeTslInfo":[{"resourceCode":"brightness","resourceValce":42},' ..
      '{"resourceCode":"switch","resourceValce":false},{"resourceCode":"color","resourceValce":{"r":1}}]}')
    assert.are.same({ brightness = 42, switch = false, color = { r = 1 } }, assert(c:get_properties("p11pLZ", "D1")))
    c = scripted(GOOD_TSL, '{"customizeTslInfo":[{"resourceCode":"label","resourceValce":{"x":1}}]}')
    local v, err = c:get_properties("p11pLZ", "D1")
    assert.is_nil(v)
    assert.matches("^get_properties: property 'label'", err)
  end)

  it("[10.22] answers nil, err when the answer has no usable data", function()
    for _, data in ipairs { 'null', '"oops"', '5', '[]', '{"customizeTslInfo":"many"}', '{"customizeTslInfo":7}' } do
      local c = scripted(GOOD_TSL, data)
      local v, err = c:get_properties("p11pLZ", "D1")
      if data == '[]' then
        -- an empty JSON array decodes as an empty table: no properties
        assert.are.same({}, v, err)
      else
        assert.is_nil(v, data)
        assert.matches("^get_properties: ", err)
      end
    end
    local c = scripted(GOOD_TSL, '{"deviceData":{}}')
    assert.are.same({}, assert(c:get_properties("p11pLZ", "D1")))
  end)

  it("[10.22] falls back to each item's dataType when the thing model is odd", function()
    local item = '{"customizeTslInfo":[{"resourceCode":"brightness","dataType":"INT","resourceValce":"42"}]}'
    for _, tsl in ipairs {
      'null', '"text"', '7', '{"properties":"none"}', '{"properties":{"brightness":{"dataType":"BOOL"}}}',
      '{"properties":[5,"x",{"code":7},{"code":"brightness","dataType":{"type":"INT"},"specs":"odd"}]}',
      '{"tslJson":"5"}', '{"tslJson":"not json"}', '{"tslJson":"{\\"properties\\":7}"}',
    } do
      local c = scripted(tsl, item)
      local v, err = c:get_properties("p11pLZ", "D1")
      assert.is_table(v, tsl .. ": " .. tostring(err))
      assert.is_not_nil(v.brightness, tsl)
    end
  end)

  it("[10.22] survives a STRUCT or ARRAY model with odd members", function()
    local tsl = json.encode { properties = {
      { code = "color", dataType = "STRUCT", specs = { 5, { code = 1 }, { code = "r", dataType = "INT" } } },
      { code = "list", dataType = "ARRAY", specs = "odd" },
      { code = "grid", dataType = "ARRAY", specs = { dataType = "STRUCT", specs = 7 } },
    } }
    local c = scripted(tsl, '{"customizeTslInfo":[{"resourceCode":"color","resourceValce":"{\\"r\\":\\"3\\"}"},' ..
      '{"resourceCode":"list","resourceValce":"[\\"a\\",\\"b\\"]"},' ..
      '{"resourceCode":"grid","resourceValce":"[{\\"x\\":\\"1\\"}]"}]}')
    local v, err = c:get_properties("p11pLZ", "D1")
    assert.is_table(v, err)
    assert.are.same({ r = 3 }, v.color)
    assert.are.same({ "a", "b" }, v.list)
    assert.are.same({ { x = "1" } }, v.grid)
  end)
end)

describe("set_properties", function()
  it("[11.1] builds the data string of batchControlDevice with native JSON values", function()
    local c, t = client()
    local result = assert(c:set_properties("p11pLZ", "D1", {
      switch = true, brightness = 80, mode = "manual", energy = 12.5, label = "kitchen",
      updated = 1744780781133, color = { r = 255, g = 0, b = 16 }, schedule = { 60, 120 },
      presets = { { r = 1, on = true } },
    }))
    assert.are.equal("t-1", result.successList[1].ticket)
    assert.are.same({}, result.failureList)
    local body = json.decode(t:to(CONTROL)[1].body)
    assert.are.equal(2, body.type)
    assert.are.same({ { productKey = "p11pLZ", deviceKey = "D1" } }, body.deviceList)
    assert.are.equal('[{"brightness":80},{"color":{"b":16,"g":0,"r":255}},{"energy":12.5},' ..
      '{"label":"kitchen"},{"mode":1},{"presets":[{"on":true,"r":1}]},' ..
      '{"schedule":[60,120]},{"switch":true},{"updated":1744780781133}]', body.data)
  end)

  it("[11.1] writes BOOL false, whole FLOATs, ENUM names, TEXT digits, and empty STRUCT and ARRAY", function()
    local c, t = client()
    assert(c:set_properties("p11pLZ", "D1", { switch = false, energy = 7, mode = "night", label = "80",
                                              color = {}, schedule = {} }))
    local data = json.decode(t:to(CONTROL)[1].body).data
    assert.are.equal('[{"color":{}},{"energy":7},{"label":"80"},{"mode":2},{"schedule":[]},{"switch":false}]', data)
    local list = json.decode(data)
    assert.are.equal(false, list[6].switch)
    assert.are.equal("number", type(list[2].energy))
    assert.are.equal("string", type(list[3].label))
    if math.type then assert.are.equal("integer", math.type(list[4].mode)) end
  end)

  it("refuses invalid values with a clear error and sends nothing", function()
    local cases = {
      { { nope = 1 }, "no property 'nope'" },
      { { temperature = 20 }, "'temperature' is read-only" },
      { { switch = "yes" }, "'switch' must be a boolean" },
      { { brightness = 150 }, "'brightness' 150 is above the maximum 100" },
      { { brightness = -1 }, "'brightness' -1 is below the minimum 0" },
      { { brightness = 3.5 }, "'brightness' must be an integer" },
      { { energy = "lots" }, "'energy' must be a number" },
      { { energy = 0 / 0 }, "'energy' must be a number" },
      { { mode = 7 }, "'mode' 7 is not one of its values" },
      { { mode = "turbo" }, "'mode' turbo is not one of its values" },
      { { label = "much too long" }, "'label' is longer than 8 characters" },
      { { updated = -5 }, "'updated' must be a timestamp in milliseconds" },
      { { color = { r = 1, x = 2 } }, "'color' has no member 'x'" },
      { { color = { r = 300 } }, "'r' 300 is above the maximum 255" },
      { { color = "red" }, "'color' must be a table of members" },
      { { schedule = { 1, 2, 3, 4 } }, "'schedule' has more than 3 elements" },
      { { schedule = { 1, 2000 } }, "2000 is above the maximum 1440" },
      { { schedule = { a = 1 } }, "'schedule' must be a list" },
      { {}, "non-empty table" },
    }
    for _, case in ipairs(cases) do
      local c, t = client()
      local res, err = c:set_properties("p11pLZ", "D1", case[1])
      assert.is_nil(res)
      assert.matches(case[2], err, 1, true)
      assert.matches("^set_properties: ", err)
      assert.are.equal(0, #t:to(CONTROL), "sent for " .. case[2])
    end
  end)

  it("checks pk and dk", function()
    local c, t = client()
    local res, err = c:set_properties("p11pLZ", nil, { switch = true })
    assert.is_nil(res)
    assert.matches("pk and dk", err, 1, true)
    assert.are.equal(0, #t.sent)
  end)
end)

describe("call_service", function()
  it("[11.1] builds a type 3 call with the service's inputs as native JSON values", function()
    local c, t = client()
    assert(c:call_service("p11pLZ", "D1", "blink", { times = 3, interval = 500 }))
    local body = json.decode(t:to(CONTROL)[1].body)
    assert.are.equal(3, body.type)
    assert.are.equal('[{"blink":[{"interval":500},{"times":3}]}]', body.data)
    assert(c:call_service("p11pLZ", "D1", "blink"))
    assert.are.equal('[{"blink":[]}]', json.decode(t:to(CONTROL)[2].body).data)
  end)

  it("refuses unknown services and bad inputs, sending nothing", function()
    for _, case in ipairs {
      { "explode", {}, "no service 'explode'" },
      { "blink", { times = 11 }, "'times' 11 is above the maximum 10" },
      { "blink", { speed = 1 }, "no input of blink 'speed'" },
    } do
      local c, t = client()
      local res, err = c:call_service("p11pLZ", "D1", case[1], case[2])
      assert.is_nil(res)
      assert.matches(case[3], err, 1, true)
      assert.are.equal(0, #t:to(CONTROL))
    end
  end)
end)

describe("send_raw", function()
  it("sends hex and text pass-through data", function()
    local c, t = client()
    assert(c:send_raw("p11pLZ", "D1", "A1b2", "hex"))
    assert(c:send_raw("p11pLZ", "D1", "hello device", "text"))
    local hex, text = json.decode(t:to(CONTROL)[1].body), json.decode(t:to(CONTROL)[2].body)
    assert.are.same({ 1, 1, "A1b2" }, { hex.type, hex.dataFormat, hex.data })
    assert.are.same({ 1, 2, "hello device" }, { text.type, text.dataFormat, text.data })
  end)

  it("refuses bad data, sending nothing", function()
    for _, case in ipairs {
      { "ABC", "hex", "even number of hex digits" },
      { "zz", "hex", "even number of hex digits" },
      { "", "text", "non-empty" },
      { string.rep("a", 4097), "text", "longer than 4096" },
      { "00", "base64", "encoding must be" },
    } do
      local c, t = client()
      local res, err = c:send_raw("p11pLZ", "D1", case[1], case[2])
      assert.is_nil(res)
      assert.matches(case[3], err, 1, true)
      assert.are.equal(0, #t.sent)
    end
  end)
end)
