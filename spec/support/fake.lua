-- Helpers for specs that talk to the fake cloud: where it is, its control API,
-- raw API requests, and a client configured for it.
local core = require "quecapi.core"
local json = require "quecapi.json"
local config = require "quecapi.fakecloud.config"

local _M = { user_domain = config.user_domain, secret = config.user_domain_secret,
             -- the App's second user domain (users may be seeded under either)
             second_user_domain = config.second_user_domain, second_secret = config.second_user_domain_secret }

local SECRETS = {
  [config.user_domain] = config.user_domain_secret,
  [config.second_user_domain] = config.second_user_domain_secret,
}

local function read_env(path)
  local f = io.open(path)
  if not f then return nil end
  local env = {}
  for line in f:lines() do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then env[k] = v end
  end
  f:close()
  return env
end

-- The fake cloud's addresses: from the environment (spec/run exports them), else
-- from the env file of a fake cloud started with `lua/quecapi/fakecloud/ctl start`.
local env = {
  FAKECLOUD_URL = os.getenv("FAKECLOUD_URL"),
  FAKECLOUD_HTTP_URL = os.getenv("FAKECLOUD_HTTP_URL"),
  FAKECLOUD_CA = os.getenv("FAKECLOUD_CA"),
  FAKECLOUD_DIR = os.getenv("FAKECLOUD_DIR"),
  FAKECLOUD_WRONGHOST_URL = os.getenv("FAKECLOUD_WRONGHOST_URL"),
  FAKECLOUD_UNKNOWNCA_URL = os.getenv("FAKECLOUD_UNKNOWNCA_URL"),
}
if not env.FAKECLOUD_URL then
  env = read_env("build/fakecloud/env")
    or error("the fake cloud is not running: start it with lua/quecapi/fakecloud/ctl start")
end
_M.url = env.FAKECLOUD_URL
_M.http_url = env.FAKECLOUD_HTTP_URL
_M.ca = env.FAKECLOUD_CA
_M.dir = env.FAKECLOUD_DIR
_M.wronghost_url = env.FAKECLOUD_WRONGHOST_URL  -- trusted CA, certificate for another name
_M.unknownca_url = env.FAKECLOUD_UNKNOWNCA_URL  -- right name, untrusted CA

local session = assert(core.session { ca_file = _M.ca })

-- Call the fake's control API: method, path[, body table] -> decoded answer.
function _M.control(method, path, body)
  local status, text = session:request {
    method = method, url = _M.url .. path,
    body = body and assert(json.encode(body)) or nil,
    headers = body and { ["Content-Type"] = "application/json" } or nil,
  }
  assert(status, text)
  assert(status == 200, "control " .. path .. ": HTTP " .. tostring(status) .. " " .. tostring(text))
  return json.decode(text)
end

function _M.reset() return _M.control("POST", "/_fake/reset") end
function _M.stats() return _M.control("GET", "/_fake/stats") end
function _M.fault(f) return _M.control("POST", "/_fake/faults", f) end
function _M.clear_faults() return _M.control("DELETE", "/_fake/faults") end

-- Make authenticated calls fail as "token no good" (faults.lua, kind "auth"):
--   { status = 401, body = "envelope" | "html" | "empty" }   HTTP 401 (the default)
--   { code = 401 | 4001 | 1003 | 5032 | ..., msg? }         HTTP 200, that envelope code
-- for the next `count` (default 1) calls carrying Authorization, or with
-- until_renewed = true for every call made with a token issued before now, until
-- a renewed (refreshed or new login) token is used. refreshToken is spared unless
-- refresh = true; `path` limits it to one API path.
function _M.auth_failure(opts)
  local f = { kind = "auth" }
  for k, v in pairs(opts or {}) do f[k] = v end
  return _M.fault(f)
end

-- The account quota: after n authenticated calls a day (per account) calls
-- answer 4026; 0 turns it off. Setting it starts every count afresh.
function _M.quota(n) return _M.control("POST", "/_fake/config", { daily_quota = n }) end
-- { daily_quota, used = { uid = calls today } }
function _M.quota_used() return _M.control("GET", "/_fake/quota") end
-- As at 00:00 UTC: every account's count back to 0.
function _M.reset_quota() return _M.control("POST", "/_fake/quota/reset") end

-- Expire tokens now: { phone | email | uid, access_only } (see control.lua).
function _M.expire(opts) return _M.control("POST", "/_fake/expire", opts or {}) end
function _M.configure(c) return _M.control("POST", "/_fake/config", c) end

-- The last code the fake sent to a phone.
function _M.sms_code(phone, codeType, internationalCode)
  return _M.control("GET", string.format("/_fake/code?phone=%s&codeType=%d&internationalCode=%s",
    phone, codeType or 3, internationalCode or "86")).code
end

-- Requests the fake received since `seq` (and the newest seq).
function _M.requests(since)
  local r = _M.control("GET", "/_fake/requests?since=" .. (since or 0))
  return r.requests or {}, r.seq
end

function _M.seq()
  local _, seq = _M.requests(1e15)
  return seq
end

-- A registered user with devices, seeded directly: phone, password, uid.
-- userDomain (optional): fake.second_user_domain for the App's other domain.
function _M.user(phone, password, devices, userDomain)
  local u = _M.control("POST", "/_fake/users", { phone = phone, password = password, internationalCode = "86",
                                                 userDomain = userDomain })
  if devices then
    _M.control("POST", "/_fake/devices", { phone = phone, count = devices })
  end
  return u.uid
end

-- A client for the fake cloud; `overrides` replaces any option.
function _M.client(overrides)
  local cfg = {
    base_url = _M.url, ca_file = _M.ca,
    user_domain = config.user_domain, user_domain_secret = config.user_domain_secret,
    timeout = 5, connect_timeout = 2,
  }
  for k, v in pairs(overrides or {}) do cfg[k] = v end
  -- required here, not at load time, so the raw helpers below work whatever
  -- state the client library is in
  return assert(require("quecapi").new(cfg))
end

-- Raw API calls: no client library involved, only the C core's HTTP session and
-- crypto, so specs of the fake itself check the fake alone.

local function escape(s)
  -- integral numbers (millisecond timestamps) in full digits, on LuaJIT too
  if type(s) == "number" and s == math.floor(s) then s = string.format("%.0f", s) end
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- "a=1&b=x%20y", keys sorted.
function _M.encode_query(t)
  local keys, parts = {}, {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = escape(k) .. "=" .. escape(t[k]) end
  return table.concat(parts, "&")
end

-- fake.api{ method, path, query, form, json, body, token, headers, session, timeout, max_body, url }
--   form: a table sent as an application/x-www-form-urlencoded body
--   -> status, decoded body (nil when not JSON), headers, raw body
--   or nil, err, kind when the request itself failed.
function _M.api(req)
  local url = (req.url or _M.url) .. req.path
  local q = _M.encode_query(req.query)
  if q ~= "" then url = url .. "?" .. q end
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  local body = req.body
  if req.form ~= nil then
    body = _M.encode_query(req.form)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  if req.json ~= nil then
    body = assert(json.encode(req.json))
    headers["Content-Type"] = "application/json"
  end
  if req.token then headers["Authorization"] = req.token end
  local status, text, h = (req.session or session):request {
    method = req.method or "GET", url = url, body = body, headers = headers,
    timeout = req.timeout, max_body = req.max_body,
  }
  if not status then return nil, text, h end
  return status, json.decode(text), h, text
end

-- SHA-256 hex of the fields concatenated with the user domain secret.
function _M.sign(...)
  return core.sha256_hex(table.concat({ ... }) .. _M.secret)
end

-- The same with the secret of one of the fake's user domains.
function _M.sign_for(userDomain, ...)
  return core.sha256_hex(table.concat({ ... }) .. assert(SECRETS[userDomain], "unknown user domain"))
end

-- The phonePwdLogin parameters for a phone and password, signed for userDomain
-- (default the first domain).
function _M.login_params(phone, password, internationalCode, userDomain)
  local ic = internationalCode or "86"
  local ud = userDomain or _M.user_domain
  local random = core.random_string(16)
  local pwd = core.encrypt_password(password, random)
  return { phone = phone, pwd = pwd, random = random, internationalCode = ic, userDomain = ud,
           signature = _M.sign_for(ud, ic, phone, pwd, random) }
end

-- Log in by phone with raw requests; the login data {accessToken, refreshToken}.
function _M.login(phone, password, internationalCode, userDomain)
  local _, res = _M.api { method = "POST", path = "/v2/enduser/enduserapi/phonePwdLogin",
                          query = _M.login_params(phone, password, internationalCode, userDomain) }
  assert(res and res.code == 200, "login failed: " .. tostring(res and res.code))
  return res.data
end

-- A seeded user, logged in: uid, access token, login data.
function _M.session_user(phone, password, devices, userDomain)
  local uid = _M.user(phone, password or "pass1234", devices, userDomain)
  local data = _M.login(phone, password or "pass1234", nil, userDomain)
  return uid, data.accessToken.token, data
end

-- The last code the fake sent to an email address.
function _M.email_code(email, emailType)
  return _M.control("GET", "/_fake/code?email=" .. escape(email) .. "&emailType=" .. (emailType or 1)).code
end

function _M.product(p) return _M.control("POST", "/_fake/products", p) end

-- Devices known to the cloud but bound to nobody.
function _M.unbound(devices)
  return _M.control("POST", "/_fake/devices", { unbound = true, devices = devices })
end

-- What a device holds and received (values, writes, downlinks, services, shares).
function _M.device(productKey, deviceKey)
  return _M.control("GET", "/_fake/device?productKey=" .. escape(productKey) .. "&deviceKey=" .. escape(deviceKey))
end

-- The device reports values (or goes on/offline): { online, values, ts, deviceData }.
function _M.report(productKey, deviceKey, fields)
  local b = { productKey = productKey, deviceKey = deviceKey }
  for k, v in pairs(fields or {}) do b[k] = v end
  return _M.control("POST", "/_fake/device", b)
end

return _M
