--- The claims of the platform's access token, a JWT: read, never verified.
--
-- The realtime channel needs the user id (`uid`) the token carries; the client
-- reads it here rather than asking the platform. The signature is not checked:
-- the platform checks it whenever the token is used, and a client that cannot
-- verify it gains nothing by pretending to.
-- @module quecapi.jwt

local json = require "quecapi.json"

local type = type
local byte, char, match, gsub, format = string.byte, string.char, string.match, string.gsub, string.format
local concat, floor = table.concat, math.floor

local _M = {}

-- Base64url alphabet -> 6-bit values.
local VALUES = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  for i = 1, #alphabet do VALUES[byte(alphabet, i)] = i - 1 end
end

-- The largest payload read: a token is a header line, not a document.
local MAX_PAYLOAD = 16 * 1024

--- Decode Base64url (RFC 4648 section 5, padding optional); nil when malformed.
-- @tparam string s
-- @treturn string|nil
function _M.base64url_decode(s)
  if type(s) ~= "string" then return nil end
  s = gsub(s, "=+$", "")
  if #s % 4 == 1 then return nil end
  local out, n = {}, 0
  for i = 1, #s, 4 do
    local acc, bits = 0, 0
    for j = i, i + 3 do
      local c = byte(s, j)
      if c then
        local v = VALUES[c]
        if not v then return nil end
        acc = acc * 64 + v
        bits = bits + 6
      end
    end
    -- whole bytes of the group, leftover low bits dropped
    local bytes = floor(bits / 8)
    acc = floor(acc / 2 ^ (bits - bytes * 8))
    local group = {}
    for k = bytes, 1, -1 do
      group[k] = char(acc % 256)
      acc = floor(acc / 256)
    end
    n = n + 1
    out[n] = concat(group)
  end
  return concat(out)
end

--- The claims of a token (`Bearer ` prefix allowed), or nil, err.
-- @tparam string token
-- @treturn table|nil
function _M.claims(token)
  if type(token) ~= "string" then return nil, "the token is not a string" end
  local payload = match(gsub(token, "^Bearer%s+", ""), "^[%w%-_]+%.([%w%-_]+)%.[%w%-_]*$")
  if not payload then return nil, "the token is not a JWT" end
  if #payload > MAX_PAYLOAD then return nil, "the token's payload is too large" end
  local text = _M.base64url_decode(payload)
  if not text then return nil, "the token's payload is not Base64url" end
  local claims = json.decode(text)
  if type(claims) ~= "table" then return nil, "the token's payload is not a JSON object" end
  return claims
end

--- The `uid` claim as a string, or nil, err.
-- @tparam string token
-- @treturn string|nil
function _M.uid(token)
  local claims, err = _M.claims(token)
  if not claims then return nil, err end
  local uid = claims.uid
  if type(uid) == "number" then
    if uid ~= floor(uid) or uid < 0 then return nil, "the token's uid is not an id" end
    return (format("%.0f", uid))
  end
  if type(uid) == "string" and match(uid, "^[%w%-_.]+$") and #uid <= 128 then return uid end
  return nil, "the token carries no uid"
end

return _M
