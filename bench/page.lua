--- A userDeviceList answer as the platform sends it (the guide's step 4): the
-- PageHelper page around `n` device records with the 65 fields the guide shows
-- (20 of them null, 6 millisecond timestamps), written the way the platform's
-- Java (Jackson) writes it: no spaces, UTF-8 as is, '/' not escaped.
--
--   lua bench/page.lua N > page.json
local json = require "quecapi.json"

local null = require("cjson").null -- quecapi.json.encode writes it as null

local function device(i)
  local dk = string.format("D%04d", i)
  return {
    productKey = "p11pLZ", deviceKey = dk, deviceTag = "047AD71AAA1F7670F599BACE484EDE7A",
    deviceName = "RGB灯-" .. (1744780780714 + i), deviceStatus = i % 2 == 0 and "在线" or "离线",
    protocol = "MQTT", productName = "RGB灯",
    logoImage = "https://aiot-cdn.quectel.com/paas2/cdn/29c9cbead1ab4344829205aa2b9612911732871292272.jpeg",
    signalStrength = "88", uid = "C131362", userName = "QuE1DglfKXB", phone = "17132136550",
    locateType = null, deviceType = 1, ownerUid = null, shareCode = null,
    authKey = "FUjktXJpwJ8d3OLZoHTYtA==", authCode = null, bindingCode = null, btPwd = null,
    btLastUseTime = null, verified = 1, status = 1, networkType = "2", accessType = "0", sn = dk,
    bindMode = 3, onlineStatus = i % 2, bindStatus = 1,
    deviceCreateTime = "2023-04-23 17:08:00", deviceCreateTimeTs = 1682240880000 + i,
    activeTime = "2023-05-05 10:16:05", activeTimeTs = 1683252965000 + i,
    deviceBindTime = "2025-04-16 13:19:41", deviceBindTimeTs = 1744780781133 + i,
    lastConnTime = "2025-02-18 11:44:18", lastConnTimeTs = 1739850258248 + i,
    lastOfflineTime = "2025-02-18 11:49:27", lastOfflineTimeTs = 1739850567256 + i,
    invaildTime = null, invaildTimeTs = null, fid = null, frid = null, bindingType = 1,
    capabilitiesBitmask = 1, sharingExpireAt = null, sharingExpireTimeTs = null,
    upgradeStatus = null, userConfirmStatus = null, isNative = 1, isMatter = 0,
    firstItemCode = "smart_city", firstItemName = "RGB灯", secondItemCode = "SmartTwoWheels",
    secondItemName = "两轮车", lowPowerProduct = false, lowPowerCache = null,
    lowPowerStatus = false, aiCapabilityStatus = false, lowPowerAlive = 0, planId = null,
    gdid = null, groupState = 0, groupDeviceDeviceNum = null, matterInfo = null,
  }
end

local n = tonumber(arg[1]) or 1000
local list = {}
for i = 1, n do list[i] = device(i) end
io.write(assert(json.encode {
  code = 200, msg = "", extMsg = null,
  data = {
    total = n, list = list, pageNum = 1, pageSize = n, size = n, startRow = 1, endRow = n, pages = 1,
    prePage = 0, nextPage = 0, isFirstPage = true, isLastPage = true, hasPreviousPage = false,
    hasNextPage = false, navigatePages = 8, navigatepageNums = { 1 }, navigateFirstPage = 1,
    navigateLastPage = 1,
  },
}))
