-- The cosocket transport's parse cost in plain Lua (quecapi.transport.http1
-- reading for quecapi.transport.ngx), through a scripted socket
-- (spec/support/cosocket.lua): for every shape of hostile header block, the cost
-- grows linearly with its size ([10.15]). The same answers against a real nginx
-- are in spec/nginx/ngx_hostile_spec.lua.
local core = require "quecapi.core"
local cosocket = require "support.cosocket"
local transport = require "quecapi.transport.ngx"

local floor = math.floor

describe("transport.ngx parse cost", function()
  local DEFAULT = "Content-Length: 2\r\n\r\nok"

  -- Each shape: the answer for a size in bytes, how it arrives, and a check of the
  -- result (so a fast wrong answer does not pass).
  local shapes = {
    { name = "a repeated header",
      answer = function(size) return "HTTP/1.1 200 OK\r\n" .. ("X-R: a\r\n"):rep(floor(size / 8)) .. DEFAULT end,
      piece = 65536,
      check = function(size, status, _, h) return status == 200 and #h["x-r"] == 3 * (floor(size / 8)) - 2 end },
    { name = "one long line, a byte per receive",
      answer = function(size) return "HTTP/1.1 200 OK\r\nX-Long: " .. ("a"):rep(size) .. "\r\n" .. DEFAULT end,
      piece = 1,
      check = function(size, status, _, h) return status == 200 and #h["x-long"] == size end },
    { name = "folded lines",
      answer = function(size) return "HTTP/1.1 200 OK\r\nX-F: a\r\n" .. (" b\r\n"):rep(floor(size / 4)) .. DEFAULT end,
      piece = 65536,
      check = function(size, status, _, h) return status == 200 and #h["x-f"] == 1 + 2 * (floor(size / 4)) end },
    { name = "a run of spaces inside a value",
      answer = function(size) return "HTTP/1.1 200 OK\r\nX-S: a" .. (" "):rep(size) .. "b\r\n" .. DEFAULT end,
      piece = 65536,
      check = function(size, status, _, h) return status == 200 and #h["x-s"] == size + 2 end },
    { name = "a run of spaces inside Content-Length",
      answer = function(size)
        return "HTTP/1.1 200 OK\r\nContent-Length: 2" .. (" "):rep(size) .. "2\r\n\r\nok"
      end,
      piece = 65536,
      check = function(_, status, err) return status == nil and err == "invalid Content-Length in the response" end },
    { name = "many Content-Length values",
      answer = function(size)
        return "HTTP/1.1 200 OK\r\nContent-Length: " .. ("2, "):rep(floor(size / 3)) .. "2\r\n\r\nok"
      end,
      piece = 65536,
      check = function(_, status, body) return status == 200 and body == "ok" end },
    { name = "one long Transfer-Encoding coding",
      answer = function(size)
        return "HTTP/1.1 200 OK\r\nTransfer-Encoding: " .. ("a"):rep(size) .. " chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
      end,
      piece = 65536,
      check = function(_, status, body) return status == 200 and body == "ok" end },
  }

  -- Seconds for `rounds` requests that read `answer`, the best of five tries.
  local function cost(shape, size, rounds)
    local pieces = cosocket.split(shape.answer(size), shape.piece)
    local best = math.huge
    for _ = 1, 5 do
      collectgarbage()
      local t0 = core.monotonic()
      for _ = 1, rounds do
        local status, body, headers = cosocket.with(pieces, function()
          return transport.new():request { url = "http://127.0.0.1:1/", timeout = 60 }
        end)
        assert(shape.check(size, status, body, headers), shape.name .. ": wrong result: " .. tostring(body))
      end
      best = math.min(best, core.monotonic() - t0)
    end
    return best
  end

  it("[10.15] grows linearly with the header block, whatever its shape", function()
    -- 16 times the bytes: linear costs about 16 times the time (a little more
    -- with the garbage collector's share), quadratic up to 256 times
    local small, large = 3584, 57344
    for _, shape in ipairs(shapes) do
      cost(shape, small, 4) -- warm up (LuaJIT compiles the loops)
      local a, b = cost(shape, small, 16) / 16, cost(shape, large, 1)
      local ratio = b / a
      assert.is_true(ratio < 40, ("%s: %.3f ms for %d bytes, %.3f ms for %d (x%.1f)"):format(
        shape.name, a * 1000, small, b * 1000, large, ratio))
    end
  end)
end)
