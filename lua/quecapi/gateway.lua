--- The platform's API behind your own domain, in nginx: a browser or app calls
-- `/api/...`, nginx attaches that user's platform token and `proxy_pass` streams
-- the platform's answer back byte for byte. The token and the user domain secret
-- never reach the browser.
--
--     init_by_lua_block {
--         local gateway = require "quecapi.gateway"
--         package.loaded["app.gateway"] = assert(gateway.new {
--             client = { base_url = ..., user_domain = ..., user_domain_secret = ...,
--                        token_store = "shdict", token_dict = "quecapi" },
--             operations = { "user_device_list", "device_info", ... },
--             token_key = function()          -- whose tokens: from your session cookie
--                 local sid = ngx.var.cookie_qsid
--                 return sid and #sid == 32 and "session:" .. sid or nil
--             end,
--         })
--     }
--     location /api/ {
--         access_by_lua_block { require("app.gateway"):access() }
--         proxy_pass https://platform/;       -- see examples/gateway.conf
--     }
--
-- For each request, `access` (for `access_by_lua`):
--
--   1. maps method and path (`/api/v2/binding/enduserapi/userDeviceList`) to a
--      catalog operation, among those the configuration names only: any other
--      path is 404, another method 405;
--   2. checks the parameters as the client would (query string; form or JSON
--      body): a bad one is 400 with the `usage` message, nothing is sent;
--   3. finds the user's tokens under `token_key()` in the token store shared by the
--      workers (no key: 401), renews them first when they are about to expire
--      (single-flight: one refresh for all the requests and workers waiting on it);
--   4. sets `Authorization` and lets the location's `proxy_pass` send the request
--      as it came (the browser's own `Authorization` is replaced).
--
-- Its own refusals are JSON, `{"error": "...", "kind": "usage"}`, with the status
-- the kind calls for (400, 401, 404, 405, 429, 502, 504). Operations that are
-- signed or that issue tokens (login, SMS and email codes, registration, refresh,
-- logout) are refused at `new`: their answers carry tokens the gateway would have
-- to keep from the browser, so they go through quecapi in `content_by_lua`, with
-- `gw:client(key)` for the user's client (examples/gateway.conf does both).
-- @module quecapi.gateway

local quecapi = require "quecapi"
local catalog = require "quecapi.catalog"
local json = require "quecapi.json"

local type, pairs, ipairs, tostring, rawget, next = type, pairs, ipairs, tostring, rawget, next
local setmetatable, getmetatable, error = setmetatable, getmetatable, error
local format = string.format

local _M = {}
local Gateway = {}
local gw_mt = { __index = Gateway }

-- HTTP statuses of the failure kinds the gateway answers with.
local STATUS = {
  usage = 400, config = 500, auth = 401, timeout = 504, rate_limited = 429,
  connect = 502, tls = 502, network = 502, too_large = 502, http = 502, platform = 502,
}

-- Stores every worker sees: the others keep tokens per worker or block.
local PER_WORKER = { memory = true, file = true }

-- Why an operation cannot go through the gateway, or nil.
local function refused(e)
  if e.auth ~= "token" then
    return "it is not called with an access token (login, codes, registration and refresh are signed calls)"
  end
  if e.tokens then return "it changes the session's tokens (use quecapi in content_by_lua)" end
  if next(e.owned_set) ~= nil then return "the client signs or fills its parameters (use quecapi in content_by_lua)" end
  return nil
end

--- Make a gateway (in `init_by_lua`: no I/O happens here).
-- @tparam table opts
--   `client`: the options of `quecapi.new` (base_url or region, user_domain,
--   user_domain_secret, token_store = "shdict" and token_dict, timeouts...; no
--   `account` and no `token_key`: the users log in themselves, each under their key);
--   `operations`: the operations the browser may call, by either name;
--   `token_key`: a function returning the calling user's token key, or nil;
--   `prefix`: the path the API is served under (default "/api");
--   `deadline`: seconds a token renewal may take (default 10)
-- @return the gateway, or nil, err
function _M.new(opts)
  if type(opts) ~= "table" then return nil, "quecapi.gateway: options must be a table" end
  local cfg = opts.client
  if type(cfg) ~= "table" then return nil, "quecapi.gateway: option 'client' (quecapi.new's options) is required" end
  if cfg.account ~= nil then
    return nil, "quecapi.gateway: client.account is not for a gateway: each user logs in (see gw:client)"
  end
  if cfg.token_key ~= nil then return nil, "quecapi.gateway: client.token_key comes from opts.token_key" end
  if cfg.token_store == nil or PER_WORKER[cfg.token_store] then
    return nil, "quecapi.gateway: client.token_store must be one every worker shares (\"shdict\", or a store table)"
  end
  if cfg.transport == "curl" then
    return nil, "quecapi.gateway: client.transport \"curl\" would block the worker: leave it \"auto\" (or \"ngx\")"
  end
  if type(opts.token_key) ~= "function" then
    return nil, "quecapi.gateway: option 'token_key' (a function returning the user's token key) is required"
  end
  local prefix = opts.prefix or "/api"
  if type(prefix) ~= "string" or not prefix:find("^/[%w%-._~/]*$") or prefix:find("/$") then
    return nil, "quecapi.gateway: option 'prefix' must be a path without a trailing slash, such as \"/api\""
  end
  local deadline = opts.deadline or 10
  if type(deadline) ~= "number" or not (deadline > 0 and deadline < 1e6) then
    return nil, "quecapi.gateway: option 'deadline' must be a positive number of seconds"
  end
  if type(opts.operations) ~= "table" or #opts.operations == 0 then
    return nil, "quecapi.gateway: option 'operations' must list the operations the browser may call"
  end
  local client, err = quecapi.new(cfg)
  if not client then return nil, "quecapi.gateway: " .. err end
  local routes, methods = {}, {}
  for _, name in ipairs(opts.operations) do
    local e = catalog.find(name)
    if not e then return nil, format("quecapi.gateway: unknown operation '%s'", tostring(name)) end
    local why = refused(e)
    if why then return nil, format("quecapi.gateway: %s cannot go through the gateway: %s", e.method_name, why) end
    local path = prefix .. e.path
    local by_method = routes[path] or {}
    by_method[e.method] = e
    routes[path] = by_method
    methods[path] = (methods[path] and methods[path] .. ", " or "") .. e.method
  end
  local copy = {}
  for k, v in pairs(cfg) do copy[k] = v end
  return setmetatable({
    base = client, config = copy, routes = routes, methods = methods, token_key = opts.token_key,
    prefix = prefix, renew_opts = { deadline = deadline },
  }, gw_mt)
end

-- ------------------------------------------------------------------------
-- answering
-- ------------------------------------------------------------------------

local function nginx()
  return rawget(_G, "ngx")
end

-- End the request with the gateway's own JSON answer (`code`: the platform's).
local function refuse(status, err, kind, code, allow)
  local ngx = nginx()
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  if allow then ngx.header["Allow"] = allow end
  ngx.print(json.encode { error = err, kind = kind, code = code })
  return ngx.exit(status)
end

-- ------------------------------------------------------------------------
-- parameters, as the client would check them
-- ------------------------------------------------------------------------

local MAX_ARGS = 100

-- The parameters of a request for `e`, or nil, err. Each goes where the client
-- would put it: the query string (GET, DELETE), a form body (POST, PUT), a JSON
-- body (rows with body = "json", whose `query` names stay in the query string).
local function parameters(ngx, e)
  local args, err = ngx.req.get_uri_args(MAX_ARGS)
  if err == "truncated" then return nil, format("more than %d query parameters", MAX_ARGS) end
  if e.body ~= "json" and e.method ~= "POST" and e.method ~= "PUT" then return args end
  local query = e.query_set or {}
  for k in pairs(args) do
    if not query[k] then
      return nil, format("parameter '%s' goes in the request body", tostring(k))
    end
  end
  ngx.req.read_body()
  if e.body ~= "json" then
    local form
    form, err = ngx.req.get_post_args(MAX_ARGS)
    if err == "truncated" then return nil, format("more than %d form parameters", MAX_ARGS) end
    if not form then return nil, "cannot read the form body: " .. tostring(err) end
    return form
  end
  local text = ngx.req.get_body_data()
  if text == nil then
    if ngx.req.get_body_file() then return nil, "the JSON body is too large (client_body_buffer_size)" end
    text = ""
  end
  local params = {}
  if text ~= "" then
    local value = json.decode(text)
    if value == nil then return nil, "the body is not JSON" end
    local array = type(value) == "table" and (getmetatable(value) == json.array_mt or #value > 0)
    if e.body_list then
      if not array then return nil, "the body must be a JSON array" end
      params[e.body_list] = value
    else
      if type(value) ~= "table" or array then return nil, "the body must be a JSON object" end
      for k, v in pairs(value) do params[k] = v end
    end
  end
  for k, v in pairs(args) do params[k] = v end
  return params
end

-- ------------------------------------------------------------------------
-- the access handler
-- ------------------------------------------------------------------------

--- For `access_by_lua`: check the request, attach the user's token, and let the
-- location's `proxy_pass` send it; or end it with the gateway's own answer.
function Gateway:access()
  local ngx = nginx()
  local path = ngx.var.uri
  local by_method = self.routes[path]
  if not by_method then return refuse(404, "no such operation: " .. path, "usage") end
  local e = by_method[ngx.req.get_method()]
  if not e then
    return refuse(405, format("%s takes %s", path, self.methods[path]), "usage", nil, self.methods[path])
  end
  local params, err = parameters(ngx, e)
  if params then params, err = catalog.validate(e, params) end
  if not params then return refuse(400, e.method_name .. ": " .. err, "usage") end

  local key = self.token_key()
  if type(key) ~= "string" or key == "" then return refuse(401, "not logged in", "auth") end
  local token = self.base:peek_token(key)
  if not token then
    local code, kind
    token, err, code, kind = self.base:with_token_key(key):access_token(self.renew_opts)
    if not token then return refuse(STATUS[kind] or 502, err, kind or "auth", code) end
  end
  ngx.req.set_header("Authorization", token)
end

--- The quecapi client of a user, its tokens kept under `key` (the gateway's store):
-- for the signed calls in `content_by_lua` (log in, log out, SMS codes...).
-- @tparam string key the user's token key (what `token_key()` will return for them)
-- @return a `quecapi.client.Client`
function Gateway:client(key)
  if type(key) ~= "string" or key == "" then error("gw:client(key): key must be a non-empty string", 2) end
  return self.base:with_token_key(key)
end

--- The HTTP status the gateway answers a failure kind with (for handlers of
-- your own that answer the browser the same way).
_M.STATUS = STATUS

return _M
