-- Backoff jitter in nginx workers forked from one master ([10.18]): each worker
-- draws its own, although the master loaded the module before the fork.
local nginx = require "support.nginx"
local jitter = require "support.jitter"

local DRAWS, check_draws = jitter.DRAWS, jitter.check_draws

describe("backoff jitter in nginx", function()
  it("[10.18] differs between nginx workers forked from one master", function()
    -- the master loads the module (init_by_lua); each worker draws after the fork
    local srv = nginx.start {
      workers = 4,
      http = [[
        lua_shared_dict jitter 1m;
        init_by_lua_block { require "quecapi.retry" }
        init_worker_by_lua_block {
          local draw = function() ]] .. DRAWS .. [[ end
          ngx.shared.jitter:set(ngx.worker.id(), draw())
        }
      ]],
      server = [[
        location = /jitter {
          content_by_lua_block {
            for i = 0, ngx.worker.count() - 1 do ngx.say(ngx.shared.jitter:get(i) or "missing") end
          }
        }
      ]],
    }
    local status, body
    for _ = 1, 100 do -- every worker has drawn once its init_worker has run
      status, body = srv:request("/jitter")
      if status ~= 200 or not body:find("missing", 1, true) then break end
      require("quecapi.core").sleep(0.05)
    end
    local log = srv:error_log()
    srv:stop()
    assert.are.equal(200, status, tostring(body) .. "\n" .. log)
    local seen = {}
    for line in body:gmatch("[^\n]+") do
      check_draws(line)
      assert.is_nil(seen[line], "two workers drew the same delays: " .. line)
      seen[line] = true
    end
    local workers = 0
    for _ in pairs(seen) do workers = workers + 1 end
    assert.are.equal(4, workers)
  end)
end)
