-- The user's devices: the list (own and shared), one device's details, and the
-- PageHelper pages list endpoints answer with.
local app = require "quecapi.fakecloud.app"
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local times = require "quecapi.fakecloud.times"

local _M = {}

-- A PageHelper page of `items` (1-based page).
function _M.page(items, page, size)
  local total = #items
  local pages = total == 0 and 0 or math.ceil(total / size)
  local list = {}
  for i = (page - 1) * size + 1, math.min(page * size, total) do list[#list + 1] = items[i] end
  local nums = {}
  for i = 1, math.min(pages, 8) do nums[i] = i end
  return {
    total = total, list = json.array(list),
    pageNum = page, pageSize = size, size = #list,
    startRow = #list > 0 and (page - 1) * size + 1 or 0,
    endRow = #list > 0 and (page - 1) * size + #list or 0,
    pages = pages, prePage = page > 1 and page - 1 or 0,
    nextPage = page < pages and page + 1 or 0,
    isFirstPage = page == 1, isLastPage = page >= pages,
    hasPreviousPage = page > 1, hasNextPage = page < pages,
    navigatePages = 8, navigatepageNums = json.array(nums),
    navigateFirstPage = nums[1] or 0, navigateLastPage = nums[#nums] or 0,
  }
end

-- page, pageSize from arguments (defaults 1 and 10), or nil when invalid.
function _M.paging(a)
  local page = tonumber(a.page) or 1
  local size = tonumber(a.pageSize) or 10
  if page < 1 or size < 1 or page % 1 ~= 0 or size % 1 ~= 0 then return nil end
  return page, math.min(size, 1000)
end
local paging = _M.paging

local function online(d)
  local t = things.get(d.productKey, d.deviceKey)
  if t then return t.online end
  return d.online
end

-- The list item the platform returns for a device bound to a user.
function _M.view(d)
  local ms = math.floor(d.bound_at * 1000)
  local on = online(d)
  local t = things.get(d.productKey, d.deviceKey)
  return {
    productKey = d.productKey, deviceKey = d.deviceKey, deviceName = d.deviceName,
    productName = d.productName, deviceStatus = on and "Online" or "Offline",
    onlineStatus = on and 1 or 0, protocol = "MQTT", sn = d.sn or (t and t.sn) or d.deviceKey,
    uid = d.uid, deviceType = 1, bindStatus = 1, status = 1, verified = 1,
    accessType = "0", networkType = "2", signalStrength = "88", bindMode = 3,
    bindingType = d.bindingType or 3, capabilitiesBitmask = 1, isNative = 1, isMatter = 0,
    lowPowerProduct = false, lowPowerStatus = false, aiCapabilityStatus = false,
    lowPowerAlive = 0, groupState = 0, authKey = d.authKey,
    deviceBindTime = os.date("!%Y-%m-%d %H:%M:%S", math.floor(d.bound_at)), deviceBindTimeTs = ms,
  }
end

-- A device shared with the user: the owner's device as the sharee sees it
-- (deviceType 2, the sharer in ownerUid, status 2 once the usage time ran out).
function _M.shared_view(s)
  local owner = things.binding(s.ownerUid, s.pk, s.dk)
  local t = things.get(s.pk, s.dk)
  local product = products.get(s.pk)
  local since = s.acceptTime or s.shareTime
  local v = _M.view(owner or { productKey = s.pk, deviceKey = s.dk, bound_at = since / 1000,
                               productName = product and product.productName or s.pk,
                               deviceName = t and t.deviceName or s.dk })
  local expired = s.sharingExpireAt and s.sharingExpireAt <= state.now_ms()
  v.deviceType = 2
  v.uid = s.shareUid
  v.ownerUid = s.ownerUid
  v.shareCode = s.shareCode
  v.deviceName = s.deviceName or v.deviceName
  v.authKey = nil
  v.bindStatus = expired and 2 or 1
  v.status = v.bindStatus
  v.deviceBindTime = times.datetime(since)
  v.deviceBindTimeTs = since
  if s.sharingExpireAt then
    v.sharingExpireAt = times.datetime(s.sharingExpireAt)
    v.sharingExpireTimeTs = s.sharingExpireAt
  end
  return v
end

-- Own bindings first, then accepted shares (cancelled ones are gone).
function _M.user_items(uid)
  local items = {}
  for _, d in ipairs(state.devices) do
    if d.uid == uid then items[#items + 1] = _M.view(d) end
  end
  for _, s in ipairs(state.shares) do
    if s.shareUid == uid and s.status == "accepted" then items[#items + 1] = _M.shared_view(s) end
  end
  return items
end

app.route("GET", "/v2/binding/enduserapi/userDeviceList", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  local page, size = paging(a)
  if not page then return nil, 5000, "Invalid page or pageSize" end
  if a.deviceName and #a.deviceName > 254 then return nil, 5333 end
  local pks
  if a.pkList and a.pkList ~= "" then
    pks = {}
    for pk in a.pkList:gmatch("[^,]+") do pks[pk] = true end
  end
  local items = {}
  for _, v in ipairs(_M.user_items(user.uid)) do
    if (not pks or pks[v.productKey])
       and (not a.dk or a.dk == "" or a.dk == v.deviceKey)
       and (not a.deviceName or a.deviceName == "" or (v.deviceName or ""):find(a.deviceName, 1, true)) then
      items[#items + 1] = v
    end
  end
  return _M.page(items, page, size)
end)

-- By pk + dk (own or shared device), or by a share code (what a recipient sees
-- before and after accepting).
app.route("GET", "/v2/binding/enduserapi/deviceInfo", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  local has_pkdk = a.pk and a.pk ~= "" and a.dk and a.dk ~= ""
  if not has_pkdk and (not a.shareCode or a.shareCode == "") then return nil, 5140 end
  if has_pkdk then
    local d = things.binding(user.uid, a.pk, a.dk)
    if d then return _M.view(d) end
    local s = things.share_for(user.uid, a.pk, a.dk)
    if s then return _M.shared_view(s) end
    return nil, 5052
  end
  for _, s in ipairs(state.shares) do
    if s.shareCode == a.shareCode and s.status ~= "cancelled" and s.status ~= "replaced"
       and (s.ownerUid == user.uid or s.shareUid == nil or s.shareUid == user.uid) then
      return _M.shared_view(s)
    end
  end
  return nil, 5141
end)

return _M
