--- A client for the Quectel IoT platform's App (end-user) OpenAPI.
--
--     local quecapi = require "quecapi"
--     local client = assert(quecapi.new {
--       user_domain = "...", user_domain_secret = "...", region = "eu",
--     })
--     assert(client:phone_pwd_login {
--       phone = "...", password = "...", internationalCode = "86",
--     })
--     local res = assert(client:user_device_list { pageSize = 50 })
--     for _, device in ipairs(res.data.list) do
--       print(device.productKey, device.deviceKey)
--     end
--
-- Methods are the snake_case of the API's operation names (`quecapi.methods` lists
-- them all); parameters are the API's own field names, with plaintext passwords in
-- `password`, `old_password` and `new_password`.
--
-- * Success returns the decoded envelope: `res.code == 200`, the payload in `res.data`.
-- * Failure returns `nil, err, code, kind`: `err` one printable line, `code` the
--   platform's number when it answered, `kind` one of usage, config, auth, timeout,
--   connect, tls, network, too\_large, http, platform, rate\_limited.
--
-- Nothing here does I/O when required or when a client is made. `quecapi.VERSION`
-- is the library's version (the C core's: the Lua modules and the core ship together).
-- @module quecapi

local core = require "quecapi.core"
local client = require "quecapi.client"

--- Make a client (see `quecapi.client.new` for every option). No network I/O happens here.
-- @function new
-- @tparam table config `user_domain`, `user_domain_secret` and the options of the README
-- @return a `quecapi.client.Client`, or `nil, err, nil, "config"`

--- An operation's method name: `phonePwdLogin` -> `phone_pwd_login`, `productTSL` -> `product_tsl`.
-- @function snake_case
-- @tparam string name an operation name
-- @treturn string

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
-- @return the plaintext, or `nil, err` (bad Base64, bad padding or wrong key)

--- `n` random characters of `[0-9A-Za-z]` from OpenSSL's `RAND_bytes`, without modulo bias.
-- @function random_string
-- @tparam int n length (0 to 1048576)
-- @treturn string

--- The catalog: one row per end-user operation, the API as data (see `quecapi.endpoints`).
-- Public and never written to; `quecapi.catalog` is the client's view of it.
-- @table endpoints

--- The platform's error codes, `code -> English message` (see `quecapi.errors`).
-- Loaded on first use: `quecapi.errors[5032]`.
-- @table errors

--- The REST base URL of each region, chosen with the `region` option (default `cn`).
-- Other hosts (aliases, staging) are reached with `base_url`.
-- @table REGIONS
-- @field cn China data centre: `https://iot-api.quectelcn.com`
-- @field eu European data centre: `https://iot-api.acceleronix.io`
-- @field us North America: `https://iot-api.landecia.com` (the host live clients use)

--- The realtime channel's URL of each region (MQTT over secure WebSocket), by the
-- same keys as `REGIONS`: `wss://iot-south.<domain>:8443/ws/v2`.
-- @table REALTIME_URLS
-- @field cn `wss://iot-south.quectelcn.com:8443/ws/v2`
-- @field eu `wss://iot-south.acceleronix.io:8443/ws/v2`
-- @field us `wss://iot-south.landecia.com:8443/ws/v2`

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
