-- Retries, deadlines, clock skew and the log hook, with a scripted platform.
local quecapi = require "quecapi"
local json = require "quecapi.json"
local recorder = require "support.recorder"
local retry = require "quecapi.retry"
local sh = require "support.sh"
local jitter = require "support.jitter"

local LIST = "GET /v2/binding/enduserapi/userDeviceList"
local SMS = "POST /v2/sms/enduserapi/v2/sendPhoneSmsCode"
local GATEWAY = { 503, "<html>busy</html>", {} }

local function ok() return 200, json.encode { code = 200, msg = "", data = {} }, {} end
local function refuse(code) return 200, json.encode { code = code, msg = "", data = json.null }, {} end

local function client(routes, extra)
  local t = recorder.routes(routes)
  local cfg = { user_domain = "C.DM.1.1", user_domain_secret = "the-domain-secret", transport = t,
                retry = { base_delay = 0.001, max_delay = 0.01 } }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  local c = assert(quecapi.new(cfg))
  c:set_tokens { access_token = "Bearer tok-en", access_expires = os.time() + 7200 }
  return c, t
end

local function sms(c, opts)
  return c:send_phone_sms_code({ phone = "13800138000", internationalCode = "86", codeType = 3 }, opts)
end

describe("retry policy", function()
  it("retries a safe call after 502/503/504 and succeeds", function()
    local c, t = client { [LIST] = { { 502, "", {} }, GATEWAY, { ok } } }
    assert(c:user_device_list {})
    assert.are.equal(3, #t.sent)
  end)

  it("retries network errors of a safe call but not TLS or size failures", function()
    local c, t = client { [LIST] = { { function() return nil, "reset", "network" end },
                                     { function() return nil, "slow", "timeout" end }, { ok } } }
    assert(c:user_device_list {})
    assert.are.equal(3, #t.sent)
    local c2, t2 = client { [LIST] = { function() return nil, "bad cert", "tls" end } }
    local res, err = c2:user_device_list {}
    assert.is_nil(res)
    assert.matches("request failed (tls)", err, 1, true)
    assert.are.equal(1, #t2.sent)
  end)

  it("stops after the configured attempts and says so", function()
    local c, t = client({ [LIST] = { GATEWAY } }, { retry = { attempts = 4, base_delay = 0.001 } })
    local res, err, code = c:user_device_list {}
    assert.is_nil(res)
    assert.is_nil(code)
    assert.are.equal(4, #t.sent)
    assert.matches("HTTP 503, response is not JSON: <html>busy</html> (after 4 attempts)", err, 1, true)
  end)

  it("never retries a call with side effects on its own", function()
    local c, t = client { [SMS] = { GATEWAY } }
    local res, err = sms(c)
    assert.is_nil(res)
    assert.matches("HTTP 503", err, 1, true)
    assert.are.equal(1, #t.sent)
  end)

  it("retries a call with side effects when the caller opts in", function()
    local c, t = client { [SMS] = { GATEWAY, { ok } } }
    assert(sms(c, { retry = true }))
    assert.are.equal(2, #t.sent)
    -- every attempt is signed anew
    assert.are_not.equal(recorder.args(t.sent[1]).random, recorder.args(t.sent[2]).random)
  end)

  it("can be turned off per call and per client", function()
    local c, t = client { [LIST] = { GATEWAY } }
    assert.is_nil((c:user_device_list({}, { retry = false })))
    assert.are.equal(1, #t.sent)
    local c2, t2 = client({ [LIST] = { GATEWAY } }, { retry = false })
    assert.is_nil((c2:user_device_list {}))
    assert.are.equal(1, #t2.sent)
  end)

  it("does not retry rate limits and says why", function()
    local c, t = client { [SMS] = { { refuse(5058) } } }
    local res, err, code = sms(c, { retry = true })
    assert.is_nil(res)
    assert.are.equal(5058, code)
    assert.matches("(rate limited; not retried)", err, 1, true)
    assert.are.equal(1, #t.sent)
  end)

  it("does not retry other platform refusals", function()
    local c, t = client { [LIST] = { { refuse(5041) } } }
    local _, err, code = c:user_device_list {}
    assert.are.equal(5041, code)
    assert.matches("platform error 5041: Permission denied.", err, 1, true) -- message from the error table
    assert.are.equal(1, #t.sent)
  end)

  it("bounds the whole call with a deadline", function()
    local c, t = client({ [LIST] = { GATEWAY } },
      { retry = { attempts = 10, base_delay = 0.5, max_delay = 0.5, deadline = 0.2 } })
    math.randomseed(7)
    local started = os.clock()
    local res, err = c:user_device_list {}
    assert.is_nil(res)
    assert.is_true(os.clock() - started < 1)
    assert.is_true(#t.sent < 10)
    assert.is_truthy(err:find("no time left", 1, true) or err:find("deadline exceeded", 1, true))
  end)

  it("gives each attempt at most the time left", function()
    local c, t = client({ [LIST] = { { ok } } }, { timeout = 30, retry = { deadline = 2 } })
    assert(c:user_device_list {})
    assert.is_true(t.sent[1].timeout <= 2)
  end)

  it("rejects bad retry settings", function()
    for _, bad in ipairs { "yes", { attempts = 0 }, { tries = 3 }, { base_delay = -1 } } do
      local c, err = quecapi.new { user_domain = "C.DM.1.1", user_domain_secret = "s", retry = bad }
      assert.is_nil(c)
      assert.matches("retry", err, 1, true)
    end
  end)
end)

describe("clock skew", function()
  local skewed = 15 * 60 -- the platform's clock is 15 minutes ahead
  local function platform_date()
    return os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + skewed)
  end

  it("learns the offset from Date, re-signs once, and keeps using it", function()
    local answers = {
      function() return 200, json.encode { code = 5420, msg = "Signature verification failed" },
                        { date = platform_date() } end,
      { ok }, { ok },
    }
    local c, t = client({ [SMS] = answers }, { base_url = "https://skew-a.example" })
    assert(sms(c))
    assert.are.equal(2, #t.sent)
    local ts1 = tonumber(recorder.args(t.sent[1]).ts)
    local ts2 = tonumber(recorder.args(t.sent[2]).ts)
    assert.is_true(math.abs((ts2 - ts1) / 1000 - skewed) < 5)
    -- a later call (and another client of the same platform) signs with the platform's time
    assert(sms(c))
    assert.is_true(math.abs(tonumber(recorder.args(t.sent[3]).ts) / 1000 - (os.time() + skewed)) < 5)
    local other, t2 = client({ [SMS] = { { ok } } }, { base_url = "https://skew-a.example" })
    assert(sms(other))
    assert.is_true(math.abs(tonumber(recorder.args(t2.sent[1]).ts) / 1000 - (os.time() + skewed)) < 5)
  end)

  it("does not retry a rejected signature when the clocks agree", function()
    local c, t = client({ [SMS] = { function()
      return 200, json.encode { code = 5420, msg = "Signature verification failed" },
             { date = os.date("!%a, %d %b %Y %H:%M:%S GMT") } end } }, { base_url = "https://skew-b.example" })
    local res, _, code = sms(c)
    assert.is_nil(res)
    assert.are.equal(5420, code)
    assert.are.equal(1, #t.sent)
  end)

  it("re-signs at most once", function()
    local c, t = client({ [SMS] = { function()
      return 200, json.encode { code = 5420, msg = "" }, { date = platform_date() } end } },
      { base_url = "https://skew-c.example" })
    local res, _, code = sms(c)
    assert.is_nil(res)
    assert.are.equal(5420, code)
    assert.are.equal(2, #t.sent)
  end)
end)

describe("the log hook", function()
  it("shows method, path, status and timing with secrets masked", function()
    local lines = {}
    local c = client({
      ["POST /v2/enduser/enduserapi/phonePwdLogin"] = { function()
        return 200, json.encode { code = 200, msg = "", data = {
          accessToken = { token = "Bearer SECRET-ACCESS", expirationTime = os.time() + 7200 },
          refreshToken = { token = "Bearer SECRET-REFRESH", expirationTime = os.time() + 86400 } } }, {} end },
      [LIST] = { GATEWAY, { ok } },
    }, { log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end, verify = false })
    assert(c:phone_pwd_login { phone = "13800138000", password = "plain-Passw0rd" })
    assert(c:user_device_list {})
    local all = table.concat(lines, "\n")
    assert.matches("POST /v2/enduser/enduserapi/phonePwdLogin -> HTTP 200, code 200", all, 1, true)
    assert.matches("GET /v2/binding/enduserapi/userDeviceList -> HTTP 503", all, 1, true)
    assert.matches("retrying in", all, 1, true)
    assert.matches("warn TLS certificate verification is disabled", all, 1, true)
    local _, warnings = all:gsub("verification is disabled", "")
    assert.are.equal(1, warnings)
    for _, secret in ipairs { "plain-Passw0rd", "the-domain-secret", "SECRET-ACCESS", "SECRET-REFRESH", "tok-en" } do
      assert.is_nil(all:find(secret, 1, true), secret)
    end
    assert.is_nil(all:find("?", 1, true)) -- no query strings (signatures, pwd) in log lines
  end)

  it("survives a failing hook", function()
    local c = client({ [LIST] = { { ok } } }, { log = function() error("hook broke") end })
    assert(c:user_device_list {})
  end)
end)

describe("backoff jitter", function()
  local DRAWS, check_draws = jitter.DRAWS, jitter.check_draws

  it("[10.18] stays within [0, cap] and spreads over it", function()
    local policy = { base_delay = 0.2, max_delay = 2 }
    for n = 1, 8 do
      local cap = math.min(policy.max_delay, policy.base_delay * 2 ^ (n - 1))
      local lo, hi, sum = math.huge, -math.huge, 0
      for _ = 1, 500 do
        local d = retry.delay(policy, n)
        assert.is_true(d >= 0 and d <= cap, ("attempt %d: %s outside [0, %s]"):format(n, d, cap))
        lo, hi, sum = math.min(lo, d), math.max(hi, d), sum + d
      end
      -- uniform: for 500 draws these fail with a probability far below 1e-9
      assert.is_true(lo < 0.1 * cap and hi > 0.9 * cap, ("attempt %d: draws in [%s, %s]"):format(n, lo, hi))
      assert.is_true(math.abs(sum / 500 - cap / 2) < 0.1 * cap, ("attempt %d: mean %s"):format(n, sum / 500))
    end
  end)

  it("[10.18] differs between two processes of this interpreter", function()
    -- LuaJIT starts math.random from the same seed in every process: run under
    -- LuaJIT (make test does), this is the case that matters
    local lua = jit and "luajit" or "lua5.4" -- by name: check-asan puts its wrapper first on PATH
    local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s -e %s"):format(sh.quote(package.path), sh.quote(package.cpath),
      lua, sh.quote("print((function() " .. DRAWS .. " end)())"))
    local a, b = sh.output(cmd), sh.output(cmd)
    check_draws(a)
    check_draws(b)
    assert.are_not.equal(a, b)
  end)
end)
