--- The command line: options (before or after the command, `--name value`,
-- `--name=value`, `-h`, `-v`; `--` ends them), the command and its arguments;
-- and the words commands take (NAME=VALUE, typed values, counts, durations).
--
-- A command module declares its own options as a list of
-- `{ name = "page-size", value = "N", help = "..." }` (no `value`: a flag) and
-- its argument count as `nargs = { min, max }` with `args_help`.
-- @module quecapi.cli.args

local fail = require "quecapi.cli.fail"

-- The library (and with it the C core) is loaded only by the words that need
-- it: `quecapi fakecloud` and `quecapi help` run without a built core.
local function catalog() return require "quecapi.catalog" end

local ipairs, tonumber, tostring = ipairs, tonumber, tostring
local find, sub, match = string.find, string.sub, string.match

local _M = {}

--- Options every command takes, in the order the help lists them; `key` is the
-- setting an option's value sets.
_M.GLOBAL = {
  { name = "user-domain", value = "DOMAIN", key = "user_domain", help = "the App's user domain (C.DM.xxxx.x)" },
  { name = "region", value = "cn|eu|us", key = "region", help = "the platform's data centre (default cn)" },
  { name = "base-url", value = "URL", key = "base_url", help = "another API host; wins over --region" },
  { name = "ca-file", value = "FILE", key = "ca_file",
    help = "trust the CAs in this PEM file instead of the system's" },
  { name = "phone", value = "NUMBER", key = "phone", help = "the account's phone number" },
  { name = "email", value = "ADDRESS", key = "email", help = "the account's email address" },
  { name = "international-code", value = "CC", key = "international_code",
    help = "the phone's country code (default 86)" },
  { name = "config", value = "FILE", help = "the config file to read" },
  { name = "verbose", short = "v", help = "log each request to stderr (secrets masked)" },
  { name = "help", short = "h", help = "show help (also: quecapi help COMMAND)" },
  { name = "version", help = "show the version" },
}

local GLOBAL_BY_NAME, SHORT = {}, {}
for _, o in ipairs(_M.GLOBAL) do
  GLOBAL_BY_NAME[o.name] = o
  if o.short then SHORT[o.short] = o.name end
end

-- Options that would put a secret on the command line, where `ps` shows it to
-- everyone: refused with where the secret goes instead.
local REFUSED = {
  ["user-domain-secret"] = "the user domain secret is not taken as an option (it would show in `ps`): "
    .. "set QUECAPI_USER_DOMAIN_SECRET or user_domain_secret in the config file",
  password = "passwords are not taken as options (they would show in `ps`): "
    .. "set QUECAPI_PASSWORD, or let quecapi ask for it",
}

local function own_option(command, name)
  for _, o in ipairs(command and command.options or {}) do
    if o.name == name then return o end
  end
end

--- Split a command line.
-- @tparam {string,...} argv the words after the program's name
-- @tparam function find_command name -> the command's module, or nil for no such command
-- @return `{ name, command, args = {...}, opts = { name = value or true } }`, or
--   nil, err, nil, "usage"
function _M.parse(argv, find_command)
  local parsed = { args = {}, opts = {} }
  local i, only_args = 1, false
  while i <= #argv do
    local word = argv[i]
    local name, value
    if not only_args and word == "--" then
      only_args = true
    elseif not only_args and sub(word, 1, 2) == "--" then
      name, value = match(word, "^%-%-([^=]+)=(.*)$")
      name = name or sub(word, 3)
    elseif not only_args and find(word, "^%-%a$") then
      name = SHORT[sub(word, 2)]
      if not name then return fail.usage("unknown option %s", word) end
    elseif not parsed.command then
      parsed.command = find_command(word)
      if not parsed.command then return fail.usage("unknown command '%s'", word) end
      parsed.name = word
    else
      parsed.args[#parsed.args + 1] = word
    end
    if name then
      local spec = GLOBAL_BY_NAME[name] or own_option(parsed.command, name)
      if not spec then
        if REFUSED[name] then return fail.input("%s", REFUSED[name]) end
        if parsed.command then return fail.usage("unknown option --%s for '%s'", name, parsed.name) end
        return fail.usage("unknown option --%s", name)
      end
      if not spec.value then
        if value then return fail.usage("option --%s takes no value", name) end
        value = true
      elseif not value then
        i = i + 1
        value = argv[i]
        if value == nil then return fail.usage("option --%s needs a value", name) end
      end
      parsed.opts[name] = value
    end
    i = i + 1
  end
  return parsed
end

--- Check the number of arguments against the command's `nargs = { min, max }`.
-- @return true, or nil, err, nil, "usage"
function _M.check_count(parsed)
  local limits = parsed.command.nargs
  if not limits then return true end
  local n = #parsed.args
  if n < limits[1] then
    return fail.usage("'%s' needs %s", parsed.name, parsed.command.args_help or "arguments")
  end
  if limits[2] and n > limits[2] then return fail.usage("too many arguments for '%s'", parsed.name) end
  return true
end

--- "code=value" -> code, value text; or nil, err, nil, "usage".
function _M.assignment(word)
  local k, v = match(word, "^([^=]+)=(.*)$")
  if not k then return fail.usage("expected NAME=VALUE, got '%s'", word) end
  return k, v
end

local NUMBER = { "^%-?%d+$", "^%-?%d+%.%d*$", "^%-?%d*%.%d+$", "^%-?%d+[eE][-+]?%d+$", "^%-?%d*%.?%d+[eE][-+]?%d+$" }

local function looks_numeric(s)
  for _, p in ipairs(NUMBER) do
    if find(s, p) then return true end
  end
  return false
end

--- A value typed on the command line: true/false, a number (an integer when it
-- is whole), JSON for a structure, a list or a quoted string, else the text as is.
-- @tparam string text
-- @tparam string what the name it is for (in the error)
-- @return the value, or nil, err, nil, "usage"
function _M.value(text, what)
  if text == "true" then return true end
  if text == "false" then return false end
  if looks_numeric(text) then
    local n = tonumber(text)
    return catalog().to_integer(n) or n
  end
  local first = sub(text, 1, 1)
  if first == "{" or first == "[" or first == '"' then
    local v, err = require("quecapi.json").decode(text)
    if v == nil then return fail.usage("%s: not valid JSON (%s)", what, tostring(err)) end
    return v
  end
  return text
end

--- A positive whole number given to --`option`.
-- @return the number, or nil, err, nil, "usage"
function _M.count(text, option)
  local n = catalog().to_integer(tonumber(text))
  if not n or n < 1 then return fail.usage("--%s must be a positive integer", option) end
  return n
end

local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

--- A duration like 90s, 30m, 1h, 7d, in seconds.
-- @return seconds, or nil, err, nil, "usage"
function _M.duration(text, option)
  local n, unit = match(tostring(text), "^(%d+)([smhd])$")
  if not n or tonumber(n) == 0 then
    return fail.usage("--%s takes a duration like 30m, 1h, 7d (s, m, h, d)", option)
  end
  return tonumber(n) * UNITS[unit]
end

return _M
