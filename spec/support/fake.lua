-- Helpers for specs that talk to the fake cloud: where it is, its control API,
-- and a client configured for it.
local core = require "quecapi.core"
local json = require "quecapi.json"
local quecapi = require "quecapi"
local config = require "fakecloud.config"

local _M = { user_domain = config.user_domain, secret = config.user_domain_secret }

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
-- from the env file of a fake cloud started with `spec/fakecloud/ctl start`.
local env = {
  FAKECLOUD_URL = os.getenv("FAKECLOUD_URL"),
  FAKECLOUD_HTTP_URL = os.getenv("FAKECLOUD_HTTP_URL"),
  FAKECLOUD_CA = os.getenv("FAKECLOUD_CA"),
  FAKECLOUD_DIR = os.getenv("FAKECLOUD_DIR"),
  FAKECLOUD_WRONGHOST_URL = os.getenv("FAKECLOUD_WRONGHOST_URL"),
  FAKECLOUD_UNKNOWNCA_URL = os.getenv("FAKECLOUD_UNKNOWNCA_URL"),
}
if not env.FAKECLOUD_URL then
  env = read_env("spec/fakecloud/.run/env")
    or error("the fake cloud is not running: start it with spec/fakecloud/ctl start")
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
function _M.user(phone, password, devices)
  local u = _M.control("POST", "/_fake/users", { phone = phone, password = password, internationalCode = "86" })
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
  return assert(quecapi.new(cfg))
end

return _M
