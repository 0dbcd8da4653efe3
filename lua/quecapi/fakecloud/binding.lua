-- Binding a known device to the caller (by serial number or by device key) and
-- unbinding it. A device may be bound to several users at once (the platform's
-- multi-binding mode); what the device holds lives on its thing and is shared.
local app = require "quecapi.fakecloud.app"
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"
local crypto = require "quecapi.fakecloud.crypto"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"

local function present(v) return v ~= nil and v ~= "" end

local function bind(user, t, name, binding_type)
  if name and #name > 254 then return nil, 5333 end
  if things.binding(user.uid, t.productKey, t.deviceKey) then return nil, 5049 end
  if things.share_for(user.uid, t.productKey, t.deviceKey) then return nil, 6040 end
  local product = products.get(t.productKey)
  local d = {
    uid = user.uid, productKey = t.productKey, deviceKey = t.deviceKey, sn = t.sn,
    deviceName = present(name) and name or t.deviceName,
    productName = product and product.productName or t.productKey,
    bound_at = state.now(), bindingType = binding_type,
    -- the key a binding is proven with later (shareInfo/shareByUid take it)
    authKey = ngx.encode_base64(crypto.random_hex(8)),
  }
  state.devices[#state.devices + 1] = d
  return d
end

app.route("POST", "/v2/binding/enduserapi/bindDeviceSn", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.pk) then return nil, 5066 end
  if not present(a.sn) then return nil, 5088 end
  local t = things.by_sn(a.pk, a.sn)
  if not t then return nil, 5553 end
  local d, err = bind(user, t, a.deviceName, 1)
  if not d then return nil, err end
  return { authKey = d.authKey, pk = d.productKey, dk = d.deviceKey, moduleType = "EC200U" }
end)

app.route("POST", "/v2/binding/enduserapi/bindDeviceDk", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.pk) then return nil, 5066 end
  if not present(a.dk) then return nil, 5067 end
  if not a.dk:find("^[%w_%-%.:]+$") then return nil, 5361 end
  local t = things.get(a.pk, a.dk)
  if not t then return nil, 5553 end
  local d, err = bind(user, t, a.name, 3)
  if not d then return nil, err end
  return { authKey = d.authKey }
end)

-- Unbinding also ends the shares the user made of that device.
app.route("DELETE", "/v2/binding/enduserapi/unbundlingDeviceDk", function(ctx)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  local a = ctx.args
  if not present(a.pk) then return nil, 5066 end
  if not present(a.dk) then return nil, 5067 end
  local d = things.binding(user.uid, a.pk, a.dk)
  if not d then return nil, 5052 end
  things.unbind(d)
  local now = state.now_ms()
  for _, s in ipairs(state.shares) do
    if s.ownerUid == user.uid and s.pk == a.pk and s.dk == a.dk and s.status ~= "cancelled" then
      s.status, s.deleteTime, s.updateTime = "cancelled", now, now
    end
  end
  return { bindingSum = #things.bindings(a.pk, a.dk) }
end)
