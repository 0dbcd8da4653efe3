--- Token store in a JSON file, shared by every process that names the same path.
--
--   local store = require("quecapi.store.file").new { path = os.getenv("HOME") .. "/.cache/quecapi/tokens.json" }
--
-- The file holds one JSON object, `{ key -> tokens }`. A missing or corrupt file
-- reads as empty: the worst case is one more login.
--
-- Tokens are secrets, so the file never exists with a mode wider than 0600, not
-- even for a moment: `set` and `delete` write the whole object to a new file that
-- the C core creates exclusively with mode 0600 next to the token file, then
-- rename it over the old one (readers see the old or the new file, never half).
--
-- Locks (one login or token refresh at a time across processes, e.g. cron jobs)
-- are lock files next to the token file, one per key, holding "expiry handle",
-- created exclusively: the creation either takes the lock or finds it held. A lock
-- older than `lock_ttl` seconds (default 30) belongs to a dead process and is
-- broken.
--
-- File I/O blocks; inside nginx prefer `quecapi.store.shdict`.
-- @module quecapi.store.file

local core = require "quecapi.core"
local json = require "quecapi.json"
local time_ = require "quecapi.time"

local type, tostring, tonumber, setmetatable, pairs = type, tostring, tonumber, setmetatable, pairs
local open, remove, rename, time = io.open, os.remove, os.rename, os.time
local format, gsub, byte, match = string.format, string.gsub, string.byte, string.match
local floor, random = math.floor, math.random

local _M = {}
local mt = { __index = _M }

local DEFAULT_LOCK_TTL = 30
local TEMP_ATTEMPTS = 10

local function unique_suffix()
  local addr = match(tostring({}), "0x(%x+)") or ""
  return format("%s%x%06x", addr, time(), random(0, 0xffffff))
end

local function read_all(path)
  local f = open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- The whole object, keeping only entries that can be tokens; {} when the file
-- is missing or not a JSON object (so a bad file is repaired by the next set).
local function load(self)
  local text = read_all(self.path)
  local doc = text and json.decode(text)
  local out = {}
  if type(doc) == "table" then
    for k, v in pairs(doc) do
      if type(k) == "string" and type(v) == "table" then out[k] = v end
    end
  end
  return out
end

local function save(self, doc)
  local text, err = json.encode(doc)
  if not text then return nil, "cannot encode the tokens: " .. err end
  local tmp, kind
  for _ = 1, TEMP_ATTEMPTS do
    tmp = self.path .. ".tmp-" .. unique_suffix()
    local ok
    ok, err, kind = core.create_private(tmp, text)
    if ok then break end
    tmp = nil
    if kind ~= "exists" then break end
  end
  if not tmp then return nil, err end
  local ok
  ok, err = rename(tmp, self.path)
  if not ok then
    remove(tmp)
    return nil, "cannot replace " .. self.path .. ": " .. tostring(err)
  end
  return true
end

--- Make a store. Nothing is read or written here.
-- @tparam table opts `path` (required), `lock_ttl` (seconds, default 30)
-- @return store, or nil, err
function _M.new(opts)
  if type(opts) ~= "table" or type(opts.path) ~= "string" or opts.path == "" then
    return nil, "quecapi.store.file: option 'path' (a string) is required"
  end
  local ttl = opts.lock_ttl
  if ttl ~= nil and (type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0) then
    return nil, "quecapi.store.file: option 'lock_ttl' must be a positive number"
  end
  return setmetatable({ path = opts.path, lock_ttl = ttl or DEFAULT_LOCK_TTL }, mt)
end

--- The tokens stored under `key`, or nil.
function _M:get(key)
  return load(self)[key]
end

--- Store `tokens` under `key`, replacing the file atomically.
-- @return true, or nil, err
function _M:set(key, tokens)
  if type(key) ~= "string" then return nil, "key must be a string" end
  if type(tokens) ~= "table" then return nil, "tokens must be a table" end
  local doc = load(self)
  doc[key] = tokens
  return save(self, doc)
end

--- Forget the tokens under `key`.
-- @return true, or nil, err when the file could not be rewritten
function _M:delete(key)
  local doc = load(self)
  if doc[key] == nil then return true end
  doc[key] = nil
  return save(self, doc)
end

-- key -> file name part: hex, so any key makes a safe name
local function hex(s)
  return (gsub(s, ".", function(c) return format("%02x", byte(c)) end))
end

local function lock_path(self, key)
  return self.path .. ".lock-" .. hex(key)
end

-- "expiry handle" of a lock file, or nil
local function read_lock(path)
  local text = read_all(path)
  if not text then return nil end
  local expires, handle = match(text, "^(%d+) (%S+)$")
  return tonumber(expires), handle
end

--- Wait up to `timeout` seconds to hold the lock for `key`.
-- @return a handle for unlock, or nil, "timeout" (or another error)
function _M:lock(key, timeout)
  if type(key) ~= "string" then return nil, "key must be a string" end
  timeout = tonumber(timeout) or 0
  local handle = unique_suffix()
  local path = lock_path(self, key)
  local deadline = time_.monotonic() + timeout
  local step, broke = 0.005, false
  while true do
    local ok, err, kind = core.create_private(path, format("%d %s", floor(time() + self.lock_ttl), handle))
    if ok then return handle end
    if kind ~= "exists" then return nil, err end
    local expires, holder = read_lock(path)
    if expires and expires < time() and not broke then
      -- A dead holder's lock. Look again just before removing it: another
      -- process may have broken it and taken it anew in between.
      local _, still = read_lock(path)
      if still == holder then remove(path) end
      broke = true
    else
      local left = deadline - time_.monotonic()
      if left <= 0 then return nil, "timeout" end
      time_.sleep(step < left and step or left)
      step = step * 2 < 0.1 and step * 2 or 0.1
    end
  end
end

--- Release the lock taken with `handle`; a lock someone else holds stays.
-- @return true, or nil, err when `handle` does not hold it
function _M:unlock(key, handle)
  if type(key) ~= "string" then return nil, "key must be a string" end
  local path = lock_path(self, key)
  local _, holder = read_lock(path)
  if holder ~= handle then return nil, "lock not held" end
  remove(path)
  return true
end

return _M
