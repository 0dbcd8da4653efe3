-- nginx's cosocket API played from a script, for unit specs of the ngx transport
-- and of quecapi.transport.http1 in plain Lua 5.4 and LuaJIT: the transport looks
-- `ngx` up when a request is made, so a stand-in in the global table is what it
-- talks to.
--
--   local cosocket = require "support.cosocket"
--   local status, body, headers = cosocket.with({ "HTTP/1.1 200 OK\r\n", "..." }, function()
--     return transport.new():request { url = "http://127.0.0.1:1/" }
--   end)
--
--   local sock = cosocket.socket(pieces, log)   -- one scripted socket, for http1
--
-- Every socket made while `fn` runs is a new connection whose receives return the
-- pieces in order, one piece per receive (so an answer can arrive a byte at a time),
-- then "closed". A piece may also be { err = "timeout" } (that receive fails so) or
-- { wait = seconds } (log.wait(seconds) is called, for a scripted clock, and the
-- receive goes on to the next piece). Time is the C core's monotonic clock;
-- nothing waits.
local core = require "quecapi.core"

local _M = {}

--- A scripted socket. `log` (optional) collects what was sent (log.sent) and the
-- timeouts set (log.timeouts, in ms), and may have `wait(seconds)`.
function _M.socket(pieces, log)
  log = log or {}
  log.sent = log.sent or {}
  log.timeouts = log.timeouts or {}
  local next_piece = 0
  local sock = {}
  function sock.settimeout(_, ms) log.timeouts[#log.timeouts + 1] = ms end
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
    while true do
      next_piece = next_piece + 1
      local piece = pieces[next_piece]
      if not piece then return nil, "closed" end
      if type(piece) == "string" then
        assert(#piece <= max, "a scripted piece is larger than the transport asked for")
        return piece
      end
      if piece.err then return nil, piece.err end
      log.wait(piece.wait)
    end
  end
  return sock
end

--- Run fn() with a stand-in `ngx` whose sockets play `pieces`; restores the
-- previous `ngx` whatever happens. Returns fn's first three results (a request's
-- status, body, headers), then a log { sockets = count, sent = { data... } }.
function _M.with(pieces, fn)
  local log = { sockets = 0, sent = {}, timeouts = {} }
  local fake = {
    socket = { tcp = function()
      log.sockets = log.sockets + 1
      return _M.socket(pieces, log)
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
