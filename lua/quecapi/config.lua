--- The client's options: their schema, their defaults (one table), and what is
-- built from them: the base URL and its origin, the token store, the transport,
-- the token key, extra headers and the realtime URL.
--
-- `resolve(options)` checks every option (type, range, coherence) and returns
-- the settings a client is made of, or nil, err naming the option. Nothing is
-- opened or sent here: stores and transports defer I/O to their first use.
-- @module quecapi.config

local retry = require "quecapi.retry"
local redact = require "quecapi.redact"
local time = require "quecapi.time"
local contract = require "quecapi.transport.contract"

local type, pairs, ipairs, tostring, tonumber, next = type, pairs, ipairs, tostring, tonumber, next
local format, gsub, lower, find, match = string.format, string.gsub, string.lower, string.find, string.match

local _M = {}

--- Defaults of the options, in one place.
_M.DEFAULTS = {
  region = "cn",
  timeout = contract.DEFAULTS.timeout,                 -- seconds per attempt
  connect_timeout = contract.DEFAULTS.connect_timeout, -- seconds for connect + TLS handshake
  max_body = contract.DEFAULTS.max_body,               -- bytes of an answer
  refresh_margin = 300,                                -- renew tokens this long before they expire
  token_store = "memory",
  token_dict = "quecapi",
  transport = "auto",
}

-- The platform's data centres: REST base URLs, and the realtime channel's
-- (MQTT over secure WebSocket) that goes with each. Aliases of these hosts and
-- the `uat-` staging hosts are reached through `base_url` (see the README).
_M.REGIONS = {
  cn = "https://iot-api.quectelcn.com",
  eu = "https://iot-api.acceleronix.io",
  us = "https://iot-api.landecia.com",
}
local REGIONS = _M.REGIONS

_M.REALTIME_URLS = {
  cn = "wss://iot-south.quectelcn.com:8443/ws/v2",
  eu = "wss://iot-south.acceleronix.io:8443/ws/v2",
  us = "wss://iot-south.landecia.com:8443/ws/v2",
}
local REALTIME_URLS = _M.REALTIME_URLS

local OPTIONS = {
  base_url = "string", region = "string", user_domain = "string", user_domain_secret = "string",
  timeout = "number", connect_timeout = "number", ca_file = "string", verify = "boolean",
  clock = "function", random = "function", transport = "any", token_store = "any",
  token_key = "string", token_file = "string", token_dict = "string", max_body = "number",
  account = "table", refresh_margin = "number", lock_timeout = "number", retry = "any",
  log = "function", user_agent = "string", allow_http = "boolean",
  headers = "table", lang = "string", fallback_user_domain = "table", redis = "table",
}

-- Headers the client writes itself: a `headers` option must not contradict them.
local OWN_HEADERS = {
  authorization = true, ["content-length"] = true, ["transfer-encoding"] = true, host = true,
  connection = true, ["content-type"] = true, expect = true, te = true, upgrade = true,
  ["x-q-language"] = "lang",
}

-- The `headers` and `lang` options as one table of extra headers, or nil, err.
local function extra_headers(config)
  if config.headers == nil and config.lang == nil then return false end
  local out = {}
  for k, v in pairs(config.headers or {}) do
    if type(k) ~= "string" or not find(k, "^[%w!#$%%&'*+%-.^_`|~]+$") then
      return nil, "headers: invalid header name " .. redact.line(tostring(k))
    end
    if type(v) ~= "string" or find(v, "[%c]") then
      return nil, format("headers: the value of '%s' must be a string without control characters", k)
    end
    local own = OWN_HEADERS[lower(k)]
    if own then
      return nil, format("headers: '%s' is written by the client%s", k, own == true and "" or
        " (use the '" .. own .. "' option)")
    end
    out[k] = v
  end
  if config.lang ~= nil then
    if not find(config.lang, "^[%a][%w%-_]*$") or #config.lang > 35 then
      return nil, "lang must be a language tag such as \"en\" or \"zh\""
    end
    out["X-Q-Language"] = config.lang
  end
  if next(out) == nil then return false end
  return out
end

-- The realtime URL that goes with a base URL: the region's, or iot-api.X -> iot-south.X.
local function realtime_for(base_url, region)
  if region then return REALTIME_URLS[region] end
  for name, url in pairs(REGIONS) do
    if url == base_url then return REALTIME_URLS[name] end
  end
  local rest = match(base_url, "^https://iot%-api%.([%w%-%.]+)$")
  if rest then return "wss://iot-south." .. rest .. ":8443/ws/v2" end
  rest = match(base_url, "^https://uat%-iot%-api%.([%w%-%.]+)$")
  if rest then return "wss://uat-iot-south." .. rest .. ":8443/ws/v2" end
  return nil
end

local function check_domain(d)
  if type(d.user_domain) ~= "string" or d.user_domain == "" or type(d.user_domain_secret) ~= "string"
      or d.user_domain_secret == "" then
    return nil, "fallback_user_domain needs user_domain and user_domain_secret (strings)"
  end
  for k in pairs(d) do
    if k ~= "user_domain" and k ~= "user_domain_secret" then
      return nil, "fallback_user_domain: unknown field '" .. redact.line(tostring(k)) .. "'"
    end
  end
  return true
end

-- Stores and transports that keep nothing of their own between calls (a shared
-- dict's store, the cosocket transport) are made once per process and option
-- set, and shared by the clients made from them: nginx makes a client per request.
local shared = {}
local shared_redis = setmetatable({}, { __mode = "k" })

-- What `make(arg)` made, kept in `cache` under `key` for the clients made later.
local function once(cache, key, make, arg)
  local made = cache[key]
  if made then return made end
  local err
  made, err = make(arg)
  if made then cache[key] = made end
  return made, err
end

local function make_store(config)
  local store = config.token_store or _M.DEFAULTS.token_store
  if type(store) == "table" then
    if type(store.get) ~= "function" or type(store.set) ~= "function" or type(store.delete) ~= "function" then
      return nil, "token_store must have get, set and delete methods"
    end
    return store
  end
  if store == "memory" then return require("quecapi.store.memory").new() end
  if store == "file" then
    local path = config.token_file
    if not path then
      local home = os.getenv("HOME")
      if not home or home == "" then return nil, "token_file is required (no HOME)" end
      path = home .. "/.cache/quecapi/tokens.json"
    end
    return require("quecapi.store.file").new { path = path }
  end
  if store == "shdict" then
    local dict = config.token_dict or _M.DEFAULTS.token_dict
    return once(shared, "shdict " .. dict, require("quecapi.store.shdict").new, { dict = dict })
  end
  if store == "redis" then
    local opts = config.redis
    if type(opts) ~= "table" then
      return nil, "token_store \"redis\" needs the option redis = { url = ... } (or host, port, password, db, "
        .. "prefix, sentinel, timeout)"
    end
    -- one store (and its connections) per options table: clients made per request share it
    return once(shared_redis, opts, require("quecapi.store.redis").new, opts)
  end
  return nil, "token_store must be \"memory\", \"file\", \"shdict\", \"redis\" or a store table"
end

local function make_transport(config)
  local t = config.transport or _M.DEFAULTS.transport
  local opts = { verify = config.verify ~= false, ca_file = config.ca_file }
  if t == "ngx" then
    local key = (opts.verify and "ngx verify " or "ngx noverify ") .. (opts.ca_file or "")
    return once(shared, key, require("quecapi.transport.ngx").new, opts)
  end
  if t == "auto" or t == "curl" then
    return require("quecapi.transport." .. t).new(opts)
  end
  if type(t) == "table" and type(t.request) == "function" then return t end
  return nil, "transport must be \"auto\", \"curl\", \"ngx\" or a table with a request method"
end

--- The origin of a base URL, `scheme://host:port` with the port always written,
-- or nil, err. Tokens are kept per origin: a token issued by one host is never
-- sent to another.
-- @tparam string url
local function origin_of(url)
  local scheme, authority = match(url, "^(%a[%w+.%-]*)://([^/?#]*)")
  if not scheme then return nil, "base_url must be an http(s) URL" end
  scheme = lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then return nil, "base_url must be an http(s) URL" end
  if find(authority, "@", 1, true) then return nil, "base_url must not carry credentials" end
  local host, port = match(authority, "^(%[[%x:.]+%])(.*)$")
  if not host then host, port = match(authority, "^([^:]+)(.*)$") end
  if not host then return nil, "base_url has no host" end
  if port == "" then
    port = scheme == "https" and "443" or "80"
  else
    port = match(port, "^:(%d+)$")
    if not port or tonumber(port) < 1 or tonumber(port) > 65535 then return nil, "base_url has an invalid port" end
  end
  return scheme .. "://" .. lower(host) .. ":" .. tonumber(port), scheme, lower(host)
end
_M.origin_of = origin_of

local function is_loopback(host)
  return host == "localhost" or host == "[::1]" or find(host, "^127%.%d+%.%d+%.%d+$") ~= nil
end


--- Check an account table: `{ phone, password, internationalCode }` or `{ email, password }`.
-- @return true, or nil, err
function _M.check_account(a)
  if a == nil then return true end
  if type(a) ~= "table" then return nil, "account must be a table" end
  for _, k in ipairs { "phone", "email", "password", "internationalCode" } do
    if a[k] ~= nil and type(a[k]) ~= "string" then return nil, format("account.%s must be a string", k) end
  end
  if a.password == nil or a.password == "" then return nil, "account.password is required" end
  if a.phone and a.phone ~= "" then return true end
  if a.email and a.email ~= "" then return true end
  return nil, "account needs a phone or an email"
end

-- The account part of the default token key.
local function account_key(a)
  if not a then return "" end
  return ":" .. (a.email or ((a.internationalCode or "86") .. "-" .. a.phone))
end

-- What a base URL (or, without one, a region) comes to: the URL without trailing
-- slashes, its origin, scheme and host, and its realtime URL; or nil, err.
-- Worked out once per process and URL: nginx makes a client per request.
local bases, n_bases = {}, 0
local MAX_BASES = 64

local function base_of(base_url, region)
  local key = base_url or ("\0" .. region)
  local b = bases[key]
  if b then return b end
  local given = base_url
  if not base_url then
    base_url = REGIONS[region]
    if not base_url then return nil, format("unknown region '%s' (cn, eu, us)", redact.line(region)) end
  end
  if not find(base_url, "^https?://[^/%s?#]+") or find(base_url, "[%s%c?#]") then
    return nil, "base_url must be an http(s) URL without query or fragment"
  end
  base_url = gsub(base_url, "/+$", "")
  local origin, scheme, host = origin_of(base_url)
  if not origin then return nil, scheme end
  b = {
    base_url = base_url, origin = origin, scheme = scheme, host = host,
    realtime_url = realtime_for(base_url, not given and region or nil),
  }
  if n_bases >= MAX_BASES then bases, n_bases = {}, 0 end
  bases[key], n_bases = b, n_bases + 1
  return b
end

--- The key tokens are stored under for a base URL's origin and a token key (the
-- `token_key` option): one origin's tokens are never sent to another.
-- @tparam string origin `origin_of(base_url)`
-- @tparam string key
-- @treturn string
function _M.store_key(origin, key)
  return origin .. " " .. key
end

--- Check the options of `quecapi.new` and work out the settings of a client.
-- @tparam table options
-- @return settings, or nil, err (without the "quecapi.new: " prefix)
function _M.resolve(options)
  if type(options) ~= "table" then return nil, "config must be a table" end
  for k, v in pairs(options) do
    local want = OPTIONS[k]
    if not want then return nil, format("unknown option '%s'", redact.line(tostring(k))) end
    if want ~= "any" and type(v) ~= want then return nil, format("option '%s' must be a %s", k, want) end
  end
  for _, k in ipairs { "user_domain", "user_domain_secret" } do
    if options[k] == nil or options[k] == "" then return nil, format("'%s' is required", k) end
  end
  local b, berr = base_of(options.base_url, options.region or _M.DEFAULTS.region)
  if not b then return nil, berr end
  local base_url, origin, scheme, host = b.base_url, b.origin, b.scheme, b.host
  if scheme == "http" and not is_loopback(host) and not options.allow_http then
    return nil, format("base_url is plain http to %s: tokens and passwords would cross the network "
      .. "unencrypted (use https, or set allow_http = true)", host)
  end
  for _, k in ipairs { "timeout", "connect_timeout", "max_body", "refresh_margin", "lock_timeout" } do
    local v = options[k]
    if v ~= nil then
      local low_ok = v > 0 or (k == "refresh_margin" and v == 0)
      if not (low_ok and v < 1e9) then return nil, format("option '%s' must be a positive number", k) end
    end
  end
  local ok, err = _M.check_account(options.account)
  if not ok then return nil, err end
  local headers
  headers, err = extra_headers(options)
  if headers == nil then return nil, err end
  local fallback = options.fallback_user_domain
  if fallback then
    ok, err = check_domain(fallback)
    if not ok then return nil, err end
    fallback = { user_domain = fallback.user_domain, user_domain_secret = fallback.user_domain_secret }
  end
  local policy
  policy, err = retry.policy(options.retry)
  if not policy then return nil, err end
  local store
  store, err = make_store(options)
  if not store then return nil, err end
  local transport
  transport, err = make_transport(options)
  if not transport then return nil, err end

  local d = _M.DEFAULTS
  local timeout = options.timeout or d.timeout
  return {
    base_url = base_url,
    origin = origin,
    realtime_url = b.realtime_url,
    primary = { user_domain = options.user_domain, user_domain_secret = options.user_domain_secret },
    fallback = fallback,
    headers = headers or nil,
    user_agent = options.user_agent,
    timeout = timeout,
    connect_timeout = options.connect_timeout or d.connect_timeout,
    max_body = options.max_body or d.max_body,
    refresh_margin = options.refresh_margin or d.refresh_margin,
    lock_timeout = options.lock_timeout or timeout + 5,
    verify = options.verify,
    clock = options.clock or time.now_ms,
    random = options.random or require("quecapi.core").random_string,
    account = options.account,
    -- one origin's tokens are never sent to another
    token_key = _M.store_key(origin, options.token_key or (options.user_domain .. account_key(options.account))),
    store = store,
    transport = transport,
    retry = policy,
    log = options.log,
  }
end

return _M
