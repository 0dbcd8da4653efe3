--- The fake cloud from a test's side: where the running one listens, its control
-- API (seed users, products and devices, read the SMS and email codes it sent,
-- play a device, inject faults, read what it received), and a quecapi client
-- configured for it.
--
--   local fakecloud = require "quecapi.fakecloud.testing"
--   assert(fakecloud.reset())
--   assert(fakecloud.user { phone = "13800000000", password = "pass1234" })   -- owns 3 devices
--   local client = assert(fakecloud.client())
--   assert(client:login { phone = "13800000000", password = "pass1234" })
--
-- Every function returns its answer, or nil and an error. This is the client
-- side, for your specs: the fake cloud itself (what runs in nginx) never uses
-- quecapi's modules, so it checks the client instead of agreeing with it.
-- @module quecapi.fakecloud.testing

local core = require "quecapi.core"
local json = require "quecapi.json"
local ctl = require "quecapi.fakecloud.ctl"
local config = require "quecapi.fakecloud.config"

local type, pairs, ipairs, tostring, format = type, pairs, ipairs, tostring, string.format
local gsub, byte = string.gsub, string.byte

local _M = {
  --- The fake's App: its user domain and that domain's secret (fixed test values).
  user_domain = config.user_domain,
  user_domain_secret = config.user_domain_secret,
}

--- The running fake cloud: `FAKECLOUD_URL`, `FAKECLOUD_CA`, ... from the
-- environment (`eval "$(quecapi fakecloud env)"`), else from the env file of
-- the fake cloud started in FAKECLOUD_DIR or the default directory.
-- @return the variables, or nil, err
function _M.env()
  local url = os.getenv("FAKECLOUD_URL")
  if url and url ~= "" then
    local env = {}
    for _, name in ipairs(ctl.VARIABLES) do env[name] = os.getenv(name) end
    return env
  end
  local env = ctl.status(ctl.default_dir())
  if env then return env end
  return nil, "no fake cloud is running: start one with `quecapi fakecloud start`"
end

-- The fake cloud in use (its env) and a session trusting its CA.
local current, session

--- Talk to the fake cloud `env` describes (`FAKECLOUD_URL`, `FAKECLOUD_CA`)
-- rather than the one `env()` finds.
-- @return true, or nil, err
function _M.use(env)
  local s, err = core.session { ca_file = env.FAKECLOUD_CA }
  if not s then return nil, err end
  current, session = env, s
  return true
end

local function connect()
  if current then return true end
  local env, err = _M.env()
  if not env then return nil, err end
  return _M.use(env)
end

--- Call the control API: `method`, `path` (below `/_fake/`), an optional body
-- table sent as JSON.
-- @return the decoded answer, or nil, err
function _M.control(method, path, body)
  local ok, err = connect()
  if not ok then return nil, err end
  local text
  if body ~= nil then
    text, err = json.encode(body)
    if not text then return nil, err end
  end
  local status, answer = session:request {
    method = method, url = current.FAKECLOUD_URL .. path, body = text,
    headers = text and { ["Content-Type"] = "application/json" } or nil,
  }
  if not status then return nil, format("%s %s: %s", method, path, tostring(answer)) end
  if status ~= 200 then return nil, format("%s %s: HTTP %d %s", method, path, status, tostring(answer)) end
  return json.decode(answer)
end

local function escape(s)
  return (gsub(tostring(s), "[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

--- Forget everything: users, devices, codes, faults, settings.
function _M.reset() return _M.control("POST", "/_fake/reset") end

--- Change the fake's settings (token lifetimes, `signup_devices`, `clock_offset`,
-- `delay_ms`, `daily_quota`, ...): `{ setting = value }`.
function _M.configure(settings) return _M.control("POST", "/_fake/config", settings) end

--- A user, as if registered: `{ phone (with internationalCode, default "86") or
-- email, password, nickname, userDomain, devices }`. `devices` is how many
-- starter devices the user owns (default 3; 0 for none).
-- @return the uid, or nil, err
function _M.user(u)
  local res, err = _M.control("POST", "/_fake/users", u)
  if not res then return nil, err end
  return res.uid
end

--- Bind devices to a user: `owner` is `{ phone = ... }`, `{ email = ... }` or
-- `{ uid = ... }`; `devices` a list of `{ productKey, deviceKey, deviceName,
-- online, values = { code = value } }` or a count of generated ones.
function _M.devices(owner, devices)
  local body = {}
  for k, v in pairs(owner) do body[k] = v end
  if type(devices) == "number" then body.count = devices else body.devices = devices end
  return _M.control("POST", "/_fake/devices", body)
end

--- A product with its thing model: `{ productKey, productName, tsl = { properties, services, events } }`.
function _M.product(p) return _M.control("POST", "/_fake/products", p) end

--- What a device holds and received: values, writes, service calls, raw data.
function _M.device(productKey, deviceKey)
  return _M.control("GET", "/_fake/device?productKey=" .. escape(productKey) .. "&deviceKey=" .. escape(deviceKey))
end

--- The device speaks: `{ online, values = { code = value }, ts }` (reported values go to its history).
function _M.report(productKey, deviceKey, fields)
  local body = { productKey = productKey, deviceKey = deviceKey }
  for k, v in pairs(fields or {}) do body[k] = v end
  return _M.control("POST", "/_fake/device", body)
end

--- The last SMS code sent to a phone (`codeType` default 3, registration).
function _M.sms_code(phone, codeType, internationalCode)
  local res, err = _M.control("GET", format("/_fake/code?phone=%s&codeType=%s&internationalCode=%s",
    escape(phone), escape(codeType or 3), escape(internationalCode or "86")))
  if not res then return nil, err end
  return res.code
end

--- The last code emailed to an address (`emailType` default 1, registration).
function _M.email_code(email, emailType)
  local res, err = _M.control("GET", "/_fake/code?email=" .. escape(email) .. "&emailType=" .. escape(emailType or 1))
  if not res then return nil, err end
  return res.code
end

--- Make the next calls fail: `{ kind, path, count, ... }` (kinds: the README's fault list).
function _M.fault(f) return _M.control("POST", "/_fake/faults", f) end

--- Drop every queued fault.
function _M.clear_faults() return _M.control("DELETE", "/_fake/faults") end

--- Tokens run out now: `{ phone | email | uid, access_only }`.
function _M.expire(who) return _M.control("POST", "/_fake/expire", who or {}) end

--- The API requests received after sequence number `since` (default all kept),
-- and the newest sequence number.
function _M.requests(since)
  local res, err = _M.control("GET", "/_fake/requests?since=" .. escape(since or 0))
  if not res then return nil, err end
  return res.requests or {}, res.seq
end

--- A quecapi client for the fake cloud; `overrides` replaces any option.
-- @return the client, or nil, err
function _M.client(overrides)
  local ok, err = connect()
  if not ok then return nil, err end
  local options = {
    base_url = current.FAKECLOUD_URL, ca_file = current.FAKECLOUD_CA,
    user_domain = config.user_domain, user_domain_secret = config.user_domain_secret,
  }
  for k, v in pairs(overrides or {}) do options[k] = v end
  return require("quecapi").new(options)
end

return _M
