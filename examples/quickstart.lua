--[[ quecapi quickstart: log in and print the account's devices as a table.

Against the real cloud:

  QUECAPI_REGION=cn \
  QUECAPI_USER_DOMAIN=C.DM.xxxx.x QUECAPI_USER_DOMAIN_SECRET=... \
  QUECAPI_PHONE=13800138000 QUECAPI_PASSWORD=... \
  lua5.4 examples/quickstart.lua

With QUECAPI_REGISTER=1 it first asks the platform to text a registration code to
the phone, reads the code from standard input and registers the account.
Other settings: QUECAPI_BASE_URL (wins over QUECAPI_REGION), QUECAPI_CA_FILE,
QUECAPI_INTERNATIONAL_CODE (default 86).
]]
local quecapi = require "quecapi"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      io.stderr:write("quickstart: set ", name, "\n")
      os.exit(2, true)
    end
    return default
  end
  return v
end

local function check(res, err, code)
  if not res then
    io.stderr:write("quickstart: ", err, code and (" [" .. code .. "]") or "", "\n")
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
})
local phone = env("QUECAPI_PHONE")
local password = env("QUECAPI_PASSWORD")
local ic = env("QUECAPI_INTERNATIONAL_CODE", "86")

if env("QUECAPI_REGISTER", "0") == "1" then
  -- 1. a registration code (codeType 3) by SMS
  check(client:send_phone_sms_code { phone = phone, internationalCode = ic, codeType = 3 })
  io.write("SMS code sent to +", ic, " ", phone, ". Code: ")
  io.flush()
  local code = io.read("*l")
  if not code or code == "" then
    io.stderr:write("quickstart: no SMS code given\n")
    os.exit(2, true)
  end
  io.write("\n")
  -- 2. register with the code and the password (encrypted by the client)
  local res = check(client:phone_pwd_register {
    phone = phone, password = password, smsCode = code, internationalCode = ic,
    agreementList = { { protocolType = 1, privacyVersion = "1.0.0" },
                      { protocolType = 2, privacyVersion = "1.0.0" } },
  })
  print("registered user " .. tostring(res.data and res.data.uid))
end

-- 3. log in: the client keeps the access and refresh tokens
check(client:phone_pwd_login { phone = phone, password = password, internationalCode = ic })
print("logged in as +" .. ic .. " " .. phone)

-- 4. every device of every page
local rows = { { "PRODUCT KEY", "DEVICE KEY", "NAME", "STATUS" } }
for device, err, code in client:paginate("user_device_list", { pageSize = 50 }) do
  if not device then check(nil, err, code) end
  rows[#rows + 1] = { device.productKey or "", device.deviceKey or "", device.deviceName or "",
                      device.onlineStatus == 1 and "online" or "offline" }
end

-- Pad by characters, not bytes, so UTF-8 names line up.
local function width(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end
local widths = {}
for _, row in ipairs(rows) do
  for i, cell in ipairs(row) do widths[i] = math.max(widths[i] or 0, width(cell)) end
end
for r, row in ipairs(rows) do
  local cells = {}
  for i, cell in ipairs(row) do cells[i] = cell .. string.rep(" ", widths[i] - width(cell)) end
  print((table.concat(cells, "  "):gsub("%s+$", "")))
  if r == 1 then
    local rule = {}
    for i = 1, #widths do rule[i] = string.rep("-", widths[i]) end
    print(table.concat(rule, "  "))
  end
end
print(string.format("%d device(s)", #rows - 1))
client:close()
