--- `quecapi call OPERATION NAME=VALUE...`: any operation of the catalog, by
-- either of its names, with the API's own parameter names; the answer's data is
-- printed as JSON with token fields masked.
--
-- Parameters are checked by the catalog (`quecapi.catalog.validate`) before
-- anything is sent or a session is needed. Secret parameters (the plaintext
-- passwords and the fields the catalog marks secret, unless the client fills
-- them itself) never come from the command line, where `ps` shows them: they
-- come from their environment variable (`QUECAPI_` and the snake_case name) or,
-- when required, are asked for without echo.
-- @module quecapi.cli.cmd.call

local catalog = require "quecapi.catalog"
local json = require "quecapi.json"
local session = require "quecapi.cli.session"
local args = require "quecapi.cli.args"
local prompt = require "quecapi.cli.prompt"
local output = require "quecapi.cli.output"
local fail = require "quecapi.cli.fail"

local ipairs, pairs, tostring = ipairs, pairs, tostring
local gsub, sub, upper = string.gsub, string.sub, string.upper
local sort = table.sort

local _M = {}

--- The environment variable a secret parameter comes from: smsCode -> QUECAPI_SMS_CODE.
function _M.variable(name)
  return "QUECAPI_" .. upper(catalog.snake_case(name))
end

--- The secret parameters a caller of an operation gives, sorted: its plaintext
-- passwords and its secret fields that the client does not fill.
function _M.secrets(e)
  local list = {}
  for name in pairs(e.passwords) do list[#list + 1] = name end
  for name in pairs(e.secret_set) do
    if not catalog.owned(e, name) and not (e.encrypt and e.encrypt[name]) then list[#list + 1] = name end
  end
  sort(list)
  return list
end

-- The name a secret word stands for (its variable's name), or nil when `k` is
-- not secret on this operation: an encrypted wire field stands for its plaintext.
local function secret_name(e, k)
  if e.passwords[k] then return k end
  if e.encrypt and e.encrypt[k] then return e.encrypt[k] end
  if e.secret_set[k] and not catalog.owned(e, k) then return k end
end

-- A parameter's text as the catalog's checkers take it: JSON for lists and
-- tables, the text itself otherwise (the checkers read numbers and booleans
-- from text, and text parameters stay as typed).
local function typed(e, k, text)
  local kind = e.params[k]
  if kind == "array" or kind == "object" or (kind == "list" and sub(text, 1, 1) == "[") then
    local v, err = json.decode(text)
    if v == nil then return fail.usage("parameter '%s': not valid JSON (%s)", k, tostring(err)) end
    return v
  end
  return text
end

-- The refresh call takes its refresh token from the token file when not given one.
local function filled_by_client(e, name)
  return e.auth == "refresh" and name == "refreshToken"
end

--- NAME=VALUE words -> the operation's parameters without its secrets, checked
-- by the catalog (with stand-ins for the secrets, which come later).
-- @return params, or nil, err, code, kind, hint
function _M.parameters(e, words)
  local params = {}
  for _, word in ipairs(words) do
    local k, text, code, kind, hint = args.assignment(word)
    if not k then return nil, text, code, kind, hint end
    local secret = secret_name(e, k)
    if secret then
      return fail.usage("'%s' is secret and is not taken on the command line (anyone could read it in `ps`): "
        .. "set %s or type it when asked", k, _M.variable(secret))
    end
    local v
    v, text, code, kind, hint = typed(e, k, text)
    if v == nil then return nil, text, code, kind, hint end
    params[k] = v
  end
  local probe = {}
  for k, v in pairs(params) do probe[k] = v end
  for _, name in ipairs(_M.secrets(e)) do probe[name] = "0" end
  local ok, err = catalog.validate(e, probe)
  if not ok then return fail.usage("%s: %s", e.method_name, err) end
  return params
end

--- Fill in the secrets: each from its environment variable, else asked for
-- when the operation requires it.
-- @return params, or nil, err, code, kind
function _M.fill_secrets(ctx, e, params)
  local required = {}
  for _, name in ipairs(e.required or {}) do required[e.encrypt and e.encrypt[name] or name] = true end
  for _, name in ipairs(_M.secrets(e)) do
    local v = ctx.host.getenv(_M.variable(name))
    if v ~= nil and v ~= "" then
      if e.passwords[name] then
        params[name] = v
      else
        local err, code, kind, hint
        params[name], err, code, kind, hint = typed(e, name, v)
        if params[name] == nil then return nil, err, code, kind, hint end
      end
    elseif required[name] and not filled_by_client(e, name) then
      local what = gsub(catalog.snake_case(name), "_", " ")
      local line, err, code, kind = prompt.secret(ctx, what .. ": ", what)
      if not line then return nil, err, code, kind end
      params[name] = line
    end
  end
  return params
end

local function list_operations(ctx)
  local rows = {}
  for i, e in ipairs(catalog.entries) do rows[i] = { e.method_name, e.method, e.summary or "" } end
  ctx.out:table(rows)
  return true
end

_M.summary = "call any API operation by name"
_M.usage = "call OPERATION [NAME=VALUE...] [--all] | call --list"
_M.help = [[
Call any operation of the API by its name (user_device_list or userDeviceList)
with its own parameter names, and print the answer's data as JSON (tokens masked).
Values are read by the parameter's type: numbers and true/false for numbers and
booleans, JSON for lists and objects; text parameters stay text as typed.
Secret parameters (passwords, codes, share codes, ...) are never taken on the
command line: set QUECAPI_<NAME> (QUECAPI_PASSWORD, QUECAPI_SMS_CODE, ...) or
type them when asked, without echo.

Examples:
  quecapi call user_info
  quecapi call get_family_list page=1 pageSize=20]]
_M.options = {
  { name = "all", help = "fetch every page of a paged operation and print the items as one array" },
  { name = "list", help = "list the operations" },
}

function _M.run(ctx)
  if ctx.opts.list then
    if #ctx.args > 0 then return fail.usage("too many arguments for 'call --list'") end
    return list_operations(ctx)
  end
  if #ctx.args < 1 then return fail.usage("'call' needs an OPERATION") end
  local e = catalog.find(ctx.args[1])
  if not e then
    return fail.usage("unknown operation '%s' (quecapi call --list shows them)", output.clean(ctx.args[1]))
  end
  if ctx.opts.all and not e.paged then return fail.usage("--all: '%s' is not a paged operation", e.method_name) end
  local words = {}
  for i = 2, #ctx.args do words[#words + 1] = ctx.args[i] end
  local params, err, code, kind, hint = _M.parameters(e, words)
  if not params then return nil, err, code, kind, hint end
  params, err, code, kind, hint = _M.fill_secrets(ctx, e, params)
  if not params then return nil, err, code, kind, hint end
  local client
  if e.auth == "token" then
    client, err, code, kind = session.session(ctx)
  else
    client, err, code, kind = session.client(ctx, { tokens = true })
  end
  if not client then return nil, err, code, kind end
  if ctx.opts.all then
    local items
    items, err, code, kind = session.collect(client, e.name, params)
    if not items then return nil, err, code, kind end
    return ctx.out:json(output.mask(items))
  end
  local res
  res, err, code, kind = client:call(e.name, params)
  if not res then return nil, err, code, kind end
  return ctx.out:json(output.mask(res.data))
end

return _M
