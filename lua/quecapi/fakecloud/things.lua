-- Devices as things: one record per productKey + deviceKey, whoever is bound to
-- it. A thing holds what the device itself has (online state, current property
-- values, their history, locations, events, and the commands it received);
-- bindings (state.devices) and shares (state.shares) say who may use it.
local state = require "quecapi.fakecloud.state"
local products = require "quecapi.fakecloud.products"
local tsl = require "quecapi.fakecloud.tsl"

local _M = {}

local function key(pk, dk)
  return tostring(pk) .. "|" .. tostring(dk)
end

function _M.get(pk, dk)
  return state.things[key(pk, dk)]
end

-- The thing for pk/dk, created on first mention; `fields` may set sn, deviceName,
-- online and initial values (by property code) on creation or later.
function _M.ensure(pk, dk, fields)
  local k = key(pk, dk)
  local t = state.things[k]
  if not t then
    t = { productKey = pk, deviceKey = dk, sn = dk, deviceName = dk, online = false,
          created_at = state.now(), values = {}, history = {}, locations = {}, events = {},
          writes = {}, downlinks = {}, services = {} }
    state.things[k] = t
    state.thing_order[#state.thing_order + 1] = k
  end
  fields = fields or {}
  if fields.sn ~= nil then t.sn = fields.sn end
  if fields.deviceName ~= nil then t.deviceName = fields.deviceName end
  if fields.online ~= nil then t.online = fields.online and true or false end
  return t
end

-- The first thing of a product with that serial number.
function _M.by_sn(pk, sn)
  for _, k in ipairs(state.thing_order) do
    local t = state.things[k]
    if t.productKey == pk and t.sn == sn then return t end
  end
end

-- The user's own binding of pk/dk.
function _M.binding(uid, pk, dk)
  for _, d in ipairs(state.devices) do
    if d.uid == uid and d.productKey == pk and d.deviceKey == dk then return d end
  end
end

-- Every binding of pk/dk.
function _M.bindings(pk, dk)
  local out = {}
  for _, d in ipairs(state.devices) do
    if d.productKey == pk and d.deviceKey == dk then out[#out + 1] = d end
  end
  return out
end

function _M.unbind(binding)
  for i, d in ipairs(state.devices) do
    if d == binding then
      table.remove(state.devices, i)
      return true
    end
  end
end

-- An accepted share of pk/dk to uid that has not run out, or nil.
function _M.share_for(uid, pk, dk)
  local now = state.now_ms()
  for _, s in ipairs(state.shares) do
    if s.shareUid == uid and s.pk == pk and s.dk == dk and s.status == "accepted"
       and (not s.sharingExpireAt or s.sharingExpireAt > now) then
      return s
    end
  end
end

-- What `user` may do with pk/dk: thing, binding or share; else nil, code.
-- 5052 "Device is not bound" when the user has neither.
function _M.access(user, pk, dk)
  if not pk or pk == "" then return nil, 5066 end
  if not dk or dk == "" then return nil, 5067 end
  local b = _M.binding(user.uid, pk, dk) or _M.share_for(user.uid, pk, dk)
  if not b then return nil, 5052 end
  return _M.ensure(pk, dk), b
end

-- A new user's own devices, so that a first device list shows something: `count`
-- lights of the default product p11pLZ bound to the user (every other one
-- online), with device keys made from the uid so no two users share one.
function _M.starter_devices(user, count)
  for i = 1, count do
    local b = {
      uid = user.uid, productKey = "p11pLZ", productName = "RGB light", online = i % 2 == 1,
      deviceKey = string.format("%s%02d", user.uid, i), deviceName = string.format("RGB light-%d", i),
      bound_at = state.now(),
    }
    b.authKey = ngx.encode_base64(b.deviceKey)
    _M.ensure(b.productKey, b.deviceKey, { online = b.online, deviceName = b.deviceName })
    state.devices[#state.devices + 1] = b
  end
end

-- Current value of a property: the last written or reported, else its default.
function _M.value(t, def)
  local v = t.values[def.code]
  if v == nil then return tsl.default(def) end
  return v
end

-- Store new values (normalized, by code) as the device's current state and
-- append one history record per property, stamped `ms` (default: the fake's clock).
function _M.record(t, values, ms)
  ms = ms or state.now_ms()
  local product = products.get(t.productKey)
  for code, v in pairs(values) do
    local def = product and products.property(product, code)
    if def then
      v = tsl.merge(def, t.values[code], v)
      -- the current value is the newest one, whatever order reports came in
      if not t.values_ms or not t.values_ms[code] or t.values_ms[code] <= ms then
        t.values[code] = v
        t.values_ms = t.values_ms or {}
        t.values_ms[code] = ms
      end
      t.history[#t.history + 1] = { code = code, value = v, ms = ms, def = def }
    end
  end
end

return _M
