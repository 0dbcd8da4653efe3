--- The default transport: cosockets where nginx allows them, libcurl elsewhere.
--
-- The choice is made per request, because one client may be created in
-- init_by_lua (no cosockets: curl) and used in a content handler (ngx).
-- @module quecapi.transport.auto

local time = require "quecapi.time"

local _M = {}
local mt = { __index = _M }

function _M.new(opts)
  return setmetatable({ opts = opts }, mt)
end

--- The transport this request would use right now: "ngx" or "curl".
function _M.choose(_)
  if time.YIELDING_PHASES[time.phase() or ""] then return "ngx" end
  return "curl"
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
