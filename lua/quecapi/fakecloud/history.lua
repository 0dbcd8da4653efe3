-- Device history: property values (raw pages and chart aggregates), locations and
-- events, read from what writes and POST /_fake/device* recorded on the thing.
--
-- Where the docs are silent the fake chooses, and these are its choices:
--  * time ranges are inclusive at both ends; missing start/end answer 5107/5108,
--    malformed ones 5109/5110; a missing attributeCode or codeList 5000;
--  * property and event lists are newest first; locations and chart buckets oldest first;
--  * propertyValue is the same string resourceValce shows;
--  * charts aggregate INT, FLOAT and DOUBLE properties only, in UTC buckets that have
--    data, labelled "2025-04", "2025-04-16", "2025-04-16 13"; yaxisData holds strings;
--  * all formatted times are UTC, except deviceEventList's, which honour `timezone`;
--  * timeStr is accepted and ignored.
local app = require "quecapi.fakecloud.app"
local json = require "quecapi.fakecloud.json"
local auth = require "quecapi.fakecloud.auth"
local things = require "quecapi.fakecloud.things"
local products = require "quecapi.fakecloud.products"
local tsl = require "quecapi.fakecloud.tsl"
local times = require "quecapi.fakecloud.times"
local devices = require "quecapi.fakecloud.devices"

local function present(v) return v ~= nil and v ~= "" end

-- start, end ms from two parameters, or nil, code.
local function range(a, from, to)
  if not present(a[from]) then return nil, 5107 end
  if not present(a[to]) then return nil, 5108 end
  local s, e = times.ms(a[from]), times.ms(a[to])
  if not s then return nil, 5109 end
  if not e then return nil, 5110 end
  return s, e
end

-- The thing the caller may read, after the range checks; thing, s, e or nil, code.
local function subject(ctx, a, pk, dk, from, to)
  local user, code = auth.user(ctx)
  if not user then return nil, code end
  if not present(pk) then return nil, 5066 end
  if not present(dk) then return nil, 5067 end
  local s, e = range(a, from, to)
  if not s then return nil, e end
  local t, err = things.access(user, pk, dk)
  if not t then return nil, err end
  return t, s, e
end

local function newest_first(list)
  for i, r in ipairs(list) do r.order = i end
  table.sort(list, function(x, y)
    if x.ms ~= y.ms then return x.ms > y.ms end
    return x.order > y.order
  end)
  return list
end

app.route("GET", "/v2/quecdatastorage/enduserapi/getPropertyDataList", function(ctx)
  local a = ctx.args
  local t, s, e = subject(ctx, a, a.pk, a.dk, "startTimestamp", "endTimestamp")
  if not t then return nil, s end
  if not present(a.attributeCode) then return nil, 5000, "Please enter attributeCode" end
  local page, size = devices.paging(a)
  if not page then return nil, 5000, "Invalid page or pageSize" end
  local rows = {}
  for _, h in ipairs(t.history) do
    if h.code == a.attributeCode and h.ms >= s and h.ms <= e then rows[#rows + 1] = { ms = h.ms, h = h } end
  end
  local items = {}
  for i, r in ipairs(newest_first(rows)) do
    local h = r.h
    items[i] = { productKey = t.productKey, deviceKey = t.deviceKey, propertyCode = h.code,
                 propertyValue = tsl.to_string(h.def, h.value), createTime = times.datetime(h.ms),
                 createTimeStr = times.datetime(h.ms), createTimeTs = h.ms, tsCreateTime = h.ms }
  end
  return devices.page(items, page, size)
end)

-- Days since 1970-01-01 of a civil date (proleptic Gregorian), without os.time's
-- local time zone.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Bucket start (ms) and label of a time for granularity 1 month, 2 day, 3 hour.
local function bucket(ms, granularity)
  local d = os.date("!*t", math.floor(ms / 1000))
  if granularity == 1 then
    return days_from_civil(d.year, d.month, 1) * 86400000, string.format("%04d-%02d", d.year, d.month)
  end
  local day = days_from_civil(d.year, d.month, d.day) * 86400000
  if granularity == 2 then return day, string.format("%04d-%02d-%02d", d.year, d.month, d.day) end
  return day + d.hour * 3600000, string.format("%04d-%02d-%02d %02d", d.year, d.month, d.day, d.hour)
end

local AGGREGATE = {
  function(vs) local m = vs[1] for _, v in ipairs(vs) do if v > m then m = v end end return m end,
  function(vs) local m = vs[1] for _, v in ipairs(vs) do if v < m then m = v end end return m end,
  function(vs) local s = 0 for _, v in ipairs(vs) do s = s + v end return s / #vs end,
  function(vs) return vs[#vs] - vs[1] end,
  function(vs) local s = 0 for _, v in ipairs(vs) do s = s + v end return s end,
}

local NUMERIC = { INT = true, FLOAT = true, DOUBLE = true }

local function chart(t, code, s, e, count, granularity)
  local product = products.get(t.productKey)
  local def = product and products.property(product, code)
  local rows = {}
  if def and NUMERIC[def.dataType] then
    for i, h in ipairs(t.history) do
      if h.code == code and h.ms >= s and h.ms <= e then rows[#rows + 1] = { ms = h.ms, i = i, v = h.value } end
    end
  end
  table.sort(rows, function(x, y) if x.ms ~= y.ms then return x.ms < y.ms end return x.i < y.i end)
  local order, groups = {}, {}
  for _, r in ipairs(rows) do
    local start, label = bucket(r.ms, granularity)
    local g = groups[start]
    if not g then
      g = { start = start, label = label, values = {} }
      groups[start] = g
      order[#order + 1] = g
    end
    g.values[#g.values + 1] = r.v
  end
  local xs, ts, ys = {}, {}, {}
  for i, g in ipairs(order) do
    xs[i], ts[i] = g.label, g.start
    ys[i] = string.format("%.15g", AGGREGATE[count](g.values))
  end
  return { propertyCode = code, xaxisData = json.array(xs), xaxisDataTs = json.array(ts), yaxisData = json.array(ys) }
end

app.route("GET", "/v2/quecdatastorage/enduserapi/getPropertyChartList", function(ctx)
  local a = ctx.args
  local t, s, e = subject(ctx, a, a.pk, a.dk, "startTimestamp", "endTimestamp")
  if not t then return nil, s end
  if not present(a.attributeCode) then return nil, 5000, "Please enter attributeCode" end
  local codes = {}
  for c in a.attributeCode:gmatch("[^,]+") do codes[#codes + 1] = c end
  if #codes > 10 then return nil, 5000, "At most 10 attributeCode values" end
  local count = 3
  if present(a.countType) then count = tonumber(a.countType) end
  if not AGGREGATE[count] then return nil, 5000, "countType is 1 to 5" end
  local granularity = 2
  if present(a.timeGranularity) then granularity = tonumber(a.timeGranularity) end
  if granularity ~= 1 and granularity ~= 2 and granularity ~= 3 then
    return nil, 5000, "timeGranularity is 1, 2 or 3"
  end
  local out = {}
  for i, code in ipairs(codes) do out[i] = chart(t, code, s, e, count, granularity) end
  return json.array(out)
end)

app.route("GET", "/v2/quecdatastorage/enduserapi/getLocationHistory", function(ctx)
  local a = ctx.args
  local t, s, e = subject(ctx, a, a.pk, a.dk, "startTimestamp", "endTimestamp")
  if not t then return nil, s end
  local types
  if present(a.locateTypes) then
    types = {}
    for ty in a.locateTypes:gmatch("[^,]+") do types[ty] = true end
  end
  local rows = {}
  for i, p in ipairs(t.locations) do
    if p.ms >= s and p.ms <= e and (not types or types[p.type]) then rows[#rows + 1] = { i = i, p = p } end
  end
  table.sort(rows, function(x, y) if x.p.ms ~= y.p.ms then return x.p.ms < y.p.ms end return x.i < y.i end)
  local out = {}
  for i, r in ipairs(rows) do
    local p = r.p
    -- one position in every coordinate system: the fake does not convert datums
    out[i] = { id = p.id, productKey = t.productKey, deviceKey = t.deviceKey, locationType = p.type,
               wgsLat = p.lat, wgsLng = p.lng, gcjLat = p.lat, gcjLng = p.lng, bdLat = p.lat, bdLng = p.lng,
               hdop = p.hdop, satellites = p.satellites, accuracy = tostring(p.accuracy),
               locateTime = times.datetime(p.ms), locateTimeTs = p.ms, tsLocateTime = p.ms }
  end
  return json.array(out)
end)

-- "+08:00" -> seconds east of UTC, or nil.
local function zone_offset(tz)
  local sign, h, m = tz:match("^([%+%-])(%d%d):(%d%d)$")
  if not sign then return nil end
  local off = tonumber(h) * 3600 + tonumber(m) * 60
  return sign == "-" and -off or off
end

app.route("POST", "/v2/quecdatastorage/enduserapi/v2/deviceEventList", function(ctx)
  local b = type(ctx.body) == "table" and ctx.body or {}
  local t, s, e = subject(ctx, b, b.productKey, b.deviceKey, "startTime", "endTime")
  if not t then return nil, s end
  if type(b.codeList) ~= "table" then return nil, 5000, "Please enter codeList" end
  local page, size = devices.paging(b)
  if not page then return nil, 5000, "Invalid page or pageSize" end
  local offset = 0
  if present(b.timezone) then
    offset = zone_offset(b.timezone)
    if not offset then return nil, 5000, "timezone is +hh:mm or -hh:mm" end
  end
  local codes
  if #b.codeList > 0 then
    codes = {}
    for _, c in ipairs(b.codeList) do codes[c] = true end
  end
  local product = products.get(t.productKey)
  local rows = {}
  for _, ev in ipairs(t.events) do
    if ev.ms >= s and ev.ms <= e and (not codes or codes[ev.code]) then rows[#rows + 1] = { ms = ev.ms, ev = ev } end
  end
  local items = {}
  for i, r in ipairs(newest_first(rows)) do
    local ev = r.ev
    local def = product and products.event(product, ev.code)
    local keys, vals = {}, {}
    for _, o in ipairs(def and def.outputData or {}) do
      if ev.output[o.code] ~= nil then
        keys[#keys + 1], vals[#vals + 1] = o.code, tsl.to_string(o, ev.output[o.code])
      end
    end
    items[i] = { id = ev.id, abId = def and def.id, productKey = t.productKey, deviceKey = t.deviceKey,
                 eventCode = ev.code, eventName = def and def.name or ev.code, eventType = def and def.subType,
                 outputData = json.ordered_object(keys, vals), extData = {}, packetId = ev.packetId,
                 ticket = ev.ticket, createTime = times.datetime(ev.ms + offset * 1000) }
  end
  return devices.page(items, page, size)
end)
