-- The platform's answers: the {code, msg, data, extMsg} envelope, its messages,
-- and the plain HTTP failures a gateway in front of it produces.
local json = require "fakecloud.json"
local state = require "fakecloud.state"
-- The platform's messages: the same data table the client ships (data only, no client code).
local errors = require "quecapi.errors"

local _M = {}

-- Messages the fake words as the endpoint pages do where they differ from the
-- error-code summary; every other code takes the summary's text (errors.lua).
_M.messages = setmetatable({
  [5002] = "The mobile number is registered.",
  [5004] = "The mobile number is not registered.",
  [5013] = "Incorrect user domain format.",
  [5015] = "The user domain does not exist.",
  [5019] = "Phone number format incorrect.",
  [5021] = "Please enter phone number.",
  [5022] = "Please enter password.",
  [5023] = "Please input the user domain.",
  [5028] = "Incorrect password.",
  [5032] = "Token verification failed.",
  [5037] = "SMS verification failed.",
  [5056] = "Password format incorrect, please enter 6-20 characters including letters, numbers, or special characters.",
  [5058] = "SMS sending is out of the limited frequency allowable range.",
  [5064] = "Please enter verification code.",
  [5106] = "Please input the token.",
  [5116] = "Please enter international code.",
  [5420] = "Signature verification failed.",
  [5550] = "Please enter signature",
}, { __index = errors })

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

-- Platform errors travel with HTTP 200, as the real cloud does.
function _M.fail(code, msg)
  return send(200, json.encode { code = code, msg = msg or _M.messages[code] or "",
                                 data = json.null, extMsg = json.null })
end

-- What a Spring gateway says for an unknown path or method.
function _M.not_found(path)
  return send(404, json.encode { timestamp = math.floor(ngx.now() * 1000), status = 404,
                                 error = "Not Found", path = path })
end

function _M.html(status)
  local reason = ({ [500] = "Internal Server Error", [502] = "Bad Gateway",
                    [503] = "Service Unavailable", [504] = "Gateway Time-out" })[status] or "Error"
  return send(status, string.format("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n" ..
    "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    status, reason, status, reason), "text/html")
end

return _M
