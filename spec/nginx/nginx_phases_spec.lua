-- The default transport in every nginx phase: libcurl where blocking is
-- acceptable (init_by_lua, init_worker_by_lua), cosockets where nginx has them
-- (a timer), and a refusal at once everywhere else (set_by_lua, header and body
-- filters, log_by_lua, balancer_by_lua): never a request that blocks the worker.
local fake = require "support.fake"
local nginx = require "support.nginx"
local core = require "quecapi.core"

local PHONE, PASSWORD = "13700000014", "phases-pass-14"

local MAIN = ([[
env FAKECLOUD_URL;
env FAKECLOUD_CA;
env SPEC_PHONE=%s;
env SPEC_PASSWORD=%s;
]]):format(PHONE, PASSWORD)

-- Every probe keeps its result in the `phases` dict (see support/phase_probe.lua).
local HTTP = [[
lua_shared_dict phases 1m;

init_by_lua_block {
    require("support.phase_probe").run("init")
}

init_worker_by_lua_block {
    if ngx.worker.id() ~= 0 then return end
    require("support.phase_probe").run("init_worker")
    ngx.timer.at(0, function() require("support.phase_probe").run("timer") end)
}

upstream probe_balancer {
    server 127.0.0.1:1; # replaced by the balancer below
    balancer_by_lua_block {
        if not ngx.ctx.probed then
            ngx.ctx.probed = true
            require("support.phase_probe").run("balancer")
        end
        assert(require("ngx.balancer").set_current_peer("127.0.0.1", tonumber(ngx.var.server_port)))
    }
}
]]

local SERVER = [[
location = /set {
    set_by_lua_block $probed { require("support.phase_probe").run("set") return "set done" }
    return 200 $probed;
}

location = /header_filter {
    content_by_lua_block { ngx.print("header_filter done") }
    header_filter_by_lua_block { require("support.phase_probe").run("header_filter") }
}

location = /body_filter {
    content_by_lua_block { ngx.print("body_filter done") }
    body_filter_by_lua_block {
        if not ngx.ctx.probed then
            ngx.ctx.probed = true
            require("support.phase_probe").run("body_filter")
        end
    }
}

location = /log {
    content_by_lua_block { ngx.print("log done") }
    log_by_lua_block { require("support.phase_probe").run("log") }
}

location = /balancer {
    proxy_pass http://probe_balancer/_harness/ping;
}

location = /result {
    content_by_lua_block { ngx.print(ngx.shared.phases:get(ngx.var.arg_label) or "null") }
}
]]

-- A probe's result, waiting for it (the log phase and the timer run after the
-- answer or in the background).
local function result(srv, label)
  for _ = 1, 100 do
    local status, v = srv:json("/result?label=" .. label)
    assert(status == 200, tostring(v))
    if v ~= nil then return v end
    core.sleep(0.05)
  end
  error("no result from the " .. label .. " phase\n" .. srv:error_log())
end

describe("the auto transport in nginx's phases", function()
  local srv

  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 2)
    srv = nginx.start { main = MAIN, http = HTTP, server = SERVER }
  end)

  teardown(function()
    if srv then srv:stop() end
    fake.configure { delay_ms = 0 }
  end)

  it("[10.14] uses libcurl in init_by_lua and init_worker_by_lua, where blocking is acceptable", function()
    for _, label in ipairs { "init", "init_worker" } do
      local r = result(srv, label)
      assert.is_nil(r.raised, r.raised)
      assert.are.equal(label, r.phase)
      assert.are.equal("curl", r.choice)
      assert.are.equal(200, r.status, r.err)
      assert.is_true(r.login_ok, r.login_err)
    end
  end)

  it("[10.14] uses cosockets in a timer", function()
    local r = result(srv, "timer")
    assert.is_nil(r.raised, r.raised)
    assert.are.equal("timer", r.phase)
    assert.are.equal("ngx", r.choice)
    assert.are.equal(200, r.status, r.err)
    assert.is_true(r.login_ok, r.login_err)
  end)

  it("[10.14] refuses at once in set, header_filter, body_filter, log and balancer, and sends nothing", function()
    result(srv, "timer") -- the startup probes are done: from here on the fake must hear nothing
    -- a request that did go out would now take 2 s
    fake.configure { delay_ms = 2000 }
    local since = fake.seq()
    local answers = {
      set = "set done", header_filter = "header_filter done", body_filter = "body_filter done",
      log = "log done", balancer = "pong\n",
    }
    for label, want in pairs(answers) do
      local status, body = srv:request { path = "/" .. label, timeout = 10 }
      assert.are.equal(200, status, tostring(body) .. "\n" .. srv:error_log())
      assert.are.equal(want, body)
      local r = result(srv, label)
      assert.is_nil(r.raised, r.raised)
      assert.are.equal(label, r.phase)
      assert.is_nil(r.status, label .. " sent a request")
      assert.are.equal("usage", r.kind, label)
      assert.matches("nginx's " .. label .. " phase has no cosockets", r.err, 1, true)
      assert.matches("ngx.timer.at", r.err, 1, true)
      assert.is_false(r.login_ok, label .. " logged in")
      assert.matches("ngx.timer.at", r.login_err, 1, true)
      assert.are.equal("usage", r.login_kind, label)
      assert.is_true(r.elapsed < 0.1, ("%s took %.3f s"):format(label, r.elapsed))
    end
    fake.configure { delay_ms = 0 }
    assert.are.same({}, (fake.requests(since)))
  end)
end)

describe("the auto transport's choice", function()
  -- Every name ngx.get_phase() gives in lua-nginx-module 0.10.23 (resty.core's list).
  local PHASES = {
    init = "curl", init_worker = "curl",
    rewrite = "ngx", server_rewrite = "ngx", access = "ngx", content = "ngx", timer = "ngx",
    ssl_cert = "ngx", ssl_session_fetch = "ngx", ssl_client_hello = "ngx",
    set = "refused", header_filter = "refused", body_filter = "refused", log = "refused",
    balancer = "refused", ssl_session_store = "refused", exit_worker = "refused",
  }
  local MODULES = { "quecapi.time", "quecapi.transport.auto", "quecapi.transport.ngx" }

  it("[10.14] is curl only where blocking is acceptable, and a refusal in every phase without cosockets", function()
    -- quecapi.time looks `ngx` up when it is loaded: load the modules afresh
    -- under a stand-in nginx that reports the phase asked for and counts sockets
    local phase, sockets = nil, 0
    local stand_in = {
      get_phase = function() return phase end,
      socket = { tcp = function() sockets = sockets + 1 end },
      update_time = function() end,
      now = core.monotonic,
      sleep = function() end,
    }
    local saved_ngx, saved = rawget(_G, "ngx"), {}
    for _, m in ipairs(MODULES) do saved[m], package.loaded[m] = package.loaded[m], nil end
    rawset(_G, "ngx", stand_in)
    local ok, err = pcall(function()
      local auto = require("quecapi.transport.auto").new {}
      for name, want in pairs(PHASES) do
        phase = name
        if want == "refused" then
          local status, msg, kind = auto:request { url = "https://localhost:1/x" }
          assert.is_nil(status, name)
          assert.are.equal("usage", kind, name)
          assert.matches("nginx's " .. name .. " phase has no cosockets", msg, 1, true)
          assert.matches("ngx.timer.at", msg, 1, true)
        else
          assert.are.equal(want, auto:choose(), name)
        end
      end
      assert.are.equal(0, sockets)
      assert.is_nil(auto.curl) -- no libcurl session was made for a refused phase
    end)
    rawset(_G, "ngx", saved_ngx)
    for _, m in ipairs(MODULES) do package.loaded[m] = saved[m] end
    assert(ok, err)
  end)

  it("[10.14] is curl outside nginx", function()
    assert.are.equal("curl", require("quecapi.transport.auto").new {}:choose())
  end)
end)
