--- Where `client:realtime{...}` comes: the channel of `quecapi.realtime.channel`
-- over the link that fits the place it runs in.
--
--  - Plain Lua (5.4, LuaJIT), outside nginx: the C core's MQTT connection,
--    Eclipse Paho's synchronous client (csrc/mqtt.c). Its calls block the
--    calling thread (connect for up to `connect_timeout`, receive for its wait):
--    fine in a script, a daemon or the command-line tool.
--  - Inside nginx, in a timer (`ngx.timer.at`) or a request handler (rewrite,
--    access, content): `quecapi.realtime.ngx_link`, the same protocol on a
--    cosocket; every wait yields, nothing blocks the worker. The channel belongs
--    to the timer or request that opened it (cosockets cannot be shared). To
--    serve many requests from one connection per account, use
--    `quecapi.realtime.hub`.
--  - In nginx's other phases (init, init_worker, set, filters, log, ...) there is
--    no cosocket, and Paho would block the worker: refused.
-- @module quecapi.realtime.connection

local core = require "quecapi.core"
local time = require "quecapi.time"
local channel = require "quecapi.realtime.channel"

local _M = {}

--- Open a channel (see `quecapi.client.Client:realtime`).
-- @param client the client
-- @tparam table opts the options of `client:realtime`
-- @tparam table env the client's `tokens`, `log`, `verify`, `ca_file`
-- @return a `quecapi.realtime.channel` Channel, or nil, err, code, kind
function _M.open(client, opts, env)
  local phase = time.phase()
  local connect
  if phase then
    local link = require "quecapi.realtime.ngx_link"
    if not link.PHASES[phase] then
      return nil, ("realtime: nginx's %s phase cannot hold a realtime connection (no cosockets, and a blocking "
        .. "one would stall the worker): open it from a timer (ngx.timer.at) or use quecapi.realtime.hub"):format(
        phase), nil, "usage"
    end
    connect = link.connect
  else
    if not core.mqtt then
      return nil, "realtime: this build of the C core has no MQTT client (rebuild it; it needs libpaho-mqtt-dev)",
        nil, "config"
    end
    connect = core.mqtt
  end
  return channel.open(client, opts, {
    connect = connect, tokens = env.tokens, log = env.log, verify = env.verify, ca_file = env.ca_file,
  })
end

--- Every device of the client's account (user_device_list, page by page) as a
-- channel's `devices` list: for following them all (the hub, `quecapi watch`).
-- @param client the client
-- @return `{ { productKey, deviceKey }, ... }`, or nil, err, code, kind
function _M.account_devices(client)
  local list = {}
  for device, err, code, kind in client:paginate("user_device_list", { pageSize = 100 }) do
    if not device then return nil, err, code, kind end
    if type(device.productKey) == "string" and type(device.deviceKey) == "string" then
      list[#list + 1] = { productKey = device.productKey, deviceKey = device.deviceKey }
    end
  end
  return list
end

return _M
