-- quecapi.realtime.fleet's command queue against a real redis-server, in plain
-- Lua: a node's write is queued for the leader by a script that also checks the
-- write's deadline, so a push that reaches Redis after its sender stopped
-- waiting (a Redis that hung, a slow link) is never sent to the device later.
-- The hub across two nginx nodes is spec/nginx/realtime_fleet_spec.lua.
local redis = require "support.redis"
local store_mod = require "quecapi.store.redis"
local fleet = require "quecapi.realtime.fleet"
local core = require "quecapi.core"

describe("[17] the fleet's command queue in Redis", function()
  local r, f

  -- The commands waiting for the leader, as their JSON texts.
  local function waiting()
    local list = assert(f.store:call("lrange", f.cmd, 0, -1))
    local out = {}
    for i, item in ipairs(list) do out[i] = item:match("^%d+ (.*)$") end
    return out
  end

  setup(function()
    r = redis.start {}
    f = fleet.new(assert(store_mod.new { port = r.port, timeout = 0.3 }), "queue-spec", 30)
  end)

  teardown(function()
    if r then r:destroy() end
  end)

  it("[17] queues nothing while no node leads", function()
    local now = assert(f:clock())
    local code, ran = f:push('{"id":"nobody"}', 10, 1, now + 1000)
    assert.are.equal(0, code)
    assert.is_true(ran >= now)
    assert.are.same({}, waiting())
  end)

  it("[17] queues a command Redis runs before its deadline, and refuses one it runs after", function()
    assert.is_true((f:acquire(fleet.owner("n1"))))
    local now = assert(f:clock())
    assert.are.equal(1, (f:push('{"id":"in-time"}', 10, 1, now + 1000)))
    assert.are.equal(-2, (f:push('{"id":"late"}', 10, 1, now - 1)))
    assert.are.same({ '{"id":"in-time"}' }, waiting())
    local conn = assert(f:commands_connection(1))
    local ms, text = f:next_command(conn, 0.1)
    assert.are.equal('{"id":"in-time"}', text)
    assert.is_true(ms >= now)
    f:release_connection(conn)
  end)

  it("[17] drops a push that waited in a hung Redis past its deadline, once Redis runs again", function()
    assert.are.same({}, waiting())
    local deadline = assert(f:clock()) + 300
    r:pause()
    local ok, perr = pcall(function()
      local t0 = core.monotonic()
      local code, err, kind = f:push('{"id":"ghost"}', 10, 1, deadline)
      assert.is_nil(code)
      assert.are.equal("redis 127.0.0.1:" .. r.port .. ": timed out", err)
      assert.are.equal("network", kind)
      assert.is_true(core.monotonic() - t0 < 1)
      core.sleep(0.1) -- past the deadline before Redis reads the push
    end)
    r:resume()
    assert(ok, perr)
    -- Redis now reads what was sent while it was stopped, and runs the script
    core.sleep(0.5) -- the store's address rests for its timeout after one
    local _, polled = require "support.poll"(function() return f:clock() end, function(v) return v ~= nil end, 5)
    assert.is_true(polled, "Redis answers again")
    assert.are.same({}, waiting())
  end)
end)
