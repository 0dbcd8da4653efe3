-- Test-only control of the realtime channel: the broker's state, what it does
-- to its clients (drop, restart, freeze), errors for one client, and a burst of
-- reports for ordering and throughput tests.
--
--   GET  /_fake/broker            { url, broker = "running" | "frozen" | "stopped", connected, clients,
--                                   connects, disconnects, refused, restarts, start_ms, commands }
--   GET  /_fake/broker/sessions?since=N&prefix=P
--                                 { connects, peak, at }: the most Apps connected at once (with
--                                  client ids starting with P, when given) seen at any App connect
--                                  numbered above N, and the client ids of that moment
--   POST /_fake/broker/drop       every App disconnected (the broker stays up) -> { dropped }
--   POST /_fake/broker/restart    the broker stopped and started again, same port -> { start_ms }
--   POST /_fake/broker/freeze     { seconds? } the broker stops answering (SIGSTOP) until thawed,
--                                  or for `seconds` -> { frozen, seconds }
--   POST /_fake/broker/thaw       it answers again -> { frozen = false }
--   POST /_fake/broker/error      { clientId, code, msg?, productKey?, deviceKey?, msgId? } an error
--                                  for one client on q/1/u/<clientId>/sys_ -> { connected }
--   POST /_fake/device/burst      { productKey, deviceKey, count = 1000, code = "brightness",
--                                   as_strings? } count bus_ reports in a row, kv { code = i } for
--                                   i = 1..count, packetIds consecutive -> { count, ms }
--
-- Every endpoint answers 503 { error } when the fake runs without its broker or
-- its device side does not answer. Internal: POST /_fake/broker/command
-- (realtime_commands.lua).
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local control = require "quecapi.fakecloud.control"
local envelope = require "quecapi.fakecloud.envelope"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local realtime = require "quecapi.fakecloud.realtime"

local reply, bad, body = control.reply, control.bad, control.body
local type, tonumber, ipairs = type, tonumber, ipairs

local MAX_BURST = 100000

local function unavailable(err)
  return envelope.send(503, json.encode { error = err })
end

-- The device side's answer to `req`, or nil after answering 503.
local function ask(req, timeout_ms)
  local answer, err = realtime.ask(req, timeout_ms)
  if not answer then
    unavailable(err)
    return nil
  end
  return answer
end

control.route("GET", "/_fake/broker", function()
  local status = ask { op = "status" }
  if not status then return end
  local s = realtime.stats()
  return reply {
    url = realtime.url(), broker = status.broker, frozen_for = status.frozen_for,
    connected = #s.clients, clients = json.array(s.clients),
    connects = s.connects, disconnects = s.disconnects, refused = s.refused,
    restarts = status.restarts, start_ms = status.start_ms, commands = json.array(state.commands),
  }
end)

-- Two sessions of one account at once: the plugin writes a line at every App
-- connect with every App connected then, so any overlap shows in one line.
control.route("GET", "/_fake/broker/sessions", function()
  local args = ngx.req.get_uri_args()
  local since, prefix = tonumber(args.since) or 0, type(args.prefix) == "string" and args.prefix or ""
  local out = { connects = realtime.stats().connects, peak = 0, at = json.array {} }
  for _, line in ipairs(realtime.connect_log()) do
    if line.connect > since then
      local ids = {}
      for _, id in ipairs(line.clients) do
        if id:sub(1, #prefix) == prefix then ids[#ids + 1] = id end
      end
      if #ids > out.peak then out.peak, out.at = #ids, json.array(ids) end
    end
  end
  return reply(out)
end)

-- The broker disconnects its Apps at once; the answer waits until its counts
-- show them gone (WebSocket clients close a moment later), at most 3 s.
control.route("POST", "/_fake/broker/drop", function()
  local before = #realtime.stats().clients
  if not ask { op = "drop" } then return end
  local left = before
  for _ = 1, 300 do
    left = #realtime.stats().clients
    if left == 0 then break end
    ngx.sleep(0.01)
  end
  return reply { dropped = before - left, connected = left }
end)

control.route("POST", "/_fake/broker/restart", function()
  local answer = ask({ op = "restart" }, 30000)
  if not answer then return end
  return reply { ok = true, start_ms = answer.start_ms }
end)

control.route("POST", "/_fake/broker/freeze", function()
  local p = body()
  local seconds = p.seconds
  if seconds ~= nil and not (type(seconds) == "number" and seconds > 0) then
    return bad("seconds is a number of seconds above 0 (none: until thawed)")
  end
  local answer = ask { op = "freeze", seconds = seconds }
  if not answer then return end
  return reply { frozen = true, seconds = seconds }
end)

control.route("POST", "/_fake/broker/thaw", function()
  if not ask { op = "thaw" } then return end
  return reply { frozen = false }
end)

control.route("POST", "/_fake/broker/error", function()
  local p = body()
  if type(p.clientId) ~= "string" or p.clientId == "" then return bad("clientId is required") end
  local code = tonumber(p.code)
  if not code then return bad("code is required (4021 offline, 4007 not bound, 4026 quota)") end
  local connected = false
  for _, id in ipairs(realtime.stats().clients) do
    if id == p.clientId then connected = true end
  end
  if not ask { op = "direct", clientId = p.clientId, payload = realtime.error_payload {
    code = code, msg = p.msg, productKey = p.productKey, deviceKey = p.deviceKey, msgId = p.msgId,
  } } then return end
  return reply { ok = true, connected = connected }
end)

control.route("POST", "/_fake/device/burst", function()
  local p = body()
  local t = things.get(p.productKey, p.deviceKey)
  if not t then return bad("no device " .. tostring(p.productKey) .. "/" .. tostring(p.deviceKey)) end
  local count = p.count == nil and 1000 or tonumber(p.count)
  if not count or count < 1 or count > MAX_BURST or count % 1 ~= 0 then
    return bad("count is 1 to " .. MAX_BURST)
  end
  local product = products.get(t.productKey)
  local def = product and products.property(product, p.code or "brightness")
  if not def then return bad("the product has no property " .. tostring(p.code or "brightness")) end
  -- the values are a sequence, not the device's state: nothing is recorded
  local list, now = {}, state.now_ms()
  for i = 1, count do
    list[i] = realtime.report(t, { [def.code] = p.as_strings and tostring(i) or i }, now)
  end
  local t0 = ngx.now()
  local answer = ask({ op = "publish", messages = list }, 60000)
  if not answer then return end
  ngx.update_time()
  return reply { count = answer.published, dropped = answer.dropped, ms = math.floor((ngx.now() - t0) * 1000) }
end)

return {}
