-- The TSL value grammar: checking a value against a property's dataType and
-- specs, and printing values the way the platform returns them.
--
-- Two grammars, because two parties send values:
--
-- An App's write (batchControlDevice `data`, property writes and service inputs)
-- carries native JSON values, the form every open-source client that controls
-- devices on the live cloud sends (live-platform-evidence.md, "Where the live
-- clients differ", item 1):
--   properties  [{"switch":true},{"brightness":80},{"mode":2},{"label":"desk"}]
--   struct      [{"color":{"r":255,"g":0}}]                    (an object of members)
--   array       [{"schedule":[60,120]}]                         (a list of elements)
--   array of struct  [{"key":[{"r":1,"g":2},{"r":3}]}]
--   service     [{"blink":[{"times":3},{"interval":500}]}]      (inputs as the SDK's list of pairs)
-- The live cloud is proven to take these and nothing else, so a write refuses
-- BOOL and number values sent as strings ("true", "80"), and the older SaaS
-- payload forms for structs ([{"r":"255"},...]) and arrays ([{"0":"60"},...]),
-- for which there is no live evidence either way. ENUM takes a number or its
-- value as a string: live clients send both and both work.
--
-- A device's report (POST /_fake/device, seeded values, event outputs) is
-- lenient: some firmware reports numbers as strings (realtime-channel.md), and
-- structs and arrays may come in either form.
--
-- Values are kept normalized in Lua: BOOL boolean; INT, ENUM, DATE (epoch ms)
-- integral numbers; FLOAT, DOUBLE numbers; TEXT string; STRUCT { member = value };
-- ARRAY { value, ... }.
local json = require "quecapi.fakecloud.json"

local _M = {}

local NUMERIC = {
  "^%-?%d+$", "^%-?%d+%.%d*$", "^%-?%d*%.%d+$",
  "^%-?%d+[eE][%-+]?%d+$", "^%-?%d*%.?%d+[eE][%-+]?%d+$", "^%-?%d+%.%d*[eE][%-+]?%d+$",
}

-- A finite JSON number, else nil.
local function native_number(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return nil end
  return v
end

-- A number from a JSON number or a decimal string, else nil.
local function number_of(v)
  if type(v) == "number" then return native_number(v) end
  if type(v) ~= "string" then return nil end
  for _, p in ipairs(NUMERIC) do
    if v:find(p) then return tonumber(v) end
  end
end

local function integral(n)
  return n and n % 1 == 0 and n or nil
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then return "a list or object" end
  return tostring(v)
end

local function utf8_length(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

-- true for a decoded JSON array (an empty table counts as one), false for an object.
local function is_list(v)
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end
_M.is_list = is_list

-- The entries of a payload list [{"k":v},{"k2":v2}] as { {k, v}, ... }, or nil, msg.
-- Keys of one object come out sorted, for a stable order.
function _M.entries(v, what)
  if type(v) ~= "table" then return nil, what .. " must be a list of objects" end
  if not is_list(v) then return nil, what .. " must be a list of objects, not an object" end
  local out = {}
  for _, obj in ipairs(v) do
    if type(obj) ~= "table" or next(obj) == nil or #obj > 0 then
      return nil, what .. " must be a list of single-key objects"
    end
    local keys = {}
    for k in pairs(obj) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = { k, obj[k] } end
  end
  return out
end

local function bounds(def, n)
  local s = def.specs or {}
  local lo, hi = tonumber(s.min), tonumber(s.max)
  if (lo and n < lo) or (hi and n > hi) then
    return nil, string.format("%s: %s is out of range %s..%s", def.code, show(n), s.min or "", s.max or "")
  end
  return n
end

local check

-- The element definition of an ARRAY property.
local function element(def, i)
  local s = def.specs or {}
  return { code = def.code .. "[" .. i .. "]", dataType = s.dataType, specs = s.specs }
end

-- A STRUCT as { {member, value}, ... }: an object of members, or (reports only)
-- the SaaS list of single-member objects.
local function struct_pairs(def, v, lenient)
  if type(v) ~= "table" then return nil, def.code .. ": " .. show(v) .. " is not a STRUCT (a JSON object)" end
  if next(v) ~= nil and is_list(v) then
    if lenient then return _M.entries(v, def.code) end
    return nil, def.code .. ": a list is not a STRUCT; send a JSON object of members"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = { k, v[k] } end
  return out
end

local function struct(def, v, lenient, fill)
  local list, err = struct_pairs(def, v, lenient)
  if not list then return nil, err end
  local out = {}
  for _, kv in ipairs(list) do
    local member
    for _, m in ipairs(def.specs or {}) do
      if m.code == kv[1] then member = m end
    end
    if not member then return nil, string.format("%s: no member %q", def.code, kv[1]) end
    local val, merr = check(member, kv[2], lenient)
    if val == nil then return nil, def.code .. "." .. merr end
    out[member.code] = val
  end
  if fill then
    for _, m in ipairs(def.specs or {}) do
      if out[m.code] == nil then out[m.code] = _M.default(m) end
    end
  end
  return out
end

-- An element of the SaaS array form {"0": value}, unwrapped; nil for anything else.
local function keyed_element(x)
  if type(x) ~= "table" or x["0"] == nil then return nil end
  if next(x, next(x)) ~= nil then return nil end
  return x["0"]
end

local function array(def, v, lenient)
  if type(v) ~= "table" or not is_list(v) then
    return nil, def.code .. ": " .. show(v) .. " is not an ARRAY (a JSON list)"
  end
  local size = tonumber((def.specs or {}).size)
  if size and #v > size then
    return nil, string.format("%s: %d elements, at most %d allowed", def.code, #v, size)
  end
  local out = {}
  for i, x in ipairs(v) do
    if lenient then x = keyed_element(x) or x end
    local el = element(def, i)
    local val, verr
    if el.dataType == "STRUCT" then
      val, verr = struct(el, x, lenient, true)
    else
      val, verr = check(el, x, lenient)
    end
    if val == nil then return nil, verr end
    out[i] = val
  end
  return out
end

local CHECKS = {
  BOOL = function(def, v, lenient)
    if v == true or (lenient and v == "true") then return true end
    if v == false or (lenient and v == "false") then return false end
    return nil, def.code .. ": " .. show(v) .. " is not a BOOL (JSON true or false)"
  end,
  INT = function(def, v, lenient)
    local n = integral((lenient and number_of or native_number)(v))
    if not n then return nil, def.code .. ": " .. show(v) .. " is not an INT (a JSON integer)" end
    return bounds(def, n)
  end,
  FLOAT = function(def, v, lenient)
    local n = (lenient and number_of or native_number)(v)
    if not n then return nil, def.code .. ": " .. show(v) .. " is not a number (a JSON number)" end
    return bounds(def, n)
  end,
  ENUM = function(def, v)
    local n = integral(number_of(v))
    if n then
      for _, e in ipairs(def.specs or {}) do
        if tonumber(e.value) == n then return n end
      end
    end
    return nil, def.code .. ": " .. show(v) .. " is not one of the ENUM values"
  end,
  TEXT = function(def, v)
    if type(v) ~= "string" then return nil, def.code .. ": " .. show(v) .. " is not TEXT" end
    local max = tonumber((def.specs or {}).length)
    if max and utf8_length(v) > max then
      return nil, string.format("%s: text longer than %d characters", def.code, max)
    end
    return v
  end,
  DATE = function(def, v, lenient)
    local n = integral((lenient and number_of or native_number)(v))
    if not n or n < 0 then
      return nil, def.code .. ": " .. show(v) .. " is not a DATE (epoch milliseconds, a JSON integer)"
    end
    return n
  end,
  STRUCT = function(def, v, lenient) return struct(def, v, lenient, false) end,
  ARRAY = array,
}
CHECKS.DOUBLE = CHECKS.FLOAT

check = function(def, v, lenient)
  local f = CHECKS[def.dataType]
  if not f then return nil, def.code .. ": unsupported dataType " .. tostring(def.dataType) end
  if type(v) == "userdata" then return nil, def.code .. ": null is not a value" end
  return f(def, v, lenient)
end

-- The normalized value of an App's write for def (native JSON only), or nil, msg.
function _M.normalize(def, v)
  return check(def, v, false)
end

-- The normalized value of a device's report for def (strings for numbers and the
-- SaaS forms accepted), or nil, msg.
function _M.normalize_report(def, v)
  return check(def, v, true)
end

-- A written STRUCT updates only the members it names.
function _M.merge(def, current, value)
  if def.dataType ~= "STRUCT" then return value end
  local out = {}
  for _, m in ipairs(def.specs or {}) do
    local v = value[m.code]
    if v == nil and type(current) == "table" then v = current[m.code] end
    if v == nil then v = _M.default(m) end
    out[m.code] = v
  end
  return out
end

-- What a property reads before anything was written or reported.
function _M.default(def)
  local t, s = def.dataType, def.specs or {}
  if t == "BOOL" then return false end
  if t == "INT" or t == "FLOAT" or t == "DOUBLE" then
    local lo, hi = tonumber(s.min), tonumber(s.max)
    if lo and lo > 0 then return lo end
    if hi and hi < 0 then return hi end
    return 0
  end
  if t == "ENUM" then return tonumber(s[1] and s[1].value) or 0 end
  if t == "TEXT" then return "" end
  if t == "DATE" then return 0 end
  if t == "STRUCT" then
    local out = {}
    for _, m in ipairs(s) do out[m.code] = _M.default(m) end
    return out
  end
  if t == "ARRAY" then return {} end
  return ""
end

local function scalar_string(t, v)
  if t == "BOOL" then return v and "true" or "false" end
  if t == "FLOAT" or t == "DOUBLE" then return string.format("%.15g", v) end
  if t == "INT" or t == "ENUM" or t == "DATE" then return string.format("%.0f", v) end
  return tostring(v)
end

local function struct_text(def, v)
  local keys, vals = {}, {}
  for _, m in ipairs(def.specs or {}) do
    if v[m.code] ~= nil then
      keys[#keys + 1] = m.code
      vals[#vals + 1] = scalar_string(m.dataType, v[m.code])
    end
  end
  return json.ordered_object(keys, vals)
end

-- The value as the platform prints it in resourceValce and history lists: always
-- a string; a STRUCT is a JSON object text of member -> string, an ARRAY a JSON
-- array text of element strings (objects for struct elements).
function _M.to_string(def, v)
  local t = def.dataType
  if t == "STRUCT" then return struct_text(def, v) end
  if t == "ARRAY" then
    local el = element(def, 0)
    local parts = {}
    for i, e in ipairs(v) do
      parts[i] = el.dataType == "STRUCT" and struct_text(el, e) or json.encode(scalar_string(el.dataType, e))
    end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  return scalar_string(t, v)
end

-- The value as plain JSON (control API): objects and arrays stay structured.
function _M.to_json(def, v)
  if def.dataType == "ARRAY" then
    local out = {}
    for i, e in ipairs(v) do out[i] = e end
    return json.array(out)
  end
  return v
end

return _M
