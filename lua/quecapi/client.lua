--- The client: one pipeline that turns a catalog row and caller parameters into a
-- signed request, sends it and returns the platform's answer.
--
--   validate -> fill -> sign -> build request   (client:prepare stops here)
--   -> transport -> decode -> envelope check -> token bookkeeping
--
-- Every failure is `nil, err, code`: `err` names the operation and the cause and
-- never carries a secret; `code` is the platform's code when it answered.
-- @module quecapi.client

local core = require "quecapi.core"
local json = require "quecapi.json"
local redact = require "quecapi.redact"
local catalog = require "quecapi.endpoints"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local setmetatable, next = setmetatable, next
local format, gsub, byte, sub, lower, find = string.format, string.gsub, string.byte,
  string.sub, string.lower, string.find
local concat, sort = table.concat, table.sort
local floor = math.floor
local tointeger = math.tointeger

local VERSION = "0.1.0"

local _M = { VERSION = VERSION }

local REGIONS = {
  cn = "https://iot-api.quectelcn.com",
  eu = "https://iot-api.acceleronix.io",
}
_M.REGIONS = REGIONS

-- Parameters the client owns; a caller never passes them.
local GENERATED = { userDomain = true, random = true, ts = true, signature = true }

local RANDOM_LENGTH = 16

--- `phonePwdLogin` -> `phone_pwd_login`, `productTSL` -> `product_tsl`.
local function snake_case(name)
  name = gsub(name, "(%u+)(%u%l)", "%1_%2")
  name = gsub(name, "([%l%d])(%u)", "%1_%2")
  return lower(name)
end
_M.snake_case = snake_case

-- Both spellings find a row: the API's name and the method name.
local rows = {}
for _, row in ipairs(catalog) do
  row.method_name = snake_case(row.name)
  rows[row.name] = row
  rows[row.method_name] = row
end

local Client = {}
local client_mt = { __index = Client }

---------------------------------------------------------------------------
-- validate: caller parameters -> wire fields, or an error naming the field
---------------------------------------------------------------------------

local function is_list(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then return false end
  end
  return true
end

local function to_integer(v)
  if type(v) == "number" then
    if v == floor(v) and v > -2^63 and v < 2^63 then return tointeger and tointeger(v) or v end
  elseif type(v) == "string" and find(v, "^%-?%d+$") and #v <= 18 then
    local n = tonumber(v)
    return tointeger and tointeger(n) or n
  end
end

-- One checker per catalog type: value -> converted value, or nil, "expected ..."
local checkers = {
  string = function(v)
    if type(v) == "string" then return v end
    return nil, "a string"
  end,
  integer = function(v)
    local n = to_integer(v)
    if n then return n end
    return nil, "an integer"
  end,
  number = function(v)
    local n = tonumber(v)
    if n and n == n and n ~= math.huge and n ~= -math.huge then return n end
    return nil, "a number"
  end,
  boolean = function(v)
    if type(v) == "boolean" then return v end
    if v == "true" then return true elseif v == "false" then return false end
    return nil, "a boolean"
  end,
  array = function(v)
    if type(v) == "table" and is_list(v) then return v end
    return nil, "a list"
  end,
  object = function(v)
    if type(v) == "table" then return v end
    return nil, "a table"
  end,
  list = function(v)
    if type(v) == "string" then return v end
    if type(v) == "table" and is_list(v) then
      local parts = {}
      for i, item in ipairs(v) do
        if type(item) ~= "string" and type(item) ~= "number" then return nil, "a list of strings" end
        parts[i] = tostring(item)
      end
      return concat(parts, ",")
    end
    return nil, "a string or a list of strings"
  end,
}

-- plaintext parameter -> wire field, for this row
local function password_params(row)
  local map = {}
  if row.encrypt then
    for wire, plain in pairs(row.encrypt) do map[plain] = wire end
  end
  return map
end

local function validate(row, params)
  if params == nil then params = {} end
  if type(params) ~= "table" then
    return nil, "parameters must be a table"
  end
  local fields, plain = {}, {}
  local passwords = row.passwords
  for k, v in pairs(params) do
    if type(k) ~= "string" then return nil, "parameter names must be strings" end
    if passwords[k] then
      if type(v) ~= "string" then return nil, format("parameter '%s' must be a string", k) end
      plain[passwords[k]] = v
    elseif GENERATED[k] or (row.encrypt and row.encrypt[k]) then
      if row.encrypt and row.encrypt[k] then
        return nil, format("pass the plaintext as '%s', not '%s'", row.encrypt[k], k)
      end
      return nil, format("parameter '%s' is filled in by the client", k)
    else
      local kind = row.params[k]
      if not kind then
        return nil, format("unknown parameter '%s'", k)
      end
      local value, expected = checkers[kind](v)
      if value == nil then
        return nil, format("parameter '%s' must be %s", k, expected)
      end
      fields[k] = value
    end
  end
  for _, name in ipairs(row.required) do
    local alias = row.encrypt and row.encrypt[name]
    local v
    if alias then v = plain[name] else v = fields[name] end
    if v == nil then
      return nil, format("missing required parameter '%s'", alias or name)
    end
    if v == "" then
      return nil, format("parameter '%s' is empty", alias or name)
    end
  end
  return fields, plain
end

---------------------------------------------------------------------------
-- fill and sign
---------------------------------------------------------------------------

-- The text form of a field, as it goes into a query string and a signature.
local function wire_string(v)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then
    local i = to_integer(v)
    if i then return format("%d", i) end
    return format("%.17g", v)
  end
  if tv == "boolean" then return tostring(v) end
  if tv == "table" then
    local parts = {}
    for i, item in ipairs(v) do parts[i] = wire_string(item) end
    return concat(parts, ",")
  end
  return ""
end

local function fill(self, row, fields, plain)
  local p = row.params
  if p.userDomain then fields.userDomain = self.user_domain end
  if p.ts then fields.ts = self.clock() end
  if p.random or row.encrypt then
    local random = self.random(RANDOM_LENGTH)
    if p.random then fields.random = random end
    if row.encrypt then
      for wire, _ in pairs(row.encrypt) do
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

local function sign(self, row, fields)
  if not row.sign then return end
  local parts = {}
  for i, name in ipairs(row.sign) do
    local v = fields[name]
    parts[i] = v == nil and "" or wire_string(v)
  end
  parts[#parts + 1] = self.user_domain_secret
  fields.signature = core.sha256_hex(concat(parts))
end

---------------------------------------------------------------------------
-- build the request
---------------------------------------------------------------------------

local function url_escape(s)
  return (gsub(s, "[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end
_M.url_escape = url_escape

local function query_string(fields, names)
  local keys = {}
  for k in pairs(fields) do
    if not names or names[k] then keys[#keys + 1] = k end
  end
  if #keys == 0 then return "" end
  sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = url_escape(k) .. "=" .. url_escape(wire_string(fields[k]))
  end
  return "?" .. concat(parts, "&")
end

-- A JSON body: arrays the catalog declares stay arrays even when empty.
local function json_body(row, fields)
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

local function build(self, row, fields)
  local headers = {
    ["Accept"] = "application/json",
    ["User-Agent"] = "quecapi/" .. VERSION,
  }
  local url, body
  if row.body == "json" then
    local err
    body, err = json_body(row, fields)
    if not body then return nil, "cannot encode the body: " .. err end
    headers["Content-Type"] = "application/json"
    url = self.base_url .. row.path .. query_string(fields, row.query_set or {})
  else
    url = self.base_url .. row.path .. query_string(fields)
  end
  if row.auth == "token" then
    local tokens = self.store:get(self.token_key)
    if not (tokens and tokens.access_token) then
      return nil, "not logged in (no access token)"
    end
    headers["Authorization"] = tokens.access_token
  end
  return {
    method = row.method,
    url = url,
    headers = headers,
    body = body,
    timeout = self.timeout,
    connect_timeout = self.connect_timeout,
    max_body = self.max_body,
  }
end

-- validate, fill, sign, build: one row and the caller's parameters to a request.
local function prepare_row(self, row, params)
  local fields, plain = validate(row, params)
  if not fields then return nil, plain end
  local ok, err = fill(self, row, fields, plain)
  if not ok then return nil, err end
  sign(self, row, fields)
  return build(self, row, fields)
end

---------------------------------------------------------------------------
-- the response
---------------------------------------------------------------------------

-- A short, printable, secret-free piece of a body for an error message.
local function excerpt(self, body)
  local s = sub(body, 1, 120)
  s = gsub(s, "[^\32-\126]", ".")
  s = redact.text(s, self:secrets())
  if #body > 120 then s = s .. "..." end
  return s
end

local function fail(self, row, message, code)
  return nil, row.method_name .. ": " .. redact.text(message, self:secrets()), code
end

local function store_tokens(self, data)
  local access = type(data) == "table" and data.accessToken
  local refresh = type(data) == "table" and data.refreshToken
  if type(access) ~= "table" or type(access.token) ~= "string" then
    return nil
  end
  local tokens = {
    access_token = access.token,
    access_expires = tonumber(access.expirationTime),
  }
  if type(refresh) == "table" and type(refresh.token) == "string" then
    tokens.refresh_token = refresh.token
    tokens.refresh_expires = tonumber(refresh.expirationTime)
  end
  self.store:set(self.token_key, tokens)
  return tokens
end

local function send(self, row, req)
  local status, body, headers = self.transport:request(req)
  if not status then
    -- body is the error and headers the kind when the transport failed
    return fail(self, row, format("request failed (%s): %s", headers or "network", body or "unknown error"))
  end
  local doc = json.decode(body)
  if type(doc) ~= "table" then
    if body == "" then
      return fail(self, row, format("HTTP %d with an empty body", status))
    end
    return fail(self, row, format("HTTP %d, response is not JSON: %s", status, excerpt(self, body)))
  end
  local code = doc.code
  if code == nil then
    return fail(self, row, format("HTTP %d, response has no 'code' field: %s", status, excerpt(self, body)))
  end
  if code ~= 200 then
    local msg = doc.msg
    if type(msg) ~= "string" or msg == "" then msg = "no message" end
    return fail(self, row, format("platform error %s: %s", tostring(code), msg), tonumber(code))
  end
  if row.tokens == "issue" then
    if not store_tokens(self, doc.data) then
      return fail(self, row, "the response carries no access token")
    end
  elseif row.tokens == "revoke" then
    self.store:delete(self.token_key)
  end
  return doc
end

---------------------------------------------------------------------------
-- public methods
---------------------------------------------------------------------------

local function find_row(name)
  local row = type(name) == "string" and rows[name]
  if not row then
    return nil, format("unknown operation '%s'", tostring(name))
  end
  return row
end

--- Build the request a call would send, without sending it.
-- @tparam string name operation (`user_device_list` or `userDeviceList`)
-- @tparam table params the call's parameters
-- @treturn table `{method, url, headers, body, timeout, connect_timeout, max_body}`, or nil, err
function Client:prepare(name, params)
  local row, err = find_row(name)
  if not row then return nil, err end
  local req
  req, err = prepare_row(self, row, params)
  if not req then return fail(self, row, err) end
  return req
end

--- Call an operation by name; the generated methods (`client:phone_pwd_login{}`) use this.
-- @return the decoded envelope, or nil, err, code
function Client:call(name, params)
  local row, err = find_row(name)
  if not row then return nil, err end
  local req
  req, err = prepare_row(self, row, params)
  if not req then return fail(self, row, err) end
  return send(self, row, req)
end

--- Iterate over every item of every page of a paged operation.
-- The loop sees `false, err, code` once if a page cannot be fetched.
-- @usage for device, err in client:paginate("user_device_list", { pageSize = 50 }) do ... end
function Client:paginate(name, params)
  local row, err = find_row(name)
  if row and not row.paged then err = format("'%s' is not a paged operation", row.method_name) end
  local p = {}
  if type(params) == "table" then
    for k, v in pairs(params) do p[k] = v end
  end
  p.page = to_integer(p.page) or 1
  p.pageSize = to_integer(p.pageSize) or 10
  local list, i, last, done = nil, 0, false, false
  return function()
    if done then return nil end
    if err then
      done = true
      return false, err
    end
    while true do
      if list and i < #list then
        i = i + 1
        return list[i]
      end
      if last then
        done = true
        return nil
      end
      local res, cerr, code = self:call(row.name, p)
      if not res then
        done = true
        return false, cerr, code
      end
      local data = type(res.data) == "table" and res.data or {}
      list, i = type(data.list) == "table" and data.list or {}, 0
      if #list == 0 then
        last = true
      elseif data.hasNextPage ~= nil then
        last = not data.hasNextPage
      elseif tonumber(data.total) then
        last = p.page * p.pageSize >= tonumber(data.total)
      else
        last = #list < p.pageSize
      end
      p.page = p.page + 1
    end
  end
end

--- The tokens the client holds (they are secrets: do not log them).
-- @treturn table|nil `{access_token, access_expires, refresh_token, refresh_expires}`
function Client:get_tokens()
  return self.store:get(self.token_key)
end

--- Use tokens obtained elsewhere (a previous run, another process).
function Client:set_tokens(tokens)
  if type(tokens) ~= "table" or type(tokens.access_token) ~= "string" then
    return nil, "set_tokens: access_token (a string) is required"
  end
  self.store:set(self.token_key, tokens)
  return true
end

--- Secret values this client knows, for redaction.
function Client:secrets()
  local list = { self.user_domain_secret }
  local tokens = self.store:get(self.token_key)
  if tokens then
    list[#list + 1] = tokens.access_token
    list[#list + 1] = tokens.refresh_token
  end
  return list
end

--- Release the transport's connection now.
function Client:close()
  if self.transport.close then self.transport:close() end
end

-- One method per catalog row, built once.
for _, row in ipairs(catalog) do
  assert(Client[row.method_name] == nil, "catalog name clashes with a client method: " .. row.name)
  row.passwords = password_params(row)
  if row.query then
    row.query_set = {}
    for _, q in ipairs(row.query) do row.query_set[q] = true end
  end
  local name = row.name
  Client[row.method_name] = function(self, params)
    return self:call(name, params)
  end
end

---------------------------------------------------------------------------
-- construction
---------------------------------------------------------------------------

local function default_clock()
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.now then return floor(ngx.now() * 1000) end
  return os.time() * 1000
end

local OPTIONS = {
  base_url = "string", region = "string", user_domain = "string", user_domain_secret = "string",
  timeout = "number", connect_timeout = "number", ca_file = "string", verify = "boolean",
  clock = "function", random = "function", transport = "any", token_store = "table",
  token_key = "string", max_body = "number",
}

--- Make a client. No network I/O happens here.
-- @tparam table config see README
-- @return client, or nil, err
function _M.new(config)
  if type(config) ~= "table" then return nil, "quecapi.new: config must be a table" end
  for k, v in pairs(config) do
    local want = OPTIONS[k]
    if not want then return nil, format("quecapi.new: unknown option '%s'", tostring(k)) end
    if want ~= "any" and type(v) ~= want then
      return nil, format("quecapi.new: option '%s' must be a %s", k, want)
    end
  end
  for _, k in ipairs { "user_domain", "user_domain_secret" } do
    if config[k] == nil or config[k] == "" then
      return nil, format("quecapi.new: '%s' is required", k)
    end
  end
  local base_url = config.base_url
  if not base_url then
    local region = config.region or "cn"
    base_url = REGIONS[region]
    if not base_url then return nil, format("quecapi.new: unknown region '%s' (cn, eu)", region) end
  end
  if not find(base_url, "^https?://[^/%s?#]+") or find(base_url, "[%s?#]") then
    return nil, "quecapi.new: base_url must be an http(s) URL without query or fragment"
  end
  base_url = gsub(base_url, "/+$", "")
  for _, k in ipairs { "timeout", "connect_timeout", "max_body" } do
    local v = config[k]
    if v ~= nil and not (v > 0 and v < 1e9) then
      return nil, format("quecapi.new: option '%s' must be a positive number", k)
    end
  end
  local self = {
    base_url = base_url,
    user_domain = config.user_domain,
    user_domain_secret = config.user_domain_secret,
    timeout = config.timeout or 10,
    connect_timeout = config.connect_timeout or 5,
    max_body = config.max_body or 8 * 1024 * 1024,
    clock = config.clock or default_clock,
    random = config.random or core.random_string,
    token_key = config.token_key or config.user_domain,
    store = config.token_store or require("quecapi.store.memory").new(),
  }
  local transport = config.transport
  if transport == nil or transport == "curl" then
    transport = require("quecapi.transport.curl").new { verify = config.verify, ca_file = config.ca_file }
  elseif type(transport) ~= "table" or type(transport.request) ~= "function" then
    return nil, "quecapi.new: transport must be \"curl\" or a table with a request method"
  end
  self.transport = transport
  return setmetatable(self, client_mt)
end

_M.Client = Client

return _M
