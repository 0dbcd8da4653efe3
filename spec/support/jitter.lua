-- Draws of the retry backoff in another process, as one line of numbers, and
-- their check: for the specs that prove processes and nginx workers do not draw
-- the same jitter.
local _M = {}

--- Lua code returning eight draws of the first backoff with a cap of 1 s.
_M.DRAWS = [[
  local retry = require "quecapi.retry"
  local t = {}
  for i = 1, 8 do t[i] = string.format("%.9f", retry.delay({ base_delay = 1, max_delay = 1 }, 1)) end
  return table.concat(t, " ")
]]

--- Assert that a line holds eight draws within [0, 1].
function _M.check_draws(line)
  assert(not line:find("[^%d%. ]"), "draws: " .. line)
  local n = 0
  for v in line:gmatch("%S+") do
    n = n + 1
    local d = tonumber(v)
    assert(d >= 0 and d <= 1, "delay " .. v .. " outside [0, 1]")
  end
  assert(n == 8, "draws: " .. line)
end

return _M
