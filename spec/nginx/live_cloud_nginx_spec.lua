-- What the live cloud accepts, through the ngx transport inside a real nginx:
-- form bodies keep secrets out of URLs ([11.2]) and a refused token is renewed
-- once and the call repeated once ([11.4]), as with libcurl (live_cloud_spec).
local fake = require "support.fake"
local nginx = require "support.nginx"

local PHONE, PASSWORD = "13500000030", "Ngx-Live-Pa55"
local LIST = "/v2/binding/enduserapi/userDeviceList"
local REFRESH = "/v2/enduser/enduserapi/refreshToken"

local SERVER = [[
location = /login {
    content_by_lua_block {
        local app = require "support.in_nginx"
        local c = app.client { token_store = "shdict", token_dict = "tokens" }
        local res, err = c:phone_pwd_login { phone = os.getenv("SPEC_PHONE"), password = os.getenv("SPEC_PASSWORD") }
        local sms = c:send_phone_sms_code { phone = os.getenv("SPEC_PHONE"), codeType = 1 }
        local refreshed, rerr = c:refresh_token {}
        app.reply { ok = res ~= nil and sms ~= nil and refreshed ~= nil, err = err or rerr,
                    transport = c.transport:choose(), tokens = c:get_tokens() }
    }
}
location = /list {
    content_by_lua_block {
        local app = require "support.in_nginx"
        local c = app.client { token_store = "shdict", token_dict = "tokens", retry = false }
        local before = c:get_tokens().access_token
        local res, err, code, kind = c:user_device_list {}
        app.reply { ok = res ~= nil, err = err, code = code, kind = kind,
                    renewed = c:get_tokens().access_token ~= before }
    }
}
]]

describe("the live cloud's wire format through the ngx transport", function()
  local srv
  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 2)
    srv = nginx.start {
      main = ("env FAKECLOUD_URL; env FAKECLOUD_CA; env SPEC_PHONE=%s; env SPEC_PASSWORD=%s;"):format(PHONE, PASSWORD),
      http = "lua_shared_dict tokens 1m;",
      server = SERVER,
    }
  end)
  teardown(function() if srv then srv:stop() end end)
  after_each(function() fake.clear_faults() end)

  it("[11.2] logs in, sends an SMS and refreshes with nothing secret in the URL", function()
    local seq = fake.seq()
    local status, out = srv:json("/login")
    assert.are.equal(200, status, srv:error_log())
    assert.is_true(out.ok, out.err)
    assert.are.equal("ngx", out.transport)
    local reqs = fake.requests(seq)
    assert.are.equal(3, #reqs)
    local secrets = { PASSWORD, (out.tokens.refresh_token:gsub("^Bearer ", "")) }
    for _, r in ipairs(reqs) do
      assert.are.equal("application/x-www-form-urlencoded", r.content_type)
      for _, field in ipairs { "pwd", "signature", "refreshToken", "phone" } do
        assert.is_nil(r.url:find(field .. "=", 1, true), r.url)
        if r.args[field] then secrets[#secrets + 1] = r.args[field] end
      end
    end
    for _, r in ipairs(reqs) do
      for _, s in ipairs(secrets) do assert.is_nil(r.url:find(s, 1, true), r.url) end
    end
  end)

  for _, case in ipairs { { status = 401 }, { code = 4001 }, { code = 1003 }, { code = 401 } } do
    local label = case.status and "HTTP 401" or ("code " .. case.code)
    it("[11.4] renews once and repeats once on " .. label, function()
      local seq = fake.seq()
      fake.auth_failure(case)
      local status, out = srv:json("/list")
      assert.are.equal(200, status, srv:error_log())
      assert.is_true(out.ok, out.err)
      assert.is_true(out.renewed)
      local paths = {}
      for _, r in ipairs(fake.requests(seq)) do paths[#paths + 1] = r.path end
      assert.are.same({ LIST, REFRESH, LIST }, paths)
    end)
  end

  it("[11.4] never loops when the renewed token is refused too", function()
    local seq = fake.seq()
    fake.auth_failure { status = 401, count = 50 }
    local status, out = srv:json("/list")
    assert.are.equal(200, status, srv:error_log())
    assert.is_false(out.ok)
    assert.are.equal("auth", out.kind)
    assert.are.equal(3, #fake.requests(seq))
  end)
end)
