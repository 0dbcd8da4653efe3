-- The signed-in user: token refresh, profile, logout, password change and reset.
local app = require "quecapi.fakecloud.app"
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"
local crypto = require "quecapi.fakecloud.crypto"
local account = require "quecapi.fakecloud.account"
local email = require "quecapi.fakecloud.email"
local config = require "quecapi.fakecloud.config"
local times = require "quecapi.fakecloud.times"

local _M = {}

local function present(v) return v ~= nil and v ~= "" end

local function password_ok(p)
  return p and #p >= 6 and #p <= 20
end

-- The user's profile. userInfo types its times as integers (ms); the sharee list
-- of deviceShareUserList as formatted strings next to *Ts integers.
function _M.info(u, strings)
  local reg = math.floor((u.registered_at or 0) * 1000)
  local last = u.last_login and math.floor(u.last_login * 1000) or reg
  return {
    uid = u.uid, phone = u.phone, email = u.email, nikeName = u.nickname, headimg = "",
    sex = "2", lang = "en", timezone = "+08:00", nationality = "", province = "", city = "",
    address = "", signature = "", remark = "", status = 1,
    userDomain = strings and (u.userDomain or config.user_domain) or nil,
    -- registration method; the docs give no values: 1 phone, 2 email here
    logonMode = not strings and (u.logon_mode or (u.phone and 1 or 2)) or nil,
    registerTime = strings and times.datetime(reg) or reg, registerTimeTs = reg,
    lastLoginTime = strings and times.datetime(last) or last, lastLoginTimeTs = last,
  }
end

-- The refresh token (query, "Bearer ..." as login returned it) and the current
-- access token (Authorization, accepted even when expired) of the same user
-- trade for a new pair; both old tokens stop working.
app.route("PUT", "/v2/enduser/enduserapi/refreshToken", function(ctx)
  local refresh = ctx.args.refreshToken
  if not present(refresh) then return nil, 5115 end
  local header = auth.header(ctx)
  if not header then return nil, 5106 end
  local r = state.refresh[refresh]
  local a = state.access[header]
  if not r or r.exp <= state.now() or not a or a.uid ~= r.uid then return nil, 5032 end
  auth.revoke_refresh(refresh)
  auth.revoke_access(header)
  return auth.issue_tokens(r.uid)
end)

app.route("GET", "/v2/enduser/enduserapi/userInfo", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code or 5033 end
  return _M.info(user, false)
end)

-- The platform does not say whether logout revokes the JWT; the fake does, for
-- every token of the user, so a client sees 5032 if it keeps using one.
app.route("DELETE", "/v2/enduser/enduserapi/userLogout", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  auth.revoke_user(user.uid)
  return nil
end)

-- Both passwords AES-encrypted with the one `random`; the session stays valid.
app.route("PUT", "/v2/enduser/enduserapi/setUserPwd", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.oldPwd) then return nil, 5505 end
  if not present(a.newPwd) then return nil, 5507 end
  local old = crypto.decrypt_password(a.oldPwd, a.random or "")
  if not old then return nil, 5506 end
  local new = crypto.decrypt_password(a.newPwd, a.random or "")
  if not new then return nil, 5508 end
  if not password_ok(old) then return nil, 5509 end
  if not password_ok(new) then return nil, 5510 end
  if old ~= user.password then return nil, 5008 end
  if new == old then return nil, 5063 end
  user.password = new
  return nil
end)

-- By phone + SMS code (codeType 1) or email + email code (emailType 2). Without
-- pwd the password becomes 12345678, as documented. A reset signs the user out
-- everywhere (the docs are silent; it is what a reset is for).
app.route("PUT", "/v2/enduser/enduserapi/userPwdReset", function(ctx)
  local a = ctx.args
  if not present(a.code) then return nil, 5064 end
  local bad = auth.domain(a.userDomain)
  if bad then return nil, bad end
  local uid, key, code_fail
  if present(a.phone) then
    if not a.phone:find("^%d+$") then return nil, 5019 end
    local pk = account.phone_key(present(a.internationalCode) and a.internationalCode or nil, a.phone)
    uid = state.by_phone[pk]
    if not uid then return nil, 5004 end
    key, code_fail = "sms|" .. pk .. "|1", 5037
  elseif present(a.email) then
    uid = state.by_email[a.email]
    if not uid then return nil, 5031 end
    key, code_fail = email.code_key(a.email, 2), 5046
  else
    return nil, 5044
  end
  local plain = "12345678"
  if present(a.pwd) then
    plain = crypto.decrypt_password(a.pwd, a.random or "")
    if not password_ok(plain) then return nil, 5056 end
  end
  if not account.consume_code(key, a.code) then return nil, code_fail end
  state.users[uid].password = plain
  auth.revoke_user(uid)
  return nil
end)

return _M
