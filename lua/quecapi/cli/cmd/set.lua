--- `quecapi set PK DK CODE=VALUE...`: write property values of a device
-- (client:set_properties checks them against the thing model first).
-- @module quecapi.cli.cmd.set

local session = require "quecapi.cli.session"
local args = require "quecapi.cli.args"
local output = require "quecapi.cli.output"

local ipairs, type = ipairs, type
local plain, clean = output.plain, output.clean

local function device_label(entry)
  local d = type(entry) == "table" and type(entry.data) == "table" and entry.data or {}
  return plain(d.productKey or "?") .. " " .. plain(d.deviceKey or "?")
end

return {
  summary = "write property values of a device",
  usage = "set PRODUCT_KEY DEVICE_KEY CODE=VALUE... [--json]",
  help = [[
Write property values of a device. Values are read as true/false, numbers,
JSON for structures and lists, else text; write a JSON string ('"42"') for a
text that looks like a number. They are checked against the thing model before
anything is sent. Prints ok or failed for the device; exits 1 if it failed.

Example:
  quecapi set p11pLZ 868540051234567 switch=true brightness=80 'color={"r":255,"g":0,"b":0}']],
  options = { { name = "json", help = "print the platform's result as JSON" } },
  nargs = { 3 },
  args_help = "PRODUCT_KEY DEVICE_KEY CODE=VALUE...",
  run = function(ctx)
    local pk, dk = ctx.args[1], ctx.args[2]
    local values = {}
    for i = 3, #ctx.args do
      local k, text, code, kind, hint = args.assignment(ctx.args[i])
      if not k then return nil, text, code, kind, hint end
      local v
      v, text, code, kind, hint = args.value(text, k)
      if v == nil then return nil, text, code, kind, hint end
      values[k] = v
    end
    local client, err, code, kind = session.session(ctx)
    if not client then return nil, err, code, kind end
    local result
    result, err, code, kind = client:set_properties(pk, dk, values)
    if not result then return nil, err, code, kind end
    if ctx.opts.json then
      local ok
      ok, err, code, kind = ctx.out:json(result)
      if not ok then return nil, err, code, kind end
    else
      for _, good in ipairs(result.successList) do ctx.out:say(device_label(good), ": ok") end
      for _, bad in ipairs(result.failureList) do
        ctx.out:say(device_label(bad), ": failed: ", plain(type(bad) == "table" and bad.msg or ""))
      end
      if #result.successList == 0 and #result.failureList == 0 then ctx.out:say(clean(pk), " ", clean(dk), ": sent") end
    end
    if #result.failureList > 0 then
      return nil, "the platform could not set the properties on every device", nil, "platform"
    end
    return true
  end,
}
