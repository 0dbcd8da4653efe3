-- The account's daily call quota (code 4026). Live accounts get about 1,280
-- calls a day, counted per account and reset at 00:00 UTC; past it, polling and
-- writes answer 4026 (live-platform-evidence.md, "Error codes seen live";
-- pecron-monitor's docs/known-pecron-api-quirks.md). The fake counts the
-- authenticated calls of each account against `daily_quota` (POST /_fake/config;
-- 0 = no quota) by the fake's own clock. Renewing the session is neither polling
-- nor a write, so refreshToken is not counted and still works past the quota.
local state = require "quecapi.fakecloud.state"
local auth = require "quecapi.fakecloud.auth"

local _M = {}

local REFRESH = "/v2/enduser/enduserapi/refreshToken"

-- Forget what every account used today.
function _M.reset()
  state.quota = { day = math.floor(state.now() / 86400), used = {} }
end

-- Count this call (ctx: path, headers) against its account; 4026 once the
-- account is past its quota, else nil. Calls without a valid token are not the
-- account's and are left to the route (5106, 5032).
function _M.spend(ctx)
  local limit = tonumber(state.config.daily_quota) or 0
  if limit <= 0 or ctx.path == REFRESH then return nil end
  local header = auth.header(ctx)
  local t = header and state.access[header]
  if not t or t.exp <= state.now() then return nil end
  local day = math.floor(state.now() / 86400)
  if state.quota.day ~= day then state.quota = { day = day, used = {} } end
  local used = (state.quota.used[t.uid] or 0) + 1
  state.quota.used[t.uid] = used
  if used > limit then return 4026 end
end

return _M
