-- Verification codes, registration and login.
local app = require "quecapi.fakecloud.app"
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"
local crypto = require "quecapi.fakecloud.crypto"
local things = require "quecapi.fakecloud.things"

local function phone_key(ic, phone)
  return (ic or "86") .. "|" .. phone
end

local function password_ok(p)
  return p and #p >= 6 and #p <= 20
end

-- Issue a code for a key; 5058 when the last one to it is too recent.
local function issue_code(key)
  local now = state.now()
  local last = state.codes[key]
  if last and now - last.sent < state.config.sms_interval then return nil, 5058 end
  local code = string.format("%06d", math.random(0, 999999))
  state.codes[key] = { code = code, sent = now, expires = now + state.config.sms_ttl, used = false }
  return code
end

-- Use up a code: true when it is the last one issued, unused and fresh.
local function consume_code(key, code)
  local c = state.codes[key]
  if not c or c.used or c.expires < state.now() or c.code ~= code then return false end
  c.used = true
  return true
end

app.route("POST", "/v2/sms/enduserapi/v2/sendPhoneSmsCode", function(ctx)
  local a = ctx.args
  if not a.phone or a.phone == "" then return nil, 5021 end
  if not a.internationalCode or a.internationalCode == "" then return nil, 5116 end
  local bad = auth.domain(a.userDomain)
  if bad then return nil, bad end
  if not a.codeType or not a.codeType:find("^[1-5]$") then return nil, 5000, "Invalid codeType" end
  if not a.random or #a.random ~= 16 then return nil, 5420 end
  bad = auth.timestamp(a.ts) or auth.signature(a, { "phone", "codeType", "random", "ts" })
  if bad then return nil, bad end
  if not a.phone:find("^%d+$") then return nil, 5019 end
  local _, err = issue_code("sms|" .. phone_key(a.internationalCode, a.phone) .. "|" .. a.codeType)
  if err then return nil, err end
  return nil
end)

app.route("POST", "/v2/enduser/enduserapi/v2/phonePwdRegister", function(ctx)
  local b = ctx.body
  if type(b) ~= "table" then return nil, 5021 end
  if not b.phone or b.phone == "" then return nil, 5021 end
  if not b.pwd or b.pwd == "" then return nil, 5022 end
  if not b.smsCode or b.smsCode == "" then return nil, 5064 end
  local bad = auth.domain(b.userDomain)
  if bad then return nil, bad end
  local list = b.agreementList
  if type(list) ~= "table" or #list == 0 then return nil, 5000, "Please enter agreementList" end
  for _, item in ipairs(list) do
    if type(item) ~= "table" or not tonumber(item.protocolType) or type(item.privacyVersion) ~= "string" then
      return nil, 5000, "Invalid agreementList"
    end
  end
  local plain = crypto.decrypt_password(b.pwd, b.random or "")
  if not password_ok(plain) then return nil, 5056 end
  local key = phone_key(b.internationalCode, b.phone)
  if state.by_phone[key] then return nil, 5002 end
  if not consume_code("sms|" .. key .. "|3", b.smsCode) then return nil, 5037 end
  local uid = state.new_uid()
  state.users[uid] = { uid = uid, phone = b.phone, internationalCode = b.internationalCode or "86",
                       password = plain, nickname = "user" .. uid, registered_at = state.now(), logon_mode = 1,
                       userDomain = b.userDomain }
  state.by_phone[key] = uid
  things.starter_devices(state.users[uid], state.config.signup_devices)
  return { uid = uid }
end)

app.route("POST", "/v2/enduser/enduserapi/phonePwdLogin", function(ctx)
  local a = ctx.args
  if not a.phone or a.phone == "" then return nil, 5021 end
  if not a.pwd or a.pwd == "" then return nil, 5022 end
  local bad = auth.domain(a.userDomain)
  if bad then return nil, bad end
  bad = auth.signature(a, { "internationalCode", "phone", "pwd", "random" })
  if bad then return nil, bad end
  local uid = state.by_phone[phone_key(a.internationalCode, a.phone)]
  if not uid then return nil, 5004 end
  if not auth.in_domain(state.users[uid], a.userDomain) then return nil, 5015 end
  local plain = crypto.decrypt_password(a.pwd, a.random or "")
  if plain ~= state.users[uid].password then return nil, 5028 end
  return auth.issue_tokens(uid)
end)

return {
  phone_key = phone_key,
  issue_code = issue_code,
  consume_code = consume_code,
}
