-- Test-only endpoints under /_fake/: read what a phone would receive, seed users
-- and devices, inject faults, change the fake's settings, read its counters.
local cjson = require "cjson"
local state = require "fakecloud.state"
local envelope = require "fakecloud.envelope"
local faults = require "fakecloud.faults"
local account = require "fakecloud.account"

local _M = {}

local function reply(v)
  return envelope.send(200, cjson.encode(v))
end

local function bad(msg)
  return envelope.send(400, cjson.encode { error = msg })
end

local function body()
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  if not raw or raw == "" then return {} end
  local ok, v = pcall(cjson.decode, raw)
  return ok and type(v) == "table" and v or {}
end

local function find_user(p)
  if p.uid then return state.users[p.uid] end
  if p.phone then return state.users[state.by_phone[account.phone_key(p.internationalCode, p.phone)]] end
  if p.email then return state.users[state.by_email[p.email]] end
end

local handlers = {}

handlers["GET /_fake/health"] = function() return reply { ok = true } end

handlers["POST /_fake/reset"] = function()
  state.reset()
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

-- { phone, internationalCode, email, password } -> { uid }
handlers["POST /_fake/users"] = function()
  local p = body()
  local uid = state.new_uid()
  state.users[uid] = { uid = uid, phone = p.phone, internationalCode = p.internationalCode or "86",
                       email = p.email, password = p.password, nickname = "user" .. uid }
  if p.phone then state.by_phone[account.phone_key(p.internationalCode, p.phone)] = uid end
  if p.email then state.by_email[p.email] = uid end
  return reply { uid = uid }
end

-- { phone | email | uid, devices = [{productKey, deviceKey, deviceName}] | count, productKey }
handlers["POST /_fake/devices"] = function()
  local p = body()
  local user = find_user(p)
  if not user then return bad("no such user") end
  local list = p.devices or {}
  for i = 1, tonumber(p.count) or 0 do
    list[#list + 1] = { productKey = p.productKey or "p11pLZ",
                        deviceKey = string.format("%s%04d", p.prefix or "D", i),
                        deviceName = string.format("device-%04d", i) }
  end
  for _, d in ipairs(list) do
    d.uid = user.uid
    d.productName = d.productName or "RGB light"
    d.deviceName = d.deviceName or d.deviceKey
    d.bound_at = state.now()
    state.devices[#state.devices + 1] = d
  end
  return reply { count = #list }
end

-- { kind, path?, count?, delay_ms?, status? }
handlers["POST /_fake/faults"] = function()
  local f = body()
  if not faults.kinds[f.kind] then return bad("unknown fault kind " .. tostring(f.kind)) end
  state.faults[#state.faults + 1] = f
  return reply { queued = #state.faults }
end

handlers["POST /_fake/config"] = function()
  for k, v in pairs(body()) do
    if state.config[k] == nil then return bad("unknown setting " .. k) end
    state.config[k] = v
  end
  return reply(state.config)
end

-- Expire every access token (or those of one user) now.
handlers["POST /_fake/expire"] = function()
  local p = body()
  local user = find_user(p)
  for _, t in pairs(state.access) do
    if not user or t.uid == user.uid then t.exp = 0 end
  end
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
  return reply { seq = state.seq, requests = out }
end

function _M.handle()
  local h = handlers[ngx.req.get_method() .. " " .. ngx.var.uri]
  if not h then return envelope.send(404, '{"error":"no such control endpoint"}') end
  return h()
end

return _M
