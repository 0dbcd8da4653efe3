-- The platform's answers: the {code, msg, data, extMsg} envelope, its messages,
-- and the plain HTTP failures a gateway in front of it produces.
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local messages = require "quecapi.fakecloud.messages"

local _M = {}

-- The Date header shows the fake's clock, skew included, so a client can measure
-- the offset from any answer (nginx would otherwise print its own time).
function _M.date()
  return ngx.http_time(math.floor(state.now()))
end

local function send(status, body, content_type)
  content_type = content_type or "application/json"
  -- A fault may have taken over how this answer travels (faults.lua).
  local writer = ngx.ctx.fault_writer
  if writer then
    ngx.ctx.fault_writer = nil
    return writer(status, body, content_type)
  end
  ngx.status = status
  ngx.header["Date"] = _M.date()
  ngx.header["Content-Type"] = content_type
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(status)
end
_M.send = send

function _M.ok(data)
  return send(200, json.encode { code = 200, msg = "", data = data == nil and json.null or data,
                                 extMsg = json.null })
end

-- The platform's text for code in the language this request asked for.
function _M.message(code)
  return messages.text(code, ngx.ctx.lang)
end

-- Platform errors travel with HTTP 200, as the real cloud does.
function _M.fail(code, msg)
  return send(200, json.encode { code = code, msg = msg or _M.message(code),
                                 data = json.null, extMsg = json.null })
end

-- What a Spring gateway says for an unknown path or method.
function _M.not_found(path)
  return send(404, json.encode { timestamp = math.floor(ngx.now() * 1000), status = 404,
                                 error = "Not Found", path = path })
end

function _M.html(status)
  local reason = ({ [401] = "Unauthorized", [403] = "Forbidden", [500] = "Internal Server Error",
                    [502] = "Bad Gateway", [503] = "Service Unavailable",
                    [504] = "Gateway Time-out" })[status] or "Error"
  return send(status, string.format("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n" ..
    "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    status, reason, status, reason), "text/html")
end

return _M
