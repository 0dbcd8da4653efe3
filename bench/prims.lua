--- Section 1 worker: quecapi's primitives from Lua, and what a user might use
-- instead (luaossl from Debian's lua-luaossl, a pure-Lua SHA-256).
--
--   lua bench/prims.lua SECONDS     prints name, calls/s, last result per line
local lib = require "lib"
local quecapi = require "quecapi"
local digest = require "openssl.digest"
local cipher = require "openssl.cipher"
local mime = require "mime" -- Base64 from LuaSocket (Debian's lua-socket, with lua-sec)

local seconds = tonumber(arg[1]) or 0.25
local text, password, random = lib.SIGNING_STRING, lib.PASSWORD, lib.RANDOM
local format, rep, byte, upper, sub = string.format, string.rep, string.byte, string.upper, string.sub
local sha256_hex, encrypt_password = quecapi.sha256_hex, quecapi.encrypt_password
local pure_sha256 = require(rawget(_G, "jit") and "sha256_bit" or "sha256_int")

local HEX32 = rep("%02x", 32)
local function luaossl_sha256_hex(s)
  return format(HEX32, byte(digest.new("sha256"):final(s), 1, 32))
end

-- The platform's key schedule and cipher, as a luaossl user would write them.
local HEX16 = rep("%02x", 16)
local function luaossl_encrypt_password(plain, r)
  local k = sub(upper(format(HEX16, byte(digest.new("md5"):final(r), 1, 16))), 9, 24)
  local iv = sub(k, 9, 16) .. sub(k, 1, 8)
  return (mime.b64(cipher.new("AES-128-CBC"):encrypt(k, iv):final(plain)))
end

local prefix = lib.interpreter .. "_"
local function run(name, f, a, b)
  local result
  -- 100 calls per timed function call, as a plain loop: what calling code does
  local r = 100 * lib.rate(function()
    for _ = 1, 100 do result = f(a, b) end
  end, seconds)
  lib.emit(prefix .. name, format("%.0f", r), result)
end

run("sha", sha256_hex, text)
run("enc", encrypt_password, password, random)
run("luaossl_sha", luaossl_sha256_hex, text)
run("luaossl_enc", luaossl_encrypt_password, password, random)
run("pure_sha", pure_sha256, text)
