-- The realtime channel's session logic over a scripted broker (support.realtime_link)
-- and a scripted platform (support.recorder): what a connect sends, token renewal
-- on a refused CONNECT, typed events, commands checked before they are sent,
-- reconnects with fresh values, the watchdog, close() at any point, one session
-- per account, and no secret in any log line.
local quecapi = require "quecapi"
local json = require "quecapi.json"
local jwt = require "quecapi.jwt"
local core = require "quecapi.core"
local channel = require "quecapi.realtime.channel"
local recorder = require "support.recorder"
local scripted = require "support.realtime_link"

local TSL = "GET /v2/binding/enduserapi/productTSL"
local ATTRS = "GET /v2/binding/enduserapi/getDeviceBusinessAttributes"
local REFRESH = "PUT /v2/enduser/enduserapi/refreshToken"
local URL = "wss://iot-south.example.com:8443/ws/v2"
local PK = "p11pLZ"

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function b64url(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for k = 1, chars do
      local v = math.floor(n / 2 ^ (18 - 6 * (k - 1))) % 64
      out[#out + 1] = B64:sub(v + 1, v + 1)
    end
  end
  return table.concat(out)
end

-- An access token as the platform issues it: "Bearer <JWT>" with a uid claim.
local function token(uid, n)
  return "Bearer " .. b64url('{"alg":"HS256"}') .. "." .. b64url(json.encode { uid = uid, jti = n }) .. ".c2ln" .. n
end
local TOKEN, RENEWED = token("C100042", 1), token("C100042", 2)

local function int(min, max) return { min = tostring(min), max = tostring(max), step = "1", unit = "" } end
local MODEL = { properties = {
  { code = "switch", dataType = "BOOL", subType = "RW" },
  { code = "brightness", dataType = "INT", subType = "RW", specs = int(0, 100) },
  { code = "temperature", dataType = "FLOAT", subType = "R" },
} }

local function envelope(data) return 200, json.encode { code = 200, msg = "", data = data }, {} end

-- Reads of current values answer 4026 (the daily quota) while this is set.
local fail_reads = false

-- A platform: the thing model, current values, and a refresh that hands out RENEWED.
local function platform()
  return recorder.routes {
    [TSL] = { function() return envelope(MODEL) end },
    [ATTRS] = { function(req)
      if fail_reads then return 200, json.encode { code = 4026, msg = "quota used up" }, {} end
      local dk = recorder.args(req).dk
      return envelope { customizeTslInfo = {
        { resourceCode = "brightness", resourceValce = dk == "D1" and "70" or "5", dataType = "INT" },
        { resourceCode = "switch", resourceValce = "true", dataType = "BOOL" } } }
    end },
    [REFRESH] = { function()
      return envelope { accessToken = { token = RENEWED, expirationTime = os.time() + 7200 },
                        refreshToken = { token = "refresh-2", expirationTime = os.time() + 86400 } }
    end },
  }
end

local lines, transport, client, broker, opened

-- The channel's own lines, not passed through the client's redaction: the
-- channel must never format a secret in the first place.
local function raw_log(level, fmt, ...)
  lines[#lines + 1] = level .. " " .. string.format(fmt, ...)
end

local function devices(n)
  local list = {}
  for i = 1, n do list[i] = { productKey = PK, deviceKey = "D" .. i } end
  return list
end

local function open(opts, answers, env_extra)
  broker = scripted.new(answers)
  local o = { devices = devices(2), url = URL, watchdog = false }
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.watchdog == "none" then o.watchdog = nil end
  local env = { connect = function(c)
    -- never two sessions: nothing else open when a connect starts
    assert.are.equal(0, broker.open_links())
    return broker.connect(c)
  end, tokens = client.tokens, log = raw_log, verify = client.verify, ca_file = "/etc/client-ca.pem",
    random = function() return 0 end }
  for k, v in pairs(env_extra or {}) do env[k] = v end
  local rt, err, code, kind = channel.open(client, o, env)
  if rt then opened[#opened + 1] = rt end
  return rt, err, code, kind
end

-- The next event within `seconds`, skipping nothing.
local function next_event(rt, seconds)
  local ev, err = rt:receive(seconds or 3)
  assert(ev, "no event: " .. tostring(err))
  return ev
end

local function logged(pattern)
  for _, l in ipairs(lines) do
    if l:find(pattern) then return l end
  end
end

before_each(function()
  fail_reads = false
  require("quecapi.things").MODELS:clear()
  lines, opened = {}, {}
  transport = platform()
  client = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = transport,
                                log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end })
  assert(client:set_tokens { access_token = TOKEN, access_expires = os.time() + 7200,
                             refresh_token = "refresh-1", refresh_expires = os.time() + 86400 })
end)

after_each(function()
  for _, rt in ipairs(opened) do rt:close() end
  -- no secret in any log line, whatever the test did
  for _, l in ipairs(lines) do
    for _, secret in ipairs { TOKEN, RENEWED, TOKEN:sub(8), RENEWED:sub(8), "refresh-1", "refresh-2" } do
      assert(not l:find(secret, 1, true), "a log line shows a secret: " .. l)
    end
  end
end)

describe("[14] realtime channel: connecting", function()
  it("connects as the platform's Apps do and subscribes every device's topics", function()
    local rt = assert(open { devices = devices(12) })
    assert.are.equal(1, #broker.connects)
    local c = broker.connects[1]
    assert.are.equal(URL, c.url)
    assert.are.equal("", c.username)
    assert.are.equal(TOKEN, c.password) -- verbatim, "Bearer " included
    assert.are.equal(jwt.uid(TOKEN), "C100042")
    local ms = tonumber(c.client_id:match("^qu_C100042_(%d+)$"))
    assert.is_true(ms and math.abs(ms - core.now_ms()) < 10000, c.client_id)
    assert.are.equal(40, c.keepalive)
    assert.are.equal("/etc/client-ca.pem", c.ca_file)
    assert.is_true(c.verify)
    -- 12 devices x 6 topics, in SUBSCRIBEs of 10 devices, QoS 0
    local link = broker.current
    assert.are.equal(2, #link.subscribes)
    assert.are.equal(60, #link.subscribes[1].topics)
    assert.are.equal(12, #link.subscribes[2].topics)
    assert.are.equal(0, link.subscribes[1].qos)
    assert.is_true(link.subscribed["q/2/d/qdp11pLZD12/loc_"])
    assert.is_true(link.subscribed["q/2/d/qdp11pLZD1/bus_"])
    assert.is_true(rt:connected())
  end)

  it("takes its options: ca_file, keepalive, connect_timeout, max_message", function()
    assert(open { ca_file = "/mine.pem", keepalive = 25, connect_timeout = 3, max_message = 4096 })
    local c = broker.connects[1]
    assert.are.same({ "/mine.pem", 25, 3, 4096 }, { c.ca_file, c.keepalive, c.timeout, c.max_message })
  end)

  it("opens with no devices at all", function()
    assert(open { devices = {} })
    assert.are.equal(0, #broker.current.subscribes)
  end)

  it("renews the token once when the broker refuses it, and connects with the new one", function()
    local rt = assert(open(nil, { { "the broker refused the connection: not authorized", "auth", 5 } }))
    assert.are.equal(2, #broker.connects)
    assert.are.equal(TOKEN, broker.connects[1].password)
    assert.are.equal(RENEWED, broker.connects[2].password)
    assert.are_not.equal(broker.connects[1].client_id, broker.connects[2].client_id)
    assert.are.equal(1, #transport:to(REFRESH))
    assert.truthy(logged("refused the access token"))
    assert.is_true(rt:connected())
  end)

  it("gives up when the broker refuses the renewed token too", function()
    local refused = { "the broker refused the connection: not authorized", "auth", 5 }
    local rt, err, code, kind = open(nil, { refused, refused })
    assert.is_nil(rt)
    assert.are.equal("auth", kind)
    assert.are.equal(5, code)
    assert.matches("renewed access token", err)
    assert.are.equal(2, #broker.connects)
    assert.are.equal(1, #transport:to(REFRESH))
  end)

  it("reports a connect that fails otherwise with its kind, without renewing", function()
    local rt, err, _, kind = open(nil, { { "TLS handshake failed: certificate verify failed", "tls" } })
    assert.is_nil(rt)
    assert.are.equal("tls", kind)
    assert.matches("certificate verify failed", err)
    assert.are.equal(0, #transport:to(REFRESH))
  end)

  it("refuses bad options before anything is sent", function()
    local cases = {
      { {}, "devices is required" },
      { { devices = "x" }, "devices must be a list" },
      { { devices = { { productKey = "a/b", deviceKey = "D" } } }, "productKey must not contain" },
      { { devices = { { productKey = "p" } } }, "deviceKey must be a non%-empty string" },
      { { devices = {}, nope = 1 }, "unknown option 'nope'" },
      { { devices = {}, url = "ws://iot-south.example.com/ws/v2" }, "unencrypted" },
      { { devices = {}, url = "https://x/ws/v2" }, "wss://" },
      { { devices = {}, keepalive = 0.5 }, "keepalive" },
      { { devices = {}, watchdog = -1 }, "watchdog" },
    }
    for i, c in ipairs(cases) do
      broker = scripted.new()
      local o = c[1]
      if o.devices ~= nil and o.url == nil then o.url = URL end
      local rt, err, _, kind = channel.open(client, o, { connect = broker.connect, tokens = client.tokens,
                                                         log = client.log })
      assert.is_nil(rt, "case " .. i)
      assert.are.equal("usage", kind, "case " .. i)
      assert.matches(c[2], err, 1, false, "case " .. i)
      assert.are.equal(0, #broker.connects, "case " .. i)
    end
    assert.are.equal(0, #transport.sent)
  end)

  it("needs a URL when the client's base_url has no realtime host", function()
    local c2 = assert(quecapi.new { user_domain = "d", user_domain_secret = "s", transport = transport,
                                    base_url = "https://127.0.0.1:1" })
    local rt, err, _, kind = channel.open(c2, { devices = {} }, { connect = scripted.new().connect,
                                                                 tokens = c2.tokens, log = c2.log })
    assert.is_nil(rt)
    assert.are.equal("usage", kind)
    assert.matches("no realtime URL", err)
    -- the region's own
    broker = scripted.new()
    local rt2 = assert(channel.open(client, { devices = {} }, { connect = broker.connect, tokens = client.tokens,
                                                                log = client.log }))
    opened[#opened + 1] = rt2
    assert.are.equal(quecapi.REALTIME_URLS.cn, broker.connects[1].url)
  end)

  it("warns once per URL that TLS verification is off", function()
    for _ = 1, 2 do
      local rt = assert(open({ url = "wss://insecure.example:8443/ws/v2" }, nil, { verify = false }))
      assert.is_false(broker.connects[1].verify)
      rt:close()
    end
    local n = 0
    for _, l in ipairs(lines) do
      if l:find("verification is disabled", 1, true) then n = n + 1 end
    end
    assert.are.equal(1, n)
  end)

  it("keeps one session per account in a process", function()
    local first = assert(open())
    local rt, err, _, kind = open()
    assert.is_nil(rt)
    assert.are.equal("usage", kind)
    assert.matches("already has an open channel", err)
    first:close()
    assert(open())
  end)
end)

describe("[14] realtime channel: events and commands", function()
  it("hands out typed events and drops what it cannot read, with a log line", function()
    local rt = assert(open())
    broker.deliver("q/2/d/qdp11pLZD1/bus_", "{broken")
    broker.deliver("q/2/d/qdp11pLZD9/bus_", '{"data":{"kv":{"brightness":1}}}')
    broker.deliver("q/2/d/qdp11pLZD1/bus_", false, 5000000)
    broker.deliver("q/2/d/qdp11pLZD1/bus_", '{"type":"MATTR","createdAt":5,"data":{"kv":{"brightness":"55"}}}')
    local ev = next_event(rt)
    assert.are.same({ "property", "D1", 55, 5 }, { ev.type, ev.deviceKey, ev.values.brightness, ev.at })
    assert.truthy(logged("dropped a %d+%-byte message on q/2/d/qdp11pLZD1/bus_: the payload is not a JSON object"))
    assert.truthy(logged("on q/2/d/qdp11pLZD9/bus_: a topic of no device subscribed"))
    assert.truthy(logged("dropped a 5000000%-byte message .*larger than max_message"))
  end)

  it("says timeout when nothing came in time", function()
    local rt = assert(open())
    local t = core.monotonic()
    local ev, err = rt:receive(0.3)
    assert.is_nil(ev)
    assert.are.equal("timeout", err)
    local took = core.monotonic() - t
    assert.is_true(took >= 0.29 and took < 0.6, took)
    ev, err = rt:receive(0)
    assert.are.same({ nil, "timeout" }, { ev, err })
    assert.are.equal("usage", select(4, rt:receive(-1)))
  end)

  it("writes WRITE-ATTR on sys_ at QoS 1 after checking the thing model", function()
    local rt = assert(open())
    local id = assert(rt:write(PK, "D1", { switch = false, brightness = 80 }))
    local sent = broker.current.published
    assert.are.equal(1, #sent)
    assert.are.equal("q/1/d/qdp11pLZD1/sys_", sent[1].topic)
    assert.are.equal(1, sent[1].qos)
    local c = json.decode(sent[1].payload)
    assert.are.same({ id, "WRITE-ATTR", '[{"brightness":80,"switch":false}]' }, { c.msgId, c.type, c.kv })
    assert.is_true(id >= 1 and id <= 65535)
    assert.are.equal(id % 65535 + 1, assert(rt:read(PK, "D1", { "switch", "temperature" })))
  end)

  it("sends nothing when the thing model refuses a write or a read", function()
    local rt = assert(open())
    for _, values in ipairs { { brightness = 101 }, { brightness = "80" }, { temperature = 5 }, { nope = 1 }, {} } do
      local id, err, _, kind = rt:write(PK, "D1", values)
      assert.is_nil(id)
      assert.are.equal("usage", kind)
      assert.is_string(err)
    end
    assert.are.equal("usage", select(4, rt:read(PK, "D1", { "nope" })))
    assert.are.equal("usage", select(4, rt:read(PK, "D1", {})))
    assert.are.equal("usage", select(4, rt:write("a/b", "D1", { switch = true })))
    assert.are.equal(0, #broker.current.published)
  end)

  it("subscribes and unsubscribes devices on the live connection", function()
    local rt = assert(open { devices = {} })
    assert(rt:add { { productKey = PK, deviceKey = "D7" }, { productKey = PK, deviceKey = "D7" } })
    local link = broker.current
    assert.are.equal(1, #link.subscribes)
    assert.are.equal(6, #link.subscribes[1].topics)
    broker.deliver("q/2/d/qdp11pLZD7/bus_", '{"data":{"kv":{"brightness":3}}}')
    assert.are.equal(3, next_event(rt).values.brightness)
    assert(rt:add { { productKey = PK, deviceKey = "D7" } }) -- already there: nothing sent
    assert.are.equal(1, #link.subscribes)
    assert(rt:remove { { productKey = PK, deviceKey = "D7" } })
    assert.are.equal(6, #link.unsubscribes[1])
    assert.is_nil(link.subscribed["q/2/d/qdp11pLZD7/bus_"])
    broker.deliver("q/2/d/qdp11pLZD7/bus_", '{"data":{"kv":{"brightness":4}}}')
    assert.are.same({ nil, "timeout" }, { rt:receive(0.1) })
    broker.refuse_topic = "D8/bus_"
    local ok, err, _, kind = rt:add { { productKey = PK, deviceKey = "D8" } }
    assert.is_nil(ok)
    assert.are.equal("platform", kind)
    assert.matches("refused the subscription to q/2/d/qdp11pLZD8/bus_", err)
    -- the topics granted with it are given back, and the device is not on the list
    assert.is_nil(link.subscribed["q/2/d/qdp11pLZD8/onl_"])
    broker.deliver("q/2/d/qdp11pLZD8/onl_", '{"data":{"value":1}}')
    assert.are.same({ nil, "timeout" }, { rt:receive(0.1) })
  end)

  it("refuses to open when the broker refuses a device's subscription", function()
    broker = nil
    local rt, err, _, kind = open({ devices = devices(3) }, nil, { connect = function(c)
      local b = scripted.new()
      b.refuse_topic = "D2/"
      broker = b
      return b.connect(c)
    end })
    assert.is_nil(rt)
    assert.are.equal("platform", kind)
    assert.matches("refused the subscription to q/2/d/qdp11pLZD2/bus_ and 5 more", err)
    assert.is_true(broker.current.closed)
  end)
end)

describe("[14] realtime channel: staying connected", function()
  it("connects again after a loss, with a fresh client id, and reads every device back", function()
    local rt = assert(open())
    local first_id = broker.connects[1].client_id
    broker.lose()
    local t = core.monotonic()
    local a, b = next_event(rt), next_event(rt)
    assert.is_true(core.monotonic() - t < 2)
    assert.are.same({ "reconnected", "D1", 70, true }, { a.type, a.deviceKey, a.values.brightness, a.values.switch })
    assert.are.same({ "reconnected", "D2", 5 }, { b.type, b.deviceKey, b.values.brightness })
    assert.are.equal(200, a.raw.code)
    assert.are.equal(2, #broker.connects)
    assert.are_not.equal(first_id, broker.connects[2].client_id)
    assert.are.equal(12, #broker.current.subscribes[1].topics)
    assert.are.equal(2, #transport:to(ATTRS))
    assert.truthy(logged("connection lost"))
  end)

  it("goes on without a device whose subscription the broker refuses on a reconnect", function()
    local rt = assert(open())
    broker.refuse_topic = "D2/"
    broker.lose()
    local a, b = next_event(rt), next_event(rt)
    assert.are.same({ "reconnected", "reconnected" }, { a.type, b.type })
    assert.truthy(logged("refused the subscription to q/2/d/qdp11pLZD2/bus_ and 5 more; going on"))
    broker.deliver("q/2/d/qdp11pLZD1/bus_", '{"data":{"kv":{"brightness":9}}}')
    assert.are.equal(9, next_event(rt).values.brightness)
  end)

  it("backs off while the broker refuses, and hands out a read failure in the event", function()
    local down = { "cannot connect to the broker", "connect" }
    local rt = assert(open(nil, nil))
    broker.answers = { down, down }
    fail_reads = true
    broker.lose()
    local t = core.monotonic()
    local ev = next_event(rt, 10)
    -- 0.5 s, then 1 s, then 2 s (random() = 0: the low end of each jitter range)
    local took = core.monotonic() - t
    assert.is_true(took >= 3.4 and took < 5, took)
    assert.are.equal("reconnected", ev.type)
    assert.are.equal(4, #broker.connects)
    assert.is_nil(ev.values)
    assert.are.same({ 4026, "rate_limited" }, { ev.code, ev.kind })
    assert.matches("get_properties", ev.err)
    assert.truthy(logged("reading p11pLZ/D1 after the reconnect failed"))
  end)

  it("reconnects when nothing arrives for `watchdog` seconds", function()
    local rt = assert(open { watchdog = 0.4 })
    broker.deliver("q/2/d/qdp11pLZD1/bus_", '{"data":{"kv":{"brightness":3}}}')
    assert.are.equal("property", next_event(rt).type)
    local t = core.monotonic()
    local ev = next_event(rt, 5)
    assert.are.equal("reconnected", ev.type)
    local took = core.monotonic() - t
    assert.is_true(took >= 0.4 and took < 2, took)
    assert.truthy(logged("watchdog"))
    assert.is_true(broker.links[1].closed)
  end)

  it("ends cleanly when closed in the middle of a reconnect", function()
    local rt = assert(open())
    broker.answers = { { "cannot connect to the broker", "connect" } }
    broker.lose()
    assert.are.same({ nil, "timeout" }, { rt:receive(0.7) }) -- lost, one failed attempt, waiting for the next
    assert.are.equal(2, #broker.connects)
    assert.is_true(rt:close())
    assert.are.same({ nil, "closed" }, { rt:receive(2) })
    assert.are.equal(2, #broker.connects)
    assert.are.equal(0, broker.open_links())
    assert.is_true(rt:close())
    assert.are.equal("usage", select(4, rt:write(PK, "D1", { switch = true })))
  end)

  it("ends the events loop on close(), also from its body", function()
    local rt = assert(open())
    broker.deliver("q/2/d/qdp11pLZD1/onl_", '{"data":{"value":1}}')
    broker.deliver("q/2/d/qdp11pLZD1/onl_", '{"data":{"value":0}}')
    local seen = {}
    for ev in rt:events() do
      seen[#seen + 1] = ev.online
      if #seen == 2 then rt:close() end
    end
    assert.are.same({ true, false }, seen)
  end)

  it("gives up when the token cannot be renewed, and the loop sees false, err once", function()
    local rt = assert(open())
    -- the broker refuses the token, and the refresh token is gone
    client.tokens:clear()
    broker.lose()
    local results = {}
    for ev, err, _, kind in rt:events() do results[#results + 1] = { ev, err, kind } end
    assert.are.equal(1, #results)
    assert.is_false(results[1][1])
    assert.matches("no access token", results[1][2])
    assert.are.equal("auth", results[1][3])
    -- another channel may now take the account's session
    assert(client:set_tokens { access_token = TOKEN })
    assert(open())
  end)
end)
