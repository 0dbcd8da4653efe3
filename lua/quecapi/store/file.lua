--- Token store in a JSON file, shared by every process that names the same path.
--
--     local store = require("quecapi.store.file").new { path = os.getenv("HOME") .. "/.cache/quecapi/tokens.json" }
--
-- The file holds one JSON object, `{ key -> tokens }`. A missing or corrupt file
-- reads as empty: the worst case is one more login.
--
-- Trust: the file decides whose session every call runs with, so it is used only
-- when it is a regular file (not a symlink) owned by the user (the process's real
-- uid) and closed to group and others, in a directory owned by the user or root
-- that group and others cannot write to (the rules ssh applies to its keys).
-- Anything else makes `get`, `set`, `delete` and `lock` return nil and an error
-- naming the path and the problem. A missing file is no error: `get` returns nil.
--
-- Writes: tokens are secrets, so they never go into a file with a mode wider than
-- 0600, not even for a moment: `set` and `delete` write the whole object to a new
-- file that the C core creates exclusively with mode 0600 next to the token file,
-- then rename it over the old one, so readers (which take no lock) see the old or
-- the new file, never half. The read-modify-write runs under an exclusive kernel
-- lock (flock) on `<path>.lock`, so concurrent writers never lose each other's
-- keys. Writing or locking creates the missing directories of `path` with mode
-- 0700; reading (or deleting from a missing file) never creates anything.
--
-- Locks (`lock`/`unlock`: one login or token refresh at a time across processes,
-- e.g. cron jobs) are flock locks on one file per key, `<path>.lock-<hex key>`.
-- The kernel drops a lock when its holder's process dies, however it dies, so a
-- dead holder never blocks anyone and what a lock file contains does not matter.
-- flock belongs to an open file, so two stores in one process exclude each other
-- too. The handle is an object owning the open file: `unlock` releases it, and so
-- does its garbage collection (or leaving a `<close>` variable's scope on Lua 5.4).
-- Lock files stay in place: removing one that another process has open would let
-- two holders in at once.
--
-- File I/O blocks; inside nginx prefer `quecapi.store.shdict`.
-- @module quecapi.store.file

local core = require "quecapi.core"
local json = require "quecapi.json"
local time_ = require "quecapi.time"

local type, tostring, tonumber, setmetatable, pairs, pcall, error = type, tostring, tonumber, setmetatable, pairs,
  pcall, error
local remove, rename = os.remove, os.rename
local format, gsub, byte, match = string.format, string.gsub, string.byte, string.match
local floor = math.floor

local _M = {}
local mt = { __index = _M }

local TEMP_ATTEMPTS = 10
-- How long `set` and `delete` wait for another writer: a rewrite takes
-- milliseconds, so only a stopped or hung writer makes this run out.
local WRITE_LOCK_TIMEOUT = 10
-- Polling for a lock: the first sleep, doubled each time up to the last.
local FIRST_STEP, MAX_STEP = 0.005, 0.1
local WEAK_KEYS = { __mode = "k" }

-- Permission bits; Lua 5.1 has no bitwise operators, so tested by arithmetic.
local GROUP_OTHER_WRITE = { 16, 2 }                 -- 0020, 0002
local GROUP_OTHER_ANY = { 32, 16, 8, 4, 2, 1 }      -- 0040 .. 0001

local function any_bit(mode, bits)
  for i = 1, #bits do
    if floor(mode / bits[i]) % 2 == 1 then return true end
  end
  return false
end

local function dir_of(path)
  local dir = match(path, "^(.*)/[^/]*$")
  if dir == nil then return "." end
  if dir == "" then return "/" end
  return dir
end

-- What is wrong with the directory holding the token file, or nil.
local function dir_problem(info, uid)
  if info.type ~= "dir" then return "it is not a directory" end
  if info.uid ~= uid and info.uid ~= 0 then
    return format("it is owned by uid %d, not by you (uid %d) or root", info.uid, uid)
  end
  if any_bit(info.mode, GROUP_OTHER_WRITE) then
    return format("group or others can write to it (mode %04o)", info.mode)
  end
end

-- What is wrong with the token file itself, or nil.
local function file_problem(info, uid)
  if info.type == "link" then return "it is a symbolic link" end
  if info.type ~= "file" then return "it is not a regular file" end
  if info.uid ~= uid then return format("it is owned by uid %d, not by you (uid %d)", info.uid, uid) end
  if any_bit(info.mode, GROUP_OTHER_ANY) then
    return format("group or others have access to it (mode %04o): chmod 600 it", info.mode)
  end
end

-- Whether the token file can be trusted: "present", "missing" (it or its
-- directory does not exist), or nil, err.
local function check(self)
  local uid = core.getuid()
  local dir = dir_of(self.path)
  -- followed: a symlinked directory (e.g. ~/.cache on another disk) is judged by what it points to
  local info, err, kind = core.file_info(dir, true)
  if not info then
    if kind == "missing" then return "missing" end
    return nil, err
  end
  local problem = dir_problem(info, uid)
  if problem then return nil, format("refusing the token directory %s: %s", dir, problem) end
  info, err, kind = core.file_info(self.path)
  if not info then
    if kind == "missing" then return "missing" end
    return nil, err
  end
  problem = file_problem(info, uid)
  if problem then return nil, format("refusing the token file %s: %s", self.path, problem) end
  return "present"
end

-- Before writing or locking: the missing directories made (0700), the directory
-- checked before anything is created in it.
local function prepare(self)
  local ok, err = core.make_dirs(dir_of(self.path))
  if not ok then return nil, err end
  return check(self)
end

-- The whole object, keeping only entries that can be tokens; {} when the file
-- is missing or not a JSON object (so a bad file is repaired by the next set);
-- nil, err when it cannot be trusted or read.
local function load(self)
  local state, err = check(self)
  if not state then return nil, err end
  if state == "missing" then return {} end
  local text, info, kind = core.read_file(self.path)
  if not text then
    if kind == "missing" then return {} end -- removed since the check
    return nil, info
  end
  -- judged again on what was actually read: the path may have changed since the check
  local problem = file_problem(info, core.getuid())
  if problem then return nil, format("refusing the token file %s: %s", self.path, problem) end
  local doc = json.decode(text)
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
    tmp = self.path .. ".tmp-" .. core.random_string(12)
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

-- A lock object holding the lock file `path`, waiting up to `timeout` seconds
-- for it; or nil, "timeout" (or another error).
local function acquire(path, timeout)
  local lock, err = core.open_lock(path)
  if not lock then return nil, err end
  local deadline = time_.monotonic() + timeout
  local step = FIRST_STEP
  while true do
    local got
    got, err = lock:try()
    if got then return lock end
    if got == nil then
      lock:release()
      return nil, err
    end
    local left = deadline - time_.monotonic()
    if left <= 0 then
      lock:release()
      return nil, "timeout"
    end
    if not time_.sleep(step < left and step or left) then
      lock:release()
      return nil, "the lock is held and this nginx phase cannot wait"
    end
    step = step * 2 < MAX_STEP and step * 2 or MAX_STEP
  end
end

-- Read, change and write the file under the write lock. `change(doc)` edits
-- `doc` in place and returns false when there is nothing to write.
local function update(self, change)
  local state, err = prepare(self)
  if not state then return nil, err end
  local lock_path = self.path .. ".lock"
  local lock
  lock, err = acquire(lock_path, WRITE_LOCK_TIMEOUT)
  if not lock then
    if err == "timeout" then
      return nil, format("another writer held %s for over %d s", lock_path, WRITE_LOCK_TIMEOUT)
    end
    return nil, err
  end
  -- released on every path, a raise included
  local ran, ok, werr = pcall(function()
    local doc, lerr = load(self)
    if not doc then return nil, lerr end
    if change(doc) == false then return true end
    return save(self, doc)
  end)
  lock:release()
  if not ran then error(ok, 0) end
  return ok, werr
end

--- Make a store. Nothing is read or written here.
-- @tparam table opts `path` (required); `lock_ttl` is accepted for older
--   configurations and ignored: a lock now ends with its holder's process
-- @return store, or nil, err
function _M.new(opts)
  if type(opts) ~= "table" or type(opts.path) ~= "string" or opts.path == "" then
    return nil, "quecapi.store.file: option 'path' (a string) is required"
  end
  local ttl = opts.lock_ttl
  if ttl ~= nil and (type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0) then
    return nil, "quecapi.store.file: option 'lock_ttl' must be a positive number"
  end
  -- handle -> key of the locks this store handed out; weak, so a handle dropped
  -- without unlock can be collected (which releases its lock)
  return setmetatable({ path = opts.path, held = setmetatable({}, WEAK_KEYS) }, mt)
end

--- The tokens stored under `key`; nil when there are none; nil, err when the
-- file or its directory cannot be trusted or read.
function _M:get(key)
  local doc, err = load(self)
  if not doc then return nil, err end
  return doc[key]
end

--- Store `tokens` under `key`, replacing the file atomically.
-- @return true, or nil, err
function _M:set(key, tokens)
  if type(key) ~= "string" then return nil, "key must be a string" end
  if type(tokens) ~= "table" then return nil, "tokens must be a table" end
  return update(self, function(doc) doc[key] = tokens end)
end

--- Forget the tokens under `key`.
-- @return true, or nil, err when the file could not be trusted or rewritten
function _M:delete(key)
  local state, err = check(self)
  if not state then return nil, err end
  if state == "missing" then return true end -- nothing to forget, nothing to create
  return update(self, function(doc)
    if doc[key] == nil then return false end
    doc[key] = nil
  end)
end

-- key -> file name part: hex, so any key makes a safe name
local function hex(s)
  return (gsub(s, ".", function(c) return format("%02x", byte(c)) end))
end

--- Wait up to `timeout` seconds to hold the lock for `key`.
-- @return a handle for unlock, or nil, "timeout" (or another error)
function _M:lock(key, timeout)
  if type(key) ~= "string" then return nil, "key must be a string" end
  timeout = tonumber(timeout) or 0
  if timeout ~= timeout or timeout < 0 then timeout = 0 end
  local state, err = prepare(self)
  if not state then return nil, err end
  local handle
  handle, err = acquire(self.path .. ".lock-" .. hex(key), timeout)
  if not handle then return nil, err end
  self.held[handle] = key
  return handle
end

--- Release the lock taken with `handle`, a handle this store's `lock(key)` returned.
-- @return true, or nil, "lock not held" for any other handle or one released already
function _M:unlock(key, handle)
  if type(key) ~= "string" then return nil, "key must be a string" end
  if handle == nil or self.held[handle] ~= key then return nil, "lock not held" end
  self.held[handle] = nil
  if not handle:release() then return nil, "lock not held" end
  return true
end

return _M
