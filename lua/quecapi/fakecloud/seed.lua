-- Control endpoints for products and devices: seed them, play the device's part
-- (go online, report values, locations and events) and read what reached a
-- device (current values, writes, pass-through data, service calls).
--
--   POST /_fake/products       { productKey, productName, tsl = { properties, services, events } }
--   POST /_fake/devices        { phone | email | uid, devices = [...] | count, productKey, prefix }
--                              { unbound = true, devices = [{ productKey, deviceKey, sn, ... }] }
--   GET  /_fake/device?productKey=&deviceKey=
--   POST /_fake/device         { productKey, deviceKey, online?, values?, ts?, deviceData?, as_strings? }
--   POST /_fake/device/locations { productKey, deviceKey, points = [{ lat, lng, ts?, type?, ... }] }
--   POST /_fake/device/events  { productKey, deviceKey, events = [{ code, output?, ts? }] }
--
-- Values given here are what a device reports: plain JSON (a struct as an object,
-- an array as a list), numbers also as strings, or the SaaS payload forms; they
-- are checked against the TSL (tsl.normalize_report), and read-only properties
-- may be reported. What the device says goes out on the realtime channel too:
-- onl_ when `online` is given, a bus_ report of the values given.
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local control = require "quecapi.fakecloud.control"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local tsl = require "quecapi.fakecloud.tsl"
local realtime = require "quecapi.fakecloud.realtime"

local reply, bad, body = control.reply, control.bad, control.body

control.route("POST", "/_fake/products", function()
  local p, err = products.add(body())
  if not p then return bad(err) end
  return reply { ok = true, productKey = p.productKey }
end)

-- { code = value } checked against the product's properties (or an event's
-- outputs); normalized values, or nil, msg.
local function check_values(defs, given, what)
  local out = {}
  for code, v in pairs(type(given) == "table" and given or {}) do
    local def
    for _, d in ipairs(defs or {}) do
      if d.code == code then def = d end
    end
    if not def then return nil, string.format("unknown %s %q", what, code) end
    local val, err = tsl.normalize_report(def, v)
    if val == nil then return nil, err end
    out[code] = val
  end
  return out
end

local function product_properties(pk)
  local p = products.get(pk)
  return p and p.tsl.properties or {}
end

local function new_binding(user, d)
  local product = products.get(d.productKey)
  local t = things.ensure(d.productKey, d.deviceKey, { sn = d.sn, online = d.online, deviceName = d.deviceName })
  local b = {
    uid = user.uid, productKey = d.productKey, deviceKey = d.deviceKey,
    deviceName = d.deviceName or d.deviceKey,
    productName = d.productName or (product and product.productName) or "RGB light",
    bound_at = state.now(), sn = d.sn, bindingType = d.bindingType, online = d.online,
    authKey = d.authKey or ngx.encode_base64(d.deviceKey),
  }
  state.devices[#state.devices + 1] = b
  return t
end

-- Bound to a user (as before), or with unbound = true known to the cloud but
-- bound to nobody, for bindDeviceSn/bindDeviceDk.
control.route("POST", "/_fake/devices", function()
  local p = body()
  local user
  if not p.unbound then
    user = control.find_user(p)
    if not user then return bad("no such user") end
  end
  local list = type(p.devices) == "table" and p.devices or {}
  for i = 1, tonumber(p.count) or 0 do
    list[#list + 1] = { productKey = p.productKey or "p11pLZ",
                        deviceKey = string.format("%s%04d", p.prefix or "D", i),
                        deviceName = string.format("device-%04d", i) }
  end
  for _, d in ipairs(list) do
    if type(d.productKey) ~= "string" or type(d.deviceKey) ~= "string" then
      return bad("every device needs productKey and deviceKey")
    end
    local values, err = check_values(product_properties(d.productKey), d.values, "property")
    if not values then return bad(err) end
    local t
    if user then
      t = new_binding(user, d)
    else
      t = things.ensure(d.productKey, d.deviceKey, { sn = d.sn, online = d.online, deviceName = d.deviceName })
    end
    for code, v in pairs(values) do t.values[code] = v end
  end
  return reply { count = #list }
end)

local function thing_of(p)
  local t = things.get(p.productKey, p.deviceKey)
  if not t then return nil, bad("no device " .. tostring(p.productKey) .. "/" .. tostring(p.deviceKey)) end
  return t
end

local function plain(list)
  local out = {}
  for i, e in ipairs(list) do
    local c = {}
    for k, v in pairs(e) do c[k] = v end
    out[i] = c
  end
  return json.array(out)
end

-- What the device holds and what reached it.
control.route("GET", "/_fake/device", function()
  local t, answered = thing_of(control.args())
  if not t then return answered end
  local values, strings = {}, {}
  for _, def in ipairs(product_properties(t.productKey)) do
    local v = things.value(t, def)
    values[def.code] = tsl.to_json(def, v)
    strings[def.code] = tsl.to_string(def, v)
  end
  local bindings, shares = {}, {}
  for _, d in ipairs(things.bindings(t.productKey, t.deviceKey)) do bindings[#bindings + 1] = d.uid end
  for _, s in ipairs(state.shares) do
    if s.pk == t.productKey and s.dk == t.deviceKey then
      shares[#shares + 1] = { shareCode = s.shareCode, ownerUid = s.ownerUid, shareUid = s.shareUid,
                              status = s.status, invited = s.invited or false }
    end
  end
  return reply {
    productKey = t.productKey, deviceKey = t.deviceKey, sn = t.sn, deviceName = t.deviceName,
    online = t.online, values = values, strings = strings, history = #t.history,
    writes = plain(t.writes), downlinks = plain(t.downlinks), services = plain(t.services),
    locations = #t.locations, events = #t.events,
    bindings = json.array(bindings), shares = json.array(shares),
  }
end)

-- The device speaks: online state, a report of values (current value + history,
-- stamped ts ms or now), module facts for getDeviceBusinessAttributes type 1.
-- On the realtime channel: onl_ when `online` is given (true 1, false 0, or the
-- value itself: 0, 1, 2 = back online), then one bus_ report of the values
-- given (a partial report names only those), numbers as strings with
-- `as_strings`, as some firmware sends them.
control.route("POST", "/_fake/device", function()
  local p = body()
  local t, answered = thing_of(p)
  if not t then return answered end
  local values, err = check_values(product_properties(t.productKey), p.values, "property")
  if not values then return bad(err) end
  local online_value
  if p.online ~= nil then
    if p.online == true or p.online == false then
      online_value = p.online and 1 or 0
    elseif p.online == 0 or p.online == 1 or p.online == 2 then
      online_value = p.online
    else
      return bad("online is true, false, or the value 0, 1 or 2")
    end
    t.online = online_value >= 1
  end
  if type(p.deviceData) == "table" then
    t.device_data = t.device_data or {}
    for k, v in pairs(p.deviceData) do t.device_data[k] = v end
  end
  local out = {}
  if online_value then out[1] = realtime.online(t, online_value) end
  if next(values) then
    local ms = tonumber(p.ts)
    things.record(t, values, ms)
    out[#out + 1] = realtime.report(t, realtime.kv_of(t, values, p.as_strings == true), ms)
  end
  local published = realtime.publish(out)
  return reply { ok = true, online = t.online, history = #t.history, published = published or 0 }
end)

control.route("POST", "/_fake/device/locations", function()
  local p = body()
  local t, answered = thing_of(p)
  if not t then return answered end
  for _, q in ipairs(type(p.points) == "table" and p.points or {}) do
    if not tonumber(q.lat) or not tonumber(q.lng) then return bad("every point needs lat and lng") end
    t.locations[#t.locations + 1] = {
      id = tostring(state.new_id()), lat = tonumber(q.lat), lng = tonumber(q.lng),
      ms = tonumber(q.ts) or state.now_ms(), type = q.type or "GP", hdop = tonumber(q.hdop) or 0.8,
      satellites = tonumber(q.satellites) or 12, accuracy = tonumber(q.accuracy) or 5, raw = q.raw,
    }
  end
  return reply { count = #t.locations }
end)

control.route("POST", "/_fake/device/events", function()
  local p = body()
  local t, answered = thing_of(p)
  if not t then return answered end
  local product = products.get(t.productKey)
  for _, e in ipairs(type(p.events) == "table" and p.events or {}) do
    local def = product and products.event(product, e.code)
    if not def then return bad("unknown event " .. tostring(e.code)) end
    local output, err = check_values(def.outputData, e.output, "output")
    if not output then return bad(err) end
    local id = state.new_id()
    t.events[#t.events + 1] = { id = tostring(id), packetId = id, code = def.code, output = output,
                                ms = tonumber(e.ts) or state.now_ms(), ticket = e.ticket or "" }
  end
  return reply { count = #t.events }
end)
