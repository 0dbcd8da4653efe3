--- Messages of the realtime channel -> event tables: the payload decoded, the
-- device found from the topic, property values typed by the product's thing
-- model exactly as `get_properties` types REST values (`quecapi.things.read_value`).
--
--     local d = events.new()
--     d:add("p11pLZ", "655001")
--     d:set_model("p11pLZ", properties_by_code)   -- from quecapi.things.model
--     local ev, why = d:decode(topic, payload)     -- never raises
--
-- Event types (every event has `type`, `productKey`, `deviceKey` where known,
-- `topic` and `raw`, the decoded payload):
--
--  - `property` (bus_): `values` (typed; only the codes the report carries, as
--    reports may be partial), `at` (the report's `createdAt`, ms);
--  - `online` (onl_): `online` (value >= 1), `value` (0 offline, 1 online, 2 back online);
--  - `ack` (ack_): `msgId`, `status` ("succ" / "fail"), `ok`;
--  - `error` (q/1/u/<clientId>/sys_): `code`, `msg` (4021 offline, 4007 not bound, 4026 quota);
--  - `ota`, `info`, `location` (ota_, inf_, loc_): the decoded payload, in `raw`.
--
-- The shapes come from the public clients of the live cloud (see the README's
-- Realtime section); where they disagree, every form one of them reads is read.
-- A message that is not JSON, not an object, on an unknown topic or without the
-- fields its type needs is refused with a reason (the caller logs it and drops
-- it); a value its property's type cannot hold is left out of `values` and
-- named in `invalid`.
--
-- Pure: no I/O, no clock. Shared by the plain-Lua and the nginx connections.
-- @module quecapi.realtime.events

local json = require "quecapi.json"
local things = require "quecapi.things"
local topics = require "quecapi.realtime.topics"
local request = require "quecapi.request"

local type, pairs, ipairs, tostring, tonumber, setmetatable = type, pairs, ipairs, tostring, tonumber, setmetatable
local upper = string.upper
local to_integer = request.to_integer
local read_value = things.read_value
local parse_topic = topics.parse
local decode_json = json.decode

local _M = {}

local Decoder = {}
local mt = { __index = Decoder }

--- A decoder for one connection's devices.
function _M.new()
  return setmetatable({ devices = {}, models = {} }, mt)
end

--- Know a device: its topics are decoded from now on.
function Decoder:add(pk, dk)
  self.devices[topics.channel(pk, dk)] = { productKey = pk, deviceKey = dk }
end

--- Forget a device: its topics are unknown from now on.
function Decoder:remove(pk, dk)
  self.devices[topics.channel(pk, dk)] = nil
end

--- The properties of a product's thing model by code (nil: values stay as sent).
function Decoder:set_model(pk, properties)
  self.models[pk] = properties
end

-- The report's kv as a map: an object, a list of one-key objects, or either
-- as JSON text (the form commands carry it in).
local function kv_map(kv)
  if type(kv) == "string" then kv = decode_json(kv) end
  if type(kv) ~= "table" then return nil end
  if kv[1] == nil then return kv end
  local map = {}
  for _, pair in ipairs(kv) do
    if type(pair) ~= "table" then return nil end
    for k, v in pairs(pair) do map[k] = v end
  end
  return map
end

-- Values typed by the properties (by code); codes the model does not know keep
-- the value as sent. -> values, invalid (code -> reason) or nil.
local function typed(properties, kv)
  local values, invalid = {}, nil
  for code, raw in pairs(kv) do
    if type(code) == "string" then
      local spec = properties and properties[code]
      if spec then
        local v, err = read_value(spec, raw)
        if v == nil then
          invalid = invalid or {}
          invalid[code] = err
        else
          values[code] = v
        end
      else
        values[code] = raw
      end
    end
  end
  return values, invalid
end

local function integer(v)
  return to_integer(tonumber(v))
end

-- One builder per event type: (event, payload, properties) -> event or nil, why.
local build = {}

function build.property(ev, p, properties)
  local kind = p.type
  if kind ~= nil and (type(kind) ~= "string" or upper(kind) ~= "MATTR") then
    return nil, "a bus_ message of type " .. tostring(kind) .. " (not a property report)"
  end
  local data = type(p.data) == "table" and p.data or nil
  local kv = kv_map(data and data.kv or p.kv)
  if not kv then return nil, "a property report without kv" end
  ev.values, ev.invalid = typed(properties, kv)
  ev.at = integer(p.createdAt)
  return ev
end

function build.online(ev, p)
  local data = type(p.data) == "table" and p.data or p
  local value = integer(data.value)
  if not value then return nil, "an online message without a value" end
  ev.value, ev.online = value, value >= 1
  ev.at = integer(p.createdAt)
  return ev
end

function build.ack(ev, p)
  local data = type(p.data) == "table" and p.data or p
  local id = integer(data.msgId or p.msgId)
  local status = data.status or p.status
  if not id or type(status) ~= "string" then return nil, "an ack without msgId and status" end
  ev.msgId, ev.status, ev.ok = id, status, status == "succ"
  ev.ticket = data.ticket or p.ticket
  return ev
end

local function as_is(ev) return ev end
build.ota, build.info, build.location = as_is, as_is, as_is

-- The product of the one subscribed device with this device key; nil when
-- none has it, or several products do (no guessing).
local function product_of(devices, dk)
  local found
  for _, d in pairs(devices) do
    if d.deviceKey == dk then
      if found then return nil end
      found = d.productKey
    end
  end
  return found
end

--- Decode one message.
-- @tparam string topic
-- @tparam string payload
-- @return an event table, or nil, why (a short reason, for a log line)
function Decoder:decode(topic, payload)
  local what, channel, suffix = parse_topic(topic)
  if not what then return nil, "unknown topic" end
  if type(payload) ~= "string" then return nil, "no payload" end
  local p = decode_json(payload)
  if type(p) ~= "table" then return nil, "the payload is not a JSON object" end
  if what == "client" then
    local code = integer(p.code)
    if not code then return nil, "an error message without a code" end
    local pk, dk = p.productKey, p.deviceKey
    if type(pk) ~= "string" then pk = nil end
    if type(dk) ~= "string" then dk = nil end
    -- the not-bound error names only the device key
    if dk and not pk then pk = product_of(self.devices, dk) end
    return {
      type = "error", code = code, msg = type(p.msg) == "string" and p.msg or nil,
      productKey = pk, deviceKey = dk,
      topic = topic, raw = p,
    }
  end
  local device = self.devices[channel]
  if not device then return nil, "a topic of no device subscribed" end
  local pk = device.productKey
  local ev = { type = topics.EVENT_TYPES[suffix], productKey = pk, deviceKey = device.deviceKey,
               topic = topic, raw = p }
  return build[ev.type](ev, p, self.models[pk])
end

return _M
