--- What the bench workers share: a clock, a rate meter, the fixed inputs, and
-- the output format the driver (bench/main.lua) reads: one "name<TAB>value" line
-- per measurement.
local core = require "quecapi.core"

local _M = {}

local now = core.monotonic
_M.now = now

-- The inputs every primitive benchmark uses, C and Lua alike: the signing string
-- of the guide's phone login (internationalCode, phone, encrypted pwd, random)
-- with a 44-character user domain secret, and the guide's password vector.
_M.SIGNING_STRING = "86" .. "17132136550" .. "lkZMvj0KDSJXlp66jBieHA==" .. "j1acpdj2bmtqZXVb"
  .. "57Fk69oYgbs2aWWN362NtZwYB2RqKNqQ7yZESnF5VM22"
_M.PASSWORD, _M.RANDOM = "china1234", "j1acpdj2bmtqZXVb"

--- Calls per second of fn over `seconds`, after a warm-up of a tenth of that
-- (for the JIT and the caches) and a full collection; and the CPU microseconds
-- the process spent per call. fn runs in batches so that reading the clock
-- costs nothing measurable.
function _M.rate(fn, seconds, batch)
  batch = batch or 1
  local stop = now() + seconds / 10
  repeat fn() until now() >= stop
  collectgarbage()
  collectgarbage()
  local n, start, cpu = 0, now(), os.clock()
  repeat
    for _ = 1, batch do fn() end
    n = n + batch
  until now() - start >= seconds
  return n / (now() - start), (os.clock() - cpu) / n * 1e6
end

--- One result line for the driver.
function _M.emit(name, value, extra)
  io.write(name, "\t", tostring(value), extra and ("\t" .. tostring(extra)) or "", "\n")
  io.flush()
end

--- The whole of a file.
function _M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- Resident set size of this process in KiB.
function _M.rss_kb()
  return tonumber(_M.read("/proc/self/status"):match("VmRSS:%s*(%d+)"))
end

--- Two free loopback ports (not listening now), from a spot that differs per run.
function _M.free_ports()
  local p = io.popen("ss -ltnH 2>/dev/null")
  local used = p:read("*a")
  p:close()
  local ports, port = {}, 20000 + (math.floor(core.monotonic() * 1000) % 20000)
  while #ports < 2 do
    port = port + 1
    if not used:find(":" .. port .. " ", 1, true) then ports[#ports + 1] = port end
  end
  return ports[1], ports[2]
end

_M.interpreter = rawget(_G, "jit") and "luajit" or "lua5.4"

return _M
