-- The user's devices.
local app = require "fakecloud.app"
local state = require "fakecloud.state"
local auth = require "fakecloud.auth"

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
    total = total, list = list,
    pageNum = page, pageSize = size, size = #list,
    startRow = #list > 0 and (page - 1) * size + 1 or 0,
    endRow = #list > 0 and (page - 1) * size + #list or 0,
    pages = pages, prePage = page > 1 and page - 1 or 0,
    nextPage = page < pages and page + 1 or 0,
    isFirstPage = page == 1, isLastPage = page >= pages,
    hasPreviousPage = page > 1, hasNextPage = page < pages,
    navigatePages = 8, navigatepageNums = nums,
    navigateFirstPage = nums[1] or 0, navigateLastPage = nums[#nums] or 0,
  }
end

local function paging(a)
  local page = tonumber(a.page) or 1
  local size = tonumber(a.pageSize) or 10
  if page < 1 or size < 1 or page % 1 ~= 0 or size % 1 ~= 0 then return nil end
  return page, math.min(size, 1000)
end

-- The list item the platform returns for a device bound to a user.
function _M.view(d)
  local ms = math.floor(d.bound_at * 1000)
  return {
    productKey = d.productKey, deviceKey = d.deviceKey, deviceName = d.deviceName,
    productName = d.productName, deviceStatus = d.online and "Online" or "Offline",
    onlineStatus = d.online and 1 or 0, protocol = "MQTT", sn = d.sn or d.deviceKey,
    uid = d.uid, deviceType = 1, bindStatus = 1, status = 1, verified = 1,
    accessType = "0", networkType = "2", signalStrength = "88", bindMode = 3,
    bindingType = d.bindingType or 3, capabilitiesBitmask = 1, isNative = 1, isMatter = 0,
    lowPowerProduct = false, lowPowerStatus = false, aiCapabilityStatus = false,
    lowPowerAlive = 0, groupState = 0,
    deviceBindTime = os.date("!%Y-%m-%d %H:%M:%S", math.floor(d.bound_at)), deviceBindTimeTs = ms,
  }
end

app.route("GET", "/v2/binding/enduserapi/userDeviceList", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  local page, size = paging(a)
  if not page then return nil, 5000, "Invalid page or pageSize" end
  local pks
  if a.pkList and a.pkList ~= "" then
    pks = {}
    for pk in a.pkList:gmatch("[^,]+") do pks[pk] = true end
  end
  local items = {}
  for _, d in ipairs(state.devices) do
    if d.uid == user.uid and (not pks or pks[d.productKey])
       and (not a.dk or a.dk == "" or a.dk == d.deviceKey)
       and (not a.deviceName or a.deviceName == "" or d.deviceName:find(a.deviceName, 1, true)) then
      items[#items + 1] = _M.view(d)
    end
  end
  return _M.page(items, page, size)
end)

return _M
