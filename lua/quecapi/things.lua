--- Typed helpers over the catalog for the everyday jobs: read a device's current
-- property values as Lua values, write properties, call a service, send raw data.
--
-- They use the product's thing model (TSL, from `product_tsl`, cached per client)
-- to convert the platform's string values (`resourceValce`) by `dataType`, and to
-- check what is written (type, range, enum, length, writability) before anything
-- is sent. Written values travel as native JSON (true, 80, {"r":255}, [60,120]):
-- the form every live client that controls devices sends, and the only one the
-- live cloud is proven to take. Bad data from the platform never raises: odd
-- items are skipped. These functions become client methods.
--
-- Failures are `nil, err, code, kind` as for every call: a helper's own refusal
-- (bad arguments, a value the thing model does not allow) is kind "usage" and
-- nothing is sent; an inner call's failure comes back under the helper's name
-- (`set_properties: batch_control_device: ...`) with the inner code and kind; an
-- answer without the data the helper reads is kind "http".
-- @module quecapi.things

local json = require "quecapi.json"
local lru = require "quecapi.lru"
local time = require "quecapi.time"
local request = require "quecapi.request"

local type, pairs, ipairs, next, tostring, tonumber = type, pairs, ipairs, next, tostring, tonumber
local format, find, gsub = string.format, string.find, string.gsub
local concat, sort = table.concat, table.sort
local huge = math.huge
local to_integer = request.to_integer

local _M = {}

-- ------------------------------------------------------------------------
-- the thing model
-- ------------------------------------------------------------------------

local function index_by_code(list)
  local by_code = {}
  for _, item in ipairs(type(list) == "table" and list or {}) do
    if type(item) == "table" and type(item.code) == "string" then by_code[item.code] = item end
  end
  return by_code
end

-- The thing model as the platform sends it: `productTSL`'s data, or the JSON
-- text some products wrap it in (`tslJson`); {} when it is neither.
local function decode_model(data)
  data = type(data) == "table" and data or {}
  if type(data.tslJson) == "string" then data = json.decode(data.tslJson) end
  if type(data) ~= "table" then data = {} end
  return data
end

-- Thing models, shared by every client of the process (in nginx, a client is
-- made per request): per base URL and product, at most 256 of them, each served
-- for 10 minutes, so a changed model is picked up by long-running processes.
_M.MODELS = lru.new(256, 600, time.monotonic)
local models = _M.MODELS

-- The product's TSL, indexed by code; fetched once per base URL and product.
-- Failures come back as `nil, "<helper>: <inner error>", code, kind`.
local function model(self, pk, helper)
  local key = self.base_url .. " " .. pk
  local m = models:get(key)
  if m then return m end
  local res, err, code, kind = self:call("productTSL", { pk = pk })
  if not res then return nil, helper .. ": " .. tostring(err), code, kind end
  local data = decode_model(res.data)
  m = {
    document = data,
    properties = index_by_code(data.properties),
    services = index_by_code(data.services),
  }
  models:set(key, m)
  return m
end

--- The product's thing model as the typed helpers hold it: `document` (what
-- `thing_model` returns), `properties` and `services` indexed by code; fetched
-- once per base URL and product and shared, so treat it as read-only.
-- Failures come back as `nil, "<helper>: <inner error>", code, kind`.
-- @param self a client
-- @tparam string pk product key
-- @tparam string helper the name failures are reported under
function _M.model(self, pk, helper)
  return model(self, pk, helper)
end

local function usage(helper, err)
  return nil, helper .. ": " .. err, nil, "usage"
end

-- Members of a STRUCT, in the model's order.
local function members(spec)
  local list = {}
  for _, m in ipairs(type(spec.specs) == "table" and spec.specs or {}) do
    if type(m) == "table" and type(m.code) == "string" then list[#list + 1] = m end
  end
  sort(list, function(a, b)
    return (tonumber(a.sort) or tonumber(a.id) or 0) < (tonumber(b.sort) or tonumber(b.id) or 0)
  end)
  return list
end

-- The element spec of an ARRAY: { dataType, specs }.
local function element(spec)
  local s = type(spec.specs) == "table" and spec.specs or {}
  return { code = (spec.code or "?") .. "[]", dataType = s.dataType or "TEXT", specs = s.specs }
end

-- ------------------------------------------------------------------------
-- reading: platform strings -> Lua values
-- ------------------------------------------------------------------------

local read_value

-- A STRUCT value may come as {"r":"1"} or as [{"r":"1"},{"g":"2"}].
local function as_map(v)
  if type(v) ~= "table" then return nil end
  if v[1] == nil then return v end
  local map = {}
  for _, pair in ipairs(v) do
    if type(pair) ~= "table" then return nil end
    for k, x in pairs(pair) do map[k] = x end
  end
  return map
end

local readers = {
  BOOL = function(v)
    if v == true or v == "true" or v == "1" or v == 1 then return true end
    if v == false or v == "false" or v == "0" or v == 0 then return false end
  end,
  INT = function(v) return to_integer(tonumber(v)) end,
  FLOAT = function(v) return tonumber(v) end,
  DOUBLE = function(v) return tonumber(v) end,
  ENUM = function(v) return to_integer(tonumber(v)) or (type(v) == "string" and v or nil) end,
  TEXT = function(v)
    local t = type(v)
    if t == "string" then return v end
    if t == "number" or t == "boolean" then return tostring(v) end
  end,
  DATE = function(v) return to_integer(tonumber(v)) end,
  STRUCT = function(v, spec)
    if type(v) == "string" then v = json.decode(v) end
    local map = as_map(v)
    if not map then return nil end
    local out = {}
    local known = members(spec)
    if #known == 0 then return map end
    for _, m in ipairs(known) do
      if map[m.code] ~= nil then
        local x, err = read_value(m, map[m.code])
        if x == nil then return nil, err end
        out[m.code] = x
      end
    end
    return out
  end,
  ARRAY = function(v, spec)
    if type(v) == "string" then v = json.decode(v) end
    if type(v) ~= "table" then return nil end
    local el = element(spec)
    local out = {}
    for i, x in ipairs(v) do
      -- elements may come wrapped as {"0": value}
      if type(x) == "table" and x["0"] ~= nil then x = x["0"] end
      local y, err = read_value(el, x)
      if y == nil then return nil, err end
      out[i] = y
    end
    return out
  end,
}

read_value = function(spec, raw)
  local reader = readers[spec.dataType]
  if not reader then return raw end
  local v, err = reader(raw, spec)
  if v == nil then
    return nil, err or format("property '%s': cannot read %q as %s", tostring(spec.code), tostring(raw), spec.dataType)
  end
  return v
end

--- The typing `get_properties` applies to one value: the platform's value (a
-- string, or a native JSON value as pushed reports carry it) -> the Lua value
-- the property's `dataType` says (`"55"` of an INT -> 55), or nil, err. The
-- realtime channel types its events with it, so both agree value for value.
-- @tparam table spec the property's thing model item (`code`, `dataType`, `specs`)
-- @param raw the value
-- @return the typed value, or nil, err
_M.read_value = read_value

local function code_list(codes)
  if codes == nil then return nil end
  if type(codes) == "string" then return codes end
  if type(codes) == "table" then
    for _, c in ipairs(codes) do
      if type(c) ~= "string" then return nil, "codes must be strings" end
    end
    return concat(codes, ",")
  end
  return nil, "codes must be a list of property codes"
end

-- The elements of a decoded JSON list in order, past the holes JSON nulls leave
-- (ipairs would stop at the first one).
local function list_items(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "number" then keys[#keys + 1] = k end
  end
  sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = t[k] end
  return out
end

--- A device's current property values, converted by the thing model.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam[opt] {string,...} codes only these properties (a list or a comma-separated string)
-- @tparam[opt] table opts per-call options (`retry`, `deadline`, `timeout`)
-- @treturn table `{ code = value }`
-- @treturn table the raw envelope of getDeviceBusinessAttributes
-- @usage local v = assert(client:get_properties("p11pLZ", "D001", { "switch", "brightness" }))
function _M:get_properties(pk, dk, codes, opts)
  if type(pk) ~= "string" or type(dk) ~= "string" then
    return usage("get_properties", "pk and dk must be strings")
  end
  local list, err = code_list(codes)
  if err then return usage("get_properties", err) end
  local m, code, kind
  m, err, code, kind = model(self, pk, "get_properties")
  if not m then return nil, err, code, kind end
  local res
  res, err, code, kind = self:call("getDeviceBusinessAttributes", { pk = pk, dk = dk, type = "2", codeList = list },
    opts)
  if not res then return nil, "get_properties: " .. tostring(err), code, kind end
  if type(res.data) ~= "table" then return nil, "get_properties: the answer carries no data", nil, "http" end
  local items = res.data.customizeTslInfo
  if items == nil then items = {} end
  if type(items) ~= "table" then
    return nil, "get_properties: customizeTslInfo in the answer is not a list", nil, "http"
  end
  local values = {}
  for _, item in ipairs(list_items(items)) do
    -- an item that is not an object, or names no property, says nothing: skip it
    local c = type(item) == "table" and item.resourceCode
    if type(c) == "string" then
      local spec = m.properties[c] or { code = c, dataType = item.dataType }
      local v, verr = read_value(spec, item.resourceValce)
      if v == nil and item.resourceValce ~= nil then return nil, "get_properties: " .. verr, nil, "http" end
      values[c] = v
    end
  end
  return values, res
end

--- A product's thing model (TSL) as the platform describes it: `properties`,
-- `services` and `events`, each a list of items with `code`, `name`,
-- `dataType`, `subType`, `specs` (and `inputData` / `outputData`), decoded from
-- the JSON text some products wrap it in. Fetched once per client and product
-- and shared with the typed helpers: treat it as read-only.
-- @tparam string pk product key
-- @treturn table the thing model
-- @usage for _, p in ipairs(assert(client:thing_model("p11pLZ")).properties or {}) do print(p.code) end
function _M:thing_model(pk)
  if type(pk) ~= "string" or pk == "" then return usage("thing_model", "pk must be a non-empty string") end
  local m, err, code, kind = model(self, pk, "thing_model")
  if not m then return nil, err, code, kind end
  return m.document
end

-- ------------------------------------------------------------------------
-- writing: Lua values -> native JSON values (checked first)
-- ------------------------------------------------------------------------

local function utf8_length(s)
  local _, n = gsub(s, "[^\128-\191]", "")
  return n
end

local function number_text(n)
  local i = to_integer(n)
  if i then return format("%d", i) end
  return format("%.15g", n)
end

local write_value

local function check_range(spec, n)
  local s = type(spec.specs) == "table" and spec.specs or {}
  local lo, hi = tonumber(s.min), tonumber(s.max)
  if lo and n < lo then return format("%s is below the minimum %s", number_text(n), s.min) end
  if hi and n > hi then return format("%s is above the maximum %s", number_text(n), s.max) end
end

-- Each writer returns the value as it goes into the JSON text (false is a
-- value; nil, err is a refusal).
local writers = {
  BOOL = function(v)
    if type(v) == "boolean" then return v end
    return nil, "must be a boolean"
  end,
  INT = function(v, spec)
    local n = type(v) == "number" and to_integer(v)
    if not n then return nil, "must be an integer" end
    local err = check_range(spec, n)
    if err then return nil, err end
    local s = type(spec.specs) == "table" and spec.specs or {}
    local step, lo = tonumber(s.step), tonumber(s.min) or 0
    if step and step > 1 and (n - lo) % step ~= 0 then
      return nil, format("must be a multiple of %s from %s", s.step, s.min)
    end
    return n
  end,
  FLOAT = function(v, spec)
    if type(v) ~= "number" or v ~= v or v == huge or v == -huge then return nil, "must be a number" end
    local err = check_range(spec, v)
    if err then return nil, err end
    return v
  end,
  ENUM = function(v, spec)
    local want = type(v) == "number" and number_text(v) or v
    for _, item in ipairs(type(spec.specs) == "table" and spec.specs or {}) do
      if type(item) == "table" and (tostring(item.value) == want or item.name == want) then
        -- the value as a number; a model whose values are not numbers keeps its text
        local n = tonumber(item.value)
        if n and (n ~= n or n == huge or n == -huge) then n = nil end
        return to_integer(n) or n or tostring(item.value)
      end
    end
    return nil, format("%s is not one of its values", tostring(v))
  end,
  TEXT = function(v, spec)
    if type(v) ~= "string" then return nil, "must be a string" end
    local max = type(spec.specs) == "table" and tonumber(spec.specs.length)
    if max and utf8_length(v) > max then return nil, format("is longer than %d characters", max) end
    return v
  end,
  DATE = function(v)
    local n = type(v) == "number" and to_integer(v)
    if not n or n < 0 then return nil, "must be a timestamp in milliseconds" end
    return n
  end,
  -- a JSON object of the members given (an empty table is {})
  STRUCT = function(v, spec)
    if type(v) ~= "table" then return nil, "must be a table of members" end
    local known, out = members(spec), {}
    local by_code = {}
    for _, m in ipairs(known) do by_code[m.code] = true end
    for k in pairs(v) do
      if not by_code[k] then return nil, format("has no member '%s'", tostring(k)) end
    end
    for _, m in ipairs(known) do
      if v[m.code] ~= nil then
        local x, err = write_value(m, v[m.code])
        if x == nil then return nil, err end
        out[m.code] = x
      end
    end
    return out
  end,
  -- a JSON list of the elements
  ARRAY = function(v, spec)
    if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then return nil, "must be a list" end
    local size = type(spec.specs) == "table" and tonumber(spec.specs.size)
    if size and #v > size then return nil, format("has more than %d elements", size) end
    local el, out = element(spec), {}
    for i, x in ipairs(v) do
      local y, err = write_value(el, x)
      if y == nil then return nil, err end
      out[i] = y
    end
    return json.array(out)
  end,
}
writers.DOUBLE = writers.FLOAT

write_value = function(spec, v)
  local writer = writers[spec.dataType]
  if not writer then
    return nil, format("property '%s' has an unknown data type %s", tostring(spec.code), tostring(spec.dataType))
  end
  local x, err = writer(v, spec)
  if x == nil then
    if find(err, "^property '") then return nil, err end
    return nil, format("'%s' %s", tostring(spec.code), err)
  end
  return x
end

-- Check values against a list of specs by code; -> sorted payload entries or nil, err.
local function payload(specs, values, what, writable)
  if type(values) ~= "table" or next(values) == nil then
    return nil, what .. " must be a non-empty table of code = value"
  end
  local codes = {}
  for k in pairs(values) do
    if type(k) ~= "string" then return nil, what .. " must be keyed by code" end
    codes[#codes + 1] = k
  end
  sort(codes)
  local out = {}
  for i, c in ipairs(codes) do
    local spec = specs[c]
    if not spec then return nil, format("no %s '%s' in the product's thing model", what, c) end
    if writable and type(spec.subType) == "string" and not find(spec.subType, "W") then
      return nil, format("property '%s' is read-only", c)
    end
    local x, err = write_value(spec, values[c])
    if x == nil then return nil, err end
    out[i] = { [c] = x }
  end
  return out
end

--- Check values to write against a product's properties, as `set_properties`
-- does: type, range, enum, length, writability. -> a list of `{ code = value }`
-- (sorted by code, values as they go into JSON), or nil, err.
-- @tparam table properties the thing model's properties by code (`model(...).properties`)
-- @tparam table values `{ code = value }`
function _M.write_list(properties, values)
  return payload(properties, values, "property", true)
end

local function control(self, helper, pk, dk, fields, opts)
  fields.deviceList = { { productKey = pk, deviceKey = dk } }
  local res, err, code, kind = self:call("batchControlDevice", fields, opts)
  if not res then return nil, helper .. ": " .. tostring(err), code, kind end
  local data = type(res.data) == "table" and res.data or {}
  data.successList = data.successList or {}
  data.failureList = data.failureList or {}
  return data, res
end

local function check_device(name, pk, dk)
  if type(pk) ~= "string" or pk == "" or type(dk) ~= "string" or dk == "" then
    return usage(name, "pk and dk must be non-empty strings")
  end
  return true
end

--- Write properties of one device, checked against the thing model first.
-- Nothing is sent when a value does not fit its property.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam table values `{ code = value }` with Lua values (booleans, numbers, strings,
--   tables for STRUCT and lists for ARRAY); ENUM takes a value or its name
-- @tparam[opt] table opts per-call options
-- @treturn table `{ successList = {...}, failureList = {...} }` (per device)
-- @treturn table the raw envelope of batchControlDevice
-- @usage local r = assert(client:set_properties(pk, dk, { switch = true, brightness = 80 }))
function _M:set_properties(pk, dk, values, opts)
  local ok, err, code, kind = check_device("set_properties", pk, dk)
  if not ok then return nil, err, code, kind end
  local m
  m, err, code, kind = model(self, pk, "set_properties")
  if not m then return nil, err, code, kind end
  local list
  list, err = payload(m.properties, values, "property", true)
  if not list then return usage("set_properties", err) end
  local data
  data, err = json.encode(list)
  if not data then return usage("set_properties", err) end
  return control(self, "set_properties", pk, dk, { type = 2, data = data }, opts)
end

--- Call a service of one device, its inputs checked against the thing model.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam string service the service's code
-- @tparam[opt] table params `{ input_code = value }`
-- @tparam[opt] table opts per-call options
-- @treturn table `{ successList, failureList }`
-- @treturn table the raw envelope
function _M:call_service(pk, dk, service, params, opts)
  local ok, err, code, kind = check_device("call_service", pk, dk)
  if not ok then return nil, err, code, kind end
  if type(service) ~= "string" then return usage("call_service", "service must be a string") end
  local m
  m, err, code, kind = model(self, pk, "call_service")
  if not m then return nil, err, code, kind end
  local spec = m.services[service]
  if not spec then return usage("call_service", format("no service '%s' in the product's thing model", service)) end
  local inputs = {}
  if params ~= nil and (type(params) ~= "table" or next(params) ~= nil) then
    inputs, err = payload(index_by_code(spec.inputData), params, "input of " .. service, false)
    if not inputs then return usage("call_service", err) end
  end
  local data
  data, err = json.encode { { [service] = json.array(inputs) } }
  if not data then return usage("call_service", err) end
  return control(self, "call_service", pk, dk, { type = 3, data = data }, opts)
end

--- Send pass-through (raw) data to one device.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam string data hex digits (`"hex"`, the default) or text (`"text"`), at most 4096 characters
-- @tparam[opt] string encoding `"hex"` or `"text"`
-- @tparam[opt] table opts per-call options
-- @treturn table `{ successList, failureList }`
-- @treturn table the raw envelope
function _M:send_raw(pk, dk, data, encoding, opts)
  local ok, err, code, kind = check_device("send_raw", pk, dk)
  if not ok then return nil, err, code, kind end
  encoding = encoding or "hex"
  if type(data) ~= "string" or data == "" then return usage("send_raw", "data must be a non-empty string") end
  if #data > 4096 then return usage("send_raw", "data is longer than 4096 characters") end
  local format_code
  if encoding == "hex" then
    if find(data, "[^%x]") or #data % 2 ~= 0 then
      return usage("send_raw", "data must be an even number of hex digits")
    end
    format_code = 1
  elseif encoding == "text" then
    format_code = 2
  else
    return usage("send_raw", "encoding must be \"hex\" or \"text\"")
  end
  return control(self, "send_raw", pk, dk, { type = 1, dataFormat = format_code, data = data }, opts)
end

return _M
