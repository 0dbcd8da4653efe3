--- Clocks and sleeping, inside and outside nginx.
--
-- Inside nginx, sleeping must yield (ngx.sleep) where the phase allows it; a
-- blocking sleep would stall every request of the worker.
-- @module quecapi.time

local core = require "quecapi.core"

local _M = {}

local ngx = rawget(_G, "ngx")

-- The names are ngx.get_phase()'s (lua-nginx-module 0.10.23 reports init,
-- init_worker, set, rewrite, server_rewrite, access, content, header_filter,
-- body_filter, log, timer, balancer, ssl_cert, ssl_session_store,
-- ssl_session_fetch, ssl_client_hello and exit_worker).

-- Phases in which ngx.sleep and cosockets work (the module's "yieldable" contexts).
_M.YIELDING_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- Phases without cosockets in which a blocking call is acceptable: nginx is
-- starting and serves no request yet. Everywhere else in nginx, blocking would
-- stall every request of the worker.
_M.BLOCKING_PHASES = { init = true, init_worker = true }

--- The current nginx phase, or nil outside nginx.
function _M.phase()
  if ngx and ngx.get_phase then
    local ok, phase = pcall(ngx.get_phase)
    if ok then return phase end
  end
end

--- Wall clock in milliseconds.
_M.now_ms = core.now_ms

--- Seconds on a clock that never jumps, for deadlines.
_M.monotonic = core.monotonic

--- May this code wait (sleep, poll a lock) here? Outside nginx, in nginx's
-- yielding phases and where nginx allows blocking (init, init_worker): yes.
-- In set, the header and body filters, log, balancer...: no.
function _M.can_wait()
  local phase = _M.phase()
  return phase == nil or _M.YIELDING_PHASES[phase] or _M.BLOCKING_PHASES[phase] or false
end

--- Sleep without blocking nginx: ngx.sleep where nginx yields, the C core's
-- sleep outside nginx and where nginx allows blocking. Where nginx can neither
-- yield nor block, nothing happens and the result is false: the caller must not
-- wait there (no retry, no lock polling).
-- @return true when it slept (or had nothing to sleep), false when it may not
function _M.sleep(seconds)
  local phase = _M.phase()
  if phase and _M.YIELDING_PHASES[phase] then
    if seconds > 0 then ngx.sleep(seconds) end
    return true
  end
  if phase and not _M.BLOCKING_PHASES[phase] then return false end
  if seconds > 0 then core.sleep(seconds) end
  return true
end

return _M
