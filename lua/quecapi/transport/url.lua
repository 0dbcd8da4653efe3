--- URLs as the transports take them, split and checked once for both.
--
--   url.parse("HTTPS://Example.COM:8443/a?b=1#frag")
--     -> "https", "example.com", 8443, "/a?b=1", "name"
--     -> nil, err                          (err: one line naming what is wrong)
--
-- Accepted: the http and https schemes; a host name (letters, digits, hyphens,
-- dots, RFC 1123 labels), an IPv4 literal or an IPv6 literal in brackets; a port
-- from 1 to 65535; a target without spaces or control characters. Refused:
-- credentials (`user:password@`: a secret in a URL, which quecapi never writes),
-- zone ids in IPv6 literals, and everything else. The fragment never goes on the
-- wire and is dropped.
--
-- The transports send what `format` rebuilds from the parts, never the caller's
-- string itself: a URL that one parser reads one way and libcurl another (a
-- backslash, a second `@`) cannot reach the wire.
-- @module quecapi.transport.url

local tonumber = tonumber
local find, sub, lower, match, gmatch, byte = string.find, string.sub, string.lower, string.match,
  string.gmatch, string.byte

local _M = {}

local DEFAULT_PORT = { http = 80, https = 443 }

-- true for a dotted quad, false for something that looks like one but is not
-- (a part over 255 or of more than three digits), nil for anything else.
local function valid_ipv4(host)
  local a, b, c, d = match(host, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if not a then
    if find(host, "^%d+%.%d+%.%d+%.%d+$") then return false end
    return nil
  end
  return tonumber(a) <= 255 and tonumber(b) <= 255 and tonumber(c) <= 255 and tonumber(d) <= 255
end
_M.valid_ipv4 = valid_ipv4

local function valid_name(host)
  if #host > 253 or not find(host, "^[%w%-%.]+$") then return false end
  for label in gmatch(host .. ".", "([^.]*)%.") do
    if label == "" or #label > 63 or find(label, "^%-") or find(label, "%-$") then
      return false
    end
  end
  return true
end

-- The number of 16-bit groups in `part` of an IPv6 literal (one side of its
-- "::", or all of it), or nil when a group is malformed. A dotted quad counts
-- for two groups and may only end the address (`last`).
local function groups(part, last)
  if part == "" then return 0 end
  local n, pos, len = 0, 1, #part
  while true do
    local colon = find(part, ":", pos, true)
    local group = sub(part, pos, (colon or len + 1) - 1)
    if not colon and last and find(group, ".", 1, true) then
      if not valid_ipv4(group) then return nil end
      return n + 2
    end
    if not find(group, "^%x%x?%x?%x?$") then return nil end
    n = n + 1
    if not colon then return n end
    pos = colon + 1
  end
end

local function valid_ipv6(s)
  if not find(s, "^[%x:.]+$") then return false end -- no zone id ("%25eth0")
  local double = find(s, "::", 1, true)
  if not double then return groups(s, true) == 8 end
  if find(s, "::", double + 1, true) then return false end
  local head, tail = groups(sub(s, 1, double - 1), false), groups(sub(s, double + 2), true)
  -- "::" stands for one group at least
  return head ~= nil and tail ~= nil and head + tail <= 7
end

--- Split and check a URL.
-- @tparam string url
-- @return scheme ("http" or "https"), host (lowercase, IPv6 without brackets),
--   port (a number), target ("/path?query", "/" at least) and the host's family
--   ("name", "ipv4" or "ipv6"); or nil, err
function _M.parse(url)
  local scheme, rest = match(url, "^(%a[%w+.%-]*)://(.*)$")
  if not scheme then return nil, "malformed URL" end
  scheme = lower(scheme)
  if not DEFAULT_PORT[scheme] then
    return nil, "unsupported URL scheme '" .. scheme .. "'"
  end
  local authority, target = match(rest, "^([^/?#]*)(.*)$")
  if find(authority, "@", 1, true) then return nil, "credentials in URLs are not supported" end

  local host, port, family
  if byte(authority) == 91 then -- "["
    local literal, after = match(authority, "^%[([^%]]*)%](.*)$")
    if not literal or not valid_ipv6(literal) then return nil, "invalid IPv6 address in URL" end
    host, family = lower(literal), "ipv6"
    port = match(after, "^:(%d+)$")
    if not port and after ~= "" and after ~= ":" then return nil, "malformed host or port in URL" end
  else
    host, port = match(authority, "^([^:]*):(%d+)$")
    if not host then
      host = match(authority, "^([^:]*):?$")
      if not host then return nil, "malformed host or port in URL" end
    end
    host = lower(host)
    if host == "" then return nil, "URL has no host" end
    local ip = valid_ipv4(host)
    if ip == false or (ip == nil and (find(host, "^[%d.]+$") or not valid_name(host))) then
      return nil, "invalid host name in URL"
    end
    family = ip and "ipv4" or "name"
  end

  if port then
    if #port > 5 or tonumber(port) < 1 or tonumber(port) > 65535 then
      return nil, "invalid port in URL"
    end
    port = tonumber(port)
  else
    port = DEFAULT_PORT[scheme]
  end

  target = match(target, "^[^#]*") -- a fragment never goes on the wire
  if find(target, "[%s%c]") then return nil, "URL contains spaces or control characters" end
  if target == "" then
    target = "/"
  elseif byte(target) == 63 then -- "?"
    target = "/" .. target
  end
  return scheme, host, port, target, family
end

--- The authority as a Host header says it: the port only when it is not the
-- scheme's default, an IPv6 literal in brackets.
function _M.authority(scheme, host, port, family)
  if family == "ipv6" then host = "[" .. host .. "]" end
  if port == DEFAULT_PORT[scheme] then return host end
  return host .. ":" .. port
end

--- The URL rebuilt from its checked parts (what goes to libcurl).
function _M.format(scheme, host, port, target, family)
  return scheme .. "://" .. _M.authority(scheme, host, port, family) .. target
end

return _M
