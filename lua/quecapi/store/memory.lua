--- Token store kept in the client object: the default, one login per client.
-- @module quecapi.store.memory

local _M = {}
local mt = { __index = _M }

function _M.new()
  return setmetatable({ data = {} }, mt)
end

function _M:get(key)
  return self.data[key]
end

function _M:set(key, tokens)
  self.data[key] = tokens
  return true
end

function _M:delete(key)
  self.data[key] = nil
  return true
end

--- Nothing to coordinate: the tokens live in one client of one process, so
-- the lock is always granted at once.
-- @return a handle for unlock
function _M.lock()
  return true
end

function _M.unlock()
  return true
end

return _M
