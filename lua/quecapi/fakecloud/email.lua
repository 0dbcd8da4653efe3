-- Email verification codes, email registration and email login.
local app = require "quecapi.fakecloud.app"
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"
local crypto = require "quecapi.fakecloud.crypto"
local account = require "quecapi.fakecloud.account"
local things = require "quecapi.fakecloud.things"

local _M = {}

local function present(v) return v ~= nil and v ~= "" end

function _M.valid(email)
  return type(email) == "string" and #email <= 254 and email:find("^[^@%s]+@[^@%s]+%.[^@%s]+$") ~= nil
end

function _M.code_key(email, email_type)
  return "mail|" .. email .. "|" .. tostring(email_type)
end

local function password_ok(p)
  return p and #p >= 6 and #p <= 20
end

-- No signature is documented for this call (unlike SMS); the code waits at
-- GET /_fake/code?email=...&emailType=...
app.route("POST", "/v2/mail/enduserapi/v2/sendEmail", function(ctx)
  local a = ctx.args
  if not present(a.email) then return nil, 5026 end
  local bad = auth.domain(a.userDomain)
  if bad then return nil, bad end
  if not _M.valid(a.email) then return nil, 5040 end
  if not a.emailType or not a.emailType:find("^[1-5]$") then return nil, 5000, "Invalid emailType" end
  local _, err = account.issue_code(_M.code_key(a.email, a.emailType))
  if err then return nil, err end
  return nil
end)

-- The page documents this older path with query parameters; data is the uid as a
-- plain string.
app.route("POST", "/v2/enduser/enduserapi/emailPwdRegister", function(ctx)
  local a = ctx.args
  if not present(a.email) then return nil, 5026 end
  if not present(a.pwd) then return nil, 5022 end
  if not present(a.code) then return nil, 5064 end
  local bad = auth.domain(a.userDomain)
  if bad then return nil, bad end
  if not _M.valid(a.email) then return nil, 5040 end
  local plain = crypto.decrypt_password(a.pwd, a.random or "")
  if not password_ok(plain) then return nil, 5056 end
  if state.by_email[a.email] then return nil, 5039 end
  if not account.consume_code(_M.code_key(a.email, 1), a.code) then return nil, 5046 end
  local uid = state.new_uid()
  state.users[uid] = { uid = uid, email = a.email, password = plain, nickname = "user" .. uid,
                       registered_at = state.now(), logon_mode = 2, userDomain = a.userDomain }
  state.by_email[a.email] = uid
  things.starter_devices(state.users[uid], state.config.signup_devices)
  return uid
end)

-- Wrong passwords count down 5586..5583 ("you have N more attempts"), then the
-- account is frozen (5147) for freeze_seconds; a good login clears the count.
local function wrong_password(email)
  local at = state.attempts[email] or { failures = 0 }
  state.attempts[email] = at
  at.failures = at.failures + 1
  local left = state.config.login_attempts - at.failures
  if left <= 0 then
    at.failures, at.frozen_until = 0, state.now() + state.config.freeze_seconds
    return 5147
  end
  if left > 4 then return 5028 end
  return 5582 + left
end

app.route("POST", "/v2/enduser/enduserapi/emailPwdLogin", function(ctx)
  local a = ctx.args
  if not present(a.email) then return nil, 5026 end
  if not present(a.pwd) then return nil, 5022 end
  local bad = auth.domain(a.userDomain)
  if bad then return nil, bad end
  bad = auth.signature(a, { "email", "pwd", "random" })
  if bad then return nil, bad end
  if not _M.valid(a.email) then return nil, 5040 end
  local uid = state.by_email[a.email]
  if not uid then return nil, 5031 end
  if not auth.in_domain(state.users[uid], a.userDomain) then return nil, 5015 end
  local at = state.attempts[a.email]
  if at and at.frozen_until and at.frozen_until > state.now() then return nil, 5147 end
  local plain = crypto.decrypt_password(a.pwd, a.random or "")
  if plain ~= state.users[uid].password then return nil, wrong_password(a.email) end
  state.attempts[a.email] = nil
  return auth.issue_tokens(uid)
end)

return _M
