--- Building a request from a catalog row and the caller's parameters.
--
--```
--   validate -> fill -> sign -> build
--```
--
-- Nothing here touches the network. Failures are `nil, err` where `err` names the
-- offending parameter and never repeats a secret value.
-- @module quecapi.request

local core = require "quecapi.core"
local json = require "quecapi.json"
local catalog = require "quecapi.catalog"

local type, pairs, ipairs, tostring, next, setmetatable, error = type, pairs, ipairs, tostring, next, setmetatable,
  error
local format, gsub, byte, find, sub = string.format, string.gsub, string.byte, string.find, string.sub
local concat, sort = table.concat, table.sort
local floor = math.floor

local _M = {}

local owned = catalog.owned
local number_text = json.number_text

local RANDOM_LENGTH = 16

local to_integer = catalog.to_integer
_M.to_integer = to_integer

--- Caller parameters -> wire fields and plaintext passwords, or nil, err (see
-- `quecapi.catalog.validate`).
_M.validate = catalog.validate

--- The text form of a field, as it goes into a query string and a signature.
local function wire_string(v)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then return number_text(v) end
  if tv == "boolean" then return tostring(v) end
  if tv == "table" then
    local parts = {}
    for i, item in ipairs(v) do parts[i] = wire_string(item) end
    return concat(parts, ",")
  end
  return ""
end

--- Add what the client owns: userDomain, ts, random, encrypted passwords.
-- `ctx` supplies user_domain, now_ms() and random(n).
function _M.fill(ctx, row, fields, plain)
  local p = row.params
  if p.userDomain then fields.userDomain = ctx.user_domain end
  if p.ts then fields.ts = ctx:now_ms() end
  local owns_random = row.owns_random
  if owns_random == nil then owns_random = owned(row, "random") end
  if owns_random then
    local random = ctx.random(RANDOM_LENGTH)
    if p.random then fields.random = random end
    if row.encrypt then
      for wire in pairs(row.encrypt) do
        if plain[wire] ~= nil then
          local enc, err = core.encrypt_password(plain[wire], random)
          if not enc then return nil, err end
          fields[wire] = enc
        end
      end
    end
  end
  return true
end

--- signature = SHA256(the row's fields in order .. userDomainSecret); absent fields count as "".
function _M.sign(ctx, row, fields)
  if not row.sign then return end
  local parts, substitute = {}, row.sign_substitute
  for i, name in ipairs(row.sign) do
    local v = fields[name]
    local other = substitute and substitute[name]
    if other and fields[other] ~= nil then v = fields[other] end
    parts[i] = v == nil and "" or wire_string(v)
  end
  parts[#parts + 1] = ctx.user_domain_secret
  fields.signature = core.sha256_hex(concat(parts))
end

local function escape_byte(c)
  return format("%%%02X", byte(c))
end

local UNRESERVED = "[^%w%-%._~]"

local function url_escape(s)
  if not find(s, UNRESERVED) then return s end
  return (gsub(s, UNRESERVED, escape_byte))
end
_M.url_escape = url_escape

-- Field names escaped once: the same few go into every query string. Bounded, as
-- a generic request's query may name anything. Values are never kept (secrets).
local MAX_NAMES = 512
local escaped_names, n_names = {}, 0

local function escaped_name(k)
  local e = escaped_names[k]
  if not e then
    e = url_escape(k)
    if n_names >= MAX_NAMES then escaped_names, n_names = {}, 0 end
    escaped_names[k], n_names = e, n_names + 1
  end
  return e
end

-- The text of small whole numbers (page numbers and sizes, types), kept once made.
local SMALL_MAX = 1024
local small = {}

-- A value's escaped wire text. A whole number within 2^53 is written in digits
-- and "-" (number_text), which need no escaping.
local function escaped_value(v)
  if type(v) == "number" and v == floor(v) and v > -2^53 and v < 2^53 then
    if v < 1 or v >= SMALL_MAX then return number_text(v) end
    local text = small[v]
    if not text then
      text = number_text(v)
      small[v] = text
    end
    return text
  end
  return url_escape(wire_string(v))
end

--- "?a=1&b=2" of the fields (only `names` when given), sorted, or "".
local function query_string(fields, names)
  local keys, n = {}, 0
  for k in pairs(fields) do
    if not names or names[k] then
      n = n + 1
      keys[n] = k
    end
  end
  if n == 0 then return "" end
  if n == 1 then
    local k = keys[1]
    return "?" .. escaped_name(k) .. "=" .. escaped_value(fields[k])
  end
  sort(keys)
  for i = 1, n do
    local k = keys[i]
    keys[i] = escaped_name(k) .. "=" .. escaped_value(fields[k])
  end
  return "?" .. concat(keys, "&")
end
_M.query_string = query_string

-- A JSON body: arrays the catalog declares stay arrays even when empty.
local function json_body(row, fields)
  if row.body_list then
    return json.encode(json.array(fields[row.body_list] or {}))
  end
  local body = {}
  for k, v in pairs(fields) do
    if not (row.query_set and row.query_set[k]) then
      if row.params[k] == "array" and type(v) == "table" and next(v) == nil then
        v = json.array {}
      end
      body[k] = v
    end
  end
  return json.encode(body)
end

-- The headers of every request: ours, then the caller's `headers` option
-- (checked when the client was made: no framing, no Authorization).
local function base_headers(ctx)
  local headers = {
    ["Accept"] = "application/json",
    ["User-Agent"] = ctx.user_agent,
  }
  local extra = ctx.headers
  if extra then
    for k, v in pairs(extra) do headers[k] = v end
  end
  return headers
end

-- Methods whose parameters travel in a form body when they are not JSON: the
-- encrypted password, the signature, codes and the refresh token stay out of
-- the request line, which proxies and access logs record. GET and DELETE keep
-- them in the query string.
local FORM_METHODS = { POST = true, PUT = true }
local FORM_TYPE = "application/x-www-form-urlencoded"
_M.FORM_TYPE = FORM_TYPE

--- The request table a transport sends.
-- `auth` is the Authorization value for the row (nil when the row needs none).
function _M.build(ctx, row, fields, auth)
  local headers = base_headers(ctx)
  local url, body
  if row.body == "json" then
    local err
    body, err = json_body(row, fields)
    if not body then return nil, "cannot encode the body: " .. err end
    headers["Content-Type"] = "application/json"
    url = ctx.base_url .. row.path .. query_string(fields, row.query_set or {})
  elseif FORM_METHODS[row.method] then
    url = ctx.base_url .. row.path
    local q = query_string(fields)
    if q ~= "" then
      body = sub(q, 2)
      headers["Content-Type"] = FORM_TYPE
    end
  else
    url = ctx.base_url .. row.path .. query_string(fields)
  end
  if auth then headers["Authorization"] = auth end
  return {
    method = row.method,
    url = url,
    path = row.path,
    headers = headers,
    body = body,
    timeout = ctx.timeout,
    connect_timeout = ctx.connect_timeout,
    max_body = ctx.max_body,
  }
end

-- Values of this call that must never be shown: the plaintext passwords and the
-- fields the row marks secret (`is_secret`: a set of names).
local function call_secrets(fields, plain, is_secret, list)
  list = list or {}
  for _, v in pairs(plain or {}) do list[#list + 1] = v end
  for k, v in pairs(fields) do
    if is_secret[k] and (type(v) == "string" or type(v) == "number") then list[#list + 1] = wire_string(v) end
  end
  return list
end

-- The secrets of a call that has none: shared, so it is never written to.
local NO_SECRETS = setmetatable({}, { __newindex = function() error("the list of no secrets is read-only", 2) end })

-- Any field named secret anywhere in the catalog, for requests outside it.
local ANY_SECRET = {}
for _, name in ipairs(catalog.SECRET_FIELDS) do ANY_SECRET[name] = true end

--- validate, fill, sign, build.
-- @return the request for a transport, and separately this call's secret values
--   (for redaction; they never travel with the request); or nil, err
function _M.prepare(ctx, row, params, auth)
  local fields, plain = _M.validate(row, params)
  if not fields then return nil, plain end
  local ok, err = _M.fill(ctx, row, fields, plain)
  if not ok then return nil, err end
  _M.sign(ctx, row, fields)
  local req
  req, err = _M.build(ctx, row, fields, auth)
  if not req then return nil, err end
  if next(plain) == nil and next(row.secret_set) == nil then return req, NO_SECRETS end
  return req, call_secrets(fields, plain, row.secret_set)
end

--- A request outside the catalog: { method, path, query = {}, body = table|string }.
function _M.generic(ctx, spec, auth)
  local method = spec.method or "GET"
  if type(method) ~= "string" or not find(method, "^%u+$") then
    return nil, "method must be an upper-case HTTP method"
  end
  local path = spec.path
  if type(path) ~= "string" or not find(path, "^/[^%s?#]*$") then
    return nil, "path must start with / and hold no spaces, query or fragment"
  end
  local query = ""
  if spec.query ~= nil then
    if type(spec.query) ~= "table" then return nil, "query must be a table" end
    for k, v in pairs(spec.query) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean") then
        return nil, "query must map names to strings, numbers or booleans"
      end
    end
    query = query_string(spec.query)
  end
  local headers = base_headers(ctx)
  local body = spec.body
  if type(body) == "table" then
    local err
    body, err = json.encode(body)
    if not body then return nil, "cannot encode the body: " .. err end
    headers["Content-Type"] = "application/json"
  elseif body ~= nil and type(body) ~= "string" then
    return nil, "body must be a table or a string"
  end
  if auth then headers["Authorization"] = auth end
  local secrets = call_secrets(type(spec.query) == "table" and spec.query or {}, nil, ANY_SECRET)
  if type(spec.body) == "table" then call_secrets(spec.body, nil, ANY_SECRET, secrets) end
  return {
    method = method, url = ctx.base_url .. path .. query, path = path, headers = headers, body = body,
    timeout = ctx.timeout, connect_timeout = ctx.connect_timeout, max_body = ctx.max_body,
  }, secrets
end

return _M
