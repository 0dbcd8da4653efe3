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

--- Make a client (see `quecapi.client.new` for every option). No network I/O happens here.
-- @function new
-- @tparam table config `user_domain`, `user_domain_secret` and the options of the README
-- @return a `quecapi.client.Client`, or nil, err

--- SHA-256 of a string as 64 lowercase hex digits (binary safe).
-- @function sha256_hex
-- @tparam string s
-- @treturn string

--- MD5 of a string as 32 lowercase hex digits (binary safe).
-- @function md5_hex
-- @tparam string s
-- @treturn string

--- The platform's password cipher: AES-128-CBC with key and IV derived from MD5(random), Base64.
-- @function encrypt_password
-- @tparam string plain the password
-- @tparam string random the call's random
-- @treturn string Base64 ciphertext

--- Reverse of `encrypt_password`.
-- @function decrypt_password
-- @tparam string b64 Base64 ciphertext
-- @tparam string random the random it was encrypted with
-- @return the plaintext, or nil, err (bad Base64, bad padding or wrong key)

--- `n` random characters of [0-9A-Za-z] from OpenSSL's RAND_bytes, without modulo bias.
-- @function random_string
-- @tparam int n length (0 to 1048576)
-- @treturn string

--- The catalog: one row per end-user operation (see `quecapi.endpoints`).
-- @table endpoints

--- The platform's error codes, `code -> English message` (loaded on first use).
-- @table errors

--- Region presets: `cn`, `eu` and `us` base URLs.
-- @table REGIONS

--- The realtime channel's URL of each region (`wss://iot-south.<domain>:8443/ws/v2`).
-- @table REALTIME_URLS

local _M = {
  VERSION = client.VERSION,
  new = client.new,
  REGIONS = client.REGIONS,
  REALTIME_URLS = client.REALTIME_URLS,
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
