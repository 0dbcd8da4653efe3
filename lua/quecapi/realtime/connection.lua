--- The realtime channel in plain Lua (5.4, LuaJIT), outside nginx: the channel
-- of `quecapi.realtime.channel` over the C core's MQTT connection, Eclipse Paho's
-- synchronous client (csrc/mqtt.c). `client:realtime{...}` comes here.
--
-- Paho's calls block the calling thread (connect for up to `connect_timeout`,
-- receive for its wait): fine in a script, a daemon or the command-line tool,
-- never inside an nginx worker, where this module refuses to open a channel.
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
  if time.phase() then
    return nil, "realtime: the plain-Lua channel blocks and cannot run inside nginx", nil, "usage"
  end
  if not core.mqtt then
    return nil, "realtime: this build of the C core has no MQTT client (rebuild it; it needs libpaho-mqtt-dev)", nil,
      "config"
  end
  return channel.open(client, opts, {
    connect = core.mqtt, tokens = env.tokens, log = env.log, verify = env.verify, ca_file = env.ca_file,
  })
end

return _M
