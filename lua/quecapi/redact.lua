--- Masks secrets in text that may reach an error string or a log line.
--
-- Two passes: values of secret-bearing fields wherever they appear (query
-- strings, JSON, headers) and any literal secret the caller knows about (the
-- user domain secret, this call's password, the current tokens).
-- @module quecapi.redact

local gsub, find, sub = string.gsub, string.find, string.sub
local ipairs, type = ipairs, type

local _M = {}

local MASK = "***"

-- Field names whose values are secret in requests and responses.
_M.fields = {
  "pwd", "oldPwd", "newPwd", "password", "old_password", "new_password",
  "signature", "smsCode", "code", "token", "accessToken", "refreshToken",
  "userDomainSecret", "user_domain_secret", "authCode", "identityToken",
  "oauthTokenSecret", "jsCode", "bindingCode", "encryptedBindingCode",
}

local function replace_plain(s, needle)
  local out, i = {}, 1
  while true do
    local a, b = find(s, needle, i, true)
    if not a then break end
    out[#out + 1] = sub(s, i, a - 1)
    out[#out + 1] = MASK
    i = b + 1
  end
  if i == 1 then return s end
  out[#out + 1] = sub(s, i)
  return table.concat(out)
end

local function url_escaped(v)
  return (gsub(v, "[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- Redact a text.
-- @tparam string s the text
-- @tparam[opt] {string,...} secrets literal values to mask wherever they appear, also
--   in their URL-encoded and JSON-escaped forms
-- @treturn string
function _M.text(s, secrets)
  if type(s) ~= "string" then return s end
  if secrets then
    for _, v in ipairs(secrets) do
      if type(v) == "string" and #v >= 4 then
        s = replace_plain(s, v)
        local u = url_escaped(v)
        if u ~= v then s = replace_plain(s, u) end
        local j = gsub(v, "/", "\\/")
        if j ~= v then s = replace_plain(s, j) end
      end
    end
  end
  s = gsub(s, "(Bearer%s+)[%w%-_%.=+/]+", "%1" .. MASK)
  for _, k in ipairs(_M.fields) do
    s = gsub(s, "([?&]" .. k .. "=)[^&#%s]*", "%1" .. MASK)
    s = gsub(s, '("' .. k .. '"%s*:%s*")[^"]*', "%1" .. MASK)
  end
  return s
end

return _M
