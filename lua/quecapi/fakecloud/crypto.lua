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

local hmac = require "openssl.hmac"
local json = require "quecapi.fakecloud.json"

local function b64url(s)
  return (ngx.encode_base64(s, true):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end

-- The key the fake signs its tokens with: made per start, never shown.
local TOKEN_KEY = rand.bytes(32)

-- A token as the live cloud issues them: "Bearer " and a JWT (HS256) whose
-- payload carries the user id as `uid`, which Apps read for the realtime
-- channel's client id (realtime-channel.md). `jti` makes every token unique.
function _M.token(kind, uid, exp)
  local head = b64url(json.encode { alg = "HS256", typ = "JWT" })
  local body = b64url(json.encode { uid = uid, typ = kind, exp = exp, jti = hex(rand.bytes(12)) })
  local sig = b64url(hmac.new(TOKEN_KEY, "sha256"):final(head .. "." .. body))
  return "Bearer " .. head .. "." .. body .. "." .. sig
end

-- The `uid` claim of a token made by _M.token (with or without "Bearer "), or
-- nil. Read, not verified: the broker checked the token when the client
-- connected, and the platform checks it then only.
function _M.token_uid(token)
  if type(token) ~= "string" then return nil end
  local body = token:gsub("^Bearer ", ""):match("^[^.]+%.([^.]+)%.")
  if not body then return nil end
  body = body:gsub("%-", "+"):gsub("_", "/")
  local raw = ngx.decode_base64(body .. string.rep("=", (4 - #body % 4) % 4))
  local claims = raw and json.decode(raw)
  return type(claims) == "table" and type(claims.uid) == "string" and claims.uid or nil
end

return _M
