--- Shell commands and files for the fake cloud's tools (ctl, the broker): the
-- few helpers both need, on Lua 5.1 and 5.2+ alike.
-- @module quecapi.fakecloud.shell

local gsub = string.gsub

local _M = {}

--- A string as one shell word.
function _M.quote(s)
  return "'" .. gsub(tostring(s), "'", "'\\''") .. "'"
end

--- Run a shell command: true when it exited 0.
function _M.run(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

--- What a shell command printed, without the final newline (nil when it cannot start).
function _M.output(cmd)
  local p = io.popen(cmd)
  if not p then return nil end
  local out = p:read("*a")
  p:close()
  return (gsub(out or "", "\n$", ""))
end

--- A file's contents, or nil when it cannot be read.
function _M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Write a file whole: true, or nil, err.
function _M.write(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(text)
  f:close()
  return true
end

--- Whether a file can be opened for reading.
function _M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

return _M
