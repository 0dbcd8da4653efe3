--- Section 3 worker: decoding a device page.
--
--   lua bench/json.lua PAGE_FILE SECONDS
--
-- prints milliseconds per decode for:
--   cjson        cjson.decode alone: the limit (nulls stay cjson.null, numbers floats on 5.4)
--   quecapi      quecapi.json.decode: nulls dropped, integers on Lua 5.3+
--   cjson_walk   lua-cjson and a Lua walk over the result doing the same: quecapi 0.1.0's decode
local lib = require "lib"
local json = require "quecapi.json"
local cjson = require "cjson"

local text = lib.read(assert(arg[1], "usage: json.lua PAGE_FILE SECONDS"))
local seconds = tonumber(arg[2]) or 0.4

-- quecapi 0.1.0's decode, for the before/after comparison.
local walker = require("cjson.safe").new()
walker.decode_max_depth(200)
local null, tointeger = walker.null, math.tointeger
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
local function cjson_walk(s)
  local v, err = walker.decode(s)
  if err then return nil, err end
  return normalise(v)
end

-- The decoders must agree before their speed means anything.
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b and (not math.type or math.type(a) == math.type(b))
  end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
local mine = assert(json.decode(text))
assert(#mine.data.list == mine.data.total and mine.data.list[1].locateType == nil)
assert(same(mine, cjson_walk(text)), "quecapi.json.decode and cjson + walk disagree")
if math.type then assert(math.type(mine.data.list[1].deviceBindTimeTs) == "integer") end

local prefix = lib.interpreter .. "_json_"
for _, c in ipairs {
  { "cjson", cjson.decode },
  { "quecapi", json.decode },
  { "cjson_walk", cjson_walk },
} do
  local decode = c[2]
  local r = lib.rate(function() decode(text) end, seconds)
  lib.emit(prefix .. c[1], string.format("%.3f", 1000 / r))
end
