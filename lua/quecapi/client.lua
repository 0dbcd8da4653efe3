--- The client: one pipeline for every call.
--
--   catalog row + parameters
--   -> token (renewed when about to expire)      quecapi.tokens
--   -> validate, fill, sign, build               quecapi.request  (client:prepare stops here)
--   -> transport (curl, ngx or your own)         quecapi.transport.*
--   -> decode, envelope check                    quecapi.response
--   -> on 5032: renew the token once, repeat once
--   -> on a rejected signature with a skewed Date: correct the clock, re-sign once
--   -> on a network error or 502/503/504 of a safe call: back off and retry  quecapi.retry
--   -> token bookkeeping (login / refresh / logout)
--
-- Every failure is `nil, err, code`: `err` names the method and the cause and
-- never carries a secret; `code` is the platform's code when it answered.
-- @module quecapi.client

local catalog = require "quecapi.endpoints"
local request = require "quecapi.request"
local response = require "quecapi.response"
local tokens = require "quecapi.tokens"
local retry = require "quecapi.retry"
local redact = require "quecapi.redact"
local time = require "quecapi.time"
local logger = require "quecapi.log"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local setmetatable = setmetatable
local format, gsub, lower, find = string.format, string.gsub, string.lower, string.find
local min, abs, floor = math.min, math.abs, math.floor

local VERSION = "0.1.0"

local _M = { VERSION = VERSION }

local REGIONS = {
  cn = "https://iot-api.quectelcn.com",
  eu = "https://iot-api.acceleronix.io",
}
_M.REGIONS = REGIONS

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
  row.passwords = {}
  for wire, plain in pairs(row.encrypt or {}) do row.passwords[plain] = wire end
  if row.query then
    row.query_set = {}
    for _, q in ipairs(row.query) do row.query_set[q] = true end
  end
  rows[row.name] = row
  rows[row.method_name] = row
end
_M.rows = rows

-- Clock corrections learnt from the platform's Date header, per base URL, so that
-- short-lived clients (one per nginx request) share what one of them learnt.
local skews = {}

--- A client of the platform, made by `quecapi.new`. Besides the methods below it
-- has one method per catalog operation (see `quecapi.methods`) and the typed
-- helpers of `quecapi.things`.
-- @type Client
local Client = {}
local client_mt = { __index = Client }

-- ------------------------------------------------------------------------
-- the pipeline
-- ------------------------------------------------------------------------

--- Wall-clock milliseconds as the platform sees them (corrected for skew).
-- @treturn int
function Client:now_ms()
  return self.clock() + (skews[self.base_url] or 0)
end

-- The clock is off when the platform's Date differs from ours by over a minute.
-- Record the difference (or forget an old one that no longer holds); true when
-- that changed what we send.
local function learn_skew(self, headers)
  local server = time.parse_http_date(headers and headers.date)
  if not server then return false end
  local offset = server - self.clock() / 1000
  local ms = abs(offset) > 60 and floor(offset + 0.5) * 1000 or nil
  if skews[self.base_url] == ms then return false end
  skews[self.base_url] = ms
  if ms then
    self.log("warn", "local clock is %ds off the platform's; signing with the platform's time", ms / 1000)
  end
  return true
end

-- `extra`: this call's own secret values (passwords, signature, SMS code...).
local function fail(self, row, err, code, extra)
  return nil, row.method_name .. ": " .. redact.text(err, self:secrets(extra)), code
end

-- The Authorization value a row needs: false for none, nil, err, code on failure.
local function authorization(self, row)
  if row.auth == "token" then return tokens.access(self) end
  if row.auth == "refresh" then
    local t = tokens.get(self)
    return t and t.access_token or false
  end
  return false
end

-- One log line of a call, redacted with the call's own secrets (`extra`) too.
-- Without a log hook there is nothing to format or redact: this runs on every
-- call, and redaction costs more than the rest of the client's work.
local function log_call(self, extra, level, fmt, ...)
  if self.log == logger.noop then return end
  self.log(level, "%s", redact.text(format(fmt, ...), self:secrets(extra)))
end

--- Run one call: `build(self, row, arg, auth)` makes the request (again for every
-- attempt, so a retry carries a fresh ts and signature). A function and its
-- argument rather than a closure: LuaJIT cannot compile a trace that creates a
-- closure, and this runs on every call.
local function execute(self, row, build, arg, opts)
  local policy, may_retry = self.retry, row.safe
  if opts and opts.retry ~= nil then
    local err
    policy, err = retry.policy(opts.retry)
    if not policy then return fail(self, row, err) end
    may_retry = opts.retry ~= false
  end
  local deadline = time.monotonic() + (opts and opts.deadline or policy.deadline)
  local timeout = opts and opts.timeout or self.timeout

  if self.verify == false and not self.warned_insecure then
    self.warned_insecure = true
    self.log("warn", "TLS certificate verification is disabled (verify = false)")
  end

  local auth, err, code = authorization(self, row)
  if auth == nil then return fail(self, row, err, code) end
  local renewed, resigned, attempt = false, false, 1
  while true do
    local req
    req, err = build(self, row, arg, auth or nil)
    if not req then return fail(self, row, err) end
    local extra = req.secrets
    local remaining = deadline - time.monotonic()
    if remaining <= 0 then
      return fail(self, row, format("deadline exceeded after %d attempt(s)", attempt - 1))
    end
    req.timeout = min(timeout, remaining)

    local started = time.monotonic()
    local status, body, headers = self.transport:request(req)
    local ms = (time.monotonic() - started) * 1000
    local doc, rcode, transient
    if status and (type(status) ~= "number" or type(body) ~= "string") then
      status, body, headers = nil, "the transport returned no status and body", "network"
    end
    if not status then
      local kind = headers or "network"
      err = format("request failed (%s): %s", kind, tostring(body))
      transient = retry.RETRYABLE_KINDS[kind] or false
      log_call(self, extra, "warn", "%s %s failed after %.0fms: %s", req.method, req.path, ms, err)
    else
      doc, err, rcode, transient = response.read(status, body, self, extra)
      log_call(self, extra, doc and "info" or "warn", "%s %s -> HTTP %d, code %s, %.0fms",
        req.method, req.path, status, tostring(doc and doc.code or rcode), ms)
    end

    if doc then
      if row.tokens == "issue" then
        local ok, terr = tokens.save(self, doc.data)
        if not ok then return fail(self, row, terr, nil, extra) end
      elseif row.tokens == "revoke" then
        tokens.clear(self)
      end
      return doc
    end

    if rcode == 5032 and row.auth == "token" and not renewed then
      -- the token died early (or was revoked): renew once and repeat once
      renewed = true
      local token, terr = tokens.renew(self, auth)
      if not token then
        return fail(self, row, "access token rejected (5032) and renewal failed: " .. tostring(terr), 5032, extra)
      end
      auth = token
    elseif rcode == 5420 and row.params.ts and not resigned and learn_skew(self, headers) then
      resigned = true
    elseif transient and may_retry and attempt < policy.attempts then
      local delay = retry.delay(policy, attempt)
      if time.monotonic() + delay >= deadline then
        return fail(self, row, err .. " (no time left to retry)", rcode, extra)
      end
      log_call(self, extra, "info", "%s %s: retrying in %.2fs (attempt %d of %d)", req.method, req.path, delay,
        attempt + 1, policy.attempts)
      time.sleep(delay)
      attempt = attempt + 1
    else
      if transient and attempt > 1 then err = format("%s (after %d attempts)", err, attempt) end
      return fail(self, row, err, rcode, extra)
    end
  end
end

local function find_row(name)
  local row = type(name) == "string" and rows[name]
  if not row then
    return nil, format("unknown operation '%s'", tostring(name))
  end
  return row
end

-- The refresh call fills its refreshToken from the store unless given.
local function with_defaults(self, row, params)
  if row.auth == "refresh" and (params == nil or (type(params) == "table" and params.refreshToken == nil)) then
    local copy = {}
    for k, v in pairs(params or {}) do copy[k] = v end
    local t = tokens.get(self)
    copy.refreshToken = t and t.refresh_token
    return copy
  end
  return params
end

-- ------------------------------------------------------------------------
-- public methods
-- ------------------------------------------------------------------------

--- Build the request a call would send, without sending it.
-- @tparam string name operation (`user_device_list` or `userDeviceList`)
-- @tparam[opt] table params the call's parameters
-- @treturn table `{method, url, headers, body, timeout, connect_timeout, max_body}`, or nil, err
function Client:prepare(name, params)
  local row, err = find_row(name)
  if not row then return nil, err end
  local auth, code
  auth, err, code = authorization(self, row)
  if auth == nil then return fail(self, row, err, code) end
  local req
  req, err = request.prepare(self, row, with_defaults(self, row, params), auth or nil)
  if not req then return fail(self, row, err) end
  return req
end

--- Call an operation by name; the generated methods (`client:phone_pwd_login{}`) use this.
-- @tparam string name operation name
-- @tparam table params the API's parameters
-- @tparam[opt] table opts `retry` (true/false/policy), `deadline`, `timeout` for this call
-- @return the decoded envelope, or nil, err, code
function Client:call(name, params, opts)
  local row, err = find_row(name)
  if not row then return nil, err end
  return execute(self, row, request.prepare, with_defaults(self, row, params), opts)
end

local function build_generic(self, _, spec, auth)
  return request.generic(self, spec, auth)
end

--- Send a request that is not in the catalog, through the same pipeline.
-- @tparam table spec `method` (GET), `path`, `query` (table), `body` (table -> JSON, or string),
--   `auth` (default true: send the access token)
-- @tparam[opt] table opts as for `call`
function Client:request(spec, opts)
  if type(spec) ~= "table" then return nil, "request: spec must be a table" end
  local method = spec.method or "GET"
  local row = {
    method_name = "request", params = {},
    auth = spec.auth == false and "none" or "token",
    safe = method == "GET" or method == "HEAD" or nil,
  }
  return execute(self, row, build_generic, spec, opts)
end

--- Iterate over every item of every page of a paged operation.
-- The loop sees `false, err, code` once if a page cannot be fetched.
-- @tparam string name a paged operation
-- @tparam[opt] table params its parameters (`page` and `pageSize` start the walk)
-- @tparam[opt] table opts per-call options
-- @return an iterator for a generic `for`
-- @usage for device, err in client:paginate("user_device_list", { pageSize = 50 }) do ... end
function Client:paginate(name, params, opts)
  local row, err = find_row(name)
  if row and not row.paged then err = format("'%s' is not a paged operation", row.method_name) end
  local p = {}
  if type(params) == "table" then
    for k, v in pairs(params) do p[k] = v end
  end
  p.page = request.to_integer(p.page) or 1
  p.pageSize = request.to_integer(p.pageSize) or 10
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
      local res, cerr, code = self:call(row.name, p, opts)
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

--- Log in with an account: the one given as `account` to `quecapi.new`, or this one.
-- @tparam[opt] table account `{ phone, password, internationalCode }` or `{ email, password }`
-- @return the login envelope, or nil, err, code
function Client:login(account)
  account = account or self.account
  if type(account) ~= "table" or type(account.password) ~= "string" then
    return nil, "login: no account (phone or email, and password)"
  end
  if account.email then
    return self:call("emailPwdLogin", { email = account.email, password = account.password })
  end
  return self:call("phonePwdLogin", { phone = account.phone, password = account.password,
                                      internationalCode = account.internationalCode or "86" })
end

--- Log out on the platform and forget the tokens (even when the platform call fails).
-- @return the envelope, or nil, err, code
function Client:logout()
  local res, err, code = self:call("userLogout", {})
  tokens.clear(self)
  return res, err, code
end

-- The refresh call, with the tokens the renewal saw.
function Client:_refresh(t)
  return self:call("refreshToken", { refreshToken = t.refresh_token })
end

--- The tokens the client holds (they are secrets: do not log them).
-- @treturn table|nil `{access_token, access_expires, refresh_token, refresh_expires}`
function Client:get_tokens()
  return tokens.get(self)
end

--- Use tokens obtained elsewhere (a previous run, another process).
-- @tparam table t `{access_token, access_expires, refresh_token, refresh_expires}`
-- @return true, or nil, err
function Client:set_tokens(t)
  if type(t) ~= "table" or type(t.access_token) ~= "string" then
    return nil, "set_tokens: access_token (a string) is required"
  end
  return self.store:set(self.token_key, t)
end

--- Secret values this client knows (and `extra` ones of a call), for redaction.
-- @tparam[opt] {string,...} extra more values
-- @treturn {string,...}
function Client:secrets(extra)
  local list = { self.user_domain_secret }
  for _, v in ipairs(extra or {}) do list[#list + 1] = v end
  if self.account then list[#list + 1] = self.account.password end
  local t = tokens.get(self)
  if t then
    list[#list + 1] = t.access_token
    list[#list + 1] = t.refresh_token
  end
  return list
end

--- Release the transport's connections now.
function Client:close()
  if self.transport.close then self.transport:close() end
end

-- One method per catalog row, built once.
for _, row in ipairs(catalog) do
  assert(Client[row.method_name] == nil, "catalog name clashes with a client method: " .. row.name)
  local name = row.name
  Client[row.method_name] = function(self, params, opts)
    return self:call(name, params, opts)
  end
end

-- The typed helpers over the catalog (get_properties, set_properties, ...).
for name, f in pairs(require "quecapi.things") do
  assert(Client[name] == nil, "helper clashes with a client method: " .. name)
  Client[name] = f
end

-- ------------------------------------------------------------------------
-- construction
-- ------------------------------------------------------------------------

local OPTIONS = {
  base_url = "string", region = "string", user_domain = "string", user_domain_secret = "string",
  timeout = "number", connect_timeout = "number", ca_file = "string", verify = "boolean",
  clock = "function", random = "function", transport = "any", token_store = "any",
  token_key = "string", token_file = "string", token_dict = "string", max_body = "number",
  account = "table", refresh_margin = "number", lock_timeout = "number", retry = "any",
  log = "function", user_agent = "string",
}

local function make_store(config)
  local store = config.token_store or "memory"
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
      if not home then return nil, "token_file is required (no HOME)" end
      path = home .. "/.cache/quecapi/tokens.json"
    end
    return require("quecapi.store.file").new { path = path }
  end
  if store == "shdict" then
    return require("quecapi.store.shdict").new { dict = config.token_dict or "quecapi" }
  end
  return nil, "token_store must be \"memory\", \"file\", \"shdict\" or a store table"
end

local function make_transport(config)
  local t = config.transport or "auto"
  local opts = { verify = config.verify ~= false, ca_file = config.ca_file }
  if t == "auto" or t == "curl" or t == "ngx" then
    return require("quecapi.transport." .. t).new(opts)
  end
  if type(t) == "table" and type(t.request) == "function" then return t end
  return nil, "transport must be \"auto\", \"curl\", \"ngx\" or a table with a request method"
end

local function check_account(a)
  if a == nil then return true end
  if type(a.password) ~= "string" or a.password == "" then return nil, "account.password is required" end
  if type(a.phone) == "string" and a.phone ~= "" then return true end
  if type(a.email) == "string" and a.email ~= "" then return true end
  return nil, "account needs a phone or an email"
end

--- Make a client. No network I/O happens here.
-- @section construction

local function bad(msg, ...) return nil, "quecapi.new: " .. format(msg, ...) end

-- Apart from `new`: a closure over `self` there would keep LuaJIT from compiling
-- it even when there is no hook, and in nginx a client is made per request.
local function hooked_log(self, hook)
  return logger.new(hook, function() return self:secrets() end)
end

--- Make a client (`quecapi.new`).
-- @tparam table config `user_domain`, `user_domain_secret` (required); `region` or
--   `base_url`; `account`; `timeout`, `connect_timeout`; `retry`; `ca_file`, `verify`;
--   `max_body`; `transport`; `token_store`, `token_file`, `token_dict`, `token_key`,
--   `refresh_margin`, `lock_timeout`; `log`; `clock`, `random`; `user_agent`
-- @return a `Client`, or nil, err
function _M.new(config)
  if type(config) ~= "table" then return nil, "quecapi.new: config must be a table" end
  for k, v in pairs(config) do
    local want = OPTIONS[k]
    if not want then return bad("unknown option '%s'", tostring(k)) end
    if want ~= "any" and type(v) ~= want then return bad("option '%s' must be a %s", k, want) end
  end
  for _, k in ipairs { "user_domain", "user_domain_secret" } do
    if config[k] == nil or config[k] == "" then return bad("'%s' is required", k) end
  end
  local base_url = config.base_url
  if not base_url then
    local region = config.region or "cn"
    base_url = REGIONS[region]
    if not base_url then return bad("unknown region '%s' (cn, eu)", region) end
  end
  if not find(base_url, "^https?://[^/%s?#]+") or find(base_url, "[%s?#]") then
    return bad("base_url must be an http(s) URL without query or fragment")
  end
  base_url = gsub(base_url, "/+$", "")
  for _, k in ipairs { "timeout", "connect_timeout", "max_body", "refresh_margin", "lock_timeout" } do
    local v = config[k]
    if v ~= nil then
      local low_ok = v > 0 or (k == "refresh_margin" and v == 0)
      if not (low_ok and v < 1e9) then return bad("option '%s' must be a positive number", k) end
    end
  end
  local ok, err = check_account(config.account)
  if not ok then return bad("%s", err) end
  local policy
  policy, err = retry.policy(config.retry)
  if not policy then return bad("%s", err) end
  local store
  store, err = make_store(config)
  if not store then return bad("%s", err) end
  local transport
  transport, err = make_transport(config)
  if not transport then return bad("%s", err) end

  local account = config.account
  local self = setmetatable({
    base_url = base_url,
    user_domain = config.user_domain,
    user_domain_secret = config.user_domain_secret,
    user_agent = config.user_agent or ("quecapi/" .. VERSION),
    timeout = config.timeout or 10,
    connect_timeout = config.connect_timeout or 5,
    max_body = config.max_body or 8 * 1024 * 1024,
    refresh_margin = config.refresh_margin or 300,
    lock_timeout = config.lock_timeout or (config.timeout or 10) + 5,
    verify = config.verify,
    clock = config.clock or time.now_ms,
    random = config.random or require("quecapi.core").random_string,
    account = account,
    token_key = config.token_key or (config.user_domain ..
      (account and (":" .. (account.email or ((account.internationalCode or "86") .. "-" .. account.phone))) or "")),
    store = store,
    transport = transport,
    retry = policy,
  }, client_mt)
  self.log = config.log and hooked_log(self, config.log) or logger.noop
  return self
end

_M.Client = Client

return _M
