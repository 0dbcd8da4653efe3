-- The shdict token store inside a real nginx: tokens shared by workers, their
-- lifetime in the dict, and the lock that makes renewal single-flight.
local nginx = require "support.nginx"
local json = require "quecapi.json"
local shdict = require "quecapi.store.shdict"

local TOKENS = {
  access_token = "Bearer access.jwt", access_expires = 1744787786,
  refresh_token = "Bearer refresh.jwt", refresh_expires = 1747372586,
}

local SERVER = [=[
        location = /store {
            content_by_lua_block {
                local json = require "quecapi.json"
                local args = ngx.req.get_uri_args()
                local opts = { dict = args.dict or "tokens" }
                if args.lock_ttl then opts.lock_ttl = tonumber(args.lock_ttl) end
                local store, err = require("quecapi.store.shdict").new(opts)
                local out = {}
                if not store then
                    out.err = err
                else
                    local op, key = args.op, args.key or "k"
                    if op == "set" then
                        ngx.req.read_body()
                        out.ok, out.err = store:set(key, json.decode(ngx.req.get_body_data()))
                    elseif op == "get" then
                        out.tokens = store:get(key)
                    elseif op == "delete" then
                        out.ok = store:delete(key)
                    elseif op == "ttl" then
                        out.ttl = ngx.shared[opts.dict]:ttl("quecapi:" .. key)
                    elseif op == "lock" then
                        -- take the lock, hold it `hold` seconds, release it
                        ngx.update_time()
                        local t0 = ngx.now()
                        local handle, lerr = store:lock(key, tonumber(args.timeout))
                        ngx.update_time()
                        out.waited = ngx.now() - t0
                        out.locked, out.err = handle ~= nil, lerr
                        if handle then
                            ngx.sleep(tonumber(args.hold) or 0)
                            if args.release ~= "no" then out.unlocked = store:unlock(key, handle) end
                        end
                    elseif op == "unlock_other" then
                        local handle = assert(store:lock(key, 0))
                        out.ok, out.err = store:unlock(key, "someone else")
                        out.mine = store:unlock(key, handle)
                    end
                end
                ngx.header["Content-Type"] = "application/json"
                ngx.print(json.encode(out))
            }
        }
]=]

describe("shdict store", function()
  it("needs nginx", function()
    local s, err = shdict.new { dict = "tokens" }
    assert.is_nil(s)
    assert.matches("OpenResty", err)
  end)

  describe("in nginx", function()
    local srv

    setup(function()
      srv = nginx.start { workers = 2, http = "lua_shared_dict tokens 1m;", server = SERVER }
    end)

    teardown(function()
      if srv then srv:stop() end
    end)

    local function call(query, body)
      local status, out = srv:json("/store?" .. query, body)
      assert(status == 200, tostring(out) .. "\n" .. srv:error_log())
      return out
    end

    it("refuses a dict that does not exist", function()
      assert.matches("no shared dict 'nope'", call("dict=nope&op=get").err)
    end)

    it("round-trips tokens across requests (and workers)", function()
      assert.is_true(call("op=set&key=rt", TOKENS).ok)
      for _ = 1, 4 do assert.are.same(TOKENS, call("op=get&key=rt").tokens) end
      assert.is_true(call("op=delete&key=rt").ok)
      assert.is_nil(call("op=get&key=rt").tokens)
    end)

    it("keeps tokens until the refresh token expires", function()
      local now = os.time()
      call("op=set&key=e1", { access_token = "a", access_expires = now + 50,
                              refresh_token = "r", refresh_expires = now + 100 })
      local ttl = call("op=ttl&key=e1").ttl
      assert.is_true(ttl > 97 and ttl <= 100, "ttl " .. ttl)
      -- no refresh token: until the access token expires
      call("op=set&key=e2", { access_token = "a", access_expires = now + 50 })
      ttl = call("op=ttl&key=e2").ttl
      assert.is_true(ttl > 47 and ttl <= 50, "ttl " .. ttl)
      -- no expiry at all: kept (ttl 0 means no limit)
      call("op=set&key=e3", { access_token = "a" })
      assert.are.equal(0, call("op=ttl&key=e3").ttl)
      -- expired already: gone at once, never kept forever
      call("op=set&key=e4", { access_token = "a", refresh_token = "r", refresh_expires = now - 10 })
      ttl = call("op=ttl&key=e4").ttl
      assert.is_true(ttl > 0 and ttl <= 1, "ttl " .. ttl)
    end)

    it("makes a second locker wait for the first one's unlock", function()
      local bodies = srv:parallel {
        "/store?op=lock&key=l1&timeout=3&hold=0.5",
        "/store?op=lock&key=l1&timeout=3&hold=0.5",
      }
      local a, b = json.decode(bodies[1]), json.decode(bodies[2])
      assert.is_true(a.locked and b.locked, bodies[1] .. bodies[2])
      assert.is_true(a.unlocked and b.unlocked)
      local first, second = math.min(a.waited, b.waited), math.max(a.waited, b.waited)
      assert.is_true(first < 0.2, "first waited " .. first)
      assert.is_true(second >= 0.4 and second < 1.5, "second waited " .. second)
    end)

    it("times a second locker out", function()
      local bodies = srv:parallel {
        "/store?op=lock&key=l2&timeout=0.2&hold=0.8",
        "/store?op=lock&key=l2&timeout=0.2&hold=0.8",
      }
      local a, b = json.decode(bodies[1]), json.decode(bodies[2])
      assert.is_true(a.locked ~= b.locked, bodies[1] .. bodies[2])
      local loser = a.locked and b or a
      assert.are.equal("timeout", loser.err)
      assert.is_true(loser.waited >= 0.19 and loser.waited < 0.6, "waited " .. loser.waited)
    end)

    it("lets a lock expire after lock_ttl when its holder never unlocks", function()
      local first = call("op=lock&key=l3&timeout=0&lock_ttl=0.3&release=no")
      assert.is_true(first.locked)
      local second = call("op=lock&key=l3&timeout=2")
      assert.is_true(second.locked)
      assert.is_true(second.waited >= 0.2 and second.waited < 1, "waited " .. second.waited)
    end)

    it("unlocks only with the holder's handle", function()
      local out = call("op=unlock_other&key=l4")
      assert.is_nil(out.ok)
      assert.are.equal("lock not held", out.err)
      assert.is_true(out.mine)
    end)
  end)
end)
