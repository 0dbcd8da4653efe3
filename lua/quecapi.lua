--- quecapi: a client for the Quectel IoT platform's App (end-user) OpenAPI.
--
--     local quecapi = require "quecapi"
--     local client = assert(quecapi.new { user_domain = "...", user_domain_secret = "..." })
--     assert(client:phone_pwd_login { phone = "...", password = "...", internationalCode = "86" })
--     local res = assert(client:user_device_list { pageSize = 50 })
--
-- Methods are the snake_case of the API's operation names; parameters are the
-- API's own field names. Success returns the decoded envelope (`res.code == 200`,
-- `res.data`); failure returns `nil, err, code`.
-- @module quecapi

local core = require "quecapi.core"
local client = require "quecapi.client"

local _M = {
  VERSION = client.VERSION,
  new = client.new,
  REGIONS = client.REGIONS,
  endpoints = require "quecapi.endpoints",
  snake_case = client.snake_case,

  sha256_hex = core.sha256_hex,
  md5_hex = core.md5_hex,
  encrypt_password = core.encrypt_password,
  decrypt_password = core.decrypt_password,
  random_string = core.random_string,
}

-- The platform's error codes -> English messages, loaded on first use.
setmetatable(_M, {
  __index = function(t, k)
    if k == "errors" then
      local errors = require "quecapi.errors"
      rawset(t, "errors", errors)
      return errors
    end
  end,
})

return _M
