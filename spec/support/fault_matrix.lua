-- The fault matrix: one call per case against the fake cloud with a fault queued,
-- run the same way by the curl transport (in the busted process) and by the ngx
-- transport (inside nginx). A case says what to queue, what to call and what must
-- come out; `run` reports what did.
local quecapi = require "quecapi"
local core = require "quecapi.core"
local config = require "quecapi.fakecloud.config"

local LIST = "/v2/binding/enduserapi/userDeviceList"
local SMS = "/v2/sms/enduserapi/v2/sendPhoneSmsCode"

local _M = { PHONE = "13600000001", PASSWORD = "matrix-Pa55word" }

local function list(c) return c:user_device_list {} end
local function sms(c) return c:send_phone_sms_code { phone = _M.PHONE, internationalCode = "86", codeType = 3 } end

-- ok: success expected (`retried`: after a documented retry); err/code/kind: the failure expected.
_M.cases = {
  { name = "connection refused", refused = true, call = list, err = "request failed (connect)" },
  { name = "reset mid-body, safe call", fault = { kind = "reset", path = LIST }, call = list, ok = true, retried = true },
  { name = "reset mid-body, call with side effects", fault = { kind = "reset", path = SMS }, call = sms,
    err = "request failed (network)" },
  { name = "truncated body", fault = { kind = "truncated", path = LIST }, call = list, ok = true, retried = true },
  { name = "connection dropped", fault = { kind = "drop", path = LIST, count = 2 }, call = list, ok = true, retried = true },
  { name = "HTML 502 page", fault = { kind = "status", status = 502, path = LIST, count = 3 }, call = list,
    err = "HTTP 502, response is not JSON: <html>" },
  { name = "200 with non-JSON", fault = { kind = "malformed", path = LIST }, call = list,
    err = "HTTP 200, response is not JSON" },
  { name = "200 with empty body", fault = { kind = "empty", path = LIST }, call = list, err = "HTTP 200 with an empty body" },
  { name = "chunked body", fault = { kind = "chunked", path = LIST }, call = list, ok = true },
  { name = "slow headers", fault = { kind = "slow_headers", delay_ms = 3000, path = LIST, count = 3 }, call = list,
    timeout = 0.5, retry = { attempts = 2, base_delay = 0 }, err = "request failed (timeout)", max_seconds = 2.5 },
  { name = "slow body", fault = { kind = "slow_body", delay_ms = 300, path = LIST, count = 3 }, call = list,
    timeout = 0.5, retry = { attempts = 2, base_delay = 0 }, err = "request failed (timeout)", max_seconds = 2.5 },
  { name = "huge body", fault = { kind = "huge", size = 3 * 1024 * 1024, path = LIST }, call = list,
    max_body = 1024 * 1024, err = "exceeds" },
  { name = "Content-Length too small", fault = { kind = "wrong_length", variant = "short", path = LIST }, call = list,
    err = "HTTP 200, response is not JSON" },
  { name = "Content-Length too large", fault = { kind = "wrong_length", variant = "long", path = LIST, count = 3 },
    call = list, err = "request failed (network)" },
  { name = "5032 expired token", fault = { kind = "code", code = 5032, path = LIST }, call = list, ok = true, retried = true },
  { name = "5420 signature", fault = { kind = "code", code = 5420, path = SMS }, call = sms, code = 5420,
    err = "platform error 5420" },
  -- [10.1] under a millisecond is still a bound: never libcurl's or a cosocket's "no timeout"
  { name = "[10.1] deadline under 1 ms, silent server", fault = { kind = "slow_headers", delay_ms = 3000, path = LIST },
    call = function(c) return c:user_device_list({}, { deadline = 0.0009 }) end, kind = "timeout", max_seconds = 1.5 },
  { name = "[10.1] call timeout under 1 ms, silent server", fault = { kind = "slow_headers", delay_ms = 3000, path = LIST },
    call = function(c) return c:user_device_list({}, { timeout = 0.0004, retry = false }) end, kind = "timeout",
    max_seconds = 1.5 },
  { name = "[10.1] client timeout under 1 ms, silent server",
    fault = { kind = "slow_headers", delay_ms = 3000, path = LIST, count = 3 },
    timeout = 0.0004, retry = { attempts = 1 }, call = list, kind = "timeout", max_seconds = 1.5 },
  { name = "[10.1] backoff ending at the deadline, silent server",
    fault = { kind = "slow_headers", delay_ms = 3000, path = LIST, count = 5 },
    call = function(c) return c:user_device_list({}, { deadline = 0.05, timeout = 0.049 }) end,
    retry = { attempts = 5, base_delay = 0.001, max_delay = 0.001 }, kind = "timeout", max_seconds = 1.5 },
  { name = "[10.21] 503 with a JSON envelope", fault = { kind = "status", status = 503, code = 503, path = LIST },
    call = list, ok = true, retried = true },
  { name = "[10.23] 500 whose envelope says 200", fault = { kind = "status", status = 500, code = 200, path = LIST },
    call = list, err = "HTTP 500, platform error 200", kind = "http" },
  { name = "5058 rate limit", fault = { kind = "code", code = 5058, path = SMS }, call = sms, code = 5058,
    err = "(rate limited; not retried)" },
}

function _M.case(name)
  for _, c in ipairs(_M.cases) do
    if c.name == name then return c end
  end
end

--- Run one case. env = { url, ca, transport, refused_url }.
-- @return { threw, ok, err, code, kind, elapsed, logs, secrets } (secrets: values that must not show)
function _M.run(case, env)
  local logs = {}
  local c = assert(quecapi.new {
    base_url = case.refused and env.refused_url or env.url,
    ca_file = env.ca,
    transport = env.transport,
    user_domain = config.user_domain,
    user_domain_secret = config.user_domain_secret,
    timeout = case.timeout or 3,
    connect_timeout = 1,
    max_body = case.max_body,
    retry = case.retry or { base_delay = 0.01 },
    log = function(level, msg) logs[#logs + 1] = level .. " " .. msg end,
  })
  if case.refused then
    c:set_tokens { access_token = "Bearer refused-case-token", access_expires = os.time() + 3600 }
  else
    -- the case's own timeout is for the call under test, not for this login
    assert(c:phone_pwd_login({ phone = _M.PHONE, password = _M.PASSWORD, internationalCode = "86" },
      { timeout = 3, retry = false }))
  end
  local t = c:get_tokens()
  local started = core.monotonic()
  local ok, res, err, code, kind = pcall(case.call, c)
  return {
    threw = not ok, ok = ok and res ~= nil, err = ok and err or tostring(res), code = code, kind = kind,
    elapsed = core.monotonic() - started, logs = logs,
    secrets = { config.user_domain_secret, _M.PASSWORD, t.access_token, t.refresh_token },
  }
end

return _M
