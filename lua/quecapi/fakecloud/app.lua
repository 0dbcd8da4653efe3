-- The fake cloud's request cycle: count, log, maybe inject a fault, spend the
-- account's daily quota, route to a handler, wrap its result in the platform's
-- envelope (its msg in the language X-Q-Language asks for).
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local envelope = require "quecapi.fakecloud.envelope"
local faults = require "quecapi.fakecloud.faults"
local quota = require "quecapi.fakecloud.quota"
local messages = require "quecapi.fakecloud.messages"

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

-- The request body as sent; nginx keeps a large one in a file.
local function raw_body()
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  if raw then return raw end
  local path = ngx.req.get_body_file()
  if not path then return "" end
  local f = io.open(path, "rb")
  if not f then return "" end
  raw = f:read("*a") or ""
  f:close()
  return raw
end

-- body (a decoded JSON body; false when it is not JSON; nil for other bodies),
-- raw text, form (the fields of a form body, {} for other bodies).
local function read_body()
  local raw = raw_body()
  local ctype = ngx.var.content_type or ""
  if ctype:find("application/json", 1, true) and raw ~= "" then
    local v = json.decode(raw)
    if v ~= nil then return v, raw, {} end
    return false, raw, {}
  end
  if raw ~= "" and ctype:find("application/x-www-form-urlencoded", 1, true) then
    return nil, raw, single(ngx.decode_args(raw, 200))
  end
  return nil, raw, {}
end

-- Spring reads @RequestParam from the query string and from a form body alike
-- (live clients send emailPwdLogin, refreshToken and others as forms;
-- live-platform-evidence.md, item 2), so a form body's fields count as
-- parameters too; the query string wins on a clash, as the servlet's parameter
-- map lists query values first.
local function params(query, form)
  local merged = {}
  for k, v in pairs(form) do merged[k] = v end
  for k, v in pairs(query) do merged[k] = v end
  return merged
end

-- The request headers as a plain table (lowercase names; a repeated header is a list).
local function headers_of(h)
  local out = {}
  for k, v in pairs(h) do out[k] = v end
  return out
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
  local body, raw, form = read_body()
  local query = single(ngx.req.get_uri_args(200))
  local headers = ngx.req.get_headers(100)
  local ctx = {
    method = method,
    path = path,
    args = params(query, form),
    body = body,
    headers = headers,
  }
  ngx.ctx.lang = messages.language(headers["x-q-language"])
  state.stats.requests = state.stats.requests + 1
  -- url is the request line's target (path and query as sent): what proxies and
  -- access logs record, so specs can check that no secret travels in it
  state.remember { method = method, path = path, url = ngx.var.request_uri, args = ctx.args, query = query,
                   form = form, raw_body = raw, content_type = ngx.var.content_type,
                   authorization = headers["authorization"], headers = headers_of(headers),
                   connection = tonumber(ngx.var.connection), user_agent = headers["user-agent"] }

  if state.config.delay_ms > 0 then ngx.sleep(state.config.delay_ms / 1000) end
  local fault = faults.take(ctx)
  if fault and faults.apply(fault) then return end

  local handler = routes[method .. " " .. path]
  if not handler then return envelope.not_found(path) end
  if body == false then return envelope.fail(5000, "Request body is not valid JSON") end
  local over = quota.spend(ctx)
  if over then return envelope.fail(over) end
  local data, code, msg = handler(ctx)
  if code then return envelope.fail(code, msg) end
  return envelope.ok(data)
end

return _M
