-- The platform's crypto for the fake cloud, on luaossl: deliberately independent
-- of quecapi's C core, so the fake checks the client instead of agreeing with it.
local digest = require "openssl.digest"
local cipher = require "openssl.cipher"

local _M = {}

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function _M.sha256_hex(s)
  return hex(digest.new("sha256"):final(s))
end

local function key_iv(random)
  local k = hex(digest.new("md5"):final(random)):upper():sub(9, 24)
  return k, k:sub(9, 16) .. k:sub(1, 8)
end

-- Base64 text -> plaintext, or nil when it is not a valid password for `random`.
function _M.decrypt_password(b64, random)
  local raw = type(b64) == "string" and ngx.decode_base64(b64)
  if not raw or #raw == 0 or #raw % 16 ~= 0 or type(random) ~= "string" then return nil end
  local key, iv = key_iv(random)
  local ok, plain = pcall(function()
    return cipher.new("AES-128-CBC"):decrypt(key, iv, true):final(raw)
  end)
  if ok and plain then return plain end
  return nil
end

function _M.encrypt_password(plain, random)
  local key, iv = key_iv(random)
  return ngx.encode_base64(cipher.new("AES-128-CBC"):encrypt(key, iv, true):final(plain))
end

local rand = require "openssl.rand"

-- n random bytes as 2n lowercase hex characters (tickets, share codes, auth keys).
function _M.random_hex(n)
  return hex(rand.bytes(n))
end

function _M.token(kind)
  return "Bearer fake." .. kind .. "." .. hex(rand.bytes(24))
end

return _M
