--- The default transport: libcurl where blocking is acceptable, cosockets
-- everywhere else in nginx.
--
--   outside nginx, init_by_lua, init_worker_by_lua   -> curl (blocks, which is acceptable there)
--   rewrite, access, content, timer, ssl_* ...       -> ngx (cosockets, never blocks)
--   set, header/body filters, log, balancer, ...     -> ngx, which refuses at once with
--                                                       nil, err, "usage" (err names
--                                                       ngx.timer.at); nothing is sent
--
-- libcurl is never used in a phase that serves requests: it would stall every
-- request of the worker for as long as the platform takes, and it would not see
-- `lua_ssl_trusted_certificate`. The choice is made per request, because one
-- client may be created in init_by_lua (curl) and used in a content handler (ngx).
--
-- Both keep quecapi.transport.contract, each checking the request there first, so
-- the choice changes how a request is sent, not what is sent or what comes back
-- (but for the differences by necessity listed in quecapi.transport.ngx).
-- @module quecapi.transport.auto

local time = require "quecapi.time"

local _M = {}
local mt = { __index = _M }

function _M.new(opts)
  return setmetatable({ opts = opts }, mt)
end

--- The transport this request would go to right now: "ngx" or "curl".
function _M.choose(_)
  local phase = time.phase()
  if phase == nil or time.BLOCKING_PHASES[phase] then return "curl" end
  return "ngx"
end

function _M:request(req)
  local name = self:choose()
  local t = self[name]
  if not t then
    t = require("quecapi.transport." .. name).new(self.opts)
    self[name] = t
  end
  return t:request(req)
end

function _M:close()
  for _, name in ipairs { "ngx", "curl" } do
    if self[name] and self[name].close then self[name]:close() end
  end
end

return _M
