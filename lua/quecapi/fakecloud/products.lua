-- Products and their TSL models. The default product p11pLZ ("RGB light", the
-- product key of the platform's own walkthrough) exists without seeding and has a
-- property of every TSL data type, a service and an event, so specs can exercise
-- the whole value grammar; POST /_fake/products adds or replaces products.
local state = require "quecapi.fakecloud.state"

local _M = {}

-- One TSL item in the shape productTSL returns (specs values are strings, as the
-- platform's TSL exports have them).
local function item(id, code, name, kind, subType, dataType, specs)
  return { id = id, code = code, name = name, type = kind, subType = subType,
           dataType = dataType, sort = id, specs = specs }
end

local function int(min, max, unit)
  return { min = tostring(min), max = tostring(max), step = "1", unit = unit or "" }
end

local function param(id, code, name, dataType, specs)
  return item(id, code, name, "PROPERTY", "RW", dataType, specs)
end

local RGB_LIGHT = {
  productKey = "p11pLZ",
  productName = "RGB light",
  tsl = {
    properties = {
      item(1, "switch", "Switch", "PROPERTY", "RW", "BOOL",
           { { value = "true", name = "on" }, { value = "false", name = "off" } }),
      item(2, "brightness", "Brightness", "PROPERTY", "RW", "INT", int(0, 100, "%")),
      item(3, "temperature", "Temperature", "PROPERTY", "R", "FLOAT",
           { min = "-20", max = "60", step = "0.1", unit = "°C" }),
      item(4, "energy", "Energy", "PROPERTY", "R", "DOUBLE",
           { min = "0", max = "1000000", step = "0.001", unit = "kWh" }),
      item(5, "mode", "Mode", "PROPERTY", "RW", "ENUM",
           { { value = "0", name = "auto" }, { value = "1", name = "manual" }, { value = "2", name = "night" } }),
      item(6, "label", "Label", "PROPERTY", "RW", "TEXT", { length = "32" }),
      item(7, "updated", "Updated", "PROPERTY", "RW", "DATE", {}),
      item(8, "color", "Color", "PROPERTY", "RW", "STRUCT", {
        param(1, "r", "Red", "INT", int(0, 255)),
        param(2, "g", "Green", "INT", int(0, 255)),
        param(3, "b", "Blue", "INT", int(0, 255)),
      }),
      item(9, "schedule", "Schedule", "PROPERTY", "RW", "ARRAY",
           { size = "8", dataType = "INT", specs = int(0, 1440, "min") }),
    },
    services = {
      { id = 10, code = "blink", name = "Blink", type = "SERVICE", subType = "ASYNC", sort = 10,
        inputData = {
          param(1, "times", "Times", "INT", int(1, 10)),
          param(2, "interval", "Interval", "INT", int(100, 5000, "ms")),
        },
        outputData = {} },
    },
    events = {
      { id = 11, code = "overheat", name = "Overheat", type = "EVENT", subType = "WARN", sort = 11,
        outputData = {
          -- reaches past the temperature property's range: that is what the event is for
          param(1, "temperature", "Temperature", "FLOAT", { min = "-40", max = "200", step = "0.1", unit = "°C" }),
        } },
    },
  },
}

local DEFAULTS = { [RGB_LIGHT.productKey] = RGB_LIGHT }

function _M.get(pk)
  return state.products[pk] or DEFAULTS[pk]
end

-- A TSL property, service or event by code.
local function find(list, code)
  for _, it in ipairs(list or {}) do
    if it.code == code then return it end
  end
end

function _M.property(product, code) return find(product.tsl.properties, code) end
function _M.service(product, code) return find(product.tsl.services, code) end
function _M.event(product, code) return find(product.tsl.events, code) end

-- Fill what a seeded TSL may leave out (ids, sort, type, subType, empty lists),
-- so every product answers productTSL in one shape. Returns the product or nil, err.
local function complete(list, kind)
  if list ~= nil and type(list) ~= "table" then return nil, kind .. " must be a list" end
  list = list or {}
  for i, it in ipairs(list) do
    if type(it) ~= "table" or type(it.code) ~= "string" then return nil, kind .. " item without a code" end
    it.id = it.id or i
    it.sort = it.sort or it.id
    it.name = it.name or it.code
  end
  return list
end

function _M.add(p)
  if type(p.productKey) ~= "string" or p.productKey == "" then return nil, "productKey is required" end
  local tsl = type(p.tsl) == "table" and p.tsl or {}
  local err
  tsl.properties, err = complete(tsl.properties, "properties")
  if err then return nil, err end
  tsl.services, err = complete(tsl.services, "services")
  if err then return nil, err end
  tsl.events, err = complete(tsl.events, "events")
  if err then return nil, err end
  for _, it in ipairs(tsl.properties) do
    it.type = it.type or "PROPERTY"
    it.subType = it.subType or "RW"
    if type(it.dataType) ~= "string" then return nil, "property " .. it.code .. " needs a dataType" end
    it.specs = it.specs or {}
  end
  for _, it in ipairs(tsl.services) do
    it.type = it.type or "SERVICE"
    it.inputData, it.outputData = it.inputData or {}, it.outputData or {}
  end
  for _, it in ipairs(tsl.events) do
    it.type = it.type or "EVENT"
    it.subType = it.subType or "INFO"
    it.outputData = it.outputData or {}
  end
  state.products[p.productKey] = { productKey = p.productKey, productName = p.productName or p.productKey,
                                   tsl = tsl }
  return state.products[p.productKey]
end

return _M
