-- JSON for the fake cloud's answers: a private cjson instance (so no setting leaks
-- into anything else loaded in the worker) and a way to send an empty array as [],
-- which plain cjson cannot tell from an empty object.
local cjson = require("cjson").new()

local _M = { null = cjson.null }

-- A marker cjson encodes as a plain string; encode() turns it back into [].
local EMPTY = "@@fakecloud:empty-array@@"
local EMPTY_JSON = '"' .. EMPTY .. '"'

-- t itself, or the empty-array marker when t has no elements.
function _M.array(t)
  if t == nil or next(t) == nil then return EMPTY end
  return t
end

function _M.encode(v)
  local text = cjson.encode(v)
  if text:find(EMPTY_JSON, 1, true) then
    text = text:gsub(EMPTY_JSON:gsub("%p", "%%%0"), "[]")
  end
  return text
end

-- value, or nil, err; never raises.
function _M.decode(text)
  local ok, v = pcall(cjson.decode, text)
  if ok then return v end
  return nil, v
end

-- A JSON object text with keys in the given order (cjson orders keys by hash).
function _M.ordered_object(keys, values)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = cjson.encode(k) .. ":" .. _M.encode(values[i])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

return _M
