--- Text that may reach an error string or a log line: secrets masked, and one
-- printable line.
--
-- Masking has two passes: any literal secret the caller knows about (the user
-- domain secret, this call's passwords, codes and signature, the current tokens
-- with and without their `Bearer ` prefix), also in its URL-encoded and
-- JSON-escaped forms; then the values of fields named secret anywhere in the
-- catalog (`quecapi.catalog.SECRET_FIELDS`), wherever they appear in query
-- strings, form bodies or JSON.
-- @module quecapi.redact

local catalog = require "quecapi.catalog"

local gsub, find, sub, byte, format = string.gsub, string.find, string.sub, string.byte, string.format
local ipairs, type, sort, concat = ipairs, type, table.sort, table.concat

local _M = {}

local MASK = "***"

--- Field names whose values are secret in requests and answers (from the catalog).
_M.fields = catalog.SECRET_FIELDS

-- Does the occurrence s[a..b] extend a run of letters and digits on either side
-- ("p" inside "response")? Short secrets are masked only where they stand alone.
local function inside_word(s, a, b)
  return (a > 1 and find(sub(s, a - 1, a), "^%w%w$") ~= nil)
      or (b < #s and find(sub(s, b, b + 1), "^%w%w$") ~= nil)
end

-- Secrets this short are also common letters and digits of ordinary words.
local SHORT = 4

local function replace_plain(s, needle)
  local out, i, from, short = {}, 1, 1, #needle < SHORT
  while true do
    local a, b = find(s, needle, from, true)
    if not a then break end
    if short and inside_word(s, a, b) then
      from = a + 1
    else
      out[#out + 1] = sub(s, i, a - 1)
      out[#out + 1] = MASK
      i, from = b + 1, b + 1
    end
  end
  if i == 1 then return s end
  out[#out + 1] = sub(s, i)
  return concat(out)
end

local function escape_byte(c)
  return format("%%%02X", byte(c))
end

local function url_escaped(v)
  return (gsub(v, "[^%w%-%._~]", escape_byte))
end

-- "Bearer x" is masked as itself and as x: a message may quote either.
local function variants(secrets)
  local list = {}
  for _, v in ipairs(secrets) do
    if type(v) == "string" and v ~= "" then
      list[#list + 1] = v
      local bare = v:match("^Bearer%s+(.+)$")
      if bare then list[#list + 1] = bare end
    end
  end
  -- longest first, so a secret that contains another is masked whole
  sort(list, function(a, b) return #a > #b end)
  return list
end

-- Patterns of the secret fields, built once.
local FIELD_PATTERNS = {}
for _, k in ipairs(_M.fields) do
  FIELD_PATTERNS[#FIELD_PATTERNS + 1] = "([?&]" .. k .. "=)[^&#%s]*"
  FIELD_PATTERNS[#FIELD_PATTERNS + 1] = '("' .. k .. '"%s*:%s*")[^"]*'
end

--- Redact a text.
-- @tparam string s the text
-- @tparam[opt] {string,...} secrets literal values to mask wherever they appear, also
--   in their URL-encoded and JSON-escaped forms; one shorter than 4 characters
--   wherever it is not part of a longer word ("abc" in "pwd=abc&", not in "abcdef")
-- @treturn string
function _M.text(s, secrets)
  if type(s) ~= "string" then return s end
  if secrets then
    for _, v in ipairs(variants(secrets)) do
      s = replace_plain(s, v)
      local u = url_escaped(v)
      if u ~= v then s = replace_plain(s, u) end
      local j = gsub(v, "/", "\\/")
      if j ~= v then s = replace_plain(s, j) end
    end
  end
  s = gsub(s, "(Bearer%s+)[%w%-_%.=+/]+", "%1" .. MASK)
  for _, p in ipairs(FIELD_PATTERNS) do
    s = gsub(s, p, "%1" .. MASK)
  end
  return s
end

local CONTROL_NAMES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function escape_control(c)
  return CONTROL_NAMES[c] or format("\\x%02x", byte(c))
end

-- C1 controls (U+0080..U+009F, "\xC2\x80".."\xC2\x9F" in UTF-8) act on terminals as
-- ESC sequences do; bytes that are not UTF-8 could be read as them.
local function escape_c1(pair)
  return format("\\u%04x", byte(pair, 2))
end

local function valid_utf8(s)
  if not find(s, "[\128-\255]") then return true end
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    local len
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then len = 3
    elseif c >= 0xF0 and c <= 0xF4 then len = 4
    else return false end
    for k = i + 1, i + len - 1 do
      local cc = byte(s, k)
      if not cc or cc < 0x80 or cc > 0xBF then return false end
    end
    i = i + len
  end
  return true
end

--- One printable line: control characters (C0, DEL, C1) escaped as `\n`, `\x1b`,
-- `\u009b`, and the bytes of text that is not UTF-8 as `\xNN`, so a message from
-- the network can neither forge log lines nor drive a terminal. UTF-8 text (a
-- platform message in Chinese) is kept as is.
-- @tparam string s
-- @treturn string
function _M.line(s)
  if type(s) ~= "string" then return s end
  if not find(s, "[%c\127-\255]") then return s end
  s = gsub(s, "[%c\127]", escape_control)
  if valid_utf8(s) then return (gsub(s, "\194[\128-\159]", escape_c1)) end
  return (gsub(s, "[\128-\255]", escape_control))
end

return _M
