--- The catalog as the client uses it: `quecapi.endpoints` indexed by both names,
-- with what every call needs derived once per row.
--
-- The public rows are never written to: each one gets a private entry, a copy
-- of the row plus
--
--   method_name   the snake_case method (`phonePwdLogin` -> `phone_pwd_login`)
--   passwords     plaintext parameter -> encrypted wire field (`password` -> `pwd`)
--   query_set     with a JSON body, the names that still go in the query string
--   secret_set    the row's secret fields (the `secret` list) as a set
--   row           the public row itself
--
-- Secrecy is data: a row's `secret` list names the fields whose values must never
-- be shown. Redaction, the CLI and the specs read these lists, never a list of
-- their own.
-- @module quecapi.catalog

local endpoints = require "quecapi.endpoints"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local gsub, lower, format = string.gsub, string.lower, string.format

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

return _M
