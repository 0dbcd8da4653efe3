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
--
-- A client sends the same request again and again (a poller's page: the same URL
-- and headers, no body), and checking it again would find what it found before.
-- The transport keeps the last request it checked without a body, and what the
-- contract made of it; a request with the same fields (but for the timeout, which
-- the deadline shortens from call to call) is sent as that one with its own
-- timeout, checked like any other. Everything else is checked in full, and so is
-- any request table with a metatable (its fields could read differently twice).
-- @module quecapi.transport.curl

local core = require "quecapi.core"
local contract = require "quecapi.transport.contract"
local http1 = require "quecapi.transport.http1"

local setmetatable, getmetatable, type, pairs = setmetatable, getmetatable, type, pairs
local DEFAULTS, MAX_TIMEOUT = contract.DEFAULTS, contract.LIMITS.max_timeout

local _M = {}
local mt = { __index = _M }

--- Make a transport.
-- @tparam table opts `verify` (default true), `ca_file`
function _M.new(opts)
  return setmetatable({ verify = opts.verify ~= false, ca_file = opts.ca_file }, mt)
end

-- The checked form of `req` when it is the last request checked again, with the
-- timeout of this one; else nil. Each field of `req` is read once here, and a
-- request that does not match is checked by the contract from the start.
local function again(last, req)
  if req.url ~= last.url or req.method ~= last.method or req.body ~= nil
      or req.connect_timeout ~= last.connect_timeout or req.max_body ~= last.max_body then
    return nil
  end
  local headers, n = req.headers, 0
  if headers ~= nil then
    if type(headers) ~= "table" or getmetatable(headers) ~= nil then return nil end
    local seen = last.headers
    for k, v in pairs(headers) do
      if seen[k] ~= v then return nil end
      n = n + 1
    end
  end
  if n ~= last.n then return nil end
  local timeout = req.timeout
  if timeout == nil then
    timeout = DEFAULTS.timeout
  elseif type(timeout) ~= "number" or not (timeout > 0 and timeout <= MAX_TIMEOUT) then
    return nil -- the contract says what is wrong with it
  end
  local r = last.r
  r.timeout = timeout
  return r
end

-- Keep `req` (sent without a body) and its checked form `r` for `again`.
local function remember(self, req, r)
  local headers, copy, n = req.headers, {}, 0
  if type(headers) == "table" then
    for k, v in pairs(headers) do
      copy[k] = v
      n = n + 1
    end
  end
  self.last = {
    url = req.url, method = req.method, connect_timeout = req.connect_timeout, max_body = req.max_body,
    headers = copy, n = n, r = r,
  }
end

--- Send one request.
-- @tparam table req method, url, headers, body, timeout, connect_timeout, max_body
-- @return status, body, headers; or nil, err, kind
function _M:request(req)
  local plain = type(req) == "table" and getmetatable(req) == nil
  local last = self.last
  local r = last and plain and again(last, req)
  local err, kind
  if not r then
    r, err, kind = contract.check(req)
    if not r then return nil, err, kind end
    local headers = req.headers
    if plain and req.body == nil and (headers == nil or getmetatable(headers) == nil) then
      remember(self, req, r)
    else
      self.last = nil
    end
  end
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
