-- Used inside the nginx that spec/nginx/nginx_phases_spec.lua starts: in the current
-- phase, send one request through the default (auto) transport and log in
-- through a client, and keep what came back, how long it took and whether
-- anything raised in the `phases` shared dict under `label`.
-- luacheck: read globals ngx
local json = require "quecapi.json"
local app = require "support.in_nginx"

local _M = {}

local API = "/v2/binding/enduserapi/userDeviceList"

local function now()
  ngx.update_time()
  return ngx.now()
end

local function probe()
  local out = { phase = ngx.get_phase() }
  local c = app.client { account = app.account() }
  local t = c.transport
  out.choice = t:choose()
  local started = now()
  local status, err, kind = t:request {
    -- the fake cloud by name: nginx checks certificates against host names only
    url = (os.getenv("FAKECLOUD_URL"):gsub("127%.0%.0%.1", "localhost")) .. API,
    timeout = 10,
  }
  out.status, out.err, out.kind = status, status == nil and err or nil, status == nil and kind or nil
  local res, cerr, _, ckind = c:login()
  out.login_ok, out.login_err, out.login_kind = res ~= nil, cerr, ckind
  out.elapsed = now() - started
  return out
end

function _M.run(label)
  local ok, out = pcall(probe)
  if not ok then out = { raised = tostring(out) } end
  ngx.shared.phases:set(label, json.encode(out))
end

return _M
