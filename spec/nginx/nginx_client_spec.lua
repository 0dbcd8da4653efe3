-- quecapi inside a real nginx: the ngx transport is chosen in request handlers,
-- the worker never blocks, one login serves every worker through the shared
-- dict, and the curl transport still works where nginx has no cosockets.
local fake = require "support.fake"
local nginx = require "support.nginx"

local PHONE, PASSWORD = "13700000001", "nginx-pass-1"
local LOGIN_PATH = "/v2/enduser/enduserapi/phonePwdLogin"

-- nginx clears the environment: pass on the fake cloud's address and set the account.
local MAIN = ([[
env FAKECLOUD_URL;
env FAKECLOUD_CA;
env SPEC_PHONE=%s;
env SPEC_PASSWORD=%s;
]]):format(PHONE, PASSWORD)

local HTTP = [[
lua_shared_dict tokens 1m;
lua_shared_dict results 1m;
]]

-- Only for the spec about phases without cosockets (its logins would count elsewhere).
local INIT = [[
init_by_lua_block {
    -- init_by_lua has no cosockets: the default transport must pick libcurl here
    local app = require "support.in_nginx"
    local c = app.client { account = app.account() }
    local res, err = c:login()
    package.loaded["spec.init_result"] = {
        transport = c.transport:choose(),
        ok = res ~= nil, err = err,
    }
}

init_worker_by_lua_block {
    -- a timer has cosockets, but transport = "curl" must still work there
    if ngx.worker.id() ~= 0 then return end
    ngx.timer.at(0, function()
        local app = require "support.in_nginx"
        local c = app.client { transport = "curl", account = app.account() }
        local res, err = c:user_device_list {}
        ngx.shared.results:set("timer", require("quecapi.json").encode {
            ok = res ~= nil, err = err, total = res and res.data.total,
        })
    end)
}
]]

local SERVER = [[
location = /flow {
    content_by_lua_block {
        local app = require "support.in_nginx"
        local c = app.client()
        local login, err = c:phone_pwd_login { phone = os.getenv("SPEC_PHONE"),
                                               password = os.getenv("SPEC_PASSWORD"),
                                               internationalCode = "86" }
        if not login then return app.reply { err = err } end
        local list = assert(c:user_device_list { pageSize = 2 })
        local n = 0
        for device, perr in c:paginate("user_device_list", { pageSize = 2 }) do
            if not device then return app.reply { err = perr } end
            n = n + 1
        end
        app.reply { transport = c.transport:choose(), total = list.data.total, paged = n }
    }
}

location = /devices {
    content_by_lua_block {
        local app = require "support.in_nginx"
        local c = app.client { token_store = "shdict", token_dict = "tokens", account = app.account() }
        local res, err, code = c:user_device_list {}
        app.reply { total = res and res.data.total, err = err, code = code, worker = ngx.worker.id() }
    }
}

location = /init { content_by_lua_block {
    require("support.in_nginx").reply(package.loaded["spec.init_result"])
} }

location = /timer { content_by_lua_block {
    ngx.say(ngx.shared.results:get("timer") or "{}")
} }
]]

local function start(workers, with_init)
  return nginx.start { workers = workers, main = MAIN, http = HTTP .. (with_init and INIT or ""), server = SERVER }
end

local function count_logins(since)
  return #fake.received(since, LOGIN_PATH)
end

describe("quecapi in nginx", function()
  local srv
  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 5)
  end)
  teardown(function()
    if srv then srv:stop() end
    fake.configure { delay_ms = 0 }
  end)

  it("runs the whole flow over cosockets", function()
    srv = start(1)
    local status, v = srv:json("/flow")
    assert.are.equal(200, status, srv:error_log())
    assert.is_nil(v.err)
    assert.are.equal("ngx", v.transport)
    assert.are.equal(5, v.total)
    assert.are.equal(5, v.paged)
    srv:stop()
  end)

  it("does not block the worker: 20 slow requests are in flight at once", function()
    srv = start(1)
    assert.are.equal(200, (srv:json("/devices"))) -- log in once, tokens into the shared dict
    fake.configure { delay_ms = 200 }
    fake.control("POST", "/_fake/stats/reset")
    local paths = {}
    for i = 1, 20 do paths[i] = "/devices?i=" .. i end
    local bodies = srv:parallel(paths)
    fake.configure { delay_ms = 0 }
    for _, b in ipairs(bodies) do assert.matches('"total":5', b, 1, true) end
    local stats = fake.stats()
    assert.is_true(stats.inflight_max > 10, "in flight at most " .. tostring(stats.inflight_max))
    srv:stop()
  end)

  it("logs in once for all workers through the shared dict", function()
    srv = start(4)
    fake.configure { delay_ms = 100 } -- let the requests overlap
    local since = fake.seq()
    local paths = {}
    for i = 1, 24 do paths[i] = "/devices?i=" .. i end
    local bodies = srv:parallel(paths)
    fake.configure { delay_ms = 0 }
    local workers = {}
    for _, b in ipairs(bodies) do
      assert.matches('"total":5', b, 1, true)
      workers[b:match('"worker":(%d+)')] = true
    end
    local n = 0
    for _ in pairs(workers) do n = n + 1 end
    assert.is_true(n > 1, "requests reached only one worker")
    assert.are.equal(1, count_logins(since))
    srv:stop()
  end)

  it("uses libcurl in init_by_lua and in a timer when asked", function()
    srv = start(1, true)
    local status, v = srv:json("/init")
    assert.are.equal(200, status)
    assert.are.equal("curl", v.transport)
    assert.is_true(v.ok, v.err)
    local t
    for _ = 1, 50 do
      t = select(2, srv:json("/timer"))
      if t and t.ok ~= nil then break end
      require("quecapi.core").sleep(0.1)
    end
    assert.is_true(t.ok, t.err)
    assert.are.equal(5, t.total)
    srv:stop()
  end)
end)
