-- Times as the platform prints and reads them.
local _M = {}

-- "2025-04-16 13:19:41" for epoch milliseconds (UTC: the docs name no zone).
function _M.datetime(ms)
  return os.date("!%Y-%m-%d %H:%M:%S", math.floor(ms / 1000))
end

-- An epoch-milliseconds parameter: integral digits only, else nil.
function _M.ms(v)
  if type(v) == "number" then return v % 1 == 0 and v >= 0 and v or nil end
  if type(v) == "string" and v:find("^%d+$") then return tonumber(v) end
end

return _M
