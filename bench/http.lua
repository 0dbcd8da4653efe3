--- Section 2 worker: user_device_list round trips against the fake cloud, one
-- after the other.
--
--   lua bench/http.lua quecapi SECONDS   quecapi's client, curl transport: one keep-alive
--                                        connection, the answer decoded and checked
--   lua bench/http.lua luasec SECONDS    LuaSec's ssl.https.request: a new TCP and TLS
--                                        connection for every request
--
-- In quecapi mode it also measures, in the same process (same modules loaded, so
-- the collector has the same heap to work through), the parts a call is made of:
--   decode    quecapi.json.decode of the answer the call gets, alone in a loop
--   session   the C core's session:request of the checked request, alone (libcurl
--             with a fresh easy handle per request, the header and body as Lua values)
--   floor     session:request and json.decode of its answer in one loop: the C parts
--             of a call with the caches as a call leaves them, without the Lua around
--             them (building the request, tokens, the envelope check)
-- and prints CPU microseconds per iteration of each (os.clock: user + system).
--
-- The fake cloud comes from FAKECLOUD_URL / FAKECLOUD_CA, the access token from
-- BENCH_TOKEN (the driver logged in once), the page size from BENCH_PAGE_SIZE.
local lib = require "lib"

local mode, seconds = arg[1], tonumber(arg[2]) or 1
local url, ca, token = os.getenv("FAKECLOUD_URL"), os.getenv("FAKECLOUD_CA"), os.getenv("BENCH_TOKEN")
local page_size = tonumber(os.getenv("BENCH_PAGE_SIZE")) or 10
assert(url and ca and token, "FAKECLOUD_URL, FAKECLOUD_CA and BENCH_TOKEN must be set")
local path = "/v2/binding/enduserapi/userDeviceList?pageSize=" .. page_size
local format = string.format

if mode == "quecapi" then
  local quecapi = require "quecapi"
  local json = require "quecapi.json"
  local core = require "quecapi.core"
  local contract = require "quecapi.transport.contract"
  local config = require "quecapi.fakecloud.config"
  local client = assert(quecapi.new {
    base_url = url, ca_file = ca, transport = "curl",
    user_domain = config.user_domain, user_domain_secret = config.user_domain_secret,
  })
  assert(client:set_tokens { access_token = token, access_expires = os.time() + 7200 })
  local params = { pageSize = page_size }
  local prefix = lib.interpreter .. "_http"

  local r, cpu = lib.rate(function()
    local res, err = client:user_device_list(params)
    if not res or #res.data.list ~= page_size then error(err or "short page") end
  end, seconds)
  lib.emit(prefix, format("%.1f", r))
  lib.emit(prefix .. "_cpu", format("%.1f", cpu))

  local session = assert(core.session { ca_file = ca })
  local checked = assert(contract.check(assert(client:prepare("user_device_list", params))))
  local status, body = session:request(checked)
  assert(status == 200 and json.decode(body).code == 200, "the session's answer")
  cpu = select(2, lib.rate(function()
    if session:request(checked) ~= 200 then error("session request failed") end
  end, seconds / 2))
  lib.emit(prefix .. "_session_cpu", format("%.1f", cpu))
  cpu = select(2, lib.rate(function()
    local st, answer = session:request(checked)
    if st ~= 200 or json.decode(answer).code ~= 200 then error("session request failed") end
  end, seconds / 2))
  lib.emit(prefix .. "_floor_cpu", format("%.1f", cpu))
  cpu = select(2, lib.rate(function() json.decode(body) end, seconds / 4, 20))
  lib.emit(prefix .. "_decode_cpu", format("%.2f", cpu))
elseif mode == "luasec" then
  local https = require "ssl.https"
  local ltn12 = require "ltn12"
  local headers = { Authorization = token, Accept = "application/json" }
  local r = lib.rate(function()
    local chunks = {}
    local ok, status = https.request {
      url = url .. path, headers = headers, sink = ltn12.sink.table(chunks),
      cafile = ca, verify = "peer", protocol = "any", options = { "all", "no_sslv2", "no_sslv3" },
    }
    if not ok or status ~= 200 or #table.concat(chunks) == 0 then error("luasec: " .. tostring(status)) end
  end, seconds)
  lib.emit(lib.interpreter .. "_luasec", format("%.1f", r))
else
  error("usage: http.lua quecapi|luasec SECONDS")
end
