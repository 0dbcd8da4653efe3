--- JSON for quecapi, without touching the global lua-cjson settings other code
-- relies on.
--
-- decode: the C core's strict decoder (csrc/json.c), one pass from text to the
-- tables callers get: JSON null becomes nil (an absent field; a hole in an
-- array) and, on Lua 5.3+, integers stay integers. encode: deterministic (sorted
-- keys), so a request body is the same bytes every time; an empty table is an
-- object unless marked with `array_mt`.
-- @module quecapi.json

local core = require "quecapi.core"

local type, pairs, tostring, pcall, rawget, setmetatable = type, pairs, tostring, pcall, rawget, setmetatable
local concat, sort = table.concat, table.sort
local format, gsub, byte, find = string.format, string.gsub, string.byte, string.find
local floor, tonumber = math.floor, tonumber
local tointeger = math.tointeger -- nil on Lua 5.1 / LuaJIT: numbers stay doubles
local huge = math.huge
local json_decode = core.json_decode

-- Nesting is bounded so a hostile body cannot exhaust the C stack.
local MAX_DEPTH = 200

-- Encoded as null, like nil: the sentinel other JSON code around may put in
-- tables — ngx.null in nginx, lua-cjson's when it is installed, else a private
-- one (quecapi needs no cjson).
local null
do
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.null ~= nil then
    null = ngx.null
  else
    local ok, cjson = pcall(require, "cjson")
    null = ok and type(cjson) == "table" and cjson.null
      or setmetatable({}, { __tostring = function() return "null" end })
  end
end

local _M = { array_mt = {}, null = null }

--- Decode a JSON text.
-- A literal without fraction or exponent is an integer on Lua 5.3+ ("1.0" is a float).
-- An array that holds no value (`[]`) is marked with `array_mt`, so that encoding
-- it again writes `[]`.
-- @tparam string s
-- @return the value (nil for JSON null), or nil, err
function _M.decode(s)
  if type(s) ~= "string" then return nil, "JSON text must be a string, not a " .. type(s) end
  return json_decode(s, MAX_DEPTH, _M.array_mt)
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

-- `indent`: nil for the compact form; else the text of one level, and the
-- members go one per line.
local function encode_table(t, depth, indent)
  if depth > MAX_DEPTH then error("nesting too deep", 0) end
  local out = {}
  local open, sep, close, colon = "", ",", "", ":"
  if indent then
    local pad = "\n" .. indent:rep(depth + 1)
    open, sep, close, colon = pad, "," .. pad, "\n" .. indent:rep(depth), ": "
  end
  if is_array(t) then
    local n = #t
    if n == 0 then return "[]" end
    for i = 1, n do out[i] = encode_value(t[i], depth + 1, indent) end
    return "[" .. open .. concat(out, sep) .. close .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("object keys must be strings", 0) end
    keys[#keys + 1] = k
  end
  if #keys == 0 then return "{}" end
  sort(keys)
  for i = 1, #keys do
    local k = keys[i]
    out[i] = encode_string(k) .. colon .. encode_value(t[k], depth + 1, indent)
  end
  return "{" .. open .. concat(out, sep) .. close .. "}"
end

-- printf writes the locale's decimal point ("21,5" under de_DE); JSON, query
-- strings and signatures want ".". Whatever a locale uses (one byte or several)
-- becomes "."; digits, signs and the exponent are the same in every locale.
local function c_locale(s)
  if find(s, "^[%d%.eE%+%-]*$") then return s end
  return (gsub(s, "[^%d%.eE%+%-]+", "."))
end

--- The text of a finite number as JSON (and the platform's query strings) write
-- it: integers in full digits, other numbers in the fewest digits that read back
-- the same, with "." as the decimal point whatever the C locale says.
-- @tparam number v a finite number
-- @treturn string
local function number_text(v)
  if tointeger and tointeger(v) then return format("%d", v) end
  if v == floor(v) and v > -2^53 and v < 2^53 then
    return format("%.0f", v)
  end
  local s = c_locale(format("%.14g", v))
  if tonumber(s) ~= v then s = c_locale(format("%.17g", v)) end
  return s
end
_M.number_text = number_text

encode_value = function(v, depth, indent)
  local tv = type(v)
  if tv == "string" then return encode_string(v) end
  if tv == "number" then
    if v ~= v or v == huge or v == -huge then error("cannot encode NaN or infinity", 0) end
    return number_text(v)
  end
  if tv == "boolean" then return tostring(v) end
  if v == nil or v == null then return "null" end
  if tv == "table" then return encode_table(v, depth, indent) end
  error("cannot encode a " .. tv, 0)
end

--- Encode a Lua value as JSON: object keys sorted, so the same value is always
-- the same text.
-- @param v the value
-- @tparam[opt] table opts `indent`: a string (e.g. two spaces) to write one member
--   per line, nested levels indented by it; the compact form without
-- @return the JSON text, or nil, err
function _M.encode(v, opts)
  local indent = opts and opts.indent
  if indent ~= nil and (type(indent) ~= "string" or indent:find("[^ \t]")) then
    return nil, "indent must be a string of spaces or tabs"
  end
  local ok, res = pcall(encode_value, v, 0, indent)
  if ok then return res end
  return nil, res
end

--- Mark a table as a JSON array (so an empty one encodes as []).
function _M.array(t)
  return setmetatable(t or {}, _M.array_mt)
end

return _M
