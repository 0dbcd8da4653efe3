--- The client: one pipeline for every call.
--
--```
--   catalog entry + parameters                   quecapi.catalog
--   -> token (renewed when about to expire)      quecapi.tokens
--   -> validate, fill, sign, build               quecapi.request  (client:prepare stops here)
--   -> transport (curl, ngx or your own)         quecapi.transport.*
--   -> decode, envelope check                    quecapi.response
--   -> on 5032: renew the token once, repeat once
--   -> on a rejected signature with a skewed Date: correct the clock, re-sign once   quecapi.skew
--   -> on a network error or 502/503/504 of a safe call: back off and retry  quecapi.retry
--   -> token bookkeeping (login / refresh / logout)
--```
--
-- All of it, renewal included, lives inside one deadline per call. Every failure
-- is `nil, err, code, kind`: `err` one printable line naming the method and the
-- cause, never carrying a secret; `code` the platform's code when it answered;
-- `kind` one of usage, config, auth, timeout, connect, tls, network, too_large,
-- http, platform, rate_limited.
-- @module quecapi.client

local catalog = require "quecapi.catalog"
local request = require "quecapi.request"
local response = require "quecapi.response"
local tokens = require "quecapi.tokens"
local retry = require "quecapi.retry"
local redact = require "quecapi.redact"
local skew = require "quecapi.skew"
local time = require "quecapi.time"
local json = require "quecapi.json"
local logger = require "quecapi.log"
local jwt = require "quecapi.jwt"
local config = require "quecapi.config"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local setmetatable = setmetatable
local format = string.format
local min = math.min

-- One version string, the C core's: the Lua modules and the core ship together.
local VERSION = require("quecapi.core").VERSION

local _M = { VERSION = VERSION }

_M.REGIONS = config.REGIONS
_M.REALTIME_URLS = config.REALTIME_URLS
_M.origin_of = config.origin_of

_M.snake_case = catalog.snake_case

--- Pages `paginate` fetches at most unless told otherwise: a server that always
-- says there is a next page must not keep a loop going for ever.
_M.MAX_PAGES = 10000

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
  return self.clock() + skew.offset(self.base_url)
end

-- Transport failure kinds as the client reports them.
local TRANSPORT_KINDS = {
  timeout = "timeout", connect = "connect", tls = "tls", network = "network",
  too_large = "too_large", url = "usage", usage = "usage", closed = "network",
}

-- `extra`: this call's own secret values (passwords, signature, SMS code...).
local function fail(self, e, err, code, extra, kind)
  return nil, e.method_name .. ": " .. redact.line(redact.text(tostring(err), self:secrets(extra))), code, kind
end

-- The Authorization value an entry needs: false for none; nil, err, code, kind on failure.
local function authorization(self, e, deadline)
  if e.auth == "token" then return self.tokens:access(deadline) end
  if e.auth == "refresh" then
    local t, err, kind = self.tokens:get()
    if err then return nil, err, nil, kind end
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

local function positive(v)
  return type(v) == "number" and v > 0 and v < 1e9
end

local CALL_OPTIONS = { retry = true, deadline = true, timeout = true }

-- Per-call options: nil or a table of retry, deadline, timeout. true, or nil, err.
local function check_opts(opts, extra)
  if opts == nil then return true end
  if type(opts) ~= "table" then return nil, "options must be a table (retry, deadline, timeout)" end
  for k, v in pairs(opts) do
    if not (CALL_OPTIONS[k] or (extra and extra[k])) then
      return nil, format("unknown option '%s' (retry, deadline, timeout)", tostring(k))
    end
    if (k == "deadline" or k == "timeout") and not positive(v) then
      return nil, format("option '%s' must be a positive number of seconds", k)
    end
  end
  return true
end

-- The insecure-TLS warning, once per base URL in a process (clients come and go).
local warned_insecure = {}

-- The platform's answers when a token is no good: renew once and repeat once.
-- 5032 is documented; HTTP 401 and codes 401, 4001 and 1003 are what the live
-- cloud's clients meet as well.
local AUTH_FAILED = { [5032] = true, [401] = true, [4001] = true, [1003] = true }

-- Login refusals that mean "not this user domain": some accounts live under a
-- second one (`fallback_user_domain`).
local OTHER_DOMAIN = { [5015] = true, [5031] = true, [5420] = true }

-- Which user domain worked, per base URL and configured domain, so that the
-- short-lived clients of a process (one per nginx request) keep to it.
local domain_in_use = {}

local function domain_key(self)
  return self.base_url .. " " .. self.primary.user_domain .. " " .. self.fallback.user_domain
end

local function use_domain(self, d)
  self.user_domain, self.user_domain_secret = d.user_domain, d.user_domain_secret
end

--- Run one call: `build(self, e, arg, auth)` makes the request (again for every
-- attempt, so a retry carries a fresh ts and signature). A function and its
-- argument rather than a closure: LuaJIT cannot compile a trace that creates a
-- closure, and this runs on every call.
local function execute(self, e, build, arg, opts)
  local ok, err = check_opts(opts)
  if not ok then return fail(self, e, err, nil, nil, "usage") end
  local policy, may_retry = self.retry, e.safe
  if opts and opts.retry ~= nil then
    policy, err = retry.policy(opts.retry)
    if not policy then return fail(self, e, err, nil, nil, "usage") end
    may_retry = opts.retry ~= false
  end
  local deadline = time.monotonic() + (opts and opts.deadline or policy.deadline)
  local timeout = opts and opts.timeout or self.timeout

  if self.verify == false and not warned_insecure[self.base_url] then
    warned_insecure[self.base_url] = true
    self.log("warn", "TLS certificate verification is disabled (verify = false)")
  end

  local auth, code, kind
  auth, err, code, kind = authorization(self, e, deadline)
  if auth == nil then return fail(self, e, err, code, nil, kind) end
  local renewed, resigned, trying_fallback, attempt = false, false, false, 1
  while true do
    local req, extra = build(self, e, arg, auth or nil)
    if not req then return fail(self, e, extra, nil, nil, "usage") end
    local remaining = deadline - time.monotonic()
    if remaining <= 0 then
      if attempt == 1 then
        return fail(self, e, "deadline exceeded before the request was sent", nil, extra, "timeout")
      end
      return fail(self, e, format("deadline exceeded after %d attempt(s)", attempt - 1), nil, extra, "timeout")
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
      kind = TRANSPORT_KINDS[headers] or "network"
      err = format("request failed (%s): %s", kind, tostring(body))
      transient = retry.RETRYABLE_KINDS[kind] or false
      log_call(self, extra, "warn", "%s %s failed after %.0fms: %s", req.method, req.path, ms, err)
    else
      doc, err, rcode, transient, kind = response.read(status, body, self, extra)
      log_call(self, extra, doc and "info" or "warn", "%s %s -> HTTP %d, code %s, %.0fms",
        req.method, req.path, status, tostring(doc and doc.code or rcode), ms)
    end

    if doc then
      if trying_fallback then
        domain_in_use[domain_key(self)] = self.fallback
        self.log("warn", "logged in under the fallback user domain %s; keeping to it", self.user_domain)
      end
      if e.tokens == "issue" then
        local saved, terr = self.tokens:save(doc.data)
        if not saved then return fail(self, e, terr, nil, extra, "platform") end
      elseif e.tokens == "revoke" then
        self.tokens:clear()
      end
      return doc
    end

    local auth_failed = AUTH_FAILED[rcode] or status == 401
    if auth_failed and e.auth == "token" and not renewed then
      -- the token died early (or was revoked): renew once and repeat once
      renewed = true
      local token, terr, _, tkind = self.tokens:renew(auth, deadline)
      if not token then
        local why = format("access token rejected (%s) and renewal failed: %s", tostring(rcode), tostring(terr))
        return fail(self, e, why, rcode, extra, (tkind == "timeout" or tkind == "network") and tkind or "auth")
      end
      auth = token
    elseif rcode == 5420 and e.params.ts and not resigned
        and skew.learn(self.base_url, type(headers) == "table" and headers.date or nil, self.clock()) then
      resigned = true
      local offset = skew.offset(self.base_url) / 1000
      if offset ~= 0 then
        self.log("warn", "local clock is %ds off the platform's; signing with the platform's time", offset)
      end
    elseif OTHER_DOMAIN[rcode] and e.tokens == "issue" and e.auth == "none" and self.fallback
        and not trying_fallback and self.user_domain ~= self.fallback.user_domain then
      -- once, under the other user domain; its answer is the call's
      trying_fallback = true
      use_domain(self, self.fallback)
    elseif transient and may_retry and attempt < policy.attempts then
      local delay = retry.delay(policy, attempt)
      -- an attempt needs some time of its own after the sleep
      if time.monotonic() + delay + 0.001 >= deadline then
        return fail(self, e, err .. " (no time left to retry)", rcode, extra, kind)
      end
      log_call(self, extra, "info", "%s %s: retrying in %.2fs (attempt %d of %d)", req.method, req.path, delay,
        attempt + 1, policy.attempts)
      if not time.sleep(delay) then
        return fail(self, e, err .. " (not retried: this nginx phase cannot wait)", rcode, extra, kind)
      end
      attempt = attempt + 1
    else
      if transient and attempt > 1 then err = format("%s (after %d attempts)", err, attempt) end
      if auth_failed then kind = "auth" end
      if trying_fallback then
        use_domain(self, self.primary)
        err = err .. " (under the fallback user domain too)"
      end
      return fail(self, e, err, rcode, extra, kind)
    end
  end
end

-- An unknown operation, reported under the name of the method that was asked.
local function unknown(method, name)
  return nil, format("%s: unknown operation '%s'", method, redact.line(tostring(name))), nil, "usage"
end

-- The refresh call fills its refreshToken from the store unless given.
local function with_defaults(self, e, params)
  if e.auth == "refresh" and (params == nil or (type(params) == "table" and params.refreshToken == nil)) then
    local copy = {}
    for k, v in pairs(params or {}) do copy[k] = v end
    local t = self.tokens:get()
    copy.refreshToken = t and t.refresh_token
    return copy
  end
  return params
end

-- Apart from `new`: a closure over `self` there would keep LuaJIT from compiling
-- it even when there is no hook, and in nginx a client is made per request.
local function hooked_log(self, hook)
  return logger.new(hook, function() return self:secrets() end)
end

-- The token keeper's two ways to renew, as calls of the client that owns it
-- (their last argument): functions of the module, so that making a client
-- makes no closure (nginx makes one per request).
local function time_to(deadline)
  local l = deadline - time.monotonic()
  if l <= 0 then return nil end
  return l
end

local function refresh_tokens(t, deadline, self)
  local l = time_to(deadline)
  if not l then return nil, "deadline exceeded before the token refresh", nil, "timeout" end
  return self:call("refreshToken", { refreshToken = t.refresh_token }, { deadline = l })
end

local function login_again(deadline, self)
  local l = time_to(deadline)
  if not l then return nil, "deadline exceeded before the login", nil, "timeout" end
  return self:login(nil, { deadline = l })
end

-- ------------------------------------------------------------------------
-- public methods
-- ------------------------------------------------------------------------

--- Build the request a call would send, without sending it.
-- @tparam string name operation (`user_device_list` or `userDeviceList`)
-- @tparam[opt] table params the call's parameters
-- @treturn table `{method, url, headers, body, timeout, connect_timeout, max_body}`, or nil, err, code, kind
function Client:prepare(name, params)
  local e = catalog.find(name)
  if not e then return unknown("prepare", name) end
  local auth, err, code, kind = authorization(self, e, time.monotonic() + self.retry.deadline)
  if auth == nil then return fail(self, e, err, code, nil, kind) end
  local req
  req, err = request.prepare(self, e, with_defaults(self, e, params), auth or nil)
  if not req then return fail(self, e, err, nil, nil, "usage") end
  return req
end

--- Call an operation by name; the generated methods (`client:phone_pwd_login{}`) use this.
-- @tparam string name operation name
-- @tparam table params the API's parameters
-- @tparam[opt] table opts `retry` (true/false/policy), `deadline`, `timeout` for this call
-- @return the decoded envelope, or nil, err, code, kind
function Client:call(name, params, opts)
  local e = catalog.find(name)
  if not e then return unknown("call", name) end
  return execute(self, e, request.prepare, with_defaults(self, e, params), opts)
end

local function build_generic(self, _, spec, auth)
  return request.generic(self, spec, auth)
end

local GENERIC = { method_name = "request", params = {}, auth = "token" }

--- Send a request that is not in the catalog, through the same pipeline.
-- @tparam table spec `method` (GET), `path`, `query` (table), `body` (table -> JSON, or string),
--   `auth` (default true: send the access token)
-- @tparam[opt] table opts as for `call`
function Client:request(spec, opts)
  if type(spec) ~= "table" then return fail(self, GENERIC, "spec must be a table", nil, nil, "usage") end
  local method = spec.method or "GET"
  local e = {
    method_name = "request", params = {},
    auth = spec.auth == false and "none" or "token",
    safe = method == "GET" or method == "HEAD" or nil,
  }
  return execute(self, e, build_generic, spec, opts)
end

-- A signature of a page's items, to notice a server that answers the same page again.
local function page_signature(list)
  return json.encode(list) or ""
end

--- Iterate over every item of every page of a paged operation.
-- The walk ends after the last page: when the server says there is no next
-- page, when `page * pageSize` reaches `total`, on an empty page, on a page
-- identical to the one before (a server ignoring `page`), and at the latest
-- after `opts.max_pages` pages (default `MAX_PAGES`, 10000), which the loop sees
-- as `false, err, nil, "too_large"`.
-- The loop sees `false, err, code, kind` once if a page cannot be fetched.
-- @tparam string name a paged operation
-- @tparam[opt] table params its parameters (`page` and `pageSize` start the walk)
-- @tparam[opt] table opts per-call options, and `max_pages`
-- @return an iterator for a generic `for`
-- @usage for device, err in client:paginate("user_device_list", { pageSize = 50 }) do ... end
function Client:paginate(name, params, opts)
  local e, err, kind = catalog.find(name), nil, "usage"
  if not e then
    err = select(2, unknown("paginate", name))
  elseif not e.paged then
    err = format("paginate: '%s' is not a paged operation", e.method_name)
  end
  local max_pages, call_opts = _M.MAX_PAGES, opts
  if not err then
    local ok, oerr = check_opts(opts, { max_pages = true })
    if not ok then
      err = "paginate: " .. oerr
    elseif opts and opts.max_pages ~= nil then
      max_pages = request.to_integer(opts.max_pages)
      if not max_pages or max_pages < 1 then
        err = "paginate: option 'max_pages' must be a positive integer"
      end
      call_opts = {}
      for k, v in pairs(opts) do
        if k ~= "max_pages" then call_opts[k] = v end
      end
    end
  end
  local p = {}
  if type(params) == "table" then
    for k, v in pairs(params) do p[k] = v end
  end
  p.page = request.to_integer(p.page) or 1
  p.pageSize = request.to_integer(p.pageSize) or 10
  local list, i, last, done, pages, previous = nil, 0, false, false, 0, nil
  return function()
    if done then return nil end
    if err then
      done = true
      return false, err, nil, kind
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
      if pages >= max_pages then
        done = true
        return false, format("paginate: stopped after %d pages (opts.max_pages)", max_pages), nil, "too_large"
      end
      local res, cerr, code, ckind = self:call(e.name, p, call_opts)
      if not res then
        done = true
        return false, cerr, code, ckind
      end
      pages = pages + 1
      local data = type(res.data) == "table" and res.data or {}
      list, i = type(data.list) == "table" and data.list or {}, 0
      local signature = page_signature(list)
      local total = tonumber(data.total)
      if #list == 0 then
        last = true
      elseif signature == previous then
        list, last = {}, true -- the same items again: the server ignores `page`
      elseif data.hasNextPage == false then
        last = true
      elseif total then
        last = p.page * p.pageSize >= total
      elseif data.hasNextPage == nil then
        last = #list < p.pageSize
      end
      previous = signature
      p.page = p.page + 1
    end
  end
end

local LOGIN = { method_name = "login" }

--- Log in with an account: the one given as `account` to `quecapi.new`, or this one.
-- @tparam[opt] table account `{ phone, password, internationalCode }` or `{ email, password }`
-- @tparam[opt] table opts per-call options
-- @return the login envelope, or nil, err, code, kind
function Client:login(account, opts)
  account = account or self.account
  if account == nil then
    return fail(self, LOGIN, "no account (phone or email, and password)", nil, nil, "usage")
  end
  local ok, err = config.check_account(account)
  if not ok then
    return fail(self, LOGIN, err, nil, { type(account) == "table" and account.password or nil }, "usage")
  end
  if account.email then
    return self:call("emailPwdLogin", { email = account.email, password = account.password }, opts)
  end
  return self:call("phonePwdLogin", { phone = account.phone, password = account.password,
                                      internationalCode = account.internationalCode or "86" }, opts)
end

--- Log out on the platform and forget the tokens (even when the platform call fails).
-- @return the envelope, or nil, err, code, kind
function Client:logout()
  local res, err, code, kind = self:call("userLogout", {})
  self.tokens:clear()
  return res, err, code, kind
end

--- The tokens the client holds (they are secrets: do not log them).
-- @treturn table|nil `{access_token, access_expires, refresh_token, refresh_expires}`
function Client:get_tokens()
  return (self.tokens:get())
end

--- Use tokens obtained elsewhere (a previous run, another process).
-- @tparam table t `{access_token, access_expires, refresh_token, refresh_expires}`
-- @return true, or nil, err, nil, kind
function Client:set_tokens(t)
  local ok, err = self.tokens:set(t)
  if not ok then return nil, "set_tokens: " .. err, nil, "usage" end
  return true
end

--- Secret values this client knows (and `extra` ones of a call), for redaction.
-- @tparam[opt] {string,...} extra more values
-- @treturn {string,...}
function Client:secrets(extra)
  local list = { self.primary.user_domain_secret }
  if self.fallback then list[#list + 1] = self.fallback.user_domain_secret end
  for _, v in ipairs(extra or {}) do list[#list + 1] = v end
  if self.account then list[#list + 1] = self.account.password end
  -- straight from the store: what is kept there is secret even when unusable
  local t = self.store:get(self.token_key)
  if type(t) == "table" then
    if type(t.access_token) == "string" then list[#list + 1] = t.access_token end
    if type(t.refresh_token) == "string" then list[#list + 1] = t.refresh_token end
  end
  return list
end

--- The access token for an authenticated call: the stored one, or one renewed
-- first when it is about to expire (single-flight across the store's users, within
-- the deadline). For code that sends requests of its own, as `quecapi.gateway` does.
-- @tparam[opt] table opts `deadline` (seconds, default the retry policy's)
-- @return the token (the `Authorization` value), or nil, err, code, kind
function Client:access_token(opts)
  local ok, err = check_opts(opts)
  if not ok then return nil, "access_token: " .. err, nil, "usage" end
  local deadline = time.monotonic() + (opts and opts.deadline or self.retry.deadline)
  local token, code, kind
  token, err, code, kind = self.tokens:access(deadline)
  if not token then
    return nil, "access_token: " .. redact.line(redact.text(tostring(err), self:secrets())), code, kind
  end
  return token
end

--- The stored access token of another token key (see `with_token_key`) when it is
-- usable and not due for renewal, else nil. Nothing is sent, logged or renewed.
-- @tparam string key a token key (the `token_key` option's kind)
-- @treturn string|nil
function Client:peek_token(key)
  return self.tokens:peek(config.store_key(self.origin, key))
end

--- A client like this one whose tokens are kept under another token key (the
-- `token_key` option): one per user of a gateway. Made without I/O; the store,
-- transport and settings are this client's.
-- @tparam string key
-- @return a `Client`
function Client:with_token_key(key)
  local c = {}
  for k, v in pairs(self) do c[k] = v end
  setmetatable(c, client_mt)
  c.token_key = config.store_key(self.origin, key)
  if self.log_hook then c.log = hooked_log(c, self.log_hook) end
  c.tokens = tokens.new {
    store = c.store, key = c.token_key, clock = c.clock, margin = c.refresh_margin, lock_timeout = c.lock_timeout,
    refresh = refresh_tokens, login = c.account and login_again or nil, owner = c,
  }
  return c
end

--- The user id (`uid` claim) of the current access token, or nil, err.
-- The token is read, not verified (the platform verifies it on every use).
-- @treturn string|nil
function Client:user_id()
  local t, err = self.tokens:get()
  if not t then return nil, err or "not logged in (no access token)" end
  return jwt.uid(t.access_token)
end

--- The realtime channel's URL for this client: the region's, or one derived from
-- `base_url` (`https://iot-api.X` -> `wss://iot-south.X:8443/ws/v2`), or nil.
-- @treturn string|nil
function Client:realtime_url()
  return self.realtime_default
end

--- Open the realtime channel: property reports, online changes, command
-- acknowledgements and errors pushed by the platform over MQTT (over secure
-- WebSocket), and commands sent back the same way. In plain Lua over Paho
-- (blocking); inside nginx (timers, request handlers) over cosockets. See
-- `quecapi.realtime.connection`, `quecapi.realtime.hub` and the README's Realtime section.
-- @tparam table opts `devices` (required, may be empty: `{ { productKey, deviceKey }, ... }`),
--   `url` (default `realtime_url()`), `ca_file` (default the client's), `keepalive` (40 s),
--   `watchdog` (300 s, or false), `connect_timeout` (10 s), `max_message` (1 MiB)
-- @return a channel (connected, every device subscribed), or nil, err, code, kind
-- @usage local rt = assert(client:realtime { devices = { { productKey = "p11pLZ", deviceKey = "655001" } } })
-- for ev in rt:events() do print(ev.type, ev.deviceKey) end
function Client:realtime(opts)
  return require("quecapi.realtime.connection").open(self, opts, {
    tokens = self.tokens, log = self.log, verify = self.verify, ca_file = self.ca_file,
  })
end

--- Release the transport's connections now.
function Client:close()
  if self.transport.close then self.transport:close() end
end

-- One method per catalog entry, built once.
for _, e in ipairs(catalog.entries) do
  assert(Client[e.method_name] == nil, "catalog name clashes with a client method: " .. e.name)
  local name = e.name
  Client[e.method_name] = function(self, params, opts)
    return self:call(name, params, opts)
  end
end

-- The typed helpers over the thing model.
local things = require "quecapi.things"
for _, name in ipairs { "get_properties", "set_properties", "call_service", "send_raw", "thing_model" } do
  assert(Client[name] == nil, "helper clashes with a client method: " .. name)
  Client[name] = things[name]
end

-- ------------------------------------------------------------------------
-- construction
-- ------------------------------------------------------------------------

--- Make a client (`quecapi.new`). No network I/O happens here.
-- @tparam table options `user_domain`, `user_domain_secret` (required); `region` or
--   `base_url`; `allow_http`; `fallback_user_domain`; `account`; `timeout`,
--   `connect_timeout`; `retry`; `ca_file`, `verify`; `max_body`; `headers`, `lang`;
--   `transport`; `token_store`, `token_file`, `token_dict`, `redis`, `token_key`,
--   `refresh_margin`, `lock_timeout`; `log`; `clock`, `random`; `user_agent`
--   (see `quecapi.config`)
-- @return a `Client`, or nil, err, nil, "config"
function _M.new(options)
  local s, err = config.resolve(options)
  if not s then return nil, "quecapi.new: " .. err, nil, "config" end
  local self = setmetatable({
    base_url = s.base_url,
    origin = s.origin,
    -- not `realtime`: that name is the method
    realtime_default = s.realtime_url,
    headers = s.headers,
    primary = s.primary,
    fallback = s.fallback,
    user_domain = s.primary.user_domain,
    user_domain_secret = s.primary.user_domain_secret,
    user_agent = s.user_agent or ("quecapi/" .. VERSION),
    timeout = s.timeout,
    connect_timeout = s.connect_timeout,
    max_body = s.max_body,
    verify = s.verify,
    ca_file = options.ca_file, -- checked by config.resolve; the realtime channel trusts it too
    clock = s.clock,
    random = s.random,
    account = s.account,
    token_key = s.token_key,
    refresh_margin = s.refresh_margin,
    lock_timeout = s.lock_timeout,
    log_hook = s.log,
    store = s.store,
    transport = s.transport,
    retry = s.retry,
  }, client_mt)
  self.log = s.log and hooked_log(self, s.log) or logger.noop
  local known = self.fallback and domain_in_use[domain_key(self)]
  if known then use_domain(self, known) end
  self.tokens = tokens.new {
    store = s.store, key = s.token_key, clock = s.clock,
    margin = s.refresh_margin, lock_timeout = s.lock_timeout,
    refresh = refresh_tokens, login = self.account and login_again or nil, owner = self,
  }
  return self
end

_M.Client = Client

return _M
