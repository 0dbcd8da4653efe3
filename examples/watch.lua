--[[ Watch devices live: the platform pushes property reports, online changes and
command acknowledgements over its realtime channel (MQTT over secure WebSocket),
so nothing is polled and the account's daily quota is left alone.

  QUECAPI_USER_DOMAIN=... QUECAPI_USER_DOMAIN_SECRET=... QUECAPI_REGION=eu \
  QUECAPI_PHONE=... QUECAPI_PASSWORD=... \
  lua5.4 examples/watch.lua [PRODUCT_KEY DEVICE_KEY ...]

Without devices it watches every device of the account. It keeps each device's
state: reports may carry only the properties that changed, so they are merged
into what is known, and after a reconnect the values read back replace it.
Ctrl-C ends it; WATCH_MAX=N ends it after N events (the tests use that).
QUECAPI_REALTIME_URL names the channel when the region's is not the one.
]]
local quecapi = require "quecapi"
local json = require "quecapi.json"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      io.stderr:write("watch: set ", name, "\n")
      os.exit(2)
    end
    return default
  end
  return v
end

local client, err = quecapi.new {
  base_url = os.getenv("QUECAPI_BASE_URL"),
  region = os.getenv("QUECAPI_REGION"),
  ca_file = os.getenv("QUECAPI_CA_FILE"),
  user_domain = env("QUECAPI_USER_DOMAIN"),
  user_domain_secret = env("QUECAPI_USER_DOMAIN_SECRET"),
  account = { phone = env("QUECAPI_PHONE"), password = env("QUECAPI_PASSWORD"),
              internationalCode = env("QUECAPI_INTERNATIONAL_CODE", "86") },
}
if not client then
  io.stderr:write("watch: ", err, "\n")
  os.exit(2)
end

-- The devices: from the command line in pairs, else every device of the account.
local devices = {}
for i = 1, #arg - 1, 2 do devices[#devices + 1] = { productKey = arg[i], deviceKey = arg[i + 1] } end
if #devices == 0 then
  for d, derr in client:paginate("user_device_list", { pageSize = 50 }) do
    if not d then
      io.stderr:write("watch: ", derr, "\n")
      os.exit(1)
    end
    devices[#devices + 1] = { productKey = d.productKey, deviceKey = d.deviceKey }
  end
end

local rt, rerr = client:realtime { devices = devices, url = os.getenv("QUECAPI_REALTIME_URL") }
if not rt then
  io.stderr:write("watch: ", rerr, "\n")
  os.exit(1)
end
io.stderr:write(string.format("watching %d device(s)\n", #devices))

local state = {} -- "pk/dk" -> { code = value }
local max, seen = tonumber(os.getenv("WATCH_MAX")), 0

for ev, eerr in rt:events() do
  if not ev then
    io.stderr:write("watch: the channel gave up: ", eerr, "\n")
    os.exit(1)
  end
  local key = (ev.productKey or "?") .. "/" .. (ev.deviceKey or "?")
  if ev.type == "property" or (ev.type == "reconnected" and ev.values) then
    local s = ev.type == "reconnected" and {} or (state[key] or {})
    for code, v in pairs(ev.values) do s[code] = v end
    state[key] = s
    print(ev.type, key, json.encode(s))
  elseif ev.type == "online" then
    print("online", key, ev.online)
  elseif ev.type == "ack" then
    print("ack", key, ev.msgId, ev.status)
  elseif ev.type == "error" then
    print("error", key, ev.code, ev.msg or "")
  else
    print(ev.type, key, json.encode(ev.raw))
  end
  io.stdout:flush()
  seen = seen + 1
  if max and seen >= max then rt:close() end
end
