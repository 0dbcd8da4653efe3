-- The fault matrix for both transports: every case ends in the documented result
-- (nil, err or success after a documented retry), never a throw, never a hang,
-- never a secret in the error or the log.
local fake = require "support.fake"
local matrix = require "support.fault_matrix"
local nginx = require "support.nginx"

local function check(case, out, transport)
  local label = transport .. " / " .. case.name
  assert.is_false(out.threw, label .. " raised: " .. tostring(out.err))
  if case.ok then
    assert.is_true(out.ok, label .. ": " .. tostring(out.err))
  else
    assert.is_false(out.ok, label .. " succeeded")
    assert.matches(case.err or "", out.err, 1, true)
    assert.are.equal(case.code, out.code, label)
    if case.kind then assert.are.equal(case.kind, out.kind, label .. ": " .. tostring(out.err)) end
  end
  assert.is_true(out.elapsed < (case.max_seconds or 8), label .. " took " .. out.elapsed .. "s")
  if case.retried then
    local all = table.concat(out.logs, "\n")
    assert.truthy(all:find("retrying", 1, true) or all:find("5032", 1, true), label .. " did not retry")
  end
  for _, text in ipairs { out.err or "", table.concat(out.logs, "\n") } do
    for _, s in ipairs(out.secrets) do
      assert.is_nil(text:find(s, 1, true), label .. " leaked a secret")
    end
  end
end

local function prepare(case)
  fake.clear_faults()
  if case.fault then fake.fault(case.fault) end
end

describe("fault matrix", function()
  setup(function()
    fake.reset()
    fake.user(matrix.PHONE, matrix.PASSWORD, 2)
  end)
  after_each(function() fake.clear_faults() end)

  describe("curl transport", function()
    for _, case in ipairs(matrix.cases) do
      it(case.name, function()
        prepare(case)
        local out = matrix.run(case, { url = fake.url, ca = fake.ca, transport = "curl",
                                       refused_url = "https://127.0.0.1:1" })
        check(case, out, "curl")
      end)
    end
  end)

  describe("ngx transport", function()
    local srv
    setup(function()
      srv = nginx.start {
        main = "env FAKECLOUD_URL; env FAKECLOUD_CA;",
        server = [[
          location = /matrix {
            content_by_lua_block {
              local matrix = require "support.fault_matrix"
              local case = matrix.case(ngx.unescape_uri(ngx.var.arg_case))
              -- nginx checks certificates against host names only: address the fake by name
              local url = os.getenv("FAKECLOUD_URL"):gsub("127%.0%.0%.1", "localhost")
              local out = matrix.run(case, { url = url, transport = "ngx",
                                             refused_url = "https://127.0.0.1:1" })
              ngx.say(require("quecapi.json").encode(out))
            }
          }
        ]],
      }
    end)
    teardown(function() if srv then srv:stop() end end)

    for _, case in ipairs(matrix.cases) do
      it(case.name, function()
        prepare(case)
        local status, out = srv:json("/matrix?case=" .. case.name:gsub("[^%w]", function(ch)
          return ("%%%02X"):format(ch:byte()) end))
        assert.are.equal(200, status, tostring(out) .. "\n" .. srv:error_log())
        assert.is_table(out, srv:error_log())
        out.logs = out.logs or {}
        check(case, out, "ngx")
      end)
    end
  end)
end)
