--- The statistics of the bench's table, for the driver and the sections that
-- run on their own (realtime_nginx, fleet): medians of runs, their spread,
-- latency quantiles, and numbers as the table writes them.
local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min

local _M = {}

local function sorted(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  return t
end

--- The median of a list of numbers (the mean of the middle two for an even count).
function _M.median(list)
  local t = sorted(list)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

--- The q-quantile by nearest rank (a value that was measured): latency p99.
function _M.quantile(list, q)
  local t = sorted(list)
  return t[max(1, ceil(#t * q))]
end

--- The interquartile range of the runs in percent of their median: how far the
-- middle half of the runs lies apart (one disturbed run does not move it).
function _M.spread(list)
  local m = _M.median(list)
  if #list < 2 or m == 0 then return 0 end
  local t = sorted(list)
  local function q(p) -- linear interpolation between the closest runs
    local x = 1 + (#t - 1) * p
    local i = floor(x)
    return t[i] + (t[min(i + 1, #t)] - t[i]) * (x - i)
  end
  return (q(0.75) - q(0.25)) / m * 100
end

--- A value as the table writes it, in k or M when large: "4.7 kreq/s", "2.35 ms".
-- A unit with a leading space keeps it after the prefix ("0.24M deliveries/s").
function _M.num(v, unit)
  local gap = unit:sub(1, 1) == " " and "" or " "
  if v >= 100000 then return string.format("%.2f%sM%s", v / 1e6, gap, unit) end
  if v >= 1000 then return string.format("%.1f%sk%s", v / 1e3, gap, unit) end
  if v >= 100 then return string.format("%.0f %s", v, unit) end
  if v >= 10 then return string.format("%.1f %s", v, unit) end
  return string.format("%.2f %s", v, unit)
end

return _M
