--- The blocking transport: HTTP(S) through the C core's libcurl session.
--
-- The contract of quecapi.transport.contract: the request is checked and
-- completed there first, so libcurl only ever sees a request both transports
-- would send (csrc/http.c keeps just the checks that protect memory). libcurl
-- parses the answer; its header block is turned into the headers table by the
-- same rules as quecapi.transport.http1's, and its framing is held to the same
-- rule (a Content-Length whose repeats disagree is refused, as the ngx transport
-- refuses it).
--
-- Differences from the ngx transport, by necessity (see that module): `ca_file`
-- is honoured, proxies come from the environment as curl's do, IPv6 literals
-- work, an https URL may name an IP address, HTTP/2 is used when a TLS server
-- offers it, and answers are decoded (Accept-Encoding is sent).
--
-- One session per transport object, created on first use (never in `new`), so the
-- keep-alive connection and TLS session are reused by every call of a client.
-- @module quecapi.transport.curl

local core = require "quecapi.core"
local contract = require "quecapi.transport.contract"
local http1 = require "quecapi.transport.http1"

local setmetatable = setmetatable

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
  local r, err, kind = contract.check(req)
  if not r then return nil, err, kind end
  local session = self.session
  if not session then
    session, err = core.session { verify = self.verify, ca_file = self.ca_file }
    if not session then return nil, err, "network" end
    self.session = session
  end
  local status, body, headers = session:request(r)
  if status then
    local framed, why = http1.framing(r.method, status, headers)
    if not framed then return nil, why, "network" end
  end
  return status, body, headers
end

--- Close the connection now instead of at garbage collection.
function _M:close()
  if self.session then
    self.session:close()
    self.session = nil
  end
end

return _M
