-- A product's TSL model and a device's current values (productTSL,
-- getDeviceBusinessAttributes).
local app = require "quecapi.fakecloud.app"
local json = require "quecapi.fakecloud.json"
local auth = require "quecapi.fakecloud.auth"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local tsl = require "quecapi.fakecloud.tsl"
local times = require "quecapi.fakecloud.times"

local _M = {}

-- Fields of the TSL that are lists: sent as [] when empty.
local LISTS = { properties = true, services = true, events = true, inputData = true, outputData = true }

-- A copy of a TSL item fit for JSON: list fields and list-shaped specs (BOOL,
-- ENUM, STRUCT) stay arrays even when empty.
local function export(v, name)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = export(x, k) end
  if LISTS[name] or (name == "specs" and #v > 0) then return json.array(out) end
  return out
end

function _M.tsl_data(product)
  local t = product.tsl
  return { productKey = product.productKey,
           properties = export(t.properties, "properties"),
           services = export(t.services, "services"),
           events = export(t.events, "events") }
end

app.route("GET", "/v2/binding/enduserapi/productTSL", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local pk = ctx.args.pk
  if not pk or pk == "" then return nil, 5066 end
  local product = products.get(pk)
  if not product then return nil, 5193 end
  return _M.tsl_data(product)
end)

-- Module facts a cellular device reports (type 1); a spec may override any of
-- them per device with POST /_fake/device { deviceData = {...} }.
local function device_data(t)
  local d = {
    productKey = t.productKey, deviceKey = t.deviceKey, battery = 100, voltage = 3.7,
    signalStrength = -67, rsrp = -95, rsrq = -10, snr = 12, cellId = 123456789, lac = 4660,
    mcc = 460, mnc = 0, iccid = "89860000000000000000", sim = "", phoneNum = "",
    type = "EC200U", version = "EC200UCNAAR03A10M08", mcuVersion = "1.0.0", sdkVersion = "2.9.0",
    comProtocolVer = "1.0", dataProtocolVer = "1.0", memoryFree = 102400, locator = "GNSS",
  }
  for k, v in pairs(t.device_data or {}) do d[k] = v end
  return d
end

-- The newest location point in the platform's QdLocationLatest shape, or null.
local function locate_info(t)
  local p
  for _, q in ipairs(t.locations) do
    if not p or q.ms >= p.ms then p = q end
  end
  if not p then return json.null end
  return {
    productKey = t.productKey, deviceKey = t.deviceKey,
    lat = string.format("%.6f", math.abs(p.lat)), latType = p.lat < 0 and "S" or "N",
    lng = string.format("%.6f", math.abs(p.lng)), lngType = p.lng < 0 and "W" or "E",
    hdop = tostring(p.hdop), satellites = tostring(p.satellites), locateType = p.type,
    locateStatus = "Non-differential positioning", locateRaw = p.raw or "",
    locateTime = times.datetime(p.ms), locateTimeTs = p.ms,
    createTime = times.datetime(p.ms), createTimeTs = p.ms,
  }
end

app.route("GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  local t, err = things.access(user, a.pk, a.dk)
  if not t then return nil, err end
  local want = { ["1"] = true, ["2"] = true, ["3"] = true }
  if a.type and a.type ~= "" then
    want = {}
    for ty in a.type:gmatch("[^,]+") do
      if ty ~= "1" and ty ~= "2" and ty ~= "3" then return nil, 5000, "type is 1, 2 or 3 (comma-separated)" end
      want[ty] = true
    end
  elseif a.codeList and a.codeList ~= "" then
    return nil, 5471
  end
  local codes
  if a.codeList and a.codeList ~= "" then
    codes = {}
    for c in a.codeList:gmatch("[^,]+") do codes[c] = true end
  end
  local data = {}
  if want["1"] then data.deviceData = device_data(t) end
  if want["3"] then data.deviceLocateInfo = locate_info(t) end
  if want["2"] then
    local list = {}
    local product = products.get(t.productKey)
    for _, def in ipairs(product and product.tsl.properties or {}) do
      if not codes or codes[def.code] then
        list[#list + 1] = { abId = def.id, dataType = def.dataType, name = def.name, resourceCode = def.code,
                            resourceValce = tsl.to_string(def, things.value(t, def)),
                            subType = def.subType, type = def.type }
      end
    end
    data.customizeTslInfo = json.array(list)
  end
  return data
end)

return _M
