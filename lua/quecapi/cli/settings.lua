--- The tool's settings, later sources winning: the config file, the
-- environment, the command line's options. And where the token file lives.
--
-- The config file is a Lua chunk returning a table, run with no access to any
-- library. It holds the user domain secret, so a file that group or others may
-- read or write, or that another user owns, is refused (as ssh refuses such key
-- files).
-- @module quecapi.cli.settings

local args = require "quecapi.cli.args"
local fail = require "quecapi.cli.fail"

local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring, pcall
local format, gsub, sub, byte = string.format, string.gsub, string.sub, string.byte
local floor = math.floor
local setfenv, loadstring = setfenv, loadstring -- Lua 5.1 and LuaJIT; nil on 5.2+

local _M = {}

--- The settings a config file may hold.
_M.KEYS = {
  "user_domain", "user_domain_secret", "region", "base_url", "ca_file", "phone", "email",
  "international_code", "password",
}
local KNOWN = {}
for _, k in ipairs(_M.KEYS) do KNOWN[k] = true end

--- Environment variable -> setting, in the order the help lists them.
_M.ENVIRONMENT = {
  { "QUECAPI_USER_DOMAIN", "user_domain" }, { "QUECAPI_USER_DOMAIN_SECRET", "user_domain_secret" },
  { "QUECAPI_REGION", "region" }, { "QUECAPI_BASE_URL", "base_url" }, { "QUECAPI_CA_FILE", "ca_file" },
  { "QUECAPI_PHONE", "phone" }, { "QUECAPI_EMAIL", "email" },
  { "QUECAPI_INTERNATIONAL_CODE", "international_code" }, { "QUECAPI_PASSWORD", "password" },
}

-- Settings a layer sets together: a later layer naming one of them replaces the
-- pair, so QUECAPI_REGION beats a base_url from the config file and --email
-- beats QUECAPI_PHONE.
local GROUPS = { region = "endpoint", base_url = "endpoint", phone = "account", email = "account" }

-- An unset variable and an empty one mean the same: not given.
local function getter(getenv)
  return function(name)
    local v = getenv(name)
    if v == nil or v == "" then return nil end
    return v
  end
end

local function shell_quote(s)
  return "'" .. gsub(s, "'", "'\\''") .. "'"
end

-- $<variable>/quecapi/<file> for an absolute XDG folder, else
-- $HOME/<fallback>/quecapi/<file>; nil without HOME.
local function xdg_file(getenv, variable, fallback, file)
  local env = getter(getenv)
  local base = env(variable)
  if not (base and sub(base, 1, 1) == "/") then
    local home = env("HOME")
    if not home then return nil end
    base = home .. "/" .. fallback
  end
  return base .. "/quecapi/" .. file
end

--- The config file read when none is named: $XDG_CONFIG_HOME/quecapi/config.lua,
-- else ~/.config/quecapi/config.lua; nil without HOME.
function _M.default_config_path(getenv)
  return xdg_file(getenv, "XDG_CONFIG_HOME", ".config", "config.lua")
end

--- The token file: $XDG_CACHE_HOME/quecapi/tokens.json, else ~/.cache/quecapi/tokens.json.
-- @return the path, or nil, err, nil, "config"
function _M.token_file(getenv)
  local path = xdg_file(getenv, "XDG_CACHE_HOME", ".cache", "tokens.json")
  if not path then return fail.config("cannot place the token file: set HOME or XDG_CACHE_HOME") end
  return path
end

-- Lua's "near '...'" would quote the text around a syntax error, maybe a secret.
local function load_error(err)
  return (gsub(tostring(err), " near .*$", ""))
end

-- A chunk from text, with an empty environment, on Lua 5.1 and 5.2+ alike.
-- Precompiled chunks are refused: Lua 5.1 would run them unchecked.
local function compile(text, name)
  if byte(text, 1) == 27 then return nil, name .. ": a precompiled chunk is not a config file" end
  if setfenv and loadstring then
    local chunk, err = loadstring(text, "=" .. name)
    if chunk then setfenv(chunk, {}) end
    return chunk, err
  end
  return load(text, "=" .. name, "t", {})
end

-- Read or written by group or others: the group's or the others' bits hold r or w.
local function open_to_others(mode)
  return floor(mode / 8) % 8 >= 2 or mode % 8 >= 2
end

-- Why the file at `path` may not hold secrets, or nil. Symlinks are followed
-- (dotfiles are often linked); what they point to is judged.
local function untrusted(path, core)
  local info, err, kind = core.file_info(path, true)
  if not info then return nil, err, kind end
  if info.type ~= "file" then return "it is not a regular file" end
  local uid = core.getuid()
  if info.uid ~= uid and info.uid ~= 0 then
    return format("it is owned by uid %d, not by you (uid %d) or root", info.uid, uid)
  end
  if open_to_others(info.mode) then
    return format("it is accessible to other users (mode %04o); it holds secrets, so it is refused: "
      .. "run  chmod 600 %s", info.mode, shell_quote(path))
  end
  return false
end

local function check_values(path, t)
  for k, v in pairs(t) do
    if not KNOWN[k] then return fail.config("%s: unknown setting '%s'", path, tostring(k)) end
    if (k == "international_code" or k == "phone") and type(v) == "number" and v == floor(v) then
      t[k] = format("%d", v)
    elseif type(v) ~= "string" then
      return fail.config("%s: setting '%s' must be a string", path, tostring(k))
    end
  end
  return t
end

--- Read a config file: its settings, {} when it is missing and was not named
-- explicitly, or nil, err, nil, "config".
-- @tparam string path
-- @tparam boolean explicit named by --config or QUECAPI_CONFIG
-- @param core the C core (file_info, getuid)
function _M.read_config(path, explicit, core)
  local problem, err, kind = untrusted(path, core)
  if problem == nil then
    if kind == "missing" and not explicit then return {} end
    return fail.config("cannot read the config file %s: %s", path, tostring(err))
  end
  if problem then return fail.config("the config file %s: %s", path, problem) end
  local f = io.open(path, "rb")
  local text = f and f:read("*a")
  if f then f:close() end
  if not text then return fail.config("cannot read the config file %s", path) end
  local chunk
  chunk, err = compile(text, path)
  if not chunk then return fail.config("%s", load_error(err)) end
  local ok, t = pcall(chunk)
  if not ok then return fail.config("%s", load_error(t)) end
  if type(t) ~= "table" then return fail.config("%s must return a table of settings", path) end
  return check_values(path, t)
end

local function apply(settings, layer)
  for _, group in ipairs { "endpoint", "account" } do
    local touches = false
    for k, g in pairs(GROUPS) do
      if g == group and layer[k] ~= nil then touches = true end
    end
    if touches then
      for k, g in pairs(GROUPS) do
        if g == group then settings[k] = nil end
      end
    end
  end
  for k, v in pairs(layer) do settings[k] = v end
end

local function option_layer(opts)
  local layer = {}
  for _, o in ipairs(args.GLOBAL) do
    if o.key and opts[o.name] ~= nil then layer[o.key] = opts[o.name] end
  end
  if layer.phone and layer.email then return fail.usage("give --phone or --email, not both") end
  return layer
end

local function environment_layer(env)
  local layer = {}
  for _, pair in ipairs(_M.ENVIRONMENT) do layer[pair[2]] = env(pair[1]) end
  return layer
end

--- The settings of a run.
-- @tparam table opts the parsed options
-- @tparam function getenv name -> value
-- @param core the C core (file_info, getuid)
-- @return the settings (`international_code` defaults to "86"), or nil, err, nil, kind
function _M.load(opts, getenv, core)
  local env = getter(getenv)
  local options, err, code, kind = option_layer(opts)
  if not options then return nil, err, code, kind end
  local path = opts.config or env("QUECAPI_CONFIG")
  local explicit = path ~= nil
  path = path or _M.default_config_path(getenv)
  local settings = {}
  if path then
    local file
    file, err, code, kind = _M.read_config(path, explicit, core)
    if not file then return nil, err, code, kind end
    apply(settings, file)
  end
  apply(settings, environment_layer(env))
  apply(settings, options)
  -- a layer with both a phone and an email means the phone
  if settings.phone and settings.email then settings.email = nil end
  settings.international_code = settings.international_code or "86"
  return settings
end

return _M
