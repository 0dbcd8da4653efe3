-- A transport that records requests and answers from a script, for unit specs
-- that must prove what was (or was not) sent without a network.
local json = require "quecapi.json"

local _M = {}

local function ok_envelope(data)
  return 200, json.encode { code = 200, msg = "", data = data or {} }, {}
end
_M.ok = ok_envelope

--- Answers in order: a list of { status, body, headers } or functions(req)
-- returning them; when it runs out, every request gets HTTP 200 {"code":200}.
function _M.new(answers)
  local t = { sent = {}, answers = answers or {} }
  function t:request(req)
    self.sent[#self.sent + 1] = req
    local a = table.remove(self.answers, 1)
    if type(a) == "function" then return a(req) end
    if a then return a[1], a[2], a[3] or {} end
    return ok_envelope()
  end
  return t
end

--- Answers by "METHOD /path": { status, body, headers }, a function(req) (or { function }),
-- or a list of those used in turn (the last one repeats).
function _M.routes(map)
  local t = { sent = {}, count = {} }
  function t:request(req)
    self.sent[#self.sent + 1] = req
    local key = req.method .. " " .. req.url:match("^https?://[^/]+([^?]*)")
    self.count[key] = (self.count[key] or 0) + 1
    local a = map[key]
    if type(a) == "table" and (type(a[1]) == "table" or type(a[1]) == "function") then
      a = a[math.min(self.count[key], #a)]
    end
    if type(a) == "table" and type(a[1]) == "function" then a = a[1] end
    if type(a) == "function" then return a(req) end
    if a then return a[1], a[2], a[3] or {} end
    return 404, '{"status":404,"error":"Not Found"}', {}
  end
  -- requests sent to one "METHOD /path"
  function t:to(key)
    local out = {}
    for _, req in ipairs(self.sent) do
      if req.method .. " " .. req.url:match("^https?://[^/]+([^?]*)") == key then out[#out + 1] = req end
    end
    return out
  end
  return t
end

local function decode_pairs(text, into)
  for k, v in text:gmatch("([^&=]+)=([^&]*)") do
    into[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return into
end

--- The parameters of a request, decoded: its query string and, when the body is
-- a form (application/x-www-form-urlencoded), the form's fields.
function _M.args(req)
  local args = decode_pairs(req.url:match("%?(.*)$") or "", {})
  local ctype = req.headers and req.headers["Content-Type"]
  if ctype == "application/x-www-form-urlencoded" and type(req.body) == "string" then
    decode_pairs(req.body, args)
  end
  return args
end

--- The query arguments of a request URL alone, decoded.
function _M.query(req)
  return decode_pairs(req.url:match("%?(.*)$") or "", {})
end

return _M
