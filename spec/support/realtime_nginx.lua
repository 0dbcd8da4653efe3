-- Used inside the nginx that spec/nginx/realtime_link_spec.lua starts: realtime
-- channels opened with client:realtime in a timer or a request handler, what
-- they receive kept in shared dicts for the spec to read.
--
--   POST /rt/start?name=N   body: the options of client:realtime (JSON); a timer
--                            opens the channel and records every event and error
--   GET  /rt/events?name=N  what was recorded since the last call (JSON list)
--   POST /rt/write?name=N   body { pk, dk, values } -> the timer writes and records the answer
--   POST /rt/stop?name=N    the timer closes the channel and ends
--
-- The dicts: `rt` (state and lists), `tokens` (the client's token store).
-- luacheck: std +ngx_lua
local json = require "quecapi.json"
local app = require "support.in_nginx"

local _M = {}

local function dict() return ngx.shared.rt end

local function record(name, value)
  assert(dict():rpush("events:" .. name, assert(json.encode(value))))
end

--- A client of the spec's account; its log lines go to nginx's error log and
-- to the `logs` list of the `rt` dict.
function _M.client(extra)
  local cfg = {
    token_store = "shdict", token_dict = "tokens", account = app.account(),
    log = function(level, msg)
      dict():rpush("logs", level .. " " .. msg)
      ngx.log(level == "error" and ngx.ERR or level == "warn" and ngx.WARN or ngx.INFO, msg)
    end,
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return app.client(cfg)
end

-- The options of a request body: devices, and the URL of the fake's broker by default.
local function options(body)
  local o = body and json.decode(body) or {}
  o.url = o.url or os.getenv("FAKECLOUD_MQTT_URL")
  if o.devices == nil then o.devices = {} end
  return o
end
_M.options = options

-- The timer: open, then receive until stopped; writes come through the dict.
local function run(premature, name, opts, client_opts)
  if premature then return end
  local client = _M.client(client_opts)
  local rt, err, code, kind = client:realtime(opts)
  if not rt then
    record(name, { type = "open-failed", err = err, code = code, kind = kind })
    return
  end
  record(name, { type = "opened", phase = ngx.get_phase(), link = tostring(rt.link) })
  local d = dict()
  while not d:get("stop:" .. name) and not ngx.worker.exiting() do
    local ev, rerr, rcode, rkind = rt:receive(0.05)
    if ev then
      record(name, ev)
    elseif rerr ~= "timeout" then
      record(name, { type = "receive-failed", err = rerr, code = rcode, kind = rkind })
      break
    end
    local cmd = d:lpop("cmd:" .. name)
    if cmd then
      local c = json.decode(cmd)
      local id, werr, wcode, wkind = rt[c.op](rt, c.pk, c.dk, c.values)
      record(name, { type = "write-result", msgId = id, err = werr, code = wcode, kind = wkind })
    end
  end
  rt:close()
  record(name, { type = "closed" })
end

function _M.start(name, body, client_opts)
  local d = dict()
  d:delete("stop:" .. name)
  d:delete("events:" .. name)
  d:delete("cmd:" .. name)
  return assert(ngx.timer.at(0, run, name, options(body), client_opts))
end

function _M.stop(name)
  dict():set("stop:" .. name, true)
end

function _M.write(name, body)
  assert(dict():rpush("cmd:" .. name, body))
end

-- Everything recorded since the last call, as a JSON list.
function _M.events(name)
  local d, out = dict(), {}
  while true do
    local v = d:lpop("events:" .. name)
    if not v then break end
    out[#out + 1] = json.decode(v)
  end
  return json.array(out)
end

-- Every log line so far.
function _M.logs()
  local d, out = dict(), {}
  for i = 1, d:llen("logs") or 0 do
    local v = d:lpop("logs")
    out[i] = v
    d:rpush("logs", v)
  end
  return json.array(out)
end

-- Every token the `tokens` dict holds (for the spec's no-secret checks).
function _M.secrets()
  local out = {}
  for _, key in ipairs(ngx.shared.tokens:get_keys(0)) do
    local t = json.decode(ngx.shared.tokens:get(key) or "")
    if type(t) == "table" then
      for _, field in ipairs { "access_token", "refresh_token" } do
        if type(t[field]) == "string" then out[#out + 1] = t[field] end
      end
    end
  end
  return json.array(out)
end

_M.reply = app.reply

return _M
