-- batchControlDevice: pass-through data (type 1), property writes (type 2) and
-- service calls (type 3) to a list of devices. Problems with the request as a
-- whole are platform errors; problems with one device or with what is sent to
-- it (unknown code, read-only property, bad value, bad hex) put that device in
-- failureList, as the platform reports per device. Values are native JSON: a
-- BOOL or a number sent as a string is a bad value (tsl.lua says why). A device
-- whose properties a write changed reports them on the realtime channel (bus_).
local app = require "quecapi.fakecloud.app"
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"
local crypto = require "quecapi.fakecloud.crypto"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local tsl = require "quecapi.fakecloud.tsl"
local realtime = require "quecapi.fakecloud.realtime"

local _M = {}

-- The docs name 5312 "devices in the list out of range" without the range.
local MAX_DEVICES = 100
local MAX_CACHE_TIME = 7776000

local function int_of(v)
  local n = tonumber(v)
  if type(v) ~= "number" and not (type(v) == "string" and v:find("^%-?%d+$")) then return nil end
  return n and n % 1 == 0 and n or nil
end

-- Request-wide checks, in the order of the status table; nil or code[, msg].
local function check(b)
  if b.type == nil then return 5070 end
  local ty = int_of(b.type)
  if ty ~= 1 and ty ~= 2 and ty ~= 3 then return 5071 end
  if b.data == nil or b.data == "" then return 5074 end
  -- the field is a string; a client that sends the payload as JSON instead of a
  -- JSON text trips the server's body binding
  if type(b.data) ~= "string" then return 5000, "data must be a string" end
  if ty == 1 then
    if b.dataFormat == nil then return 5072 end
    local fmt = int_of(b.dataFormat)
    if fmt ~= 1 and fmt ~= 2 then return 5073 end
    if #b.data > 4096 then return 5075 end
  end
  local list = b.deviceList
  if type(list) ~= "table" or #list == 0 then return 5311 end
  if #list > MAX_DEVICES then return 5312 end
  if b.isCache ~= nil then
    local c = int_of(b.isCache)
    if c ~= 1 and c ~= 2 then return 5330 end
    if c == 1 then
      if b.cacheTime == nil then return 5328 end
      local t = int_of(b.cacheTime)
      if not t or t < 1 or t > MAX_CACHE_TIME then return 5329 end
    end
  end
  if b.isCover ~= nil and int_of(b.isCover) ~= 1 and int_of(b.isCover) ~= 2 then return 5331 end
  if b.qos ~= nil and int_of(b.qos) ~= 0 and int_of(b.qos) ~= 1 then return 5000, "qos is 0 or 1" end
end

-- The command decoded once for all devices: { entries } or nil, msg.
local function parse(ty, fmt, data)
  if ty == 1 then
    if fmt == 1 and (#data % 2 ~= 0 or not data:find("^%x+$")) then
      return nil, "data is not hex: an even number of 0-9, a-f characters expected"
    end
    return {}
  end
  local v = json.decode(data)
  if v == nil then return nil, "data is not a JSON text" end
  local entries, err = tsl.entries(v, "data")
  if not entries then return nil, err end
  if #entries == 0 then return nil, "data names no " .. (ty == 2 and "property" or "service") end
  return { entries = entries }
end

-- Property writes: every value checked before any is applied. Also the check of
-- a WRITE-ATTR command on the realtime channel (realtime_commands.lua).
-- { code = normalized value }, or nil, msg.
local function writes(product, entries)
  local values = {}
  for _, kv in ipairs(entries) do
    local def = products.property(product, kv[1])
    if not def then return nil, string.format("unknown property %q", kv[1]) end
    if def.subType == "R" then return nil, string.format("property %q is read-only", kv[1]) end
    local v, err = tsl.normalize(def, kv[2])
    if v == nil then return nil, err end
    values[def.code] = v
  end
  return values
end

_M.writes = writes

local function calls(product, entries)
  local out = {}
  for _, kv in ipairs(entries) do
    local svc = products.service(product, kv[1])
    if not svc then return nil, string.format("unknown service %q", kv[1]) end
    local params = {}
    local given = kv[2]
    if given ~= "" and not (type(given) == "table" and next(given) == nil) then
      local list, err = tsl.entries(given, svc.code)
      if not list then return nil, err end
      for _, p in ipairs(list) do
        local def
        for _, d in ipairs(svc.inputData or {}) do
          if d.code == p[1] then def = d end
        end
        if not def then return nil, string.format("service %q has no input %q", svc.code, p[1]) end
        local v, verr = tsl.normalize(def, p[2])
        if v == nil then return nil, svc.code .. "." .. verr end
        params[def.code] = v
      end
    end
    out[#out + 1] = { code = svc.code, params = params }
  end
  return out
end

-- One device: ticket, or nil, msg. perr is why the command did not parse. The
-- device's report of what a write changed goes into `reports`.
local function control(user, b, ty, cmd, perr, ref, reports)
  if type(ref.productKey) ~= "string" or ref.productKey == "" or type(ref.deviceKey) ~= "string"
     or ref.deviceKey == "" then
    return nil, "productKey and deviceKey are required"
  end
  local t = things.get(ref.productKey, ref.deviceKey)
  if not t then return nil, "device does not exist" end
  if not things.binding(user.uid, ref.productKey, ref.deviceKey)
     and not things.share_for(user.uid, ref.productKey, ref.deviceKey) then
    return nil, "no permission to control this device"
  end
  if not cmd then return nil, perr end
  local ticket = crypto.random_hex(12)
  local sent = { ticket = ticket, ms = state.now_ms(), uid = user.uid, data = b.data,
                 qos = b.qos, isCache = b.isCache, cacheTime = b.cacheTime, isCover = b.isCover }
  if ty == 1 then
    sent.dataFormat = int_of(b.dataFormat)
    t.downlinks[#t.downlinks + 1] = sent
    return ticket
  end
  local product = products.get(ref.productKey)
  if not product then return nil, "product " .. ref.productKey .. " has no TSL model" end
  if ty == 2 then
    local values, err = writes(product, cmd.entries)
    if not values then return nil, err end
    things.record(t, values, sent.ms)
    sent.values = values
    t.writes[#t.writes + 1] = sent
    reports[#reports + 1] = realtime.report_changes(t, values, sent.ms)
    return ticket
  end
  local list, err = calls(product, cmd.entries)
  if not list then return nil, err end
  for _, c in ipairs(list) do
    t.services[#t.services + 1] = { ticket = ticket, ms = sent.ms, uid = user.uid, code = c.code, params = c.params }
  end
  return ticket
end

app.route("POST", "/v2/binding/enduserapi/batchControlDevice", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local b = type(ctx.body) == "table" and ctx.body or {}
  local bad, msg = check(b)
  if bad then return nil, bad, msg end
  local ty = int_of(b.type)
  local cmd, perr = parse(ty, int_of(b.dataFormat), b.data)
  local successes, failures, reports = {}, {}, {}
  for _, e in ipairs(b.deviceList) do
    e = type(e) == "table" and e or {}
    local ref = { productKey = e.productKey, deviceKey = e.deviceKey,
                  gatewayProductKey = e.gatewayProductKey, gatewayDeviceKey = e.gatewayDeviceKey }
    local ticket, err = control(user, b, ty, cmd, perr, ref, reports)
    if ticket then
      successes[#successes + 1] = { data = ref, ticket = ticket }
    else
      failures[#failures + 1] = { data = ref, msg = err }
    end
  end
  -- published before the answer: once the call returns, the reports are on
  -- their way to subscribers
  realtime.publish(reports)
  return { successList = json.array(successes), failureList = json.array(failures) }
end)

return _M
