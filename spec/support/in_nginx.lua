-- Used inside the nginx that spec/nginx/nginx_client_spec.lua starts: clients for the
-- fake cloud, configured from the environment the spec passes in (env directives).
local quecapi = require "quecapi"
local json = require "quecapi.json"
local config = require "quecapi.fakecloud.config"

local _M = {}

function _M.client(extra)
  local cfg = {
    -- nginx checks certificates against host names only: address the fake by name
    base_url = (os.getenv("FAKECLOUD_URL"):gsub("127%.0%.0%.1", "localhost")),
    ca_file = os.getenv("FAKECLOUD_CA"), -- used by the curl transport only
    user_domain = config.user_domain,
    user_domain_secret = config.user_domain_secret,
    timeout = 10,
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return assert(quecapi.new(cfg))
end

-- The account the spec seeded in the fake cloud.
function _M.account()
  return { phone = os.getenv("SPEC_PHONE"), password = os.getenv("SPEC_PASSWORD") }
end

function _M.reply(value)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(assert(json.encode(value)))
end

return _M
