--- `quecapi watch [PK DK ...]`: the realtime channel's events as they come, one
-- line each (`--json`: one JSON object a line), for the devices named or every
-- device of the account. It runs until Ctrl-C, which closes the session cleanly
-- (DISCONNECT) and exits with 130, as every interrupted command does; or until
-- the channel gives up (exit 1), or the reader of its output goes away (exit 0).
-- @module quecapi.cli.cmd.watch

local session = require "quecapi.cli.session"
local connection = require "quecapi.realtime.connection"
local args = require "quecapi.cli.args"
local output = require "quecapi.cli.output"
local fail = require "quecapi.cli.fail"

local ipairs, pairs, tostring, pcall, error = ipairs, pairs, tostring, pcall, error
local format, find = string.format, string.find
local concat, sort = table.concat, table.sort
local plain, clean = output.plain, output.clean

-- Where the devices and their values go on a line.
local function device(ev)
  if not ev.productKey and not ev.deviceKey then return "-" end
  return clean(ev.productKey or "?") .. "/" .. clean(ev.deviceKey or "?")
end

local function assignments(values)
  local codes = {}
  for code in pairs(values) do codes[#codes + 1] = code end
  sort(codes)
  local parts = {}
  for i, code in ipairs(codes) do parts[i] = plain(code) .. "=" .. plain(values[code]) end
  return concat(parts, " ")
end

-- What follows the device on an event's line, by type.
local DETAILS = {
  property = function(ev) return assignments(ev.values) end,
  online = function(ev) return format("%s (%d)", ev.online and "online" or "offline", ev.value) end,
  ack = function(ev) return format("msgId=%d %s", ev.msgId, plain(ev.status)) end,
  error = function(ev) return format("code=%d%s", ev.code, ev.msg and (" " .. plain(ev.msg)) or "") end,
  reconnected = function(ev)
    if ev.values then return assignments(ev.values) end
    return "reading the values failed: " .. plain(ev.err)
  end,
}

local M = {}

--- An event as one line of text: local time, type, device, details.
function M.line(ev, now_ms)
  local detail = DETAILS[ev.type]
  local text = detail and detail(ev) or plain(ev.raw)
  return format("%s  %-11s  %s  %s", output.local_time(ev.at or now_ms), ev.type, device(ev), text)
end

--- An event as one JSON object on one line: its fields; `raw` (the message's
-- payload) except for `reconnected`, whose values were read over REST.
function M.json_line(ev, json)
  local copy = {}
  for k, v in pairs(ev) do copy[k] = v end
  if ev.type == "reconnected" then copy.raw = nil end
  local text, err = json.encode(copy)
  if not text then return nil, err end
  return text
end

-- The devices named on the command line, in pairs.
local function named(list)
  if #list % 2 ~= 0 then
    return fail.usage("devices come in pairs: PRODUCT_KEY DEVICE_KEY [PRODUCT_KEY DEVICE_KEY ...]")
  end
  local out = {}
  for i = 1, #list, 2 do out[#out + 1] = { productKey = list[i], deviceKey = list[i + 1] } end
  return out
end


-- Write one line; false when the reader has gone away.
local function emit(stream, text)
  local ok, err = stream:write(text, "\n")
  if ok and stream.flush then ok, err = stream:flush() end
  if not ok then return false, err end
  return true
end

-- The loop, until close, a fatal error or a failed write; raises what it does not handle.
local function watch(ctx, rt)
  local json = require "quecapi.json"
  local time = require "quecapi.time"
  local stream = ctx.out.stream
  for ev, err, code, kind in rt:events() do
    if not ev then return nil, err, code, kind end
    local text, jerr
    if ctx.opts.json then
      text, jerr = M.json_line(ev, json)
      if not text then text = json.encode { type = ev.type, error = "cannot print as JSON: " .. tostring(jerr) } end
    else
      text = M.line(ev, time.now_ms())
    end
    local ok, werr = emit(stream, text)
    if not ok then
      -- `quecapi watch | head`: the reader is done, and so are we
      if find(tostring(werr), "Broken pipe", 1, true) then return true end
      return nil, "cannot write the events: " .. tostring(werr), nil, "usage"
    end
  end
  return true
end

M.summary = "print the realtime channel's events as they come (Ctrl-C ends it)"
M.usage = "watch [PRODUCT_KEY DEVICE_KEY ...] [--json] [--url URL] [--keepalive N] [--watchdog N]"
M.help = [[
Connect to the platform's realtime channel (MQTT over secure WebSocket) and print
every event as it comes, one line each: property reports (typed by the thing
model), online changes, command acknowledgements, errors, and after a reconnect
the values read back. Without devices, every device of the account is watched.

The channel's URL is the region's (or derived from the base URL); --url or
QUECAPI_REALTIME_URL names another. It reconnects by itself. Ctrl-C ends it,
closing the session cleanly; the exit status is then 130.]]
M.options = {
  { name = "json", help = "print each event as one JSON object on one line" },
  { name = "url", value = "URL", help = "the channel's URL (wss://host:port/ws/v2)" },
  { name = "keepalive", value = "N", help = "MQTT keepalive in seconds (default 40)" },
  { name = "watchdog", value = "N", help = "reconnect after N seconds without a message (default 300; 0: never)" },
}
M.nargs = { 0 }
M.args_help = "PRODUCT_KEY DEVICE_KEY pairs"
M.run = function(ctx)
  local devices, err, code, kind, hint = named(ctx.args)
  if not devices then return nil, err, code, kind, hint end
  local keepalive, watchdog
  if ctx.opts.keepalive then
    keepalive, err, code, kind, hint = args.count(ctx.opts.keepalive, "keepalive")
    if not keepalive then return nil, err, code, kind, hint end
  end
  if ctx.opts.watchdog then
    if ctx.opts.watchdog == "0" then
      watchdog = false
    else
      watchdog, err, code, kind, hint = args.count(ctx.opts.watchdog, "watchdog")
      if not watchdog then return nil, err, code, kind, hint end
    end
  end
  local client
  client, err, code, kind = session.session(ctx)
  if not client then return nil, err, code, kind end
  if #devices == 0 then
    devices, err, code, kind = connection.account_devices(client)
    if not devices then return nil, err, code, kind end
    if #devices == 0 then ctx.log:note("the account has no devices: watching errors only") end
  end
  local url = ctx.opts.url or ctx.host.getenv("QUECAPI_REALTIME_URL")
  if url == "" then url = nil end
  local rt
  rt, err, code, kind = client:realtime { devices = devices, url = url, keepalive = keepalive, watchdog = watchdog }
  if not rt then return nil, err, code, kind end
  ctx.log:note("watching %d device%s (Ctrl-C ends)", #devices, #devices == 1 and "" or "s")
  local ok, r1, r2, r3, r4 = pcall(watch, ctx, rt)
  rt:close()
  if not ok then
    if find(tostring(r1), "interrupted!$") then return nil, "interrupted", nil, "interrupted" end
    error(r1, 0)
  end
  return r1, r2, r3, r4
end

return M
