-- Routes live clients call that the platform's API index does not list
-- (live-platform-evidence.md, "Endpoints live clients use that the docs index
-- lacks"). Their answers are shaped after what those clients read; the evidence
-- is named at each route. The clients are attractify-logan/pecron-monitor
-- (pecron_monitor.py and cloud_api.py: get_product_catalog, verify_device,
-- get_device_online_status) and its docs/known-pecron-api-quirks.md.
local app = require "quecapi.fakecloud.app"
local auth = require "quecapi.fakecloud.auth"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local devices = require "quecapi.fakecloud.devices"

local function present(v) return v ~= nil and v ~= "" end

-- The caller's own binding or accepted share of pk/dk; nil, code otherwise.
-- Not bound is 4007 "device is not bound": the code pecron-monitor meets "when
-- sending a control command or verifying a device" (verify_device calls
-- getDeviceBindingInfo), not the 5052 of the documented routes.
local function bound(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.pk) then return nil, 5066 end
  if not present(a.dk) then return nil, 5067 end
  local b = things.binding(user.uid, a.pk, a.dk)
  if b then return devices.view(b) end
  local s = things.share_for(user.uid, a.pk, a.dk)
  if s then return devices.shared_view(s) end
  return nil, 4007
end

-- The device as the user's device list shows it. pecron-monitor treats code 200
-- as "bound" and reads data.productName, which the list item carries.
app.route("GET", "/v2/binding/enduserapi/getDeviceBindingInfo", function(ctx)
  return bound(ctx)
end)

-- pecron-monitor reads data.online, falling back to data.value, and takes a
-- true value as online. The fake answers both with the 0/1 integer the
-- platform's onlineStatus fields use everywhere (and the realtime channel's
-- ONLINE message carries as value), so a client must compare, not test truth:
-- in Lua 0 is true.
app.route("GET", "/v2/binding/enduserapi/getDeviceOnlineStatus", function(ctx)
  local view, code = bound(ctx)
  if not view then return nil, code end
  return { productKey = view.productKey, deviceKey = view.deviceKey,
           online = view.onlineStatus, value = view.onlineStatus }
end)

-- The products of the user's devices (own and shared), once each, as a
-- PageHelper page. pecron-monitor asks for pageNum=1&pageSize=100 and reads
-- data.list[].productKey and data.list[].name.
app.route("GET", "/v2/enduser/enduserapi/getProductList", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  local page = tonumber(a.pageNum) or 1
  local size = tonumber(a.pageSize) or 10
  if page < 1 or size < 1 or page % 1 ~= 0 or size % 1 ~= 0 then
    return nil, 5000, "Invalid pageNum or pageSize"
  end
  local items, seen = {}, {}
  for _, d in ipairs(devices.user_items(user.uid)) do
    if not seen[d.productKey] then
      seen[d.productKey] = true
      local product = products.get(d.productKey)
      items[#items + 1] = { productKey = d.productKey,
                            name = product and product.productName or d.productName or d.productKey }
    end
  end
  return devices.page(items, page, math.min(size, 1000))
end)

return {}
