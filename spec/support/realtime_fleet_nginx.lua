-- Used inside the nginx nodes that spec/nginx/realtime_fleet_spec.lua and
-- bench/fleet.lua start: quecapi.realtime.hub with its `fleet` option, the
-- account's tokens in the same Redis (support.redis_nginx), driven over HTTP.
--
--   GET  /status                 hub:status()
--   GET  /events?pk=&dk=[&type=] Server-Sent Events, one `data:` line per event (as examples/realtime.conf);
--                                with `type`, only events of that type (a `reconnected` event, which
--                                follows any gap in Redis, would count against a client's `count`)
--   POST /command                { op = "write" | "read", pk, dk, values } -> { msgId | err, code, kind, ms }
--
-- Settings come from the environment (env directives): SPEC_NODE, SPEC_TTL,
-- SPEC_DEVICES ("pk/dk,pk/dk"), FAKECLOUD_MQTT_URL, and support.redis_nginx's.
-- luacheck: std +ngx_lua
local json = require "quecapi.json"
local hub = require "quecapi.realtime.hub"
local redis_nginx = require "support.redis_nginx"
local app = require "support.in_nginx"

local _M = {}

local NAME = "fleet"

--- In init_by_lua: the hub, its Redis the store's (the spec's redis-server).
function _M.init()
  local devices = {}
  for pk, dk in (os.getenv("SPEC_DEVICES") or ""):gmatch("([^/,]+)/([^/,]+)") do
    devices[#devices + 1] = { productKey = pk, deviceKey = dk }
  end
  assert(hub.new {
    name = NAME, dict = "realtime", devices = devices, snapshot = false,
    client = function() return redis_nginx.client() end,
    realtime = { url = os.getenv("FAKECLOUD_MQTT_URL") },
    lease = 1, command_timeout = 3, wait = 1,
    fleet = { redis = redis_nginx.store(), ttl = tonumber(os.getenv("SPEC_TTL")) or 2, node = os.getenv("SPEC_NODE") },
  })
end

function _M.start()
  assert(hub.get(NAME):start())
end

function _M.status()
  app.reply(hub.get(NAME):status())
end

function _M.command()
  ngx.req.read_body()
  local c = json.decode(ngx.req.get_body_data() or "") or {}
  local h = hub.get(NAME)
  ngx.update_time()
  local t0 = ngx.now()
  local id, err, code, kind = h[c.op](h, c.pk, c.dk, c.values)
  ngx.update_time()
  app.reply { msgId = id, err = err, code = code, kind = kind, ms = (ngx.now() - t0) * 1000,
              node = os.getenv("SPEC_NODE") }
end

--- The stream, as examples/realtime.conf serves it (without the snapshot).
function _M.events()
  local events, sub, code, kind = hub.get(NAME):subscribe(ngx.var.arg_pk, ngx.var.arg_dk, { wait = 1 })
  if not events then
    ngx.status = 502
    return app.reply { err = sub, code = code, kind = kind }
  end
  ngx.header["Content-Type"] = "text/event-stream"
  ngx.header["Cache-Control"] = "no-cache"
  ngx.print(": connected\n\n")
  ngx.flush(true)
  ngx.on_abort(function() sub:close() end)
  local only = ngx.var.arg_type
  for ev, text in events do
    local ok = true
    if not ev then
      ok = ngx.print(": heartbeat\n\n")
    elseif not only or ev.type == only then
      ok = ngx.print("data: ", text, "\n\n")
    end
    if ok and sub:pending() == 0 then ok = ngx.flush(true) end
    if not ok then break end
  end
  sub:close()
end

return _M
