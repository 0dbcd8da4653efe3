--[[ quecapi control example: read a device's properties, switch it on, read back.

  QUECAPI_USER_DOMAIN=... QUECAPI_USER_DOMAIN_SECRET=... QUECAPI_REGION=cn \
  QUECAPI_PHONE=... QUECAPI_PASSWORD=... \
  lua5.4 examples/control.lua [PRODUCT_KEY DEVICE_KEY]

Without a product and device key it uses the account's first device. The device's
product needs a boolean property `switch` (override with QUECAPI_SWITCH=code).
]]
local quecapi = require "quecapi"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      io.stderr:write("control: set ", name, "\n")
      os.exit(2, true)
    end
    return default
  end
  return v
end

local function check(res, err, code)
  if not res then
    io.stderr:write("control: ", err, code and (" [" .. code .. "]") or "", "\n")
    os.exit(1, true)
  end
  return res
end

local client = check(quecapi.new {
  base_url = os.getenv("QUECAPI_BASE_URL"),
  region = os.getenv("QUECAPI_REGION"),
  ca_file = os.getenv("QUECAPI_CA_FILE"),
  user_domain = env("QUECAPI_USER_DOMAIN"),
  user_domain_secret = env("QUECAPI_USER_DOMAIN_SECRET"),
  -- log in on first use, and again whenever the tokens cannot be refreshed
  account = { phone = env("QUECAPI_PHONE"), password = env("QUECAPI_PASSWORD"),
              internationalCode = env("QUECAPI_INTERNATIONAL_CODE", "86") },
})

local pk, dk = arg[1], arg[2]
if not (pk and dk) then
  local first = check(client:user_device_list { pageSize = 1 }).data.list
  if not (first and first[1]) then
    io.stderr:write("control: the account has no device\n")
    os.exit(1, true)
  end
  pk, dk = first[1].productKey, first[1].deviceKey
end
local switch = env("QUECAPI_SWITCH", "switch")

local function show(title, values)
  local codes = {}
  for code in pairs(values) do codes[#codes + 1] = code end
  table.sort(codes)
  print(title)
  for _, code in ipairs(codes) do
    local v = values[code]
    if type(v) == "table" then
      local parts = {}
      for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. tostring(x) end
      table.sort(parts)
      v = "{" .. table.concat(parts, ", ") .. "}"
    end
    print(string.format("  %-12s %s", code, tostring(v)))
  end
end

show(string.format("device %s/%s before:", pk, dk), check(client:get_properties(pk, dk)))

local result = check(client:set_properties(pk, dk, { [switch] = true }))
if #result.failureList > 0 then
  io.stderr:write("control: the platform refused: ", tostring(result.failureList[1].msg), "\n")
  os.exit(1, true)
end
print(string.format("switched on (ticket %s)", tostring(result.successList[1] and result.successList[1].ticket)))

local after = check(client:get_properties(pk, dk, { switch }))
show("after:", after)
if after[switch] ~= true then
  io.stderr:write("control: the device does not report the new value yet\n")
  os.exit(1, true)
end
client:close()
