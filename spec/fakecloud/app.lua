-- The fake cloud's request cycle: count, log, maybe inject a fault, route to a
-- handler, wrap its result in the platform's envelope.
local json = require "fakecloud.json"
local state = require "fakecloud.state"
local envelope = require "fakecloud.envelope"
local faults = require "fakecloud.faults"

local _M = {}

local routes = {}  -- "METHOD /path" -> handler(ctx) -> data | nil, code[, msg]

function _M.route(method, path, handler)
  routes[method .. " " .. path] = handler
end

-- Single-valued arguments (the first wins, as Spring's @RequestParam does).
local function single(args)
  for k, v in pairs(args) do
    if type(v) == "table" then args[k] = v[1] end
    if args[k] == true then args[k] = "" end
  end
  return args
end

local function read_body()
  ngx.req.read_body()
  local raw = ngx.req.get_body_data() or ""
  local ctype = ngx.var.content_type or ""
  if ctype:find("application/json", 1, true) and raw ~= "" then
    local v = json.decode(raw)
    if v ~= nil then return v, raw end
    return false, raw
  end
  return nil, raw
end

-- Spring reads @RequestParam from the query string and from a form body alike
-- (clients in the wild send emailPwdLogin as a form), so a form body's fields
-- count as parameters too; the query string wins on a clash.
local function params(query, raw)
  local ctype = ngx.var.content_type or ""
  if raw == "" or not ctype:find("application/x-www-form-urlencoded", 1, true) then return query end
  local merged = single(ngx.decode_args(raw, 200))
  for k, v in pairs(query) do merged[k] = v end
  return merged
end

function _M.enter()
  local stats = state.stats
  stats.inflight = stats.inflight + 1
  if stats.inflight > stats.inflight_max then stats.inflight_max = stats.inflight end
  ngx.ctx.counted = true
end

function _M.leave()
  if ngx.ctx.counted then
    ngx.ctx.counted = nil
    state.stats.inflight = state.stats.inflight - 1
  end
end

function _M.handle()
  local method, path = ngx.req.get_method(), ngx.var.uri
  local body, raw = read_body()
  local query = single(ngx.req.get_uri_args(200))
  local ctx = {
    method = method,
    path = path,
    args = params(query, raw),
    body = body,
    headers = ngx.req.get_headers(100),
  }
  state.stats.requests = state.stats.requests + 1
  state.remember { method = method, path = path, args = query, raw_body = raw,
                   content_type = ngx.var.content_type, authorization = ctx.headers["authorization"],
                   connection = tonumber(ngx.var.connection), user_agent = ctx.headers["user-agent"] }

  if state.config.delay_ms > 0 then ngx.sleep(state.config.delay_ms / 1000) end
  local fault = faults.take(path)
  if fault and faults.apply(fault) then return end

  local handler = routes[method .. " " .. path]
  if not handler then return envelope.not_found(path) end
  if body == false then return envelope.fail(5000, "Request body is not valid JSON") end
  local data, code, msg = handler(ctx)
  if code then return envelope.fail(code, msg) end
  return envelope.ok(data)
end

return _M
