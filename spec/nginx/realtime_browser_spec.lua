-- examples/realtime.html in a real browser: headless Chromium opens the page
-- served by examples/realtime.conf (paths and port swapped) against the fake
-- cloud, a property change on the fake device appears on the page, and a
-- screenshot of it is written to build/realtime/realtime-page.png.
local fake = require "support.fake"
local core = require "quecapi.core"
local json = require "quecapi.json"
local nginx = require "support.nginx"
local example = require "support.realtime_example"
local shell = require "support.sh"

local PHONE, PASSWORD = "13300170001", "rt-browser-Pass-1"
local PK, DK = "p11pLZ", "D0002"

local chromium = shell.output("command -v chromium || command -v chromium-browser || true")
assert(chromium ~= "", "no chromium: sh tools/deps installs it")

describe("[15] examples/realtime.html in headless Chromium", function()
  local srv

  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 2)
    fake.report(PK, DK, { online = true, values = { brightness = 10, switch = false } })
    srv = example.start { phone = PHONE, password = PASSWORD }
    local st, ok = srv:until_status(function(s) return s.connected end, 20)
    assert(ok, "the hub did not connect: " .. json.encode(st))
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("shows a property change of the device as it happens", function()
    local dir = nginx.root .. "/build/realtime"
    assert(shell.run("mkdir -p " .. shell.quote(dir)))
    local shot = dir .. "/realtime-page.png"
    os.remove(shot)
    local work = shell.tempdir()
    local ready, out = work .. "/ready", work .. "/out.json"
    local url = ("%s/realtime.html?pk=%s&dk=%s"):format(srv.url, PK, DK)
    assert(shell.run(("python3 %s %s %s %s %s 77 %s 60 >%s 2>&1 &"):format(
      shell.quote(nginx.root .. "/spec/support/cdp_page.py"), shell.quote(chromium), shell.quote(url),
      shell.quote(ready), shell.quote('tr[data-code="brightness"] td.value'), shell.quote(shot), shell.quote(out))))
    -- the page's EventSource is open: the hub counts it
    local deadline = core.monotonic() + 60
    while not shell.read(ready) do
      assert(core.monotonic() < deadline, "the page did not go live: " .. tostring(shell.read(out)))
      core.sleep(0.1)
    end
    assert.are.equal(1, srv:status().subscribers)
    -- the snapshot shows the last known value before any report
    fake.report(PK, DK, { online = true, values = { brightness = 77, switch = true } })
    local text
    while true do
      text = shell.read(out)
      if text and text:find("\n") then break end
      assert(core.monotonic() < deadline, "the browser did not finish")
      core.sleep(0.1)
    end
    local result = json.decode(text:match("({.*})%s*$") or text)
    assert(result and result.ok, text)
    assert.are.equal("77", result.text)
    assert.are.equal("online", result.online)
    assert.matches("snapshot", result.log)
    assert.matches('"brightness":77', result.log, 1, true)
    local png = assert(shell.read(shot))
    assert.are.equal("\137PNG", png:sub(1, 4))
    assert.is_true(#png > 10000)
    shell.run("rm -rf " .. shell.quote(work))
  end)
end)
