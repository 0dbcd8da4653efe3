-- Helpers for specs that talk to the fake cloud: where it is, its control API
-- (quecapi.fakecloud.testing, asserting every answer), raw API requests, and a
-- client configured for it.
local core = require "quecapi.core"
local poll = require "support.poll"
local json = require "quecapi.json"
local config = require "quecapi.fakecloud.config"
local ctl = require "quecapi.fakecloud.ctl"
local testing = require "quecapi.fakecloud.testing"

local _M = { user_domain = config.user_domain, secret = config.user_domain_secret,
             -- the App's second user domain (users may be seeded under either)
             second_user_domain = config.second_user_domain, second_secret = config.second_user_domain_secret }

local SECRETS = {
  [config.user_domain] = config.user_domain_secret,
  [config.second_user_domain] = config.second_user_domain_secret,
}

-- The fake cloud's addresses: from the environment (spec/run exports them), else
-- from the env file of a running fake cloud: FAKECLOUD_DIR's, the checkout's
-- (build/fakecloud, spec/run's default) or the one `quecapi fakecloud start`
-- starts by default.
local env = testing.env()
if (os.getenv("FAKECLOUD_URL") or "") == "" then
  env = ctl.read_env(os.getenv("FAKECLOUD_DIR") or "build/fakecloud") or env
end
if not env then
  error("the fake cloud is not running: start it with `quecapi fakecloud start` (or run the specs with spec/run)")
end
assert(testing.use(env))
_M.url = env.FAKECLOUD_URL
_M.http_url = env.FAKECLOUD_HTTP_URL
_M.ca = env.FAKECLOUD_CA
_M.dir = env.FAKECLOUD_DIR
_M.wronghost_url = env.FAKECLOUD_WRONGHOST_URL  -- trusted CA, certificate for another name
_M.unknownca_url = env.FAKECLOUD_UNKNOWNCA_URL  -- right name, untrusted CA
_M.mqtt_url = env.FAKECLOUD_MQTT_URL            -- the broker, wss://localhost:PORT/ws/v2 (nil without one)

local session = assert(core.session { ca_file = _M.ca })

-- Call the fake's control API: method, path[, body table] -> decoded answer.
function _M.control(method, path, body)
  return assert(testing.control(method, path, body))
end

-- Forget everything. The fake's starter devices (3 for every new user, so a
-- user's first look shows something) are turned off: specs count what they seed.
function _M.reset()
  -- a reset fake forgets its products: so do the thing models clients share
  require("quecapi.things").MODELS:clear()
  _M.control("POST", "/_fake/reset")
  return _M.control("POST", "/_fake/config", { signup_devices = 0 })
end
function _M.stats() return _M.control("GET", "/_fake/stats") end
function _M.fault(f) return assert(testing.fault(f)) end
function _M.clear_faults() return assert(testing.clear_faults()) end

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
function _M.quota(n) return _M.configure { daily_quota = n } end
-- { daily_quota, used = { uid = calls today } }
function _M.quota_used() return _M.control("GET", "/_fake/quota") end
-- As at 00:00 UTC: every account's count back to 0.
function _M.reset_quota() return _M.control("POST", "/_fake/quota/reset") end

-- Expire tokens now: { phone | email | uid, access_only } (see control.lua).
function _M.expire(opts) return assert(testing.expire(opts)) end
function _M.configure(c) return assert(testing.configure(c)) end

-- The last code the fake sent to a phone.
function _M.sms_code(phone, codeType, internationalCode)
  return assert(testing.sms_code(phone, codeType, internationalCode))
end

-- Requests the fake received since `seq` (and the newest seq).
function _M.requests(since)
  local list, seq = testing.requests(since)
  return assert(list, seq), seq
end

-- The requests for `path` the fake received since `seq`.
function _M.received(since, path)
  local list = {}
  for _, r in ipairs(_M.requests(since)) do
    if r.path == path then list[#list + 1] = r end
  end
  return list
end

function _M.seq()
  local _, seq = _M.requests(1e15)
  return seq
end

-- A registered user with `devices` devices (none when nil: specs count what
-- they seed, so the fake's starter devices are turned off), seeded directly:
-- phone, password, uid. userDomain (optional): fake.second_user_domain for the
-- App's other domain.
function _M.user(phone, password, devices, userDomain)
  local uid = assert(testing.user { phone = phone, password = password, internationalCode = "86",
                                    userDomain = userDomain, devices = 0 })
  if devices then assert(testing.devices({ phone = phone }, devices)) end
  return uid
end

-- The realtime channel: the fake's broker and device side (testing.lua has the
-- shapes). Every helper asserts the answer.
_M.topic = testing.topic  -- (pk, dk, "bus_" | "ack_" | "onl_" | "sys_")
function _M.broker() return assert(testing.broker()) end
function _M.drop() return assert(testing.drop()) end
function _M.restart_broker() return assert(testing.restart_broker()) end
function _M.freeze(seconds) return assert(testing.freeze(seconds)) end
function _M.thaw() return assert(testing.thaw()) end
-- { clientId, code, msg?, productKey?, deviceKey?, msgId? } -> { connected }
function _M.broker_error(e) return assert(testing.broker_error(e)) end
-- count reports kv { code = i } from one device -> { count, ms }
function _M.burst(productKey, deviceKey, opts) return assert(testing.burst(productKey, deviceKey, opts)) end

-- Wait until check(GET /_fake/broker) is true (at most `timeout` seconds,
-- default 5); the last answer either way, and whether the check passed.
function _M.broker_until(check, timeout)
  return poll(_M.broker, check, timeout or 5)
end

-- An App-side MQTT client independent of quecapi (python3 paho-mqtt over the
-- broker's TLS WebSocket, verifying its certificate against the fake's CA):
-- opts { token, client_id, username, keepalive, url, ca, timeout }. Returns the
-- probe and its CONNACK event (rc 0 accepted, 5 not authorized), or nil, err
-- when none came. Specs close it (probe:close()).
function _M.probe(opts) return testing.probe(opts) end

-- A client for the fake cloud; `overrides` replaces any option.
function _M.client(overrides)
  local cfg = { timeout = 5, connect_timeout = 2 }
  for k, v in pairs(overrides or {}) do cfg[k] = v end
  return assert(testing.client(cfg))
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
function _M.email_code(email, emailType) return assert(testing.email_code(email, emailType)) end

function _M.product(p) return assert(testing.product(p)) end

-- Devices known to the cloud but bound to nobody.
function _M.unbound(devices)
  return _M.control("POST", "/_fake/devices", { unbound = true, devices = devices })
end

-- What a device holds and received (values, writes, downlinks, services, shares).
function _M.device(productKey, deviceKey) return assert(testing.device(productKey, deviceKey)) end

-- The device reports values (or goes on/offline): { online, values, ts, deviceData }.
function _M.report(productKey, deviceKey, fields) return assert(testing.report(productKey, deviceKey, fields)) end

return _M
