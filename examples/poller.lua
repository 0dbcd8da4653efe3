--[[ A cron-style poller: append every device's current property values to a CSV file.

  QUECAPI_USER_DOMAIN=... QUECAPI_USER_DOMAIN_SECRET=... QUECAPI_REGION=cn \
  QUECAPI_PHONE=... QUECAPI_PASSWORD=... \
  lua5.4 examples/poller.lua values.csv [code ...]

Run it from cron (e.g. every 5 minutes). Tokens are kept in a file token store
(QUECAPI_TOKEN_FILE, default ~/.cache/quecapi/tokens.json) so each run reuses the
last login and refreshes it when needed instead of logging in every time.
Columns: time (UTC, ISO 8601), productKey, deviceKey, code, value (tables as JSON).
]]
local quecapi = require "quecapi"
local json = require "quecapi.json"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      io.stderr:write("poller: set ", name, "\n")
      os.exit(2, true)
    end
    return default
  end
  return v
end

local out_path = arg[1]
if not out_path then
  io.stderr:write("usage: poller.lua OUT.csv [code ...]\n")
  os.exit(2, true)
end
local codes = {}
for i = 2, #arg do codes[#codes + 1] = arg[i] end

local client, err = quecapi.new {
  base_url = os.getenv("QUECAPI_BASE_URL"),
  region = os.getenv("QUECAPI_REGION"),
  ca_file = os.getenv("QUECAPI_CA_FILE"),
  user_domain = env("QUECAPI_USER_DOMAIN"),
  user_domain_secret = env("QUECAPI_USER_DOMAIN_SECRET"),
  account = { phone = env("QUECAPI_PHONE"), password = env("QUECAPI_PASSWORD"),
              internationalCode = env("QUECAPI_INTERNATIONAL_CODE", "86") },
  token_store = "file",
  token_file = os.getenv("QUECAPI_TOKEN_FILE"),
}
if not client then
  io.stderr:write("poller: ", err, "\n")
  os.exit(2, true)
end

local function csv(v)
  v = type(v) == "table" and assert(json.encode(v)) or tostring(v)
  if v:find('[",\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local new_file = io.open(out_path, "r") == nil
local out = assert(io.open(out_path, "a"))
if new_file then out:write("time,productKey,deviceKey,code,value\n") end

local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
local rows, failed = 0, 0
for device, derr, code in client:paginate("user_device_list", { pageSize = 100 }) do
  if not device then
    io.stderr:write("poller: ", derr, code and (" [" .. code .. "]") or "", "\n")
    os.exit(1, true)
  end
  local values, verr = client:get_properties(device.productKey, device.deviceKey, #codes > 0 and codes or nil)
  if not values then
    -- one device failing (e.g. an unbound one) must not stop the others
    io.stderr:write("poller: ", device.deviceKey, ": ", verr, "\n")
    failed = failed + 1
  else
    local names = {}
    for k in pairs(values) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      out:write(table.concat({ now, csv(device.productKey), csv(device.deviceKey), csv(k), csv(values[k]) }, ","), "\n")
      rows = rows + 1
    end
  end
end
out:close()
print(string.format("poller: %d value(s) recorded in %s%s", rows, out_path,
  failed > 0 and string.format(", %d device(s) failed", failed) or ""))
os.exit(failed > 0 and 1 or 0, true)
