-- `quecapi watch` and examples/watch.lua as a user runs them: subprocesses
-- against the fake cloud and its broker, with an otherwise empty environment,
-- ended with SIGINT (Ctrl-C) by their process id, or by WATCH_MAX.
--
-- They run on the interpreter that runs these specs with the suite's build of
-- the core (CORE_PREFIX): bin/quecapi from a checkout-shaped folder whose
-- build/<interpreter> is the suite's build, as spec/integration/cli_spec.lua does.
local fake = require "support.fake"
local json = require "quecapi.json"
local core = require "quecapi.core"
local shell = require "support.sh"

local quote = shell.quote
local ROOT = shell.output("pwd")
local PATH = os.getenv("PATH") or "/usr/bin:/bin"
local INTERPRETER = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local CORE_DIR = ROOT .. "/build/" .. (os.getenv("CORE_PREFIX") or "") .. INTERPRETER
assert(fake.mqtt_url, "the fake cloud runs without its broker (no FAKECLOUD_MQTT_URL)")

local PK = "p11pLZ"
local PASSWORD = "Watch-Pass-1"

-- Wait until `check()` is true (polling every 50 ms) for at most `seconds`.
local function wait(check, seconds)
  local deadline = core.monotonic() + (seconds or 5)
  repeat
    if check() then return true end
    core.sleep(0.05)
  until core.monotonic() > deadline
  return check()
end

local CHECKOUT = shell.output("mktemp -d /tmp/quecapi-watch-checkout.XXXXXX")
assert(shell.run(table.concat({
  "mkdir -p " .. quote(CHECKOUT .. "/bin") .. " " .. quote(CHECKOUT .. "/build"),
  "ln -s " .. quote(ROOT .. "/bin/quecapi") .. " " .. quote(CHECKOUT .. "/bin/quecapi"),
  "ln -s " .. quote(ROOT .. "/lua") .. " " .. quote(CHECKOUT .. "/lua"),
  "ln -s " .. quote(CORE_DIR) .. " " .. quote(CHECKOUT .. "/build/" .. INTERPRETER),
}, " && ")))

teardown(function() shell.run("rm -rf " .. quote(CHECKOUT)) end)

local box, phone, secrets

local function env_words(extra)
  local vars = {
    PATH = PATH, HOME = box .. "/home", XDG_CONFIG_HOME = box .. "/config", XDG_CACHE_HOME = box .. "/cache",
    QUECAPI_USER_DOMAIN = fake.user_domain, QUECAPI_USER_DOMAIN_SECRET = fake.secret,
    QUECAPI_BASE_URL = fake.url, QUECAPI_CA_FILE = fake.ca, QUECAPI_PHONE = phone, QUECAPI_PASSWORD = PASSWORD,
    QUECAPI_REALTIME_URL = fake.mqtt_url,
    LUA_PATH = ROOT .. "/lua/?.lua;;", LUA_PATH_5_4 = ROOT .. "/lua/?.lua;;",
    LUA_CPATH = CORE_DIR .. "/?.so;;", LUA_CPATH_5_4 = CORE_DIR .. "/?.so;;",
  }
  for k, v in pairs(extra or {}) do vars[k] = v end
  local parts = {}
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. quote(v) end
  return table.concat(parts, " ")
end

-- Start `words` (a command line after the interpreter) in `dir`, in the
-- background: { pid } with its output in box/out, box/err, status in box/rc.
local function start(dir, words, extra_env)
  local cmd = "cd " .. quote(dir) .. " && { env -i " .. env_words(extra_env) .. " " .. INTERPRETER .. " " .. words
    .. " >" .. quote(box .. "/out") .. " 2>" .. quote(box .. "/err") .. " </dev/null & echo $! >"
    .. quote(box .. "/pid") .. "; wait $!; echo $? >" .. quote(box .. "/rc") .. "; } >/dev/null 2>&1 &"
  assert(shell.run(cmd))
  assert(wait(function() return shell.read(box .. "/pid") ~= nil end, 5))
  return { pid = tonumber(shell.read(box .. "/pid")) }
end

local function out() return shell.read(box .. "/out") or "" end
local function err() return shell.read(box .. "/err") or "" end
local function status() return tonumber(shell.read(box .. "/rc") or "") end

local function lines()
  local list = {}
  for l in out():gmatch("[^\n]+") do list[#list + 1] = l end
  return list
end

local function wait_lines(n, seconds)
  return wait(function() return #lines() >= n end, seconds or 10)
end

local function finished(seconds)
  return wait(function() return status() ~= nil end, seconds or 10)
end

local function assert_no_secrets()
  for _, s in ipairs(secrets) do
    assert(not out():find(s, 1, true) and not err():find(s, 1, true), "a secret in the output")
  end
end

local watching

before_each(function()
  fake.reset()
  box = shell.tempdir()
  phone = "1330015" .. string.format("%04d", math.random(0, 9999))
  fake.user(phone, PASSWORD, 2)
  secrets = { PASSWORD, fake.secret }
  watching = nil
end)

after_each(function()
  -- a watch the test did not end is ended here, by its pid
  if watching and not status() then shell.run("kill -TERM " .. watching.pid) end
  assert_no_secrets()
  shell.run("rm -rf " .. quote(box))
end)

describe("[14] quecapi watch", function()
  it("prints one line per event for the devices named, and Ctrl-C ends it cleanly with 130", function()
    watching = start(CHECKOUT, "bin/quecapi watch " .. PK .. " D0001")
    assert(wait(function() return err():find("watching 1 device", 1, true) end, 10), err())
    fake.report(PK, "D0001", { values = { brightness = 42 }, online = true })
    fake.report(PK, "D0002", { values = { brightness = 7 } }) -- not watched
    assert(wait_lines(2), out() .. err())
    local t = core.monotonic()
    assert(shell.run("kill -INT " .. watching.pid))
    assert(finished(5), "still running after SIGINT")
    assert.is_true(core.monotonic() - t < 3)
    assert.are.equal(130, status())
    local l = lines()
    assert.are.equal(2, #l)
    assert.matches("^%d+%-%d+%-%d+ %d+:%d+:%d+  online%s+p11pLZ/D0001  online %(1%)$", l[1])
    assert.matches("^%d+%-%d+%-%d+ %d+:%d+:%d+  property%s+p11pLZ/D0001  brightness=42$", l[2])
    assert.matches("quecapi: interrupted", err(), 1, true)
    -- the session ended with it
    assert.is_true(wait(function() return fake.broker().connected == 0 end, 3))
  end)

  it("--json: one JSON object a line, every device of the account when none is named", function()
    watching = start(CHECKOUT, "bin/quecapi watch --json")
    assert(wait(function() return err():find("watching 2 devices", 1, true) end, 10), err())
    fake.report(PK, "D0002", { values = { brightness = 5 }, as_strings = true })
    assert(wait_lines(1), out() .. err())
    assert(shell.run("kill -INT " .. watching.pid))
    assert(finished(5))
    local ev = assert(json.decode(lines()[1]))
    assert.are.same({ "property", PK, "D0002", 5 }, { ev.type, ev.productKey, ev.deviceKey, ev.values.brightness })
    assert.are.equal("q/2/d/qdp11pLZD0002/bus_", ev.topic)
    assert.are.equal("table", type(ev.raw))
  end)

  it("refuses devices that do not come in pairs", function()
    watching = start(CHECKOUT, "bin/quecapi watch " .. PK)
    assert(finished(10))
    assert.are.equal(2, status())
    assert.matches("pairs", err())
  end)
end)

describe("[14] examples/watch.lua", function()
  it("prints each event with the device's merged state", function()
    watching = start(ROOT, "examples/watch.lua", { WATCH_MAX = "3" })
    assert(wait(function() return err():find("watching 2 device", 1, true) end, 10), err())
    fake.report(PK, "D0001", { values = { brightness = 10 } })
    fake.report(PK, "D0001", { values = { switch = true } })
    fake.report(PK, "D0001", { online = true })
    assert(finished(10), out() .. err())
    assert.are.equal(0, status(), err())
    local l = lines()
    assert.are.equal("property\tp11pLZ/D0001\t{\"brightness\":10}", l[1])
    assert.are.equal("property\tp11pLZ/D0001\t{\"brightness\":10,\"switch\":true}", l[2])
    assert.are.equal("online\tp11pLZ/D0001\ttrue", l[3])
  end)
end)
