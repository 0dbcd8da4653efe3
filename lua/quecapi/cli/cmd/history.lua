--- `quecapi history PK DK CODE`: the values a device reported for one property
-- over a past period.
-- @module quecapi.cli.cmd.history

local session = require "quecapi.cli.session"
local args = require "quecapi.cli.args"
local output = require "quecapi.cli.output"

local ipairs = ipairs
local plain, clean, local_time = output.plain, output.clean, output.local_time

return {
  summary = "show a property's recorded values over a past period",
  usage = "history PRODUCT_KEY DEVICE_KEY CODE [--since DURATION] [--json]",
  help = "Show the values a device reported for one property over a past period (all pages).",
  options = {
    { name = "since", value = "DURATION", help = "how far back: 90s, 30m, 1h (default), 7d" },
    { name = "json", help = "print the records as a JSON array" },
    { name = "page-size", value = "N", help = "records per request (default 100)" },
  },
  nargs = { 3, 3 },
  args_help = "PRODUCT_KEY DEVICE_KEY CODE",
  run = function(ctx)
    local pk, dk, attribute = ctx.args[1], ctx.args[2], ctx.args[3]
    local seconds, err, code, kind, hint = args.duration(ctx.opts.since or "1h", "since")
    if not seconds then return nil, err, code, kind, hint end
    local page_size
    page_size, err, code, kind, hint = args.count(ctx.opts["page-size"] or "100", "page-size")
    if not page_size then return nil, err, code, kind, hint end
    local client
    client, err, code, kind = session.session(ctx)
    if not client then return nil, err, code, kind end
    -- milliseconds, and the platform's clock: a value written a moment ago is in range
    local now_ms = client:now_ms()
    local records
    records, err, code, kind = session.collect(client, "get_property_data_list", {
      pk = pk, dk = dk, attributeCode = attribute,
      startTimestamp = now_ms - seconds * 1000, endTimestamp = now_ms,
      pageSize = page_size,
    })
    if not records then return nil, err, code, kind end
    if ctx.opts.json then return ctx.out:json(records) end
    if #records == 0 then
      ctx.out:say("No values of ", clean(attribute), " since ", local_time(now_ms - seconds * 1000), ".")
      return true
    end
    local rows = { { "TIME", "VALUE" } }
    for _, r in ipairs(records) do
      local when = local_time(r.tsCreateTime or r.createTimeTs) or plain(r.createTimeStr or r.createTime)
      rows[#rows + 1] = { when, plain(r.propertyValue) }
    end
    ctx.out:table(rows)
    return true
  end,
}
