-- Waiting for a condition in specs: ask `look()` every 20 ms until
-- `check(value)` holds or `timeout` seconds (default 10) have passed.
--
--   local status, held = poll(function() return srv:status() end, function(s) return s.connected end, 5)
local core = require "quecapi.core"

--- @return the last value looked at, and whether the check held
return function(look, check, timeout)
  local deadline = core.monotonic() + (timeout or 10)
  while true do
    local v = look()
    if check(v) then return v, true end
    if core.monotonic() > deadline then return v, false end
    core.sleep(0.02)
  end
end
