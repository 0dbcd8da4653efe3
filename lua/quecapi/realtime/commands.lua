--- Commands an App publishes to a device on the realtime channel (`q/1/d/<channel>/sys_`,
-- QoS 1): WRITE-ATTR and READ-ATTR, JSON as the platform's own Apps send them:
--
--     {"msgId":1234,"productKey":"p11pLZ","deviceKey":"655001","type":"WRITE-ATTR",
--      "kv":"[{\"brightness\":80,\"switch\":true}]","cacheTime":0,"isCache":false,"isCover":false}
--
-- `kv` is a JSON *string* holding native JSON values; READ-ATTR's holds the list
-- of codes. `msgId` is 16-bit; the sequence starts at a value taken from the
-- clock, so ids do not repeat across restarts (the platform rejects ids it saw
-- recently), and is shared by every channel of the process.
--
-- Pure (the clock is the caller's): shared by the plain-Lua and the nginx connections.
-- @module quecapi.realtime.commands

local json = require "quecapi.json"

local pairs, ipairs, floor = pairs, ipairs, math.floor

local _M = {}

local next_id -- the process's next msgId, 1..65535

--- The next message id.
-- @tparam number now_ms wall-clock milliseconds (seeds the sequence on first use)
-- @treturn int 1..65535
function _M.next_id(now_ms)
  if not next_id then next_id = floor(now_ms) % 65535 + 1 end
  local id = next_id
  next_id = id % 65535 + 1
  return id
end

local function command(kind, pk, dk, kv_text, id)
  return json.encode {
    msgId = id, productKey = pk, deviceKey = dk, type = kind, kv = kv_text,
    cacheTime = 0, isCache = false, isCover = false,
  }
end

--- A WRITE-ATTR command.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam table list `{ { code = value }, ... }` as `quecapi.things.write_list` checked it
-- @tparam int id the msgId
-- @return the JSON text, or nil, err
function _M.write(pk, dk, list, id)
  local merged = {}
  for _, pair in ipairs(list) do
    for code, v in pairs(pair) do merged[code] = v end
  end
  local kv, err = json.encode(json.array { merged })
  if not kv then return nil, err end
  return command("WRITE-ATTR", pk, dk, kv, id)
end

--- A READ-ATTR command.
-- @tparam string pk product key
-- @tparam string dk device key
-- @tparam {string,...} codes the property codes to read
-- @tparam int id the msgId
-- @return the JSON text, or nil, err
function _M.read(pk, dk, codes, id)
  local kv, err = json.encode(json.array(codes))
  if not kv then return nil, err end
  return command("READ-ATTR", pk, dk, kv, id)
end

return _M
