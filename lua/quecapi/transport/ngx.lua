--- The non-blocking transport: HTTP/1.1 over nginx cosockets (`ngx.socket.tcp`).
--
-- The contract of quecapi.transport.contract, as the curl transport keeps it, so
-- a client can use either:
--
--   t:request{ method, url, headers, body, timeout, connect_timeout, max_body }
--     -> status, body, headers        (headers: lowercase names, repeats joined with ", ")
--     -> nil, err, kind               (kind: timeout, connect, tls, too_large, network, url,
--                                      usage)
--
-- This file is the connection: the request is checked by the contract, the bytes
-- on the wire are quecapi.transport.http1's, and what is here is connecting, TLS,
-- the connection pool, the request's deadline, the one resend on a stale pooled
-- connection, and refusing the nginx phases that have no cosockets.
--
-- Use it in the phases that have cosockets (rewrite, server_rewrite, access,
-- content, timer, ssl_cert, ssl_session_fetch, ssl_client_hello). In every other
-- phase (init_by_lua, init_worker_by_lua, set_by_lua, header/body filters,
-- log_by_lua, balancer, ...) a request returns nil, err, "usage" at once, without
-- sending anything; err says to make the call from a timer (ngx.timer.at). Where
-- blocking is acceptable (init_by_lua, init_worker_by_lua) the curl transport
-- works, and the auto transport picks it there.
--
-- Differences from the curl transport, by necessity (spec/support/transport_contract.lua
-- runs both through the same cases and lists these):
--  * Trust: certificates are verified against nginx's `lua_ssl_trusted_certificate`
--    (depth `lua_ssl_verify_depth`). cosockets cannot take a CA file per request, so
--    the `ca_file` option is accepted for symmetry and ignored.
--  * Host names are resolved by nginx's `resolver` directive; IPv4 literals and
--    "localhost" (127.0.0.1) need none. IPv6 literals are refused (kind "url").
--  * nginx verifies a certificate against a host name only (X509_check_host): with
--    verification on, an https URL must name the host, not its IP address, or the
--    handshake fails with kind "tls".
--  * HTTP/1.1 only; no proxy from the environment and no content decoding
--    (Accept-Encoding is not sent, so servers answer with the identity encoding).
--
-- Like libcurl, a request that fails on a pooled (reused) connection before any
-- byte of the answer arrived, except by timeout, is sent once more, and only once
-- (the server closed an idle keep-alive connection under us, but it may have
-- received the request: an SMS must not go out three times). The resend goes on a
-- new connection; the other pooled connections to that server are closed on the way.
--
-- Time: connecting and the TLS handshake together get at most `connect_timeout`
-- seconds, as libcurl's CONNECTTIMEOUT. The whole request (connect, TLS, send,
-- header, body, and the one resend) must finish within `timeout` seconds.
-- @module quecapi.transport.ngx

local contract = require "quecapi.transport.contract"
local http1 = require "quecapi.transport.http1"
local time = require "quecapi.time"

local type, tostring, rawget = type, tostring, rawget
local setmetatable, pcall, error, select = setmetatable, pcall, error, select
local format = string.format
local floor = math.floor

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

local DEFAULT_POOL_SIZE = 32
local DEFAULT_KEEPALIVE_MS = 60000

-- The nginx API, looked up when a request is made so this file loads anywhere.
local function nginx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.socket) == "table" and ngx.socket.tcp then
    return ngx
  end
end

-- nginx's clock in seconds, for http1's deadlines. A function of the module, not
-- one made per request (LuaJIT cannot compile a trace that creates a closure).
local function clock()
  local ngx = rawget(_G, "ngx")
  ngx.update_time()
  return ngx.now()
end

-- Why a request cannot be made in this nginx phase, and what to do instead.
local function no_cosockets(phase)
  if time.BLOCKING_PHASES[phase] then
    return format("nginx's %s phase has no cosockets: use the curl transport here (it may block "
      .. "while nginx starts) or make the call from a timer (ngx.timer.at)", phase)
  end
  return format("nginx's %s phase has no cosockets and a blocking request would stall the worker: "
    .. "make the call from a timer (ngx.timer.at)", phase)
end

-- Connecting or the TLS handshake ran out of time: of connect_timeout, or of
-- the request's timeout when that ends first.
local function connect_timed_out(c, r, by_deadline, tls)
  if by_deadline then
    return http1.timed_out(c, format(tls and "during the TLS handshake with %s:%d" or "while connecting to %s:%d",
      r.host, r.port))
  end
  local what = tls and "TLS handshake with" or "connect to"
  return nil, format("%s %s:%d timed out after %d ms", what, r.host, r.port, floor(r.connect_timeout * 1000 + 0.5)),
    "timeout"
end

-- Connect (to a pooled connection when there is one) and, on a new https
-- connection, shake hands. Both together get at most connect_timeout (and the
-- time left before the deadline), as libcurl's CONNECTTIMEOUT bounds its connect
-- and handshake: a server that accepts and never speaks TLS costs connect_timeout,
-- not the whole timeout. With `fresh`, pooled connections are closed until a new
-- one is made: they are as old as the one that just died under us.
-- Returns whether the connection came from the pool; or nil, err, kind.
local function open(self, c, r, pool_opts, fresh)
  local sock = c.sock
  local limit = clock() + r.connect_timeout
  local by_deadline = c.deadline <= limit
  if by_deadline then limit = c.deadline end
  -- "localhost" is the loopback address without asking DNS (RFC 6761), as libcurl
  -- does; nginx would need a `resolver` for it otherwise.
  local addr = r.host == "localhost" and "127.0.0.1" or r.host
  local reused
  local tries = fresh and self.pool_size + 1 or 1
  for i = 1, tries do
    local ms = http1.ms_until(clock, limit)
    if not ms then return connect_timed_out(c, r, by_deadline, false) end
    sock:settimeout(ms)
    local ok, err = sock:connect(addr, r.port, pool_opts)
    if not ok then
      sock:close()
      if err == "timeout" then return connect_timed_out(c, r, by_deadline, false) end
      return nil, format("cannot connect to %s:%d: %s", r.host, r.port, tostring(err)), "connect"
    end
    reused = (sock:getreusedtimes() or 0) > 0
    if not (fresh and reused) or i == tries then break end
    sock:close()
  end

  if r.scheme == "https" and not reused then
    local ms = http1.ms_until(clock, limit)
    if not ms then
      sock:close()
      return connect_timed_out(c, r, by_deadline, true)
    end
    sock:settimeout(ms)
    local verify = self.verify
    local session, err = sock:sslhandshake(false, r.host, verify)
    if session and select(2, sock:getreusedtimes()) == "closed" then
      -- lua-nginx-module 0.10.23 (Debian 12) reports success for a handshake that
      -- failed verification after it had to wait for the network, and closes the
      -- socket: the reason is only in nginx's error log.
      session, err = nil, "certificate verification failed (the reason is in the nginx error log)"
    end
    if not session then
      sock:close()
      if err == "timeout" then return connect_timed_out(c, r, by_deadline, true) end
      local hint = ""
      if verify and r.family == "ipv4" then
        -- nginx matches certificate names (X509_check_host), never IP address entries
        hint = " (nginx checks certificates against host names only: put the name in the URL)"
      end
      return nil, "TLS handshake with " .. r.host .. " failed: " .. tostring(err) .. hint, "tls"
    end
  end
  return reused
end

-- The connect options of each pool (its name), made once: a pool per scheme,
-- host, port and verification. A verify=false connection must never be handed
-- to a verifying client. Bounded, as the hosts requests go to are the callers'.
local MAX_POOLS = 256
local pools, n_pools = {}, 0

local function pool_options(self, r)
  local https = r.scheme == "https"
  local id = https and (self.verify and "verify" or "noverify") or "plain"
  local key = r.host .. ":" .. r.port
  local by_host = pools[id]
  local opts = by_host and by_host[key]
  if opts then return opts end
  if n_pools >= MAX_POOLS then pools, n_pools, by_host = {}, 0, nil end
  if not by_host then
    by_host = {}
    pools[id] = by_host
  end
  opts = { pool = format("quecapi:%s:%s:%d:%s:%s", r.scheme, r.host, r.port, id, https and r.host or "") }
  by_host[key], n_pools = opts, n_pools + 1
  return opts
end

-- status, body, headers; or nil, err, kind, retry (the request may go again:
-- a pooled connection died before any byte of its answer arrived).
local function attempt(self, ngx, r, deadline, fresh)
  local ok, sock = pcall(ngx.socket.tcp)
  if not ok or not sock then
    return nil, "cosockets are not available here (" .. tostring(sock) ..
      "): make the call from a timer (ngx.timer.at)", "usage"
  end
  local c = http1.conn(sock, clock, deadline, r)
  if not http1.left_ms(c) then return http1.timed_out(c, "before connecting") end
  local reused, err, kind = open(self, c, r, pool_options(self, r), fresh)
  if reused == nil then return nil, err, kind end

  local head, body, close = http1.head(r)
  -- One send for small requests: the header and the body in one packet.
  if body and #head + #body <= http1.SEND_PIECE then
    head, body = head .. body, nil
  end
  ok, err, kind = http1.send(c, head)
  if ok and body then ok, err, kind = http1.send(c, body) end
  if not ok then
    sock:close()
    return nil, err, kind, reused and kind ~= "timeout"
  end

  local status, rbody, headers, reusable = http1.read_response(c, r.method)
  if not status then
    sock:close()
    -- rbody is the error, headers the kind
    return nil, rbody, headers, reused and c.received == 0 and headers ~= "timeout"
  end
  if reusable and not close then
    local kept = sock:setkeepalive(self.keepalive_timeout, self.pool_size)
    if not kept then sock:close() end
  else
    sock:close()
  end
  return status, rbody, headers
end

--- Make a transport. Nothing is opened here.
-- @tparam[opt] table opts `verify` (default true), `ca_file` (ignored: see above),
--   `pool_size` (idle connections kept per host, default 32),
--   `keepalive_timeout` (ms an idle connection is kept, default 60000; 0 = no limit)
function _M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error("options must be a table", 2) end
  local verify, pool_size, keepalive = opts.verify, opts.pool_size, opts.keepalive_timeout
  if verify ~= nil and type(verify) ~= "boolean" then error("verify must be a boolean", 2) end
  if opts.ca_file ~= nil and type(opts.ca_file) ~= "string" then error("ca_file must be a string", 2) end
  if pool_size ~= nil and (type(pool_size) ~= "number" or pool_size < 1 or pool_size ~= floor(pool_size)) then
    error("pool_size must be a positive integer", 2)
  end
  if keepalive ~= nil and (type(keepalive) ~= "number" or keepalive < 0) then
    error("keepalive_timeout must be a number of milliseconds", 2)
  end
  return setmetatable({
    verify = verify ~= false,
    ca_file = opts.ca_file,
    pool_size = pool_size or DEFAULT_POOL_SIZE,
    keepalive_timeout = keepalive and floor(keepalive) or DEFAULT_KEEPALIVE_MS,
  }, mt)
end

--- Send one request.
-- @tparam table req method, url, headers, body, timeout, connect_timeout, max_body
-- @return status, body, headers; or nil, err, kind
function _M:request(req)
  local r, err, kind = contract.check(req)
  if not r then return nil, err, kind end
  if r.family == "ipv6" then
    return nil, "IPv6 addresses are not supported by the ngx transport: use a host name", "url"
  end
  local ngx = nginx()
  if not ngx then
    return nil, "quecapi.transport.ngx works inside OpenResty/nginx only; use the curl transport", "network"
  end
  local phase = time.phase()
  if phase and not time.YIELDING_PHASES[phase] then
    return nil, no_cosockets(phase), "usage"
  end
  local deadline = clock() + r.timeout
  local status, body, headers, retry = attempt(self, ngx, r, deadline, false)
  if not status and retry then
    -- Once, as libcurl and the README say, and on a new connection: a request
    -- with side effects (an SMS) may have reached the server before it closed.
    status, body, headers = attempt(self, ngx, r, deadline, true)
  end
  return status, body, headers
end

--- Nothing to release: connections live in nginx's per-worker pool.
function _M.close(_)
  return true
end

return _M
