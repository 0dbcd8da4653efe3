--- The token lifecycle as an object: keep, hand out, renew, forget.
--
--     local t = tokens.new {
--       store = store, key = "https://host:443 C.DM.1:86-138...",
--       margin = 300, lock_timeout = 15, clock = now_ms, log = log,
--       refresh = function(current, deadline, owner) ... end,   -- -> res or nil, err, code, kind
--       login = function(deadline, owner) ... end,              -- optional, same results
--       owner = client,                                         -- optional
--     }
--
-- Tokens live in the store under `key` as `{access_token, access_expires,
-- refresh_token, refresh_expires}` (expiry in epoch seconds). Before an
-- authenticated call the access token is renewed when it expires within `margin`
-- seconds: with the refresh token when there is a valid one, else by logging in
-- again when a `login` function was given. The two functions make the calls
-- (their answers are saved by the caller's pipeline through `save`); this module
-- never reaches into the client. They get `owner` as their last argument, and
-- with an owner the log is the owner's `log` at the time of logging: a client
-- made per request (nginx) hands in plain functions instead of making closures.
--
-- Renewal is single-flight: the store's lock lets one caller (one nginx worker,
-- one process) renew while the others wait and then pick up its result. Every
-- step lives inside the caller's deadline (a monotonic time in seconds), and the
-- lock is released on every path, a raise included.
--
-- Expiry is judged by the local clock, never by a clock corrected from a server's
-- Date header: a wrong Date must not make good tokens look expired.
-- @module quecapi.tokens

local time = require "quecapi.time"

local type, tostring, tonumber, pcall, error, setmetatable = type, tostring, tonumber, pcall, error, setmetatable
local huge = math.huge

local _M = {}

local Tokens = {}
local mt = { __index = Tokens }

--- Make the token keeper of one account.
-- @tparam table o `store`, `key`, `margin`, `lock_timeout`, `clock` (wall ms),
--   `refresh(current, deadline, owner)`, optional `login(deadline, owner)`,
--   `log(level, fmt, ...)` or `owner` (whose `log` is used), optional `owner`
function _M.new(o)
  return setmetatable({
    store = o.store, key = o.key, margin = o.margin, lock_timeout = o.lock_timeout,
    clock = o.clock, refresh = o.refresh, login = o.login, log = o.log, owner = o.owner,
  }, mt)
end

local function log(self, level, fmt, ...)
  local owner = self.owner
  if owner then return owner.log(level, fmt, ...) end
  return self.log(level, fmt, ...)
end

local function is_time(v)
  return v == nil or (type(v) == "number" and v == v and v > -huge and v < huge)
end

--- Why a tokens table cannot be used, or nil when it can.
-- @tparam table t `{access_token, access_expires, refresh_token, refresh_expires}`
-- @treturn string|nil
function _M.problem(t)
  if type(t) ~= "table" then return "tokens must be a table" end
  if type(t.access_token) ~= "string" or t.access_token == "" then
    return "access_token must be a non-empty string"
  end
  if t.refresh_token ~= nil and (type(t.refresh_token) ~= "string" or t.refresh_token == "") then
    return "refresh_token must be a non-empty string"
  end
  if not is_time(t.access_expires) then return "access_expires must be epoch seconds (a number)" end
  if not is_time(t.refresh_expires) then return "refresh_expires must be epoch seconds (a number)" end
  return nil
end

--- The stored tokens; nil when there are none or what is stored is unusable
-- (logged). A store that refuses to answer (an unsafe token file) gives nil, err;
-- the kind is the store's third result when it gives one (a store over the
-- network: "network"), else "config".
-- @return tokens, or nil (none), or nil, err, kind
function Tokens:get()
  local t, err, kind = self.store:get(self.key)
  if t == nil then
    if err then return nil, tostring(err), kind == "network" and "network" or "config" end
    return nil
  end
  local problem = _M.problem(t)
  if problem then
    log(self, "warn", "ignoring the stored tokens (%s): logging in again", problem)
    return nil
  end
  return t
end

--- Keep tokens obtained elsewhere (a previous run, another process).
-- @return true, or nil, err
function Tokens:set(t)
  local problem = _M.problem(t)
  if problem then return nil, problem end
  local ok, err = self.store:set(self.key, {
    access_token = t.access_token, access_expires = t.access_expires,
    refresh_token = t.refresh_token, refresh_expires = t.refresh_expires,
  })
  if not ok then return nil, "cannot keep the tokens: " .. tostring(err) end
  return true
end

--- Save the tokens of a login or refresh answer's `data`.
-- @return tokens, or nil, err
function Tokens:save(data)
  local access = type(data) == "table" and data.accessToken
  if type(access) ~= "table" or type(access.token) ~= "string" or access.token == "" then
    return nil, "the response carries no access token"
  end
  local t = { access_token = access.token, access_expires = tonumber(access.expirationTime) }
  local refresh = data.refreshToken
  if type(refresh) == "table" and type(refresh.token) == "string" and refresh.token ~= "" then
    t.refresh_token = refresh.token
    t.refresh_expires = tonumber(refresh.expirationTime)
  end
  local ok, err = self.store:set(self.key, t)
  if not ok then return nil, "cannot keep the tokens: " .. tostring(err) end
  return t
end

function Tokens:clear()
  self.store:delete(self.key)
end

local function fresh(self, t, margin)
  return t and (not t.access_expires or t.access_expires - margin > self.clock() / 1000)
end

local function refreshable(self, t)
  return t and t.refresh_token
    and (not t.refresh_expires or t.refresh_expires > self.clock() / 1000)
end

local function time_left(deadline)
  return deadline - time.monotonic()
end

-- Refresh (or log in again) while holding the lock: res or nil, err, code, kind.
local function renew_locked(self, t, deadline)
  local res, err, code, kind
  if refreshable(self, t) then
    res, err, code, kind = self.refresh(t, deadline, self.owner)
    if not res then log(self, "warn", "token refresh failed: %s", err) end
  end
  if not res and self.login and time_left(deadline) > 0 then
    res, err, code, kind = self.login(deadline, self.owner)
  end
  return res, err, code, kind
end

--- Get a new access token, replacing `stale` (the one the caller saw).
-- @tparam string|nil stale the access token that did not do
-- @tparam number deadline monotonic seconds by which it must be done
-- @return access token, or nil, err, code, kind
function Tokens:renew(stale, deadline)
  local left = time_left(deadline)
  if left <= 0 then return nil, "deadline exceeded before the token could be renewed", nil, "timeout" end
  local store, key = self.store, self.key
  local handle, lock_err, lock_kind = true, nil, nil
  if store.lock then
    handle, lock_err, lock_kind = store:lock(key, left < self.lock_timeout and left or self.lock_timeout)
  end
  -- Someone else may have renewed while we waited for the lock.
  local t, gerr, gkind = self:get()
  if gerr then
    if handle and store.unlock then store:unlock(key, handle) end
    return nil, gerr, nil, gkind
  end
  if t and t.access_token ~= stale and fresh(self, t, 0) then
    if handle and store.unlock then store:unlock(key, handle) end
    return t.access_token
  end
  if not handle then
    if lock_err ~= "timeout" then
      -- the store cannot lock at all (an unsafe or unwritable token file, Redis away): say why
      return nil, "cannot lock the tokens for renewal: " .. tostring(lock_err), nil,
        lock_kind == "network" and "network" or "config"
    end
    if time_left(deadline) <= 0 then
      return nil, "deadline exceeded while another caller renewed the token", nil, "timeout"
    end
    return nil, "token renewal by another caller did not finish in time", nil, "auth"
  end

  local ok, res, err, code, kind = pcall(renew_locked, self, t, deadline)
  if store.unlock then store:unlock(key, handle) end
  if not ok then error(res, 0) end
  if not res then
    if not err then
      err = stale and "the access token expired and there is no refresh token" or "not logged in (no access token)"
      kind = "auth"
    end
    return nil, err, code, kind or "auth"
  end
  t = self:get()
  if not t then return nil, "the renewed tokens were not kept", nil, "auth" end
  return t.access_token
end

--- The access token stored under `key` (by default the keeper's own) when it is
-- usable and not yet due for renewal (see `access`), else nil. Never renews,
-- never logs, never raises: a gateway asks it on every request.
-- @tparam[opt] string key a store key
-- @treturn string|nil
function Tokens:peek(key)
  local t = self.store:get(key or self.key)
  if type(t) ~= "table" or _M.problem(t) then return nil end
  if fresh(self, t, self.margin) then return t.access_token end
  return nil
end

--- The access token for an authenticated call, renewed first when it is about to expire.
-- @tparam number deadline monotonic seconds
-- @return access token, or nil, err, code, kind
function Tokens:access(deadline)
  local t, err, kind = self:get()
  if err then return nil, err, nil, kind end
  if fresh(self, t, self.margin) then return t.access_token end
  if not t and not self.login then
    return nil, "not logged in (no access token)", nil, "auth"
  end
  local token, code
  token, err, code, kind = self:renew(t and t.access_token, deadline)
  if token then return token end
  -- Renewal failed: an access token that has not yet expired is still worth sending.
  if fresh(self, t, 0) then
    log(self, "warn", "token renewal failed (%s); using the current token until it expires", err)
    return t.access_token
  end
  return nil, err, code, kind
end

return _M
