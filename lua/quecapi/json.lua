--- JSON for quecapi: a private lua-cjson instance, so the global cjson settings
-- other code relies on are never touched.
--
-- decode: JSON null becomes nil (an absent field) and, on Lua 5.3+, integral
-- numbers become integers. encode: deterministic (sorted keys), so a request body
-- is the same bytes every time; an empty table is an object unless marked with
-- `array_mt`.
-- @module quecapi.json

local cjson = require("cjson.safe").new()

local type, pairs, next, tostring = type, pairs, next, tostring
local concat, sort = table.concat, table.sort
local format, gsub, byte = string.format, string.gsub, string.byte
local tointeger = math.tointeger -- nil on Lua 5.1 / LuaJIT: numbers stay doubles
local huge = math.huge

-- Nesting is bounded so a hostile body cannot exhaust the C stack.
cjson.decode_max_depth(200)
cjson.encode_max_depth(200)

local null = cjson.null

local _M = { array_mt = {} }

local function normalise(t)
  for k, v in next, t do
    local tv = type(v)
    if tv == "table" then
      normalise(v)
    elseif v == null then
      t[k] = nil
    elseif tv == "number" and tointeger then
      local i = tointeger(v)
      if i then t[k] = i end
    end
  end
  return t
end

--- Decode a JSON text.
-- @tparam string s
-- @return the value (nil for JSON null), or nil, err
function _M.decode(s)
  local v, err = cjson.decode(s)
  if err then return nil, err end
  if v == null then return nil end
  if type(v) == "table" then return normalise(v) end
  if type(v) == "number" and tointeger then return tointeger(v) or v end
  return v
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
local function escape_char(c)
  return escapes[c] or format("\\u%04x", byte(c))
end

local function encode_string(s)
  return '"' .. gsub(s, '[%c"\\]', escape_char) .. '"'
end

local encode_value

local function is_array(t)
  if getmetatable(t) == _M.array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function encode_table(t, depth)
  if depth > 200 then error("nesting too deep", 0) end
  local out = {}
  if is_array(t) then
    for i = 1, #t do out[i] = encode_value(t[i], depth + 1) end
    return "[" .. concat(out, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("object keys must be strings", 0) end
    keys[#keys + 1] = k
  end
  sort(keys)
  for i = 1, #keys do
    local k = keys[i]
    out[i] = encode_string(k) .. ":" .. encode_value(t[k], depth + 1)
  end
  return "{" .. concat(out, ",") .. "}"
end

encode_value = function(v, depth)
  local tv = type(v)
  if tv == "string" then return encode_string(v) end
  if tv == "number" then
    if v ~= v or v == huge or v == -huge then error("cannot encode NaN or infinity", 0) end
    if tointeger and tointeger(v) then return format("%d", v) end
    if not tointeger and v == math.floor(v) and v > -2^53 and v < 2^53 then
      return format("%.0f", v)
    end
    return format("%.17g", v)
  end
  if tv == "boolean" then return tostring(v) end
  if v == nil or v == null then return "null" end
  if tv == "table" then return encode_table(v, depth) end
  error("cannot encode a " .. tv, 0)
end

--- Encode a Lua value as JSON.
-- @return the JSON text, or nil, err
function _M.encode(v)
  local ok, res = pcall(encode_value, v, 0)
  if ok then return res end
  return nil, res
end

--- Mark a table as a JSON array (so an empty one encodes as []).
function _M.array(t)
  return setmetatable(t or {}, _M.array_mt)
end

return _M
