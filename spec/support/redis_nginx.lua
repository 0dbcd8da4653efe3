-- Used inside the nginx nodes that spec/nginx/redis_store_spec.lua starts: the
-- Redis token store and clients using it, driven over HTTP.
--
--   GET/POST /store?op=get|set|delete|lock|unlock&key=K[&timeout=&hold=&ttl=]
--   GET      /call            one authenticated call (user_device_list) of the
--                             spec's account, tokens in Redis -> { total | err, kind, ms, node }
--   GET      /cost?n=N        N token lookups through the Redis store and N through shdict
--
-- Settings come from the environment the spec passes in (env directives):
-- SPEC_REDIS_PORT, SPEC_REDIS_PASSWORD, SPEC_REDIS_SENTINEL (optional: "name port",
-- the master a sentinel names instead of the port), SPEC_NODE, and in_nginx's.
-- luacheck: std +ngx_lua
local json = require "quecapi.json"
local redis_store = require "quecapi.store.redis"
local app = require "support.in_nginx"

local _M = {}

local function options(extra)
  local o = { port = tonumber(os.getenv("SPEC_REDIS_PORT")), password = os.getenv("SPEC_REDIS_PASSWORD"),
              timeout = 0.5 }
  local sentinel = os.getenv("SPEC_REDIS_SENTINEL") -- "name port": the master a sentinel names
  if sentinel and sentinel ~= "" then
    local name, port = sentinel:match("^(%S+) (%d+)$")
    o.port, o.sentinel = nil, { master = name, hosts = { "127.0.0.1:" .. port } }
  end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

function _M.store(extra)
  return assert(redis_store.new(options(extra)))
end

local function now()
  ngx.update_time()
  return ngx.now()
end

-- Log lines of the client, to nginx's error log (the spec looks for secrets there).
local function log(level, msg)
  ngx.log(level == "error" and ngx.ERR or level == "warn" and ngx.WARN or ngx.INFO, msg)
end

function _M.client(extra)
  local cfg = { token_store = _M.store(), account = app.account(), log = log }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return app.client(cfg)
end

--- /store: one operation of the store interface.
function _M.store_op()
  local args = ngx.req.get_uri_args()
  local s = _M.store { lock_ttl = tonumber(args.ttl) }
  local key, out = args.key or "k", {}
  local op = args.op
  if op == "set" then
    ngx.req.read_body()
    out.ok, out.err, out.kind = s:set(key, json.decode(ngx.req.get_body_data()))
  elseif op == "get" then
    out.tokens, out.err, out.kind = s:get(key)
  elseif op == "delete" then
    out.ok, out.err, out.kind = s:delete(key)
  elseif op == "lock" then
    -- take the lock, hold it `hold` seconds, release it (unless release=no)
    local t0 = now()
    local handle, err, kind = s:lock(key, tonumber(args.timeout))
    out.waited = now() - t0
    out.locked, out.err, out.kind = handle ~= nil, err, kind
    if handle then
      out.handle = handle
      ngx.sleep(tonumber(args.hold) or 0)
      if args.release ~= "no" then out.unlocked, out.unlock_err = s:unlock(key, handle) end
    end
  elseif op == "unlock" then
    out.ok, out.err = s:unlock(key, args.handle)
  end
  app.reply(out)
end

-- The store, timing how long its lock calls wait (for the spec's figures).
local function timed(store, waits)
  return setmetatable({
    lock = function(_, key, timeout)
      local t0 = now()
      local handle, err, kind = store:lock(key, timeout)
      waits[#waits + 1] = (now() - t0) * 1000
      waits.locked_at = now()
      return handle, err, kind
    end,
    unlock = function(_, key, handle)
      if waits.locked_at then waits.held = (now() - waits.locked_at) * 1000 end
      return store:unlock(key, handle)
    end,
  }, { __index = function(_, k)
    local v = store[k]
    if type(v) ~= "function" then return v end
    return function(_, ...) return v(store, ...) end
  end })
end

--- /call: an authenticated call through the Redis store.
function _M.call()
  local waits = {}
  local c = _M.client { token_store = timed(_M.store(), waits) }
  local t0 = now()
  local res, err, code, kind = c:user_device_list {}
  app.reply { total = res and res.data.total, err = err, code = code, kind = kind, ms = (now() - t0) * 1000,
              lock_ms = waits[1], held_ms = waits.held, node = os.getenv("SPEC_NODE"), worker = ngx.worker.id() }
end

--- /cost: what one token lookup costs through Redis and through a shared dict.
function _M.cost()
  local n = tonumber(ngx.req.get_uri_args().n) or 1000
  local key = "cost"
  local tokens = { access_token = "Bearer a", access_expires = ngx.time() + 3600,
                   refresh_token = "Bearer r", refresh_expires = ngx.time() + 86400 }
  local out = {}
  local stores = {
    redis = _M.store(),
    shdict = assert(require("quecapi.store.shdict").new { dict = "tokens" }),
  }
  for name, s in pairs(stores) do
    assert(s:set(key, tokens))
    local t0, same = now(), 0
    for _ = 1, n do
      local t = s:get(key)
      if t and t.access_token == tokens.access_token then same = same + 1 end
    end
    out[name] = { us = (now() - t0) * 1e6 / n, same = same }
  end
  app.reply(out)
end

return _M
