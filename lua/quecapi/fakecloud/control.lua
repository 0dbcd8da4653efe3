-- Test-only endpoints under /_fake/: read what a phone would receive, seed users
-- and devices, inject faults, change the fake's settings, read its counters.
--
--   GET    /_fake/health
--   POST   /_fake/reset              forget everything (settings too)
--   GET    /_fake/code?phone=&codeType=&internationalCode=   or ?email=&emailType=
--   POST   /_fake/users              { phone, internationalCode, email, password, nickname, userDomain,
--                                       devices } -> { uid }; `devices` starter devices (default
--                                       the signup_devices setting, 3; 0 for none)
--   POST   /_fake/faults             { kind, path, count, ... } (faults.lua; kind "auth" for token
--                                     failures) -> { queued }
--   DELETE /_fake/faults             drop every queued fault
--   POST   /_fake/config             { setting = value } (state.lua) -> the settings; setting
--                                     daily_quota also starts every account's count afresh
--   GET    /_fake/quota              { daily_quota, used = { uid = calls today } }
--   POST   /_fake/quota/reset        every account's count back to 0 (as at 00:00 UTC)
--   POST   /_fake/expire             { phone | email | uid, access_only }
--   GET    /_fake/stats              { requests, inflight, inflight_max }
--   POST   /_fake/stats/reset        requests = 0, inflight_max = inflight
--   GET    /_fake/requests?since=    the API requests received after seq `since`
-- Products and devices: seed.lua. The realtime channel: broker_control.lua.
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local envelope = require "quecapi.fakecloud.envelope"
local faults = require "quecapi.fakecloud.faults"
local account = require "quecapi.fakecloud.account"
local auth = require "quecapi.fakecloud.auth"
local quota = require "quecapi.fakecloud.quota"
local things = require "quecapi.fakecloud.things"
local realtime = require "quecapi.fakecloud.realtime"

local _M = {}

local function reply(v)
  return envelope.send(200, json.encode(v))
end
_M.reply = reply

local function bad(msg)
  return envelope.send(400, json.encode { error = msg })
end
_M.bad = bad

-- The JSON body as a table ({} when absent or not JSON).
local function body()
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  if not raw or raw == "" then return {} end
  local v = json.decode(raw)
  return type(v) == "table" and v or {}
end
_M.body = body

-- Query arguments, single-valued.
function _M.args()
  local a = ngx.req.get_uri_args(100)
  for k, v in pairs(a) do
    if type(v) == "table" then a[k] = v[1] end
  end
  return a
end

local function find_user(p)
  if p.uid then return state.users[p.uid] end
  if p.phone then return state.users[state.by_phone[account.phone_key(p.internationalCode, p.phone)]] end
  if p.email then return state.users[state.by_email[p.email]] end
end
_M.find_user = find_user

local handlers = {}

-- Other modules add their control endpoints here (seed.lua).
function _M.route(method, path, handler)
  handlers[method .. " " .. path] = handler
end

handlers["GET /_fake/health"] = function() return reply { ok = true } end

-- Connected Apps stay connected (the platform checks a token at connect only);
-- a frozen broker answers again.
handlers["POST /_fake/reset"] = function()
  state.reset()
  realtime.tokens_changed()
  if realtime.enabled() then realtime.ask { op = "thaw" } end
  return reply { ok = true }
end

-- The last code sent to a phone or an email address.
handlers["GET /_fake/code"] = function()
  local a = ngx.req.get_uri_args()
  local key
  if a.phone then
    key = "sms|" .. account.phone_key(a.internationalCode, a.phone) .. "|" .. (a.codeType or "3")
  else
    key = "mail|" .. (a.email or "") .. "|" .. (a.emailType or "1")
  end
  local c = state.codes[key]
  if not c then return bad("no code sent to " .. key) end
  return reply { code = c.code, used = c.used }
end

-- { phone, internationalCode, email, password, nickname, userDomain, devices } -> { uid }
-- userDomain: config.user_domain or config.second_user_domain (default the first).
-- devices: how many starter devices the user owns (things.starter_devices);
-- default the signup_devices setting, like a user who registers.
handlers["POST /_fake/users"] = function()
  local p = body()
  if p.userDomain ~= nil and not auth.known_domain(p.userDomain) then
    return bad("unknown userDomain " .. tostring(p.userDomain))
  end
  local devices = p.devices
  if devices == nil then devices = state.config.signup_devices end
  if devices == false then devices = 0 end
  devices = tonumber(devices)
  if not devices or devices < 0 or devices > 1000 or devices % 1 ~= 0 then
    return bad("devices is a number of starter devices, 0 to 1000")
  end
  local uid = state.new_uid()
  state.users[uid] = { uid = uid, phone = p.phone, internationalCode = p.internationalCode or "86",
                       email = p.email, password = p.password, nickname = p.nickname or ("user" .. uid),
                       registered_at = state.now(), userDomain = p.userDomain }
  if p.phone then state.by_phone[account.phone_key(p.internationalCode, p.phone)] = uid end
  if p.email then state.by_email[p.email] = uid end
  things.starter_devices(state.users[uid], devices)
  return reply { uid = uid }
end

-- { kind, path?, count?, ...options } (the kinds and their options: faults.lua)
handlers["POST /_fake/faults"] = function()
  local queued, err = faults.queue(body())
  if not queued then return bad(err) end
  return reply { queued = queued }
end

-- Forget every queued fault.
handlers["DELETE /_fake/faults"] = function()
  state.faults = {}
  return reply { queued = 0 }
end

handlers["POST /_fake/config"] = function()
  local p = body()
  for k in pairs(p) do
    if state.config[k] == nil then return bad("unknown setting " .. k) end
  end
  if p.daily_quota ~= nil and not (tonumber(p.daily_quota) and tonumber(p.daily_quota) >= 0) then
    return bad("daily_quota is a number of calls, 0 for none")
  end
  for k, v in pairs(p) do state.config[k] = v end
  if p.daily_quota ~= nil then quota.reset() end
  -- which tokens are still valid depends on the fake's clock
  if p.clock_offset ~= nil then realtime.tokens_changed() end
  return reply(state.config)
end

handlers["GET /_fake/quota"] = function()
  local used = {}
  for uid, n in pairs(state.quota.used) do used[uid] = n end
  return reply { daily_quota = state.config.daily_quota, used = used }
end

handlers["POST /_fake/quota/reset"] = function()
  quota.reset()
  return reply { ok = true }
end

-- Expire the tokens of every user (or of one: phone, email or uid) now.
--   {}                    the session ran out: access and refresh tokens, so a
--                         client that renews gets 5032 from refreshToken too
--   { access_only = true } two hours passed: access tokens only, the refresh
--                         token still trades for a new pair
handlers["POST /_fake/expire"] = function()
  local p = body()
  local user = find_user(p)
  for _, t in pairs(state.access) do
    if not user or t.uid == user.uid then t.exp = 0 end
  end
  if not p.access_only then
    for _, t in pairs(state.refresh) do
      if not user or t.uid == user.uid then t.exp = 0 end
    end
  end
  -- the broker refuses them from now on
  realtime.tokens_changed()
  return reply { ok = true }
end

handlers["GET /_fake/stats"] = function()
  return reply(state.stats)
end

handlers["POST /_fake/stats/reset"] = function()
  state.stats.requests = 0
  state.stats.inflight_max = state.stats.inflight
  return reply(state.stats)
end

-- Requests the fake received after sequence number `since`.
handlers["GET /_fake/requests"] = function()
  local since = tonumber(ngx.var.arg_since) or 0
  local out = {}
  for _, e in ipairs(state.log) do
    if e.seq > since then out[#out + 1] = e end
  end
  return reply { seq = state.seq, requests = json.array(out) }
end

function _M.handle()
  local h = handlers[ngx.req.get_method() .. " " .. ngx.var.uri]
  if not h then return envelope.send(404, '{"error":"no such control endpoint"}') end
  return h()
end

return _M
