-- A transport that records requests and answers from a script, for unit specs
-- that must prove what was (or was not) sent without a network.
local json = require "quecapi.json"

local _M = {}

-- answers: list of { status, body, headers } or functions(req) returning them;
-- when it runs out, every request gets HTTP 200 {"code":200}.
function _M.new(answers)
  local t = { sent = {}, answers = answers or {} }
  function t:request(req)
    self.sent[#self.sent + 1] = req
    local a = table.remove(self.answers, 1)
    if type(a) == "function" then return a(req) end
    if a then return a[1], a[2], a[3] or {} end
    return 200, json.encode { code = 200, msg = "", data = {} }, {}
  end
  return t
end

return _M
