--- The client the commands use, made from the run's settings: the user domain,
-- the cloud, and for commands that need a session the token file (one session
-- per user domain, renewed by the client) and the configured account.
-- @module quecapi.cli.session

local quecapi = require "quecapi"
local json = require "quecapi.json"
local config = require "quecapi.config"
local settings = require "quecapi.cli.settings"
local fail = require "quecapi.cli.fail"

local _M = {}

--- The account as the user reads it: an email address or "+86 13800138000".
function _M.identity(s)
  if s.email then return s.email end
  if s.phone then return "+" .. s.international_code .. " " .. s.phone end
end

--- The account the client logs in with (by itself, when `password` comes from
-- the settings), or nil without a phone or email and a password.
function _M.account(s, password)
  password = password or s.password
  if not password or not (s.phone or s.email) then return nil end
  if s.email then return { email = s.email, password = password } end
  return { phone = s.phone, password = password, internationalCode = s.international_code }
end

-- Without a region or a base URL the client goes to the default region's cloud:
-- said once per run, so a user who forgot QUECAPI_REGION knows where calls go.
local function note_cloud(ctx)
  local s = ctx.settings
  if s.base_url or s.region or ctx.cloud_noted then return end
  ctx.cloud_noted = true
  local region = config.DEFAULTS.region
  ctx.log:note("no region or base URL is set: using the '%s' cloud, %s (choose with --region, "
    .. "--base-url, QUECAPI_REGION or QUECAPI_BASE_URL)", region, quecapi.REGIONS[region])
end

--- A client for a command.
-- @param ctx the run
-- @tparam[opt] table opts `tokens` (keep the session in the token file),
--   `password` (log in with it rather than the configured one)
-- @return the client, or nil, err, code, kind
function _M.client(ctx, opts)
  opts = opts or {}
  local s = ctx.settings
  if not s.user_domain then
    return fail.config("no user domain: use --user-domain, QUECAPI_USER_DOMAIN or user_domain in the config file")
  end
  if not s.user_domain_secret then
    return fail.config("no user domain secret: set QUECAPI_USER_DOMAIN_SECRET or user_domain_secret "
      .. "in the config file (it is never taken as an option)")
  end
  local cfg = {
    user_domain = s.user_domain, user_domain_secret = s.user_domain_secret,
    region = s.region, base_url = s.base_url, ca_file = s.ca_file,
    user_agent = "quecapi-cli/" .. quecapi.VERSION,
    transport = ctx.host.transport,
  }
  if ctx.opts.verbose then
    cfg.log = function(level, msg) ctx.log:note("%s: %s", level, msg) end
  end
  if opts.tokens then
    local file, err, code, kind = settings.token_file(ctx.host.getenv)
    if not file then return nil, err, code, kind end
    cfg.token_store, cfg.token_file = "file", file
    -- the same key whoever logs in, so `login` and later commands meet in the file
    cfg.token_key = s.user_domain
    cfg.account = _M.account(s, opts.password)
    ctx.token_path = file
  end
  note_cloud(ctx)
  local client, err, code, kind = quecapi.new(cfg)
  if not client then return nil, err, code, kind or "config" end
  return client
end

--- A client with a session: tokens from the token file, or a configured password
-- to log in with.
-- @return the client, or nil, err, code, kind
function _M.session(ctx)
  local client, err, code, kind = _M.client(ctx, { tokens = true })
  if not client then return nil, err, code, kind end
  if not client:get_tokens() and not _M.account(ctx.settings) then
    return nil, "not logged in: run `quecapi login` first (or set QUECAPI_PASSWORD so quecapi logs in by itself)",
      nil, "auth"
  end
  return client
end

--- Every item of every page of a paged operation, as a JSON array.
-- @return the items, or nil, err, code, kind when a page cannot be fetched
function _M.collect(client, name, params)
  local items = json.array {}
  for item, err, code, kind in client:paginate(name, params) do
    if not item then return nil, err, code, kind end
    items[#items + 1] = item
  end
  return items
end

return _M
