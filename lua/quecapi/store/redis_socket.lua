--- A small Redis client for plain Lua: RESP2 over LuaSocket, with
-- lua-resty-redis's calling convention, so `quecapi.store.redis` drives it and
-- the cosocket client (`nginx.redis`) alike.
--
--     local red = redis_socket.new()
--     red:set_timeout(1000)                   -- milliseconds, per connect/send/receive
--     assert(red:connect("127.0.0.1", 6379))
--     red:set("k", "v")                       -- "OK"
--     red:get("k")                            -- "v"; redis_socket.null when missing
--     red:eval(script, 1, "k", "v")           -- any command: red:name(args...)
--     red:close()
--
-- Replies: a string (status or bulk), a number (integer), a table (array, a
-- Redis error inside it as `{false, "ERR ..."}`), `null`; `false, "ERR ..."`
-- for a Redis error; `nil, err` when the connection failed ("timeout",
-- "closed", "connection refused", a protocol error). After `nil, err` the
-- connection is closed: what is left on it cannot be trusted.
--
-- Why not Debian's `lua-redis` (redis-lua): it is packaged for Lua 5.1 to 5.3
-- only (Debian 12 ships no Lua 5.4 build), raises errors instead of returning
-- them, and has no per-operation timeouts. LuaSocket (`lua-socket`) is packaged
-- for 5.1 to 5.4. The replies this parses come from the operator's own Redis;
-- they are bounded anyway (sizes, nesting) and never make it raise.
-- @module quecapi.store.redis_socket

local type, tostring, tonumber, select, setmetatable, rawget = type, tostring, tonumber, select, setmetatable,
  rawget
local byte, sub, find, lower = string.byte, string.sub, string.find, string.lower
local concat = table.concat

local _M = {}

--- The value of a missing key or an absent array (RESP's null).
_M.null = setmetatable({}, { __tostring = function() return "null" end })
local null = _M.null

-- A token store's values take a few KiB: far larger replies are not ours.
local MAX_BULK = 1024 * 1024
local MAX_ITEMS = 1024
local MAX_DEPTH = 4

local Conn = {}

local function close(self)
  local sock = rawget(self, "sock")
  self.sock = nil
  if sock then sock:close() end
  return 1
end

-- Reading one reply; nil, err means the stream is broken.
local function read_reply(sock, depth)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local prefix, rest = byte(line), sub(line, 2)
  if prefix == 43 then -- "+": status
    return rest
  elseif prefix == 45 then -- "-": error
    return false, rest
  elseif prefix == 58 then -- ":": integer
    if not find(rest, "^%-?%d+$") then return nil, "protocol error: bad integer reply" end
    return tonumber(rest)
  elseif prefix == 36 then -- "$": bulk string
    if rest == "-1" then return null end
    local size = find(rest, "^%d+$") and tonumber(rest)
    if not size or size > MAX_BULK then return nil, "protocol error: bad bulk length" end
    local data
    data, err = sock:receive(size + 2)
    if not data then return nil, err end
    if sub(data, -2) ~= "\r\n" then return nil, "protocol error: bulk string not terminated" end
    return sub(data, 1, size)
  elseif prefix == 42 then -- "*": array
    if rest == "-1" then return null end
    local n = find(rest, "^%d+$") and tonumber(rest)
    if not n or n > MAX_ITEMS then return nil, "protocol error: bad array length" end
    if depth >= MAX_DEPTH then return nil, "protocol error: arrays nested too deep" end
    local vals = {}
    for i = 1, n do
      local v, verr = read_reply(sock, depth + 1)
      if v == nil then return nil, verr end
      if v == false then v = { false, verr } end
      vals[i] = v
    end
    return vals
  end
  return nil, "protocol error: unknown reply type"
end

local function request(name, ...)
  local n = select("#", ...)
  local parts = { "*", tostring(n + 1), "\r\n$", tostring(#name), "\r\n", name, "\r\n" }
  for i = 1, n do
    local arg = select(i, ...)
    if type(arg) ~= "string" then arg = tostring(arg) end
    parts[#parts + 1] = "$" .. #arg .. "\r\n"
    parts[#parts + 1] = arg
    parts[#parts + 1] = "\r\n"
  end
  return concat(parts)
end

local function command(self, name, ...)
  local sock = rawget(self, "sock")
  if not sock then return nil, "closed" end
  local ok, err = sock:send(request(name, ...))
  if not ok then
    close(self)
    return nil, err
  end
  local res, rerr = read_reply(sock, 0)
  if res == nil then close(self) end
  return res, rerr
end

--- Connect, waiting at most the timeout.
-- @return 1, or nil, err
function Conn:connect(host, port)
  close(self)
  local ok, socket = pcall(require, "socket")
  if not ok or type(socket) ~= "table" or not socket.tcp then
    return nil, "LuaSocket is not installed (Debian: apt-get install lua-socket)"
  end
  local sock, err = socket.tcp()
  if not sock then return nil, err end
  sock:settimeout(self.timeout)
  ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    return nil, err
  end
  sock:setoption("tcp-nodelay", true)
  self.sock = sock
  return 1
end

--- Milliseconds each connect, send and receive may take (lua-resty-redis's unit).
function Conn:set_timeout(ms)
  self.timeout = ms / 1000
  local sock = rawget(self, "sock")
  if sock then sock:settimeout(self.timeout) end
  return 1
end

--- 0: connections here are never pooled, so each one is new.
function Conn.get_reused_times()
  return 0
end

Conn.close = close

-- red:get(...), red:eval(...): any command by name, made on first use
local commands = {}

local mt = {
  __index = function(_, name)
    local m = Conn[name] or commands[name]
    if m then return m end
    if type(name) ~= "string" or not find(name, "^[%a_]+$") then return nil end
    local cmd = lower(name)
    m = function(this, ...) return command(this, cmd, ...) end
    commands[name] = m
    return m
  end,
}

--- A connection object, not connected yet (timeout 1 s).
function _M.new()
  return setmetatable({ timeout = 1 }, mt)
end

return _M
