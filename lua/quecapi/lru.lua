--- A small cache with a size bound and an age bound, for data many short-lived
-- clients share in one process (one nginx worker): the least recently used
-- entry goes when the cache is full, and an entry older than `ttl` is not served.
-- @module quecapi.lru

local setmetatable, next, pairs = setmetatable, next, pairs

local _M = {}

local Cache = {}
local mt = { __index = Cache }

--- Make a cache.
-- @tparam int size entries kept at most
-- @tparam number ttl seconds an entry is served
-- @tparam function clock seconds, monotonic
function _M.new(size, ttl, clock)
  return setmetatable({ size = size, ttl = ttl, clock = clock, items = {}, count = 0, tick = 0 }, mt)
end

--- The value under `key`, or nil when absent or too old.
function Cache:get(key)
  local item = self.items[key]
  if not item then return nil end
  if self.clock() - item.born > self.ttl then
    self.items[key] = nil
    self.count = self.count - 1
    return nil
  end
  self.tick = self.tick + 1
  item.used = self.tick
  return item.value
end

-- The least recently used key (a walk over at most `size` entries, only when full).
local function oldest(items)
  local key, used = next(items)
  for k, item in pairs(items) do
    if item.used < used.used then key, used = k, item end
  end
  return key
end

--- Keep `value` under `key`.
function Cache:set(key, value)
  if not self.items[key] then
    if self.count >= self.size then
      self.items[oldest(self.items)] = nil
      self.count = self.count - 1
    end
    self.count = self.count + 1
  end
  self.tick = self.tick + 1
  self.items[key] = { value = value, born = self.clock(), used = self.tick }
end

--- Forget everything.
function Cache:clear()
  self.items, self.count = {}, 0
end

return _M
