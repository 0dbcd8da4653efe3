--- Token store in an nginx shared dict: every worker sees the same tokens, and
-- lock/unlock let one worker at a time log in or refresh while the others wait
-- and then read the new tokens.
--
--     http { lua_shared_dict quecapi 1m; }
--     local store = require("quecapi.store.shdict").new { dict = "quecapi" }
--
-- Values are the tokens as JSON under "<prefix><key>" (prefix "quecapi:" unless
-- given), kept until the refresh token expires (or the access token, when there
-- is no refresh token): after that nobody can use them. A lock is the entry
-- "<prefix>lock:<key>", added with dict:add (which fails while it exists) and a
-- time to live (`lock_ttl`, 30 s) so a worker that dies holding it cannot block
-- the others for longer than that.
-- @module quecapi.store.shdict

local json = require "quecapi.json"

local type, tostring, tonumber, pcall, setmetatable, rawget, pairs = type, tostring, tonumber, pcall,
  setmetatable, rawget, pairs
local format = string.format
local floor, random = math.floor, math.random

local _M = {}
local mt = { __index = _M }

local DEFAULT_PREFIX = "quecapi:"
local DEFAULT_LOCK_TTL = 30
local FIRST_STEP, MAX_STEP = 0.001, 0.05 -- seconds between two tries for a lock

local counter = 0 -- makes handles unique within a worker

-- The tokens last decoded from each entry, with the text they came from: a worker
-- reads the same entry on every request, and decoding it again would give the
-- same. Per store, bounded (a gateway keeps one entry per user).
local MAX_DECODED = 1024

--- Make a store on `ngx.shared[dict]`.
-- @tparam table opts `dict` (required), `prefix` (default "quecapi:"), `lock_ttl` (seconds, 30)
-- @return store, or nil, err
function _M.new(opts)
  if type(opts) ~= "table" or type(opts.dict) ~= "string" then
    return nil, "quecapi.store.shdict: option 'dict' (a string) is required"
  end
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.shared) ~= "table" then
    return nil, "quecapi.store.shdict works inside OpenResty/nginx only"
  end
  local dict = ngx.shared[opts.dict]
  if not dict then
    return nil, format("quecapi.store.shdict: no shared dict '%s' (add lua_shared_dict %s 1m; to the http block)",
      opts.dict, opts.dict)
  end
  local ttl = opts.lock_ttl
  if ttl ~= nil and (type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0) then
    return nil, "quecapi.store.shdict: option 'lock_ttl' must be a positive number"
  end
  if opts.prefix ~= nil and type(opts.prefix) ~= "string" then
    return nil, "quecapi.store.shdict: option 'prefix' must be a string"
  end
  return setmetatable({
    ngx = ngx, dict = dict, name = opts.dict,
    prefix = opts.prefix or DEFAULT_PREFIX,
    lock_ttl = ttl or DEFAULT_LOCK_TTL,
    decoded = {}, n_decoded = 0,
  }, mt)
end

--- The tokens stored under `key`, or nil. Each call returns a table of its own.
function _M:get(key)
  local entry = self.prefix .. key
  local text = self.dict:get(entry)
  if type(text) ~= "string" then return nil end
  local known = self.decoded[entry]
  local tokens
  if known and known[1] == text then
    tokens = known[2]
  else
    tokens = json.decode(text)
    if type(tokens) ~= "table" then return nil end
    if self.n_decoded >= MAX_DECODED then self.decoded, self.n_decoded = {}, 0 end
    self.decoded[entry], self.n_decoded = { text, tokens }, self.n_decoded + 1
  end
  local copy = {}
  for k, v in pairs(tokens) do
    if type(v) == "table" then return json.decode(text) end -- not tokens as quecapi keeps them
    copy[k] = v
  end
  return copy
end

-- Seconds the entry should live: until the refresh token (or, without one, the
-- access token) expires; 0 (no limit) when the tokens carry no expiry.
local function lifetime(tokens, now)
  local at = tonumber(tokens.refresh_expires)
  if not at and tokens.refresh_token == nil then at = tonumber(tokens.access_expires) end
  if not at then return 0 end
  -- the platform sends seconds; a millisecond timestamp would be 1000 times too far away
  if at > 1e11 then at = at / 1000 end
  local ttl = at - now
  -- Expired already: keep it a moment rather than pass 0, which means forever.
  if ttl < 1 then ttl = 1 end
  return ttl
end

--- Store `tokens` under `key`.
-- @return true, or nil, err (the dict is full, or the tokens cannot be encoded)
function _M:set(key, tokens)
  if type(key) ~= "string" then return nil, "key must be a string" end
  if type(tokens) ~= "table" then return nil, "tokens must be a table" end
  local text, err = json.encode(tokens)
  if not text then return nil, "cannot encode the tokens: " .. err end
  local ok
  ok, err = self.dict:set(self.prefix .. key, text, lifetime(tokens, self.ngx.now()))
  if not ok then
    return nil, format("cannot store the tokens in shared dict '%s': %s", self.name, tostring(err))
  end
  return true
end

--- Forget the tokens under `key`.
function _M:delete(key)
  self.dict:delete(self.prefix .. key)
  return true
end

--- Wait up to `timeout` seconds to hold the lock for `key`, sleeping with
-- ngx.sleep (the worker goes on serving other requests meanwhile).
-- @return a handle for unlock, or nil, "timeout" (or another error)
function _M:lock(key, timeout)
  if type(key) ~= "string" then return nil, "key must be a string" end
  local ngx, dict = self.ngx, self.dict
  local lock_key = self.prefix .. "lock:" .. key
  counter = counter + 1
  local handle = format("%d:%d:%d:%d", ngx.worker.pid(), counter, floor(ngx.now() * 1000),
    random(0, 0x7fffffff))
  ngx.update_time()
  local deadline = ngx.now() + (tonumber(timeout) or 0)
  local step = FIRST_STEP
  while true do
    local ok, err = dict:add(lock_key, handle, self.lock_ttl)
    if ok then return handle end
    if err ~= "exists" then
      return nil, format("cannot lock in shared dict '%s': %s", self.name, tostring(err))
    end
    ngx.update_time()
    local left = deadline - ngx.now()
    if left <= 0 then return nil, "timeout" end
    local slept = pcall(ngx.sleep, step < left and step or left)
    if not slept then
      return nil, "the lock is held and this nginx phase cannot wait (ngx.sleep is disabled here)"
    end
    step = step * 2 < MAX_STEP and step * 2 or MAX_STEP
  end
end

--- Release the lock taken with `handle`. A lock that expired and was taken by
-- someone else is left alone.
-- @return true, or nil, "lock not held"
function _M:unlock(key, handle)
  if type(key) ~= "string" then return nil, "key must be a string" end
  local lock_key = self.prefix .. "lock:" .. key
  -- A shared dict has no compare-and-delete. Another worker can only add the
  -- lock once it is gone, so only its expiry falling between these two calls
  -- could make us delete someone else's lock.
  if self.dict:get(lock_key) ~= handle then return nil, "lock not held" end
  self.dict:delete(lock_key)
  return true
end

return _M
