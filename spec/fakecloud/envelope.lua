-- The platform's answers: the {code, msg, data, extMsg} envelope, its messages,
-- and the plain HTTP failures a gateway in front of it produces.
local cjson = require "cjson"

local _M = {}

-- English messages of the platform's codes the fake answers with.
_M.messages = {
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
}

local function send(status, body, content_type)
  ngx.status = status
  ngx.header["Content-Type"] = content_type or "application/json"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(status)
end
_M.send = send

function _M.ok(data)
  return send(200, cjson.encode { code = 200, msg = "", data = data == nil and cjson.null or data,
                                  extMsg = cjson.null })
end

-- Platform errors travel with HTTP 200, as the real cloud does.
function _M.fail(code, msg)
  return send(200, cjson.encode { code = code, msg = msg or _M.messages[code] or "",
                                  data = cjson.null, extMsg = cjson.null })
end

-- What a Spring gateway says for an unknown path or method.
function _M.not_found(path)
  return send(404, cjson.encode { timestamp = math.floor(ngx.now() * 1000), status = 404,
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
