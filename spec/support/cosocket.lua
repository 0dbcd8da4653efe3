-- nginx's cosocket API played from a script, for unit specs of the ngx transport
-- in plain Lua 5.4 and LuaJIT: the transport looks `ngx` up when a request is made,
-- so a stand-in in the global table is what it talks to.
--
--   local cosocket = require "support.cosocket"
--   local status, body, headers = cosocket.with({ "HTTP/1.1 200 OK\r\n", "..." }, function()
--     return transport.new():request { url = "http://127.0.0.1:1/" }
--   end)
--
-- Every socket made while `fn` runs is a new connection whose receives return the
-- pieces in order, one piece per receive (so an answer can arrive a byte at a time),
-- then "closed". Time is the C core's monotonic clock; nothing waits.
local core = require "quecapi.core"

local _M = {}

local function socket(pieces, log)
  local next_piece = 0
  local sock = {}
  function sock.settimeout() end
  function sock.connect() return 1 end
  function sock.getreusedtimes() return 0 end
  function sock.sslhandshake() return true end
  function sock.setkeepalive() return 1 end
  function sock.close() return 1 end
  function sock.send(_, data)
    log.sent[#log.sent + 1] = data
    return #data
  end
  function sock.receiveany(_, max)
    next_piece = next_piece + 1
    local piece = pieces[next_piece]
    if not piece then return nil, "closed" end
    assert(#piece <= max, "a scripted piece is larger than the transport asked for")
    return piece
  end
  return sock
end

--- Run fn() with a stand-in `ngx` whose sockets play `pieces`; restores the
-- previous `ngx` whatever happens. Returns fn's first three results (a request's
-- status, body, headers), then a log { sockets = count, sent = { data... } }.
function _M.with(pieces, fn)
  local log = { sockets = 0, sent = {} }
  local fake = {
    socket = { tcp = function()
      log.sockets = log.sockets + 1
      return socket(pieces, log)
    end },
    update_time = function() end,
    now = core.monotonic,
  }
  local saved = rawget(_G, "ngx")
  rawset(_G, "ngx", fake)
  local ok, a, b, c = pcall(fn)
  rawset(_G, "ngx", saved)
  if not ok then error(a, 0) end
  return a, b, c, log
end

--- `s` cut into pieces of at most `size` bytes.
function _M.split(s, size)
  local out = {}
  for i = 1, #s, size do out[#out + 1] = s:sub(i, i + size - 1) end
  return out
end

return _M
