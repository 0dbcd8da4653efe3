--- Section 5 worker: memory.
--
--   lua bench/mem.lua PAGE10_FILE
--
-- Bytes allocated per call: the Lua heap (collectgarbage "count") before and
-- after N calls with the collector stopped, divided by N; it includes the
-- garbage a call leaves, which is what the collector has to work through. Then
-- RSS after 100,000 rounds of sha256_hex + encrypt_password and after 10,000
-- user_device_list calls over HTTPS (collector running, a full collection before
-- each reading). The fake cloud and token come from the environment (bench/http.lua).
local lib = require "lib"
local quecapi = require "quecapi"
local json = require "quecapi.json"
local config = require "quecapi.fakecloud.config"

local page10 = lib.read(assert(arg[1], "usage: mem.lua PAGE10_FILE"))
local prefix = lib.interpreter .. "_"
local text, password, random = lib.SIGNING_STRING, lib.PASSWORD, lib.RANDOM

local function allocated(name, n, f)
  f()
  collectgarbage()
  collectgarbage()
  collectgarbage("stop")
  local before = collectgarbage("count")
  for _ = 1, n do f() end
  local after = collectgarbage("count")
  collectgarbage("restart")
  collectgarbage()
  lib.emit(prefix .. "alloc_" .. name, string.format("%.0f", (after - before) * 1024 / n))
end

local function rss(name)
  collectgarbage()
  collectgarbage()
  lib.emit(prefix .. "rss_" .. name, lib.rss_kb())
end

local client = assert(quecapi.new {
  base_url = os.getenv("FAKECLOUD_URL"), ca_file = os.getenv("FAKECLOUD_CA"), transport = "curl",
  user_domain = config.user_domain, user_domain_secret = config.user_domain_secret,
})
assert(client:set_tokens { access_token = os.getenv("BENCH_TOKEN"), access_expires = os.time() + 7200 })
local params = { pageSize = 10 }
local function call()
  local res, err = client:user_device_list(params)
  if not res then error(err) end
end

-- RSS first: the allocation counts below run with the collector stopped and
-- leave the heap (and so RSS) larger than any steady state.
rss("start")
for _ = 1, 100000 do
  quecapi.sha256_hex(text)
  quecapi.encrypt_password(password, random)
end
rss("crypto")
for _ = 1, 10000 do call() end
rss("http")

-- Distinct inputs, made beforehand: LuaJIT interns every string, so hashing the
-- same text again would allocate nothing and flatter it.
local texts, randoms = {}, {}
for i = 1, 20000 do
  texts[i] = text:sub(1, -6) .. string.format("%05d", i)
  randoms[i] = random:sub(1, -6) .. string.format("%05d", i)
end
local i = 0
allocated("sha", 20000, function() i = i % 20000 + 1; return quecapi.sha256_hex(texts[i]) end)
allocated("enc", 20000, function() i = i % 20000 + 1; return quecapi.encrypt_password(password, randoms[i]) end)
allocated("prepare", 5000, function() return client:prepare("user_device_list", params) end)
allocated("decode10", 2000, function() return json.decode(page10) end)
allocated("call", 300, call)
