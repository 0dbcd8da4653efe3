-- Device sharing. An owner makes a share code (shareInfo) or invites a known user
-- (shareByUid); the recipient accepts with the code (shareDevice) and from then on
-- sees the device in userDeviceList with deviceType 2 and may read and control it
-- until sharingExpireAt. Either side can end the share.
--
-- Choices where the docs are silent: shareInfo and shareByUid answer the share
-- code as data; a shareByUid invitation is accepted like any share code, but only
-- by the invited user, and waits 7 days; shareStatus is 0 waiting, 1 in use,
-- 2 cancelled or replaced, 3 usage time over; coverMark 3 behaves as 1 except
-- that a recipient cannot trade a longer share for a shorter one (5151).
local app = require "quecapi.fakecloud.app"
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"
local crypto = require "quecapi.fakecloud.crypto"
local things = require "quecapi.fakecloud.things"
local account = require "quecapi.fakecloud.account"
local times = require "quecapi.fakecloud.times"
local user_mod = require "quecapi.fakecloud.user"

local INVITE_TTL_MS = 7 * 86400 * 1000

local function present(v) return v ~= nil and v ~= "" end

local function find(code)
  for _, s in ipairs(state.shares) do
    if s.shareCode == code then return s end
  end
end

local function live(s)
  return s.status == "pending" or s.status == "accepted"
end

local function expired(s)
  return s.sharingExpireAt ~= nil and s.sharingExpireAt <= state.now_ms()
end

-- coverMark and sharingExpireAt as the two create calls take them; or nil, code.
local function options(a)
  local cover = 1
  if present(a.coverMark) then
    cover = tonumber(a.coverMark)
    if cover ~= 1 and cover ~= 2 and cover ~= 3 then return nil, 5133 end
  end
  local until_ms
  if present(a.sharingExpireAt) then
    until_ms = times.ms(a.sharingExpireAt)
    if not until_ms then return nil, 5145 end
  end
  return cover, until_ms
end

-- The owner's binding of pk/dk (a sharee cannot share on), or nil, code.
local function owned(user, a)
  if not present(a.pk) then return nil, 5066 end
  if not present(a.dk) then return nil, 5067 end
  local d = things.binding(user.uid, a.pk, a.dk)
  if not d or (present(a.authKey) and a.authKey ~= d.authKey) then return nil, 5135 end
  return d
end

local function create(user, d, fields)
  local now = state.now_ms()
  if fields.coverMark ~= 2 then
    -- "override the existing share code": earlier unused codes of this device stop working
    for _, s in ipairs(state.shares) do
      if s.ownerUid == user.uid and s.pk == d.productKey and s.dk == d.deviceKey and s.status == "pending"
         and s.shareUid == fields.shareUid then
        s.status, s.updateTime = "replaced", now
      end
    end
  end
  local s = { shareId = state.new_id(), shareCode = crypto.random_hex(16), ownerUid = user.uid,
              pk = d.productKey, dk = d.deviceKey, authKey = d.authKey, status = "pending",
              shareTime = now, updateTime = now }
  for k, v in pairs(fields) do s[k] = v end
  state.shares[#state.shares + 1] = s
  return s.shareCode
end

app.route("POST", "/v2/binding/enduserapi/shareInfo", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.pk) then return nil, 5066 end
  if not present(a.dk) then return nil, 5067 end
  if not present(a.acceptingExpireAt) then return nil, 5132 end
  local accept_ms = times.ms(a.acceptingExpireAt)
  if not accept_ms then return nil, 5145 end
  local cover, until_ms = options(a)
  if not cover then return nil, until_ms end
  if until_ms and until_ms <= accept_ms then return nil, 5153 end
  local d, err = owned(user, a)
  if not d then return nil, err end
  return create(user, d, { coverMark = cover, acceptingExpireAt = accept_ms, sharingExpireAt = until_ms })
end)

app.route("POST", "/v2/binding/enduserapi/shareByUid", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.pk) then return nil, 5066 end
  if not present(a.dk) then return nil, 5067 end
  local cover, until_ms = options(a)
  if not cover then return nil, until_ms end
  local target
  if present(a.shareUid) then
    target = a.shareUid
  elseif present(a.email) then
    target = state.by_email[a.email]
  elseif present(a.phone) then
    target = state.by_phone[account.phone_key(nil, a.phone)]
  else
    return nil, 5891
  end
  if not target or not state.users[target] then return nil, 5033 end
  if target == user.uid then return nil, 5139 end
  local d, err = owned(user, a)
  if not d then return nil, err end
  return create(user, d, { coverMark = cover, sharingExpireAt = until_ms, shareUid = target, invited = true,
                           acceptingExpireAt = state.now_ms() + INVITE_TTL_MS })
end)

app.route("POST", "/v2/binding/enduserapi/shareDevice", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.shareCode) then return nil, 5136 end
  if a.deviceName and #a.deviceName > 254 then return nil, 5333 end
  local s = find(a.shareCode)
  if not s or s.status ~= "pending" or s.acceptingExpireAt <= state.now_ms() then return nil, 5137 end
  if s.ownerUid == user.uid then return nil, 5139 end
  if s.invited and s.shareUid ~= user.uid then return nil, 5137 end
  if things.binding(user.uid, s.pk, s.dk) then return nil, 5049 end
  local now = state.now_ms()
  local old = things.share_for(user.uid, s.pk, s.dk)
  if old then
    local forever = math.huge
    if s.coverMark == 3 and (s.sharingExpireAt or forever) < (old.sharingExpireAt or forever) then
      return nil, 5151
    end
    old.status, old.updateTime = "replaced", now
  end
  s.shareUid, s.status, s.acceptTime, s.updateTime = user.uid, "accepted", now, now
  if present(a.deviceName) then s.deviceName = a.deviceName end
  return nil
end)

local function status_code(s)
  if s.status == "pending" then return 0 end
  if s.status ~= "accepted" then return 2 end
  return expired(s) and 3 or 1
end

local function share_view(s)
  local t = things.get(s.pk, s.dk)
  return {
    shareId = s.shareId, shareCode = s.shareCode, ownerUid = s.ownerUid, shareUid = s.shareUid,
    pk = s.pk, dk = s.dk, authKey = s.authKey, coverMark = s.coverMark, shareStatus = status_code(s),
    deviceName = s.deviceName or (t and t.deviceName), fid = json.null, failureCause = json.null,
    shareTime = s.shareTime, shareTimeTs = s.shareTime, updateTime = s.updateTime, updateTimeTs = s.updateTime,
    acceptTime = s.acceptTime, acceptTimeTs = s.acceptTime, deleteTime = s.deleteTime, deleteTimeTs = s.deleteTime,
    acceptingExpireAt = times.datetime(s.acceptingExpireAt), acceptingExpireAtTs = s.acceptingExpireAt,
    sharingExpireAt = s.sharingExpireAt and times.datetime(s.sharingExpireAt), sharingExpireAtTs = s.sharingExpireAt,
  }
end

-- The recipients of the owner's device: accepted shares and open invitations.
app.route("GET", "/v2/binding/enduserapi/deviceShareUserList", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.pk) then return nil, 5066 end
  if not present(a.dk) then return nil, 5067 end
  if not things.binding(user.uid, a.pk, a.dk) then return nil, 5141 end
  local out = {}
  for _, s in ipairs(state.shares) do
    if s.ownerUid == user.uid and s.pk == a.pk and s.dk == a.dk and s.shareUid and live(s) then
      local u = state.users[s.shareUid]
      out[#out + 1] = { shareInfo = share_view(s), userInfo = u and user_mod.info(u, true) or json.null }
    end
  end
  return json.array(out)
end)

-- The share behind a code for the owner (owner = true) or the recipient; or nil, code.
local function mine(ctx, owner)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.shareCode) then return nil, 5136 end
  local s = find(a.shareCode)
  if not s or (owner and s.ownerUid ~= user.uid) or (not owner and s.shareUid ~= user.uid) then
    return nil, 5041
  end
  if not live(s) then return nil, 5142 end
  return s
end

app.route("PUT", "/v2/binding/enduserapi/setShareTime", function(ctx)
  local s, code = mine(ctx, true)
  if not s then return nil, code end
  local until_ms = times.ms(ctx.args.sharingExpireAt)
  if not until_ms then return nil, 5145 end
  s.sharingExpireAt, s.updateTime = until_ms, state.now_ms()
  return nil
end)

app.route("PUT", "/v2/binding/enduserapi/changeShareDeviceName", function(ctx)
  local a = ctx.args
  local s, code = mine(ctx, false)
  if not s then return nil, code end
  if not present(a.deviceName) then return nil, 5068 end
  if #a.deviceName > 254 then return nil, 5333 end
  if expired(s) then return nil, 5142 end
  s.deviceName, s.updateTime = a.deviceName, state.now_ms()
  return nil
end)

local function cancel(ctx, owner)
  local s, code = mine(ctx, owner)
  if not s then return nil, code end
  local now = state.now_ms()
  s.status, s.deleteTime, s.updateTime = "cancelled", now, now
  return nil
end

app.route("DELETE", "/v2/binding/enduserapi/ownerUserUnshareDevice", function(ctx) return cancel(ctx, true) end)
app.route("DELETE", "/v2/binding/enduserapi/shareUserUnshareDevice", function(ctx) return cancel(ctx, false) end)
