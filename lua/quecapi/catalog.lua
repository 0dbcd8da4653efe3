--- The catalog as the client uses it: `quecapi.endpoints` indexed by both names,
-- with what every call needs derived once per row.
--
-- It also owns what a call's parameters must be: the checkers of the catalog's
-- types and `validate`, which the client, the CLI and the tools share.
--
-- The public rows are never written to: each one gets a private entry, a copy
-- of the row plus
--
--```
--   method_name   the snake_case method (`phonePwdLogin` -> `phone_pwd_login`)
--   passwords     plaintext parameter -> encrypted wire field (`password` -> `pwd`)
--   query_set     with a JSON body, the names that still go in the query string
--   secret_set    the row's secret fields (the `secret` list) as a set
--   owns_random   whether the client fills a `random` (see `owned`), worked out once
--   owned_set     the parameters the client fills on this row (see `owned`), as a set
--   row           the public row itself
--```
--
-- Secrecy is data: a row's `secret` list names the fields whose values must never
-- be shown. Redaction, the CLI and the specs read these lists, never a list of
-- their own.
-- @module quecapi.catalog

local endpoints = require "quecapi.endpoints"
local json = require "quecapi.json"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local gsub, lower, format, find = string.gsub, string.lower, string.format, string.find
local concat = table.concat
local floor, huge = math.floor, math.huge
local tointeger = math.tointeger
local number_text = json.number_text

local _M = {}

--- `phonePwdLogin` -> `phone_pwd_login`, `productTSL` -> `product_tsl`.
-- @tparam string name an operation name
-- @treturn string
local function snake_case(name)
  name = gsub(name, "(%u+)(%u%l)", "%1_%2")
  name = gsub(name, "([%l%d])(%u)", "%1_%2")
  return lower(name)
end
_M.snake_case = snake_case

--- Fields of a login or refresh answer that hold tokens: secret in every answer.
_M.ANSWER_SECRETS = { "token", "accessToken", "refreshToken" }

local function entry_of(row)
  local e = {}
  for k, v in pairs(row) do e[k] = v end
  e.row = row
  e.method_name = snake_case(row.name)
  e.passwords = {}
  for wire, plain in pairs(row.encrypt or {}) do e.passwords[plain] = wire end
  if row.query then
    e.query_set = {}
    for _, q in ipairs(row.query) do e.query_set[q] = true end
  end
  e.secret_set = {}
  for _, name in ipairs(row.secret or {}) do e.secret_set[name] = true end
  return e
end

local by_name, list = {}, {}
for i, row in ipairs(endpoints) do
  local e = entry_of(row)
  list[i] = e
  by_name[row.name] = e
  by_name[e.method_name] = e
end

--- Every entry, in the catalog's order.
_M.entries = list

--- The entry of an operation, by its API name or its method name.
-- @tparam string name `user_device_list` or `userDeviceList`
-- @return the entry, or nil, err
function _M.find(name)
  local e = type(name) == "string" and by_name[name]
  if not e then return nil, format("unknown operation '%s'", tostring(name)) end
  return e
end

-- Every field name that is secret somewhere: the rows' secret fields and the
-- token fields of answers. Text is masked by these names (query strings, JSON).
local names, seen = {}, {}
local function add(name)
  if not seen[name] then
    seen[name] = true
    names[#names + 1] = name
  end
end
for _, e in ipairs(list) do
  for _, name in ipairs(e.secret or {}) do add(name) end
end
for _, name in ipairs(_M.ANSWER_SECRETS) do add(name) end
for _, e in ipairs(list) do
  for plain in pairs(e.passwords) do add(plain) end
end
table.sort(names)

--- Sorted list of every secret field name: the rows' `secret` lists, the token
-- fields of answers and the plaintext password parameters.
_M.SECRET_FIELDS = names

--- Does the client fill this parameter on this row? Then a caller may not pass it.
-- @param e an entry
-- @tparam string k a wire name
-- @treturn boolean
function _M.owned(e, k)
  if k == "userDomain" or k == "ts" then return e.params[k] ~= nil end
  if k == "signature" then return e.sign ~= nil end
  if k == "random" then
    if e.encrypt then return true end
    for _, f in ipairs(e.sign or {}) do
      if f == "random" then return true end
    end
  end
  return false
end

-- What `owned` says of a row, as a set: validate asks it of every parameter.
-- Rows that own the same fields share one set (there are a handful).
local OWNABLE = { "userDomain", "ts", "signature", "random" }
local owned_sets = {}
local function owned_set_of(e)
  local set, owns = {}, {}
  for _, k in ipairs(OWNABLE) do
    if _M.owned(e, k) then
      set[k] = true
      owns[#owns + 1] = k
    end
  end
  local id = concat(owns, " ")
  owned_sets[id] = owned_sets[id] or set
  return owned_sets[id]
end

for _, e in ipairs(list) do
  e.owns_random = _M.owned(e, "random")
  e.owned_set = owned_set_of(e)
end

-- ------------------------------------------------------------------------
-- parameters: types and validation
-- ------------------------------------------------------------------------

local function is_list(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then return false end
  end
  return true
end

--- An integral number (or a string of digits) as an integer, else nil.
local function to_integer(v)
  if type(v) == "number" then
    if v == floor(v) and v > -2^63 and v < 2^63 then return tointeger and tointeger(v) or v end
  elseif type(v) == "string" and find(v, "^%-?%d+$") and #v <= 18 then
    local n = tonumber(v)
    return tointeger and tointeger(n) or n
  end
end
_M.to_integer = to_integer

-- One checker per catalog type: value -> converted value, or nil, "what was expected".
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
    if n and n == n and n ~= huge and n ~= -huge then return n end
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
        if type(item) == "number" then
          if item ~= item or item == huge or item == -huge then return nil, "a list of strings" end
          item = number_text(item)
        elseif type(item) ~= "string" then
          return nil, "a list of strings"
        end
        -- the list goes on the wire joined by commas: one element must not become two
        if find(item, ",", 1, true) then return nil, "a list of strings without commas" end
        parts[i] = item
      end
      return concat(parts, ",")
    end
    return nil, "a string or a list of strings"
  end,
}
--- One checker per catalog type: value -> converted value, or nil, "what was expected".
_M.types = checkers

--- Check and convert a call's parameters against its entry: the wire fields
-- (defaults filled in) and the plaintext passwords, or nil, err naming the
-- parameter (never its value).
-- @param row an entry
-- @tparam table|nil params the caller's parameters
-- @return fields, plain; or nil, err
function _M.validate(row, params)
  if type(params) ~= "table" then
    if params ~= nil then return nil, "parameters must be a table" end
    params = {}
  end
  local fields, plain = {}, {}
  local passwords, encrypt, kinds = row.passwords, row.encrypt, row.params
  local owned_set = row.owned_set or owned_set_of(row)
  for k, v in pairs(params) do
    if type(k) ~= "string" then return nil, "parameter names must be strings" end
    if passwords[k] then
      if type(v) ~= "string" then return nil, format("parameter '%s' must be a string", k) end
      plain[passwords[k]] = v
    elseif encrypt and encrypt[k] then
      return nil, format("pass the plaintext as '%s', not '%s'", encrypt[k], k)
    elseif owned_set[k] then
      return nil, format("parameter '%s' is filled in by the client", k)
    else
      local kind = kinds[k]
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
  local defaults = row.defaults
  if defaults then
    for k, v in pairs(defaults) do
      if fields[k] == nil then fields[k] = v end
    end
  end
  local required = row.required
  for i = 1, #required do
    local name = required[i]
    local alias = encrypt and encrypt[name]
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

return _M
