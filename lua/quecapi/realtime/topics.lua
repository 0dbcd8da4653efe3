--- The realtime channel's topic names (MQTT 3.1.1, the platform's "WebSocket
-- 2.0"), as the platform's own Apps and the public clients of the live cloud
-- use them; nothing here is in the official documentation.
--
-- A device's channel is `qd<productKey><deviceKey>` (case kept: lowercasing it
-- breaks it). An App subscribes to `q/2/d/<channel>/<suffix>` for the device's
-- reports, publishes commands to `q/1/d/<channel>/sys_`, and receives errors
-- about its own commands on `q/1/u/<clientId>/sys_` without subscribing.
--
-- Pure functions, no I/O: shared by the plain-Lua and the nginx connections.
-- @module quecapi.realtime.topics

local type, ipairs = type, ipairs
local find, match, sub = string.find, string.match, string.sub

local _M = {}

--- The topics an App subscribes to for a device, by suffix, and the event type
-- each one's messages become.
_M.SUFFIXES = { "bus_", "ack_", "onl_", "ota_", "inf_", "loc_" }
_M.EVENT_TYPES = {
  bus_ = "property", ack_ = "ack", onl_ = "online", ota_ = "ota", inf_ = "info", loc_ = "location",
}

-- The longest key the channel accepts: product and device keys are short
-- (6 to 32 characters); a long one is a mistake, not a device.
local MAX_KEY = 128

--- Why a product or device key cannot be part of a topic, or nil when it can:
-- it must be a non-empty string without MQTT's separators and wildcards.
-- @param key the value
-- @treturn string|nil
function _M.key_problem(key)
  if type(key) ~= "string" or key == "" then return "must be a non-empty string" end
  if #key > MAX_KEY then return "is longer than 128 characters" end
  if find(key, "[/+#%c]") then return "must not contain '/', '+', '#' or control characters" end
  return nil
end

--- The channel name of a device.
function _M.channel(pk, dk)
  return "qd" .. pk .. dk
end

--- The topics to subscribe to for a device, in `SUFFIXES` order.
-- @treturn {string,...}
function _M.device_topics(pk, dk)
  local base, list = "q/2/d/qd" .. pk .. dk .. "/", {}
  for i, suffix in ipairs(_M.SUFFIXES) do list[i] = base .. suffix end
  return list
end

--- The topic commands to a device are published on.
function _M.command(pk, dk)
  return "q/1/d/qd" .. pk .. dk .. "/sys_"
end

--- The topic errors about this client's commands arrive on.
function _M.errors(client_id)
  return "q/1/u/" .. client_id .. "/sys_"
end

--- What a received topic is: `"device", channel, suffix` for a device's topic
-- with a known suffix, `"client", client_id` for the per-client error topic, or
-- nil for anything else.
-- @tparam string topic
function _M.parse(topic)
  if type(topic) ~= "string" then return nil end
  if sub(topic, 1, 6) == "q/2/d/" then
    local channel, suffix = match(topic, "^q/2/d/(qd[^/]+)/([%l]+_)$")
    if channel and _M.EVENT_TYPES[suffix] then return "device", channel, suffix end
    return nil
  end
  local id = match(topic, "^q/1/u/([^/]+)/sys_$")
  if id then return "client", id end
  return nil
end

return _M
