--- `quecapi devices`: every device of the account, one line each.
-- @module quecapi.cli.cmd.devices

local session = require "quecapi.cli.session"
local args = require "quecapi.cli.args"
local output = require "quecapi.cli.output"

local ipairs, tonumber, type = ipairs, tonumber, type
local plain = output.plain

-- "online", "offline", or the platform's own word for the device's state.
local function status_text(d)
  local s = tonumber(d.onlineStatus)
  if s == 1 then return "online" end
  if s == 0 then return "offline" end
  if type(d.deviceStatus) == "string" and d.deviceStatus ~= "" then return output.clean(d.deviceStatus:lower()) end
  return "?"
end

return {
  summary = "list your devices",
  usage = "devices [--json] [--pk PK[,PK...]] [--name TEXT] [--page-size N]",
  help = "List every device of the account (all pages): product key, device key, name, online or offline.",
  options = {
    { name = "json", help = "print the devices as a JSON array, with every field" },
    { name = "pk", value = "PK[,PK...]", help = "only devices of these products" },
    { name = "name", value = "TEXT", help = "only devices whose name contains TEXT" },
    { name = "page-size", value = "N", help = "devices per request (default 50)" },
  },
  nargs = { 0, 0 },
  args_help = "no arguments",
  status_text = status_text,
  run = function(ctx)
    local page_size, err, code, kind = args.count(ctx.opts["page-size"] or "50", "page-size")
    if not page_size then return nil, err, code, kind end
    local client
    client, err, code, kind = session.session(ctx)
    if not client then return nil, err, code, kind end
    local devices
    devices, err, code, kind = session.collect(client, "user_device_list",
      { pageSize = page_size, pkList = ctx.opts.pk, deviceName = ctx.opts.name })
    if not devices then return nil, err, code, kind end
    if ctx.opts.json then return ctx.out:json(devices) end
    if #devices == 0 then
      ctx.out:say("No devices.")
      return true
    end
    local rows = { { "PRODUCT KEY", "DEVICE KEY", "NAME", "STATUS" } }
    for _, d in ipairs(devices) do
      rows[#rows + 1] = { plain(d.productKey), plain(d.deviceKey), plain(d.deviceName), status_text(d) }
    end
    ctx.out:table(rows)
    return true
  end,
}
