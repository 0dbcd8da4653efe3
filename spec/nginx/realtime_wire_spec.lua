-- The nginx link's bytes against a broker that does what the spec scripts
-- (support/hostile_broker.lua, in the same nginx): packets that share a frame or
-- span several, control frames between fragments, QoS 1 and 2, messages larger
-- than max_message, a handshake that is not an upgrade, and frames or packets
-- no broker should send. Nothing raises; the link either hands the message out
-- or says the connection is gone.
local nginx = require "support.nginx"
local json = require "quecapi.json"

local HTTP = [[
lua_shared_dict wire 1m;
lua_socket_log_errors off;
]]

local SERVER = [[
location /hostile/ { content_by_lua_block { require("support.hostile_broker").serve() } }

location = /wire {
    content_by_lua_block {
        local json = require "quecapi.json"
        ngx.req.read_body()
        local o = json.decode(ngx.req.get_body_data())
        o.url = "ws://127.0.0.1:" .. ngx.var.server_port .. "/hostile/" .. o.scenario
        o.client_id = "qu_1_1"
        o.username, o.password = "", "Bearer x.y.z"
        local link, err, kind, connack = require("quecapi.realtime.ngx_link").connect(o)
        local out = { err = err, kind = kind, connack = connack, messages = json.array {} }
        if link then
            if o.subscribe then
                local ok, refused, skind = link:subscribe(o.subscribe, 0)
                out.sub = { ok = ok, refused = refused, kind = skind }
            end
            for i = 1, o.receive or 0 do
                local a, b, c = link:receive(o.wait or 2)
                out.messages[i] = { topic = a, payload = b, size = c }
                if not a then break end
            end
            out.connected = link:connected()
            link:close()
            local a, b, c = link:receive(0)
            out.closed = { topic = a, err = b, kind = c }
        end
        ngx.sleep(0.1)
        local got = {}
        while true do
            local v = ngx.shared.wire:lpop("got:" .. o.scenario)
            if not v then break end
            got[#got + 1] = v
        end
        out.got = json.array(got)
        ngx.say(json.encode(out))
    }
}
]]

local srv

setup(function()
  srv = nginx.start { workers = 1, http = HTTP, server = SERVER }
end)

teardown(function()
  if srv then srv:stop() end
end)

local function wire(o)
  local status, text = srv:request { method = "POST", path = "/wire", body = json.encode(o), timeout = 30 }
  assert.are.equal(200, status, tostring(text) .. "\n" .. srv:error_log():sub(-2000))
  return assert(json.decode(text), text)
end

local function has(list, item)
  for _, v in ipairs(list) do
    if v == item then return true end
  end
  return false
end

describe("[15] the nginx link's bytes (a scripted broker)", function()
  it("takes packets that share a frame or span several, answers pings, PUBACKs and PUBRECs, skips big messages",
    function()
      local r = wire { scenario = "frames", subscribe = { "t/#", "refused/#" }, receive = 10, max_message = 100,
                       keepalive = 40 }
      assert.is_nil(r.err)
      assert.are.same({ ok = true, refused = { "refused/#" } }, r.sub)
      local got = {}
      for i, m in ipairs(r.messages) do
        got[i] = m.topic and (m.topic .. "=" .. (m.payload == false and ("dropped " .. m.size) or m.payload))
          or m.payload
      end
      assert.are.same({ "t/1=one", "t/2=two", "t/3=three", "t/4=four", "t/big=dropped 5000", "t/5=five",
                        "t/big2=dropped 3000", "t/6=six", "t/7=seven", "timeout" }, got)
      assert.is_true(r.connected)
      -- what the broker got back: CONNECT, SUBSCRIBE, the pong, PUBACK 77, PUBREC 9, PUBCOMP 9, DISCONNECT
      assert.is_true(has(r.got, "pong:hi"), json.encode(r.got))
      for _, t in ipairs { "10", "82", "40", "50", "70", "e0" } do
        assert.is_true(has(r.got, t), t .. " not in " .. json.encode(r.got))
      end
      assert.are.same({ err = "the connection is closed", kind = "closed" }, r.closed)
    end)

  it("refuses a handshake that is not a WebSocket upgrade to mqtt", function()
    for scenario, pattern in pairs { status = "HTTP 404", accept = "Sec%-WebSocket%-Accept", proto = "subprotocol" } do
      local r = wire { scenario = scenario, timeout = 2 }
      assert.are.equal("connect", r.kind, scenario)
      assert.matches(pattern, r.err)
    end
  end)

  it("reports a refused CONNECT as auth with its code, and a silent broker as a timeout", function()
    local r = wire { scenario = "connack5", timeout = 2 }
    assert.are.same({ "auth", 5 }, { r.kind, r.connack })
    assert.matches("not authorized", r.err)
    assert.is_nil(r.err:find("x.y.z", 1, true))
    r = wire { scenario = "silent", timeout = 0.5 }
    assert.are.equal("timeout", r.kind)
  end)

  it("ends the connection on frames and packets no broker sends, without raising", function()
    for _, scenario in ipairs { "masked", "malformed", "close", "text", "badtype" } do
      local r = wire { scenario = scenario, receive = 2, wait = 2 }
      assert.is_nil(r.err, scenario)
      local m = r.messages[1]
      assert.are.same({ "the connection was lost", "closed" }, { m.payload, m.size }, scenario)
      assert.is_false(r.connected, scenario)
    end
  end)

  it("sends PINGREQ when the keepalive is due and gives up when no PINGRESP comes", function()
    local r = wire { scenario = "pingresp", keepalive = 1, receive = 1, wait = 3 }
    assert.is_true(r.messages[1].size == "closed", json.encode(r))
    assert.is_true(has(r.got, "c0"), json.encode(r.got))
  end)
end)
