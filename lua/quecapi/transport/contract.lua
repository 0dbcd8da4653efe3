--- The one contract both transports keep (libcurl through the C core, and nginx
-- cosockets):
--
--   t:request{ method, url, headers, body, timeout, connect_timeout, max_body }
--     -> status, body, headers        (headers: lowercase names, repeats joined with ", ")
--     -> nil, err, kind               (kind: one of KINDS)
--
-- Its defaults and limits live here, once; each transport reads them.
-- @module quecapi.transport.contract

local _M = {}

--- Defaults of a request's optional fields.
_M.DEFAULTS = {
  timeout = 10,                 -- seconds for the whole attempt
  connect_timeout = 5,          -- seconds for the connection and the TLS handshake
  max_body = 8 * 1024 * 1024,   -- bytes of an answer's body
}

--- Limits that protect the client from a hostile server.
_M.LIMITS = {
  max_header_bytes = 256 * 1024, -- status line and headers of an answer
  max_timeout = 1e6,             -- seconds
  max_body = 1e15,               -- bytes
}

--- The failure kinds a transport reports.
_M.KINDS = {
  timeout = true, connect = true, tls = true, network = true, too_large = true,
  url = true, usage = true, closed = true,
}

return _M
