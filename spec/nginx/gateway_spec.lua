-- examples/gateway.conf, as shipped, started against the fake cloud: the install
-- paths, the CA bundle, the platform's host and the port are swapped for this
-- checkout's. A browser's view: session cookie in, the platform's answers out,
-- never a token or the user domain secret.
local fake = require "support.fake"
local core = require "quecapi.core"
local json = require "quecapi.json"
local nginx = require "support.nginx"
local shell = require "support.sh"

local sh, read = shell.run, shell.read
local PHONE, PASSWORD = "13400000016", "gateway-pass-16"
local LIST = "/api/v2/binding/enduserapi/userDeviceList"

describe("[16] examples/gateway.conf", function()
  local dir, port, session, cookie
  local seen = {} -- every answer the browser got: status line, headers, body

  -- One request as the browser makes it; the answer is kept for the secrets check.
  local function call(method, path, body, with_cookie)
    local headers = {}
    if body then headers["Content-Type"] = "application/json" end
    if with_cookie ~= false and (with_cookie or cookie) then headers.Cookie = with_cookie or cookie end
    local status, text, h = session:request { method = method, url = "http://127.0.0.1:" .. port .. path,
                                              body = body, headers = headers, timeout = 30 }
    assert(status, text)
    local lines = {}
    for k, v in pairs(h) do lines[#lines + 1] = k .. ": " .. v end
    seen[#seen + 1] = status .. "\n" .. table.concat(lines, "\n") .. "\n\n" .. text
    return status, json.decode(text), text, h
  end

  local function login()
    local status, res, _, h = call("POST", "/api/login", json.encode { phone = PHONE, password = PASSWORD }, false)
    assert.are.equal(200, status, read(dir .. "/logs/error.log"))
    assert.are.same({ ok = true }, res)
    cookie = assert(h["set-cookie"]:match("^(qsid=%w+);"))
    assert.matches("HttpOnly", h["set-cookie"])
  end

  -- n requests at once, one curl each: their statuses.
  local function parallel(n, path)
    local cmds = {}
    for i = 1, n do
      cmds[#cmds + 1] = ("curl -s -m 60 -o /dev/null -w '%%{http_code}' -H %s %s > %s/p-%d.txt &"):format(
        shell.quote("Cookie: " .. cookie), shell.quote("http://127.0.0.1:" .. port .. path), dir, i)
    end
    sh("{ " .. table.concat(cmds, " ") .. " wait; } 2>/dev/null")
    local statuses = {}
    for i = 1, n do statuses[i] = tonumber(read(("%s/p-%d.txt"):format(dir, i))) end
    return statuses
  end


  setup(function()
    fake.reset()
    fake.user(PHONE, PASSWORD, 3)
    local root = nginx.root
    local fake_port = fake.url:match(":(%d+)$")
    dir, port = nginx.start_example("gateway.conf", {
      { '"/usr/local/share/lua/5.1/?.lua;;"', '"' .. root .. '/lua/?.lua;;"' },
      { '"/usr/local/lib/lua/5.1/?.so;;"', '"' .. root .. '/build/luajit/?.so;;"' },
      { "/etc/ssl/certs/ca-certificates.crt", fake.ca, 2 },
      { 'local PLATFORM = "https://iot-api.quectelcn.com"', 'local PLATFORM = "https://localhost:' .. fake_port .. '"' },
      { "server iot-api.quectelcn.com:443;", "server 127.0.0.1:" .. fake_port .. ";" },
      { "proxy_set_header Host iot-api.quectelcn.com;", "proxy_set_header Host localhost;" },
      { "proxy_ssl_name iot-api.quectelcn.com;", "proxy_ssl_name localhost;" },
    }, ("QUECAPI_USER_DOMAIN=%s QUECAPI_USER_DOMAIN_SECRET=%s"):format(fake.user_domain, fake.secret))
    session = assert(core.session())
  end)

  teardown(function()
    fake.configure { access_ttl = 7200 }
    if dir then nginx.stop_example(dir) end
  end)

  it("[16] logs in through quecapi and answers the browser without the tokens", function()
    login()
  end)

  it("[16] passes an allowed operation to the platform with the user's token, and its answer back", function()
    local seq = fake.seq()
    local status, res, text, h = call("GET", LIST .. "?pageSize=10")
    assert.are.equal(200, status, read(dir .. "/logs/error.log"))
    assert.are.equal(200, res.code)
    assert.are.equal(3, #res.data.list)
    assert.matches("^application/json", h["content-type"])
    assert.is_nil(h["set-cookie"])
    local got = fake.received(seq, "/v2/binding/enduserapi/userDeviceList")
    assert.are.equal(1, #got)
    assert.are.equal("/v2/binding/enduserapi/userDeviceList?pageSize=10", got[1].url)
    assert.is_nil(got[1].headers.cookie)
    -- the same request straight to the platform answers the same
    local direct, decoded = fake.api { path = "/v2/binding/enduserapi/userDeviceList",
                                       query = { pageSize = 10 }, token = got[1].authorization }
    assert.are.equal(200, direct)
    assert.are.same(decoded, json.decode(text))
  end)

  it("[16] answers 404 for paths the configuration does not name, and sends nothing", function()
    local seq = fake.seq()
    for _, path in ipairs { "/api/v2/enduser/enduserapi/phonePwdLogin", "/api/v2/enduser/enduserapi/refreshToken",
                            "/api/v2/enduser/enduserapi/userLogout", "/api/nothing", "/api/" } do
      local status, res = call("GET", path)
      assert.are.equal(404, status, path)
      assert.are.equal("usage", res.kind)
    end
    local status = call("POST", "/api/v2/enduser/enduserapi/phonePwdLogin", "phone=1&pwd=2")
    assert.are.equal(404, status)
    assert.are.same({}, fake.requests(seq))
  end)

  it("[16] answers 405 for another method of an allowed path", function()
    local status, res, _, h = call("POST", LIST, "{}")
    assert.are.equal(405, status)
    assert.are.equal("usage", res.kind)
    assert.are.equal("GET", h.allow)
  end)

  it("[16] answers 400 with the usage message for bad parameters, and sends nothing", function()
    local seq = fake.seq()
    local cases = {
      { "GET", LIST .. "?pageSize=ten", nil, "user_device_list: parameter 'pageSize' must be an integer" },
      { "GET", LIST .. "?bogus=1", nil, "user_device_list: unknown parameter 'bogus'" },
      { "GET", "/api/v2/binding/enduserapi/getDeviceBusinessAttributes?pk=p11pLZ", nil,
        "get_device_business_attributes: missing required parameter 'dk'" },
      { "POST", "/api/v2/binding/enduserapi/batchControlDevice", "[1,2]",
        "batch_control_device: the body must be a JSON object" },
      { "POST", "/api/v2/binding/enduserapi/batchControlDevice", "{not json",
        "batch_control_device: the body is not JSON" },
      { "POST", "/api/v2/binding/enduserapi/batchControlDevice?type=1", "{}",
        "batch_control_device: parameter 'type' goes in the request body" },
    }
    for _, c in ipairs(cases) do
      local status, res = call(c[1], c[2], c[3])
      assert.are.equal(400, status, c[2])
      assert.are.same({ error = c[4], kind = "usage" }, res)
    end
    assert.are.same({}, fake.requests(seq))
  end)

  it("[16] passes a JSON body through as it came", function()
    local _, devices = call("GET", LIST)
    local d = devices.data.list[1]
    local seq = fake.seq()
    local body = json.encode { data = '[{"switch":true}]', type = 2,
                               deviceList = { { productKey = d.productKey, deviceKey = d.deviceKey } } }
    local status, res = call("POST", "/api/v2/binding/enduserapi/batchControlDevice", body)
    assert.are.equal(200, status)
    assert.are.equal(200, res.code, json.encode(res))
    local got = fake.received(seq, "/v2/binding/enduserapi/batchControlDevice")
    assert.are.equal(1, #got)
    assert.are.equal(body, got[1].raw_body)
  end)

  it("[16] answers 401 without a session, and for a session with no tokens", function()
    local seq = fake.seq()
    local status, res = call("GET", LIST, nil, false)
    assert.are.equal(401, status)
    assert.are.same({ error = "not logged in", kind = "auth" }, res)
    status, res = call("GET", LIST, nil, "qsid=" .. string.rep("a", 32))
    assert.are.equal(401, status)
    assert.are.equal("auth", res.kind)
    assert.are.same({}, fake.requests(seq))
  end)

  it("[16] renews a due token once for 100 requests at once, across the workers", function()
    fake.configure { access_ttl = 100 } -- within the refresh margin (300 s): due at once
    login()
    fake.configure { access_ttl = 7200 }
    local seq = fake.seq()
    local statuses = parallel(100, LIST .. "?pageSize=5")
    for i = 1, 100 do assert.are.equal(200, statuses[i], read(dir .. "/logs/error.log")) end
    local refreshes = fake.received(seq, "/v2/enduser/enduserapi/refreshToken")
    assert.are.equal(1, #refreshes)
    local lists = fake.received(seq, "/v2/binding/enduserapi/userDeviceList")
    assert.are.equal(100, #lists)
    local tokens, n = {}, 0
    for _, r in ipairs(lists) do
      if not tokens[r.authorization] then n = n + 1 end
      tokens[r.authorization] = true
    end
    assert.are.equal(1, n)
    assert.is_nil(tokens[refreshes[1].authorization]) -- the renewed one, not the old
    -- and a later request needs no renewal
    seq = fake.seq()
    assert.are.equal(200, (call("GET", LIST)))
    assert.are.same({}, fake.received(seq, "/v2/enduser/enduserapi/refreshToken"))
  end)

  it("[16] sends a signed call (an SMS code) through quecapi in content_by_lua", function()
    local status, res = call("POST", "/api/sms", json.encode { phone = "13400000099", codeType = 1 })
    assert.are.equal(200, status, read(dir .. "/logs/error.log"))
    assert.are.same({ ok = true }, res)
    assert.is_string(fake.sms_code("13400000099", 1))
  end)

  it("[16] logs out: the session's tokens are gone", function()
    assert.are.equal(200, (call("POST", "/api/logout")))
    local status = call("GET", LIST)
    assert.are.equal(401, status)
  end)

  it("[16] never shows the browser a token or the user domain secret", function()
    local secrets = { fake.secret }
    for _, r in ipairs(fake.requests(0)) do
      if r.authorization then secrets[#secrets + 1] = r.authorization:gsub("^Bearer%s+", "") end
      if r.args and type(r.args.refreshToken) == "string" then
        secrets[#secrets + 1] = r.args.refreshToken:gsub("^Bearer%s+", "")
      end
    end
    assert.is_true(#secrets > 3)
    assert.is_true(#seen > 20)
    for _, answer in ipairs(seen) do
      for _, s in ipairs(secrets) do
        assert.is_nil(answer:find(s, 1, true), "a secret in an answer to the browser:\n" .. answer:sub(1, 300))
      end
    end
  end)
end)
