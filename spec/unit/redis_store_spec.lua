-- The Redis token store without a Redis server (issue 17): its options, the
-- RESP client's framing against a scripted socket (hostile replies included),
-- and what it answers when nothing listens. The specs with a real redis-server
-- are spec/integration/redis_store_spec.lua and spec/nginx/redis_store_spec.lua.
local redis_store = require "quecapi.store.redis"
local redis_socket = require "quecapi.store.redis_socket"
local core = require "quecapi.core"

local SECRET = "hunter2-S3cret"

-- A socket that answers from a script of bytes and records what was sent.
local function scripted(bytes)
  local sock = { sent = {}, pos = 1, closed = false }
  function sock.send(_, data)
    sock.sent[#sock.sent + 1] = data
    return #data
  end
  function sock.receive(_, pattern)
    if pattern == "*l" then
      local nl = bytes:find("\n", sock.pos, true)
      if not nl then return nil, "closed" end
      local line = bytes:sub(sock.pos, nl - 1):gsub("\r$", "")
      sock.pos = nl + 1
      return line
    end
    if sock.pos + pattern - 1 > #bytes then return nil, "closed" end
    local data = bytes:sub(sock.pos, sock.pos + pattern - 1)
    sock.pos = sock.pos + pattern
    return data
  end
  function sock.close() sock.closed = true end
  function sock.settimeout() end
  return sock
end

local function conn_on(bytes)
  local c = redis_socket.new()
  local sock = scripted(bytes)
  c.sock = sock
  return c, sock
end

-- Every string reachable from `t` (keys and values), for "no secret here" checks.
local function strings_of(t, out, seen)
  out, seen = out or {}, seen or {}
  if seen[t] then return out end
  seen[t] = true
  for k, v in pairs(t) do
    for _, x in ipairs { k, v } do
      if type(x) == "string" then out[#out + 1] = x end
      if type(x) == "table" then strings_of(x, out, seen) end
    end
  end
  return out
end

describe("[17] redis store options", function()
  it("[17] has defaults, and builds no connection", function()
    local s = assert(redis_store.new {})
    assert.are.same({ host = "127.0.0.1", port = 6379 }, s.addr)
    assert.are.equal(0, s.db)
    assert.are.equal("quecapi:", s.prefix)
    assert.are.equal(1, s.timeout)
    assert.are.equal(30, s.lock_ttl)
    assert.are.same({}, s.conns)
    for _, m in ipairs { "get", "set", "delete", "lock", "unlock" } do assert.is_function(s[m]) end
  end)

  it("[17] reads redis:// URLs", function()
    local cases = {
      { "redis://10.0.0.5", { host = "10.0.0.5", port = 6379 }, 0 },
      { "redis://10.0.0.5:6380/2", { host = "10.0.0.5", port = 6380 }, 2 },
      { "REDIS://:pw@cache.internal:7000/15", { host = "cache.internal", port = 7000 }, 15 },
      { "redis://app:pw@localhost", { host = "127.0.0.1", port = 6379 }, 0 },
      { "redis://%61pp:p%40ss%3Aword@h:1/0", { host = "h", port = 1 }, 0 },
    }
    for _, c in ipairs(cases) do
      local s, err = redis_store.new { url = c[1] }
      assert.is_table(s, err)
      assert.are.same(c[2], s.addr)
      assert.are.equal(c[3], s.db)
    end
  end)

  it("[17] refuses bad options, naming the option and never the password", function()
    local bad = {
      { { nope = 1 }, "unknown option 'nope'" },
      { { port = "6379" }, "option 'port' must be a number" },
      { { port = 0 }, "option 'port' must be a whole number from 1 to 65535" },
      { { port = 70000 }, "option 'port' must be a whole number from 1 to 65535" },
      { { db = -1 }, "option 'db' must be a whole number from 0" },
      { { db = 1.5 }, "option 'db' must be a whole number from 0" },
      { { timeout = 0 }, "option 'timeout' must be a positive number" },
      { { lock_ttl = -3 }, "option 'lock_ttl' must be a positive number" },
      { { pool_size = 2.5 }, "option 'pool_size' must be a positive whole number" },
      { { url = "http://" .. SECRET .. "@h" }, "option 'url' must look like redis://" },
      { { url = "rediss://:" .. SECRET .. "@h:6380" }, "TLS to Redis (rediss://) is not supported" },
      { { url = "redis://:" .. SECRET .. "@h:notaport" }, "option 'url' has no valid host[:port][/db] part" },
      { { url = "redis://:" .. SECRET .. "@h", password = SECRET }, "'password' is given both in the url" },
      { { url = "redis://h", host = "h" }, "give one of 'url', 'host' and 'sentinel'" },
      { { host = "h", sentinel = { master = "m", hosts = { "s:26379" } } }, "give one of" },
      { { sentinel = { hosts = { "s:26379" } } }, "sentinel.master (the master's name) is required" },
      { { sentinel = { master = "m", hosts = {} } }, "sentinel.hosts must list at least one sentinel" },
      { { sentinel = { master = "m", hosts = { "s:0" } } }, "sentinel.hosts[1] must be" },
      { { sentinel = { master = "m", hosts = { "s" }, pasword = SECRET } }, "sentinel: unknown option 'pasword'" },
    }
    for _, c in ipairs(bad) do
      local s, err = redis_store.new(c[1])
      assert.is_nil(s)
      assert.matches("quecapi.store.redis: " .. c[2], err, 1, true)
      assert.is_nil(err:find(SECRET, 1, true))
    end
    assert.are.same({ nil, "quecapi.store.redis: options must be a table" }, { redis_store.new("redis://h") })
  end)

  it("[17] keeps the passwords out of the store's fields", function()
    for _, opts in ipairs {
      { url = "redis://user:" .. SECRET .. "@h:1/2" },
      { host = "h", password = SECRET },
      { sentinel = { master = "m", hosts = { "s1:26379", { host = "s2", port = 26380 } }, password = SECRET },
        password = SECRET },
    } do
      local s = assert(redis_store.new(opts))
      for _, v in ipairs(strings_of(s)) do assert.is_nil(v:find(SECRET, 1, true), v) end
    end
  end)

  it("[17] defaults sentinel ports to 26379 and names the set of sentinels", function()
    local s = assert(redis_store.new { sentinel = { master = "mymaster", hosts = { "10.0.0.7", "10.0.0.8:26380" } } })
    assert.are.same({ { host = "10.0.0.7", port = 26379 }, { host = "10.0.0.8", port = 26380 } }, s.sentinel.hosts)
    assert.are.equal("mymaster@10.0.0.7:26379,10.0.0.8:26380", s.sentinel.id)
    assert.is_nil(s.addr)
  end)
end)

describe("[17] redis_socket (RESP over LuaSocket)", function()
  it("[17] frames commands as RESP arrays of bulk strings", function()
    local c, sock = conn_on("+OK\r\n")
    assert.are.equal("OK", c:set("k", "v a l", "PX", 1500))
    assert.are.equal("*5\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nv a l\r\n$2\r\nPX\r\n$4\r\n1500\r\n", sock.sent[1])
    c, sock = conn_on("$-1\r\n")
    c:get("a\r\nb") -- binary-safe: the length says where it ends
    assert.are.equal("*2\r\n$3\r\nget\r\n$4\r\na\r\nb\r\n", sock.sent[1])
  end)

  it("[17] reads every reply type", function()
    local function one(bytes) return (conn_on(bytes)):get("k") end
    assert.are.equal("OK", one("+OK\r\n"))
    assert.are.same({ false, "ERR wrong" }, { one("-ERR wrong\r\n") })
    assert.are.equal(42, one(":42\r\n"))
    assert.are.equal(-7, one(":-7\r\n"))
    assert.are.equal("", one("$0\r\n\r\n"))
    assert.are.equal("a\r\nb", one("$4\r\na\r\nb\r\n"))
    assert.are.equal(redis_socket.null, one("$-1\r\n"))
    assert.are.equal(redis_socket.null, one("*-1\r\n"))
    assert.are.same({}, one("*0\r\n"))
    assert.are.same({ "127.0.0.1", "6379" }, one("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n"))
    assert.are.same({ "master", 0, {} }, one("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"))
    assert.are.same({ 1, { false, "ERR inside" } }, one("*2\r\n:1\r\n-ERR inside\r\n"))
  end)

  it("[17] turns hostile or broken replies into nil, err and closes the connection", function()
    local cases = {
      { "$99999999999\r\n", "protocol error: bad bulk length" },
      { "$-5\r\n", "protocol error: bad bulk length" },
      { "$abc\r\n", "protocol error: bad bulk length" },
      { "*100000\r\n", "protocol error: bad array length" },
      { "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "protocol error: arrays nested too deep" },
      { ":12x\r\n", "protocol error: bad integer reply" },
      { "?what\r\n", "protocol error: unknown reply type" },
      { "\r\n", "protocol error: unknown reply type" },
      { "$3\r\nabcde\r\n", "protocol error: bulk string not terminated" },
      { "$10\r\nshort\r\n", "closed" },
      { "*2\r\n:1\r\n", "closed" },
      { "", "closed" },
    }
    for _, c in ipairs(cases) do
      local conn, sock = conn_on(c[1])
      local ok, res, err = pcall(conn.get, conn, "k")
      assert.is_true(ok, "raised on " .. c[1])
      assert.is_nil(res)
      assert.are.equal(c[2], err)
      assert.is_true(sock.closed)
      assert.are.same({ nil, "closed" }, { conn:get("k") }) -- nothing more on a closed connection
    end
  end)

  it("[17] answers nil, err when nothing listens", function()
    local socket = require "socket"
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    server:close()
    local c = redis_socket.new()
    c:set_timeout(500)
    assert.are.same({ nil, "connection refused" }, { c:connect("127.0.0.1", port) })
    assert.are.equal(0, c:get_reused_times())
  end)
end)

describe("[17] redis store with nothing listening", function()
  local port
  setup(function()
    local socket = require "socket"
    local server = assert(socket.bind("127.0.0.1", 0))
    local _
    _, port = server:getsockname()
    server:close()
  end)

  it("[17] fails every method at once with nil, err, \"network\"", function()
    local s = assert(redis_store.new { port = tonumber(port), password = SECRET })
    local want = "redis 127.0.0.1:" .. port .. ": connection refused"
    local t0 = core.monotonic()
    assert.are.same({ nil, want, "network" }, { s:get("k") })
    assert.are.same({ nil, want, "network" }, { s:set("k", { access_token = "a" }) })
    assert.are.same({ nil, want, "network" }, { s:delete("k") })
    assert.are.same({ nil, want, "network" }, { s:lock("k", 5) })
    assert.are.same({ nil, want, "network" }, { s:unlock("k", "handle") })
    assert.is_true(core.monotonic() - t0 < 0.5)
  end)

  it("[17] checks its arguments before any I/O", function()
    local s = assert(redis_store.new { port = tonumber(port) })
    assert.are.same({ nil, "key must be a string" }, { s:get(1) })
    assert.are.same({ nil, "key must be a string" }, { s:set(nil, {}) })
    assert.are.same({ nil, "tokens must be a table" }, { s:set("k", "tokens") })
    assert.are.same({ nil, "key must be a string" }, { s:delete({}) })
    assert.are.same({ nil, "key must be a string" }, { s:lock(false, 1) })
    assert.are.same({ nil, "lock not held" }, { s:unlock("k", nil) })
    assert.are.same({ nil, "lock not held" }, { s:unlock("k", 42) })
    local ok, err = s:set("k", { access_token = function() end })
    assert.is_nil(ok)
    assert.matches("^cannot encode the tokens", err)
  end)
end)
