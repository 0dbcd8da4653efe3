-- Injected failures: a test queues a fault for a path (or every API path) and the
-- next matching requests get it instead of, or before, the normal answer.
local state = require "fakecloud.state"
local envelope = require "fakecloud.envelope"

local _M = {}

_M.kinds = {
  -- wait delay_ms, then answer normally
  delay = function(f) ngx.sleep((f.delay_ms or 200) / 1000) return false end,
  -- a gateway's HTML error page with the given status
  status = function(f) return envelope.html(f.status or 502) end,
  -- HTTP 200 whose body is not JSON
  malformed = function() return envelope.send(200, "<html>upstream says hello</html>", "text/html") end,
  -- HTTP 200 with a JSON body cut short (but a consistent Content-Length)
  badjson = function() return envelope.send(200, '{"code":200,"msg":"","data":{"total":') end,
  -- HTTP 200 with an empty body
  empty = function() return envelope.send(200, "") end,
  -- Content-Length promises more than is sent, then the connection closes
  truncated = function()
    ngx.req.read_body()
    local sock = ngx.req.socket(true)
    if sock then
      sock:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n" ..
                '{"code":200,"msg":"","data":{"list":[')
    end
    return true
  end,
  -- close the connection without any response
  drop = function() return ngx.exit(444) end,
}

-- The first queued fault that matches this request, used up by one.
function _M.take(path)
  for i, f in ipairs(state.faults) do
    if f.path == nil or f.path == path then
      f.count = (f.count or 1) - 1
      if f.count <= 0 then table.remove(state.faults, i) end
      return f
    end
  end
end

-- true when the fault answered the request itself
function _M.apply(f)
  local kind = _M.kinds[f.kind]
  return kind(f) ~= false
end

return _M
