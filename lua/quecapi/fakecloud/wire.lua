-- Answers that break HTTP on purpose, written below nginx's output filters (which
-- would otherwise fix the lengths): raw status lines and headers, and a
-- connection reset (RST) instead of an orderly close.
local envelope = require "quecapi.fakecloud.envelope"

local _M = {}

local REASONS = { [200] = "OK", [404] = "Not Found", [500] = "Internal Server Error",
                  [502] = "Bad Gateway", [503] = "Service Unavailable" }

-- Status line and header block; headers is a list of { name, value }.
function _M.head(status, headers)
  local lines = { string.format("HTTP/1.1 %d %s", status, REASONS[status] or "Unknown"),
                  "Server: nginx", "Date: " .. envelope.date() }
  for _, h in ipairs(headers) do lines[#lines + 1] = h[1] .. ": " .. tostring(h[2]) end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

-- The client connection as a raw socket (nothing may have been sent yet; the
-- request body must have been read). Returns the socket or nil.
function _M.socket()
  ngx.req.read_body()
  local sock = ngx.req.socket(true)
  if not sock then return nil end
  sock:settimeout(60000)
  return sock
end

-- SO_LINGER {on, 0} on the client socket: the kernel then answers close() with
-- a RST and drops whatever was not yet sent. nginx exposes no option for it, so
-- the descriptor is taken from the request through LuaJIT's FFI, using the
-- first fields of ngx_http_request_t and ngx_connection_t, which have not
-- changed in nginx's history. Returns true when armed.
local armed_ok, arm = pcall(function()
  local ffi = require "ffi"
  local base = require "resty.core.base"
  ffi.cdef [[
    typedef struct { uint32_t signature; void *connection; } fakecloud_request_t;
    typedef struct { void *data; void *read; void *write; int fd; } fakecloud_connection_t;
    typedef struct { int l_onoff; int l_linger; } fakecloud_linger_t;
    int setsockopt(int sockfd, int level, int optname, const void *optval, unsigned int optlen);
  ]]
  local SOL_SOCKET, SO_LINGER = 1, 13  -- Linux values
  return function()
    local r = base.get_request()
    if not r then return false end
    local req = ffi.cast("fakecloud_request_t *", r)
    local c = ffi.cast("fakecloud_connection_t *", req.connection)
    local linger = ffi.new("fakecloud_linger_t", 1, 0)
    return ffi.C.setsockopt(c.fd, SOL_SOCKET, SO_LINGER, linger, ffi.sizeof(linger)) == 0
  end
end)

function _M.arm_reset()
  if not armed_ok then return false end
  local ok, res = pcall(arm)
  return ok and res
end

-- End the request by closing the connection at once (no lingering close, no
-- keep-alive): a RST when armed, else a plain FIN.
function _M.close()
  return ngx.exit(444)
end

return _M
