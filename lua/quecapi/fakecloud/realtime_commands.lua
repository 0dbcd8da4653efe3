-- Commands Apps publish on the realtime channel (q/1/d/CH/sys_, QoS 1). The
-- broker's plugin hands each to the device side with the id of the client that
-- sent it and the token that client connected with; the device side posts it
-- here (POST /_fake/broker/command { clientId, token, topic, payload }), one at
-- a time, in the order they arrived. The fake answers as the platform and its
-- devices do (realtime-channel.md):
--
--   WRITE-ATTR  `kv` a JSON text of [{code: value}, ...], native JSON values
--               checked against the thing model as batchControlDevice checks
--               them -> the device applies them, reports the properties it
--               changed on bus_, then acknowledges on ack_ ("succ"); an unknown
--               or read-only code or a bad value -> ack_ "fail", nothing applied
--   READ-ATTR   `kv` a JSON text of ["code", ...] ([] for every property) -> a
--               bus_ report of those values, then ack_ "succ"; an unknown code
--               -> ack_ "fail"
--   a device not bound to (nor shared with) the token's user -> error 4007 to
--   the client (q/1/u/<clientId>/sys_); a device offline -> 4021; nothing else
--   `msgId` (1..65535) is echoed in the ack; `kv` sent as JSON rather than as
--   a JSON text, a bad msgId or an unknown type -> ack_ "fail"
--   a payload that is not a JSON object, or a device other than the topic's,
--   goes unanswered.
--
-- The report comes before the ack, so an App that has the ack has the report.
-- Every command is kept, with its outcome (GET /_fake/broker `commands`).
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local control = require "quecapi.fakecloud.control"
local crypto = require "quecapi.fakecloud.crypto"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local tsl = require "quecapi.fakecloud.tsl"
local command = require "quecapi.fakecloud.command"
local realtime = require "quecapi.fakecloud.realtime"

local type, ipairs = type, ipairs

local MAX_KEPT = 200

local function remember(entry)
  local list = state.commands
  list[#list + 1] = entry
  if #list > MAX_KEPT then table.remove(list, 1) end
end

local function write_attr(t, product, entry, cmd, kv)
  local entries, err = tsl.entries(kv, "kv")
  if not entries then return nil, err end
  if #entries == 0 then return nil, "kv names no property" end
  local values
  values, err = command.writes(product, entries)
  if not values then return nil, err end
  local ms = state.now_ms()
  things.record(t, values, ms)
  t.writes[#t.writes + 1] = { via = "mqtt", msgId = cmd.msgId, clientId = entry.clientId, uid = entry.uid,
                              ms = ms, kv = cmd.kv, values = values }
  return { realtime.report_changes(t, values, ms) }
end

local function read_attr(t, product, kv)
  if type(kv) ~= "table" or not tsl.is_list(kv) then return nil, "kv must be a list of property codes" end
  local codes = {}
  if #kv == 0 then
    for _, def in ipairs(product.tsl.properties or {}) do codes[#codes + 1] = def.code end
  end
  for _, code in ipairs(kv) do
    if type(code) ~= "string" or not products.property(product, code) then
      return nil, "unknown property " .. json.encode(code)
    end
    codes[#codes + 1] = code
  end
  return { realtime.report(t, realtime.kv(t, codes)) }
end

local KINDS = { ["WRITE-ATTR"] = true, ["READ-ATTR"] = true }

-- What to publish for one command (nil when it goes unanswered); the outcome
-- lands in `entry`.
local function answer(p, entry)
  local cmd = type(p.payload) == "string" and json.decode(p.payload)
  if type(cmd) ~= "table" then
    entry.outcome, entry.error = "malformed", "the payload is not a JSON object"
    return nil
  end
  local pk, dk = cmd.productKey, cmd.deviceKey
  entry.type, entry.msgId, entry.productKey, entry.deviceKey = cmd.type, cmd.msgId, pk, dk
  if type(pk) ~= "string" or type(dk) ~= "string" then
    entry.outcome, entry.error = "malformed", "productKey and deviceKey are required"
    return nil
  end
  if p.topic ~= realtime.command_topic(pk, dk) then
    entry.outcome, entry.error = "mismatch", "published on " .. tostring(p.topic) .. " for another device"
    return nil
  end
  local uid = crypto.token_uid(p.token)
  entry.uid = uid
  local t = things.get(pk, dk)
  if not (uid and state.users[uid] and t and (things.binding(uid, pk, dk) or things.share_for(uid, pk, dk))) then
    entry.outcome = 4007
    realtime.send_error(p.clientId, { code = 4007, productKey = pk, deviceKey = dk, msgId = cmd.msgId })
    return nil
  end
  if not t.online then
    entry.outcome = 4021
    realtime.send_error(p.clientId, { code = 4021, productKey = pk, deviceKey = dk, msgId = cmd.msgId })
    return nil
  end
  local id = cmd.msgId
  local function fail(msg)
    entry.outcome, entry.error = "fail", msg
    return { realtime.ack(pk, dk, id, false) }
  end
  if type(id) ~= "number" or id % 1 ~= 0 or id < 1 or id > 65535 then
    return fail("msgId must be an integer 1..65535")
  end
  if not KINDS[cmd.type] then return fail("unknown command type " .. json.encode(cmd.type)) end
  -- the platform takes kv as a JSON text inside the JSON command
  if type(cmd.kv) ~= "string" then return fail("kv must be a JSON text (a string)") end
  local kv = json.decode(cmd.kv)
  if kv == nil then return fail("kv is not a JSON text") end
  local product = products.get(pk)
  if not product then return fail("product " .. pk .. " has no thing model") end
  local out, err
  if cmd.type == "WRITE-ATTR" then
    out, err = write_attr(t, product, entry, cmd, kv)
  else
    out, err = read_attr(t, product, kv)
  end
  if not out then return fail(err) end
  entry.outcome = "succ"
  out[#out + 1] = realtime.ack(pk, dk, id, true)
  return out
end

control.route("POST", "/_fake/broker/command", function()
  local p = control.body()
  local entry = { clientId = p.clientId, topic = p.topic, payload = p.payload, ms = state.now_ms() }
  remember(entry)
  local out = answer(p, entry)
  if out then realtime.publish(out) end
  return control.reply { ok = true, outcome = entry.outcome }
end)

return {}
