--- `quecapi device PK DK`: a device's information and its current property values.
-- @module quecapi.cli.cmd.device

local session = require "quecapi.cli.session"
local output = require "quecapi.cli.output"
local devices = require "quecapi.cli.cmd.devices"

local ipairs, pairs, type = ipairs, pairs, type
local sort = table.sort
local plain = output.plain

-- Fields of deviceInfo worth a line, in reading order.
local FIELDS = {
  { "deviceName", "Name" }, { "productKey", "Product key" }, { "deviceKey", "Device key" },
  { "productName", "Product" }, { "sn", "Serial number" }, { "protocol", "Protocol" },
  { "deviceBindTime", "Bound at" }, { "lastConnTime", "Last online" },
}

-- Property values as "code value" rows, by code.
local function value_rows(values)
  local codes = {}
  for c in pairs(values) do codes[#codes + 1] = c end
  sort(codes)
  local rows = {}
  for i, c in ipairs(codes) do rows[i] = { plain(c), plain(values[c]) } end
  return rows
end

return {
  summary = "show a device and its current property values",
  usage = "device PRODUCT_KEY DEVICE_KEY [--json]",
  help = "Show a device's information and its current property values.",
  options = { { name = "json", help = "print {info, properties} as JSON" } },
  nargs = { 2, 2 },
  args_help = "PRODUCT_KEY DEVICE_KEY",
  run = function(ctx)
    local pk, dk = ctx.args[1], ctx.args[2]
    local client, err, code, kind = session.session(ctx)
    if not client then return nil, err, code, kind end
    local res
    res, err, code, kind = client:device_info { pk = pk, dk = dk }
    if not res then return nil, err, code, kind end
    local info = type(res.data) == "table" and res.data or {}
    local values, verr, vcode, vkind = client:get_properties(pk, dk)
    if ctx.opts.json then
      if not values then return nil, verr, vcode, vkind end
      return ctx.out:json { info = info, properties = values }
    end
    local rows = {}
    for _, f in ipairs(FIELDS) do
      if info[f[1]] ~= nil and info[f[1]] ~= "" then rows[#rows + 1] = { f[2], plain(info[f[1]]) } end
    end
    rows[#rows + 1] = { "Status", devices.status_text(info) }
    ctx.out:table(rows)
    ctx.out:say("\nProperties")
    if not values then return nil, verr, vcode, vkind end
    rows = value_rows(values)
    if #rows == 0 then ctx.out:say("  (no values)") else ctx.out:table(rows, "  ") end
    return true
  end,
}
