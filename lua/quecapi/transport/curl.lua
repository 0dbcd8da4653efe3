--- The blocking transport: HTTP(S) through the C core's libcurl session.
--
-- One session per transport object, created on first use (never in `new`), so the
-- keep-alive connection and TLS session are reused by every call of a client.
-- @module quecapi.transport.curl

local core = require "quecapi.core"

local _M = {}
local mt = { __index = _M }

--- Make a transport.
-- @tparam table opts `verify` (default true), `ca_file`
function _M.new(opts)
  return setmetatable({ verify = opts.verify ~= false, ca_file = opts.ca_file }, mt)
end

--- Send one request.
-- @tparam table req method, url, headers, body, timeout, connect_timeout, max_body
-- @return status, body, headers; or nil, err, kind
function _M:request(req)
  local session = self.session
  if not session then
    local err
    session, err = core.session { verify = self.verify, ca_file = self.ca_file }
    if not session then return nil, err, "network" end
    self.session = session
  end
  return session:request(req)
end

--- Close the connection now instead of at garbage collection.
function _M:close()
  if self.session then
    self.session:close()
    self.session = nil
  end
end

return _M
