-- One transport contract, two transports: every case of
-- spec/support/transport_contract.lua goes through the curl transport in the
-- busted process and through the ngx transport inside a real nginx, and each must
-- give what the case expects — the same for both, except where the case says
-- why they differ by necessity. The server is that nginx too: raw answers written
-- by hand (/contract/raw), an echo of the request (/), and a URL that counts the
-- requests that must never arrive (/contract/never).
local contract = require "quecapi.transport.contract"
local cases = require "support.transport_contract"
local fake = require "support.fake"
local json = require "quecapi.json"
local nginx = require "support.nginx"
local sh = require "support.sh"

local LUA = jit and "luajit" or "lua5.4"

-- /contract/run runs one case through the ngx transport; the rest is the server.
-- The proxy variables are set for every worker: the ngx transport must not care.
local SERVER = [=[
        location = /contract/run {
            content_by_lua_block {
                local json = require "quecapi.json"
                local cases = require "support.transport_contract"
                ngx.req.read_body()
                local job = json.decode(ngx.req.get_body_data())
                ngx.header["Content-Type"] = "application/json"
                ngx.print(json.encode(cases.run(cases.case(job.case), job.env, "ngx")))
            }
        }
        location = /contract/raw {
            content_by_lua_block {
                require("support.transport_contract").serve_raw(ngx.unescape_uri(ngx.var.arg_case))
            }
        }
        location = /contract/block {
            content_by_lua_block { require("support.transport_contract").serve_block(ngx.var.arg_b) }
        }
        location = /contract/blocks {
            content_by_lua_block {
                local json = require "quecapi.json"
                local cases = require "support.transport_contract"
                ngx.req.read_body()
                local job = json.decode(ngx.req.get_body_data())
                ngx.header["Content-Type"] = "application/json"
                ngx.print(json.encode(cases.read_blocks(job.blocks, job.origin, "ngx")))
            }
        }
        location = /contract/never {
            content_by_lua_block { ngx.shared.contract:incr("never", 1, 0) ngx.print("sent") }
        }
        location = /contract/count {
            content_by_lua_block { ngx.print(ngx.shared.contract:get("never") or 0) }
        }
        location / {
            content_by_lua_block { require("support.transport_contract").serve_echo() }
        }
]=]

-- nginx checks certificates against names only: the fake cloud by name, as
-- https://localhost:PORT, unless a case wants its address.
local function by_name(url)
  return (url:gsub("^https://127%.0%.0%.1:", "https://localhost:"))
end

local function describe_out(out)
  if out.raised then return "raised: " .. tostring(out.err) end
  if out.status then return ("status %s, body %q"):format(tostring(out.status), tostring(out.body)) end
  return ("nil, %q, %s"):format(tostring(out.err), tostring(out.kind))
end

local function check(case, out, transport, env)
  local e = cases.expected(case, transport)
  local label = transport .. " / " .. case.name .. ": " .. describe_out(out)
  if e.raises then
    assert.is_true(out.raised == true, label)
    assert.matches(e.raises, out.err, 1, true)
    return
  end
  assert.is_falsy(out.raised, label)
  if e.kind then
    assert.is_nil(out.status, label)
    assert.are.equal(e.kind, out.kind, label)
    if e.err then assert.are.equal(cases.fill(e.err, env, case), out.err, label) end
    if e.err_has then assert.matches(e.err_has, out.err, 1, true) end
  else
    assert.is_number(out.status, label)
    if e.status then assert.are.equal(e.status, out.status, label) end
    if e.body then assert.are.equal(e.body, out.body, label) end
    if e.length then assert.are.equal(e.length, out.length, label) end
    for name, want in pairs(e.headers or {}) do
      if want == false then
        assert.is_nil(out.headers[name], label .. " has " .. name)
      else
        assert.are.equal(cases.fill(want, env, case), out.headers[name], label .. " / " .. name)
      end
    end
    if e.echo then
      local seen = assert(json.decode(out.body), label)
      for _, k in ipairs { "method", "target", "body" } do
        if e.echo[k] then assert.are.equal(e.echo[k], seen[k], label .. " / " .. k) end
      end
      for name, want in pairs(e.echo.headers or {}) do
        if want == false then
          assert.is_nil(seen.headers[name], label .. " sent " .. name)
        else
          assert.are.equal(cases.fill(want, env, case), seen.headers[name], label .. " / sent " .. name)
        end
      end
    end
  end
  if out.kind then assert.is_true(contract.KINDS[out.kind], label .. ": a kind outside the contract") end
  assert.is_true(out.elapsed < (e.max_seconds or 8), label .. " took " .. out.elapsed .. "s")
  if e.min_seconds then assert.is_true(out.elapsed >= e.min_seconds, label .. " took " .. out.elapsed .. "s") end
end

-- The curl transport in a child interpreter with the case's environment (proxies
-- are read from the environment, which this process cannot change).
local function run_in_child(case, env)
  local vars = {}
  for k, v in pairs(case.environment) do vars[#vars + 1] = k .. "=" .. sh.quote(v) end
  table.sort(vars)
  local script = ("package.path = %q; package.cpath = %q\n"):format(package.path, package.cpath) .. [[
    local cases = require "support.transport_contract"
    local json = require "quecapi.json"
    io.write(json.encode(cases.run(cases.case(arg[1]), json.decode(arg[2]), "curl")))
  ]]
  local file = os.tmpname()
  finally(function() os.remove(file) end)
  sh.write(file, script)
  local out = sh.output(("env %s %s %s %s %s"):format(table.concat(vars, " "), LUA, sh.quote(file),
    sh.quote(case.name), sh.quote(json.encode(env))))
  return assert(json.decode(out), out)
end

describe("[12.6] one transport contract", function()
  local srv, env

  setup(function()
    srv = nginx.start {
      http = "lua_shared_dict contract 1m; client_body_buffer_size 1m;",
      main = "env http_proxy=http://127.0.0.1:1; env https_proxy=http://127.0.0.1:1; env no_proxy=;",
      server = SERVER,
    }
    env = {
      origin = srv.url, fake = by_name(fake.url), fake_ip = fake.url, wronghost = by_name(fake.wronghost_url),
      unknownca = by_name(fake.unknownca_url), ca = fake.ca, other_ca = fake.dir .. "/unknownca.pem",
    }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  local function never_count()
    local status, body = srv:request("/contract/count")
    assert(status == 200, body)
    return tonumber(body)
  end

  it("[12.6] every case expects one result, or says why the transports differ", function()
    for _, case in ipairs(cases.cases) do
      if case.curl or case.ngx then
        assert.is_nil(case.expect, case.name)
        assert.is_table(case.curl, case.name)
        assert.is_table(case.ngx, case.name)
        assert.is_string(case.differs, case.name)
      else
        assert.is_table(case.expect, case.name)
        assert.is_nil(case.differs, case.name)
      end
    end
  end)

  it("[12.6] random header blocks read the same through both transports", function()
    local blocks = cases.random_blocks(12, 300)
    local by_curl = cases.read_blocks(blocks, srv.url, "curl")
    local status, by_ngx = srv:json("/contract/blocks", { blocks = blocks, origin = srv.url }, 60)
    assert.are.equal(200, status, tostring(by_ngx) .. "\n" .. srv:error_log())
    local answers, refusals = 0, 0
    for i, block in ipairs(blocks) do
      local a, b = by_curl[i], by_ngx[i]
      local label = ("block %d %q: curl %s, ngx %s"):format(i, block, json.encode(a), json.encode(b))
      if a.kind then
        refusals = refusals + 1
        assert.are.equal("network", a.kind, label)
        assert.are.equal("network", b.kind, label)
      else
        answers = answers + 1
        assert.are.equal(200, a.status, label)
        assert.are.same(a, b, label)
      end
    end
    -- both sides of the rules were exercised
    assert.is_true(answers > 150 and refusals > 15, ("%d answers, %d refusals"):format(answers, refusals))
  end)

  for _, transport in ipairs { "curl", "ngx" } do
    describe(transport .. " transport", function()
      local before

      setup(function() before = never_count() end)

      for _, case in ipairs(cases.cases) do
        it("[12.6] " .. case.name, function()
          local out
          if transport == "ngx" then
            local status
            status, out = srv:json("/contract/run", { case = case.name, env = env }, 60)
            assert.are.equal(200, status, tostring(out) .. "\n" .. srv:error_log())
          elseif case.environment then
            out = run_in_child(case, env)
          else
            out = cases.run(case, env, "curl")
          end
          check(case, out, transport, env)
        end)
      end

      it("[12.6] sent nothing for a refused request", function()
        assert.are.equal(before, never_count())
      end)
    end)
  end
end)
