-- The realtime channel from the cloud's side (realtime-channel.md): the topics
-- and payloads the platform publishes to Apps, handed to the fake's device side
-- (a paho client in a process of its own, device_py.lua) over a loopback
-- socket, and the file of valid access tokens the broker's plugin checks Apps
-- against (broker_plugin.lua).
--
-- Topics, with CH = "qd" .. productKey .. deviceKey (case kept):
--   q/2/d/CH/bus_   property reports  {productKey, deviceKey, type = "MATTR", subtype = "REPORT",
--                                      createdAt, ticket, data = {packetId, kv}}
--   q/2/d/CH/ack_   acknowledgements  {msgId, ticket, productKey, deviceKey, status = "succ" | "fail"}
--   q/2/d/CH/onl_   online state      {productKey, deviceKey, type = "ONLINE", createdAt, data = {value}}
--   q/1/u/<clientId>/sys_  errors for one client, delivered without a subscription
--                                     {code, msg, type = "BUSI-ERROR", productKey?, deviceKey?, msgId?}
-- Everything is published with QoS 0, as devices' reports are: a client that
-- is away misses them.
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local crypto = require "quecapi.fakecloud.crypto"
local products = require "quecapi.fakecloud.products"
local things = require "quecapi.fakecloud.things"
local tsl = require "quecapi.fakecloud.tsl"
local messages = require "quecapi.fakecloud.messages"

local type, ipairs, pairs, tostring, floor = type, ipairs, pairs, tostring, math.floor
local concat, format = table.concat, string.format

local _M = {}

-- dir (the run directory), device_port (nil when the fake runs without its
-- broker), url (the broker's URL for Apps); set by nginx.conf's init block.
local conf = {}

function _M.configure(c)
  conf = c or {}
  if conf.url == "" then conf.url = nil end
end

--- Does this fake cloud run a broker?
function _M.enabled()
  return conf.device_port ~= nil
end

function _M.url() return conf.url end
function _M.dir() return conf.dir end

--- Rewrite the broker's file of valid access tokens: "<expiry> <token>" a line,
-- the expiry in epoch seconds of the real clock (the fake's clock may run
-- ahead: clock_offset), so the plugin also refuses a token that ran out since.
-- Called whenever tokens are issued, refreshed, revoked or expired, and when
-- the clock offset changes; written aside and renamed, never half read.
function _M.tokens_changed()
  if not conf.dir or not conf.device_port then return end
  local now, offset = state.now(), state.config.clock_offset or 0
  local lines = {}
  for token, t in pairs(state.access) do
    if t.exp > now then lines[#lines + 1] = format("%d %s\n", floor(t.exp - offset), token) end
  end
  local path = conf.dir .. "/broker-tokens"
  local f, err = io.open(path .. ".tmp", "wb")
  if not f then
    ngx.log(ngx.ERR, "fake cloud: cannot write the broker's tokens: ", err)
    return
  end
  f:write(concat(lines))
  f:close()
  local ok, rerr = os.rename(path .. ".tmp", path)
  if not ok then ngx.log(ngx.ERR, "fake cloud: cannot replace the broker's tokens: ", rerr) end
end

--- One request to the device side (a JSON line each way, on a kept-alive
-- cosocket): its answer, or nil, err.
function _M.ask(req, timeout_ms)
  if not conf.device_port then return nil, "this fake cloud runs without its broker (FAKECLOUD_BROKER=off)" end
  local sock = ngx.socket.tcp()
  sock:settimeouts(2000, 5000, timeout_ms or 10000)
  local ok, err = sock:connect("127.0.0.1", conf.device_port)
  if not ok then return nil, "the device side does not answer: " .. tostring(err) end
  ok, err = sock:send(json.encode(req) .. "\n")
  if not ok then
    sock:close()
    return nil, "the device side: " .. tostring(err)
  end
  local line
  line, err = sock:receive("*l")
  if not line then
    sock:close()
    return nil, "the device side: " .. tostring(err)
  end
  sock:setkeepalive(60000, 16)
  local answer = json.decode(line)
  if type(answer) ~= "table" then return nil, "the device side answered " .. line end
  if not answer.ok then return nil, tostring(answer.error or "the device side failed"), answer end
  return answer
end

--- Publish `list` ({ topic, payload, qos }) in order through the device side.
-- @return how many were published, or nil, err (logged: a fake cloud whose
-- broker is away still answers its API)
function _M.publish(list)
  if #list == 0 or not conf.device_port then return 0 end
  local answer, err = _M.ask { op = "publish", messages = list }
  if not answer then
    ngx.log(ngx.WARN, "fake cloud: ", #list, " realtime message(s) not published: ", err)
    return nil, err
  end
  return answer.published
end

local function channel(pk, dk)
  return "qd" .. pk .. dk
end

--- q/2/d/CH/<kind> (kind "bus_", "ack_", "onl_", ...).
function _M.topic(pk, dk, kind)
  return "q/2/d/" .. channel(pk, dk) .. "/" .. kind
end

--- q/1/d/CH/sys_: where Apps publish commands.
function _M.command_topic(pk, dk)
  return "q/1/d/" .. channel(pk, dk) .. "/sys_"
end

-- A JSON object with keys in order, leaving out absent values.
local function object(keys, values)
  local k, v = {}, {}
  for _, key in ipairs(keys) do
    if values[key] ~= nil then
      k[#k + 1], v[#v + 1] = key, values[key]
    end
  end
  return json.ordered_object(k, v)
end

-- A value in its JSON form; a number as a string with `as_strings`.
local function json_value(def, v, as_strings)
  v = tsl.to_json(def, v)
  if as_strings and type(v) == "number" then v = json.encode(v) end
  return v
end

--- A report's kv of `values` (code -> normalized value, as tsl.lua keeps them)
-- in their JSON form; numbers as strings with `as_strings`, as some firmware
-- sends them. Codes the product lacks are left out.
function _M.kv_of(t, values, as_strings)
  local product = products.get(t.productKey)
  local kv = {}
  for code, v in pairs(values) do
    local def = product and products.property(product, code)
    if def then kv[def.code] = json_value(def, v, as_strings) end
  end
  return kv
end

--- A report's kv of the device's current values for `codes` (defaults for
-- properties never set); `as_strings` as kv_of.
function _M.kv(t, codes, as_strings)
  local product = products.get(t.productKey)
  local kv = {}
  for _, code in ipairs(codes) do
    local def = product and products.property(product, code)
    if def then kv[def.code] = json_value(def, things.value(t, def), as_strings) end
  end
  return kv
end

-- A device's packet ids count up from 1, 16 bits wide.
local function packet_id(t)
  t.packet_id = (t.packet_id or 0) % 65535 + 1
  return t.packet_id
end

--- A report of the device's current values of the properties `values` names
-- (what a device reports after a write: a STRUCT whole, as merged), stamped `ms`.
function _M.report_changes(t, values, ms)
  local codes = {}
  for code in pairs(values) do codes[#codes + 1] = code end
  table.sort(codes)
  return _M.report(t, _M.kv(t, codes), ms)
end

--- A property report of `kv` (code -> JSON value) on bus_, stamped `ms` (default now).
function _M.report(t, kv, ms)
  return {
    topic = _M.topic(t.productKey, t.deviceKey, "bus_"), qos = 0,
    payload = object({ "productKey", "deviceKey", "type", "subtype", "createdAt", "ticket", "data" }, {
      productKey = t.productKey, deviceKey = t.deviceKey, type = "MATTR", subtype = "REPORT",
      createdAt = ms or state.now_ms(), ticket = crypto.random_hex(12),
      data = { packetId = packet_id(t), kv = kv },
    }),
  }
end

--- The online state on onl_: value 0 offline, 1 online, 2 back online.
function _M.online(t, value)
  return {
    topic = _M.topic(t.productKey, t.deviceKey, "onl_"), qos = 0,
    payload = object({ "productKey", "deviceKey", "type", "createdAt", "data" }, {
      productKey = t.productKey, deviceKey = t.deviceKey, type = "ONLINE", createdAt = state.now_ms(),
      data = { value = value },
    }),
  }
end

--- A command's acknowledgement on ack_.
function _M.ack(pk, dk, msgId, ok, ticket)
  return {
    topic = _M.topic(pk, dk, "ack_"), qos = 0,
    payload = object({ "msgId", "ticket", "productKey", "deviceKey", "status" }, {
      msgId = msgId, ticket = ticket or crypto.random_hex(12), productKey = pk, deviceKey = dk,
      status = ok and "succ" or "fail",
    }),
  }
end

--- The payload of an error for one client: `{ code, msg?, productKey?,
-- deviceKey?, msgId? }` (msg defaults to the platform's text for the code).
function _M.error_payload(e)
  return object({ "code", "msg", "type", "productKey", "deviceKey", "msgId" }, {
    code = e.code, msg = e.msg or messages.text(e.code, "en"), type = "BUSI-ERROR",
    productKey = e.productKey, deviceKey = e.deviceKey, msgId = e.msgId,
  })
end

--- Send an error to one connected client on q/1/u/<clientId>/sys_ (the broker
-- delivers it whether or not the client subscribed). -> true, or nil, err
function _M.send_error(client_id, e)
  local answer, err = _M.ask { op = "direct", clientId = client_id, payload = _M.error_payload(e) }
  if not answer then
    ngx.log(ngx.WARN, "fake cloud: error ", e.code, " for a client not sent: ", err)
    return nil, err
  end
  return true
end

--- The broker's counters and connected Apps, from the file its plugin keeps:
-- `{ connects, disconnects, refused, clients = { client ids, oldest first } }`.
function _M.stats()
  local out = { connects = 0, disconnects = 0, refused = 0, clients = {} }
  local f = conf.dir and io.open(conf.dir .. "/broker-clients", "rb")
  if not f then return out end
  for line in f:lines() do
    local name, n = line:match("^(%a+) (%d+)$")
    if name and out[name] then
      out[name] = tonumber(n)
    else
      local id = line:match("^client (.*)$")
      if id then
        out.clients[#out.clients + 1] = id:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      end
    end
  end
  f:close()
  return out
end

--- The plugin's line per App connect: `{ { connect = n, clients = { ids, the new one last } }, ... }`.
function _M.connect_log()
  local out = {}
  local f = conf.dir and io.open(conf.dir .. "/broker-clients.log", "rb")
  if not f then return out end
  for line in f:lines() do
    local n, rest = line:match("^(%d+)(.*)$")
    if n then
      local ids = {}
      for id in rest:gmatch("%S+") do
        ids[#ids + 1] = id:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      end
      out[#out + 1] = { connect = tonumber(n), clients = ids }
    end
  end
  f:close()
  return out
end

return _M
