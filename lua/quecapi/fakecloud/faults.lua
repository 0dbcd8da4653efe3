-- Injected failures: a test queues a fault for a path (or every API path) and the
-- next matching requests get it instead of, or on top of, the normal answer.
--
--   POST /_fake/faults { kind, path?, count?, ...options }
--     path   one API path, e.g. "/v2/binding/enduserapi/userDeviceList"; absent = every API path
--     count  how many matching requests get it (default 1); the first queued match wins
--
-- kind          options            what the client sees
-- ------------  -----------------  ---------------------------------------------------------------
-- delay         delay_ms (200)     nothing for delay_ms, then the normal answer
-- slow_headers  delay_ms (1000)    the same: not a byte (not even the status line) for delay_ms,
--                                  then the normal answer; named for timeout specs
-- slow_body     delay_ms (20)      status line and headers (with Content-Length) at once, then
--                                  the normal body one byte every delay_ms
-- status        status (502),      an nginx HTML error page with that HTTP status; with
--               code               `code`, a JSON envelope {code, msg} instead (a gateway that
--                                  answers in JSON, or an error status around code 200)
-- malformed                        HTTP 200, text/html body that is not JSON
-- badjson                          HTTP 200, JSON cut short, consistent Content-Length
-- empty                            HTTP 200, Content-Length: 0
-- truncated                        HTTP 200, Content-Length 400, 37 bytes of JSON, then close (FIN)
-- drop                             the connection closes before any byte of an answer
-- reset         bytes (half)       status line, headers with the full Content-Length and the first
--                                  `bytes` bytes of the normal body, then a TCP RST (SO_LINGER 0;
--                                  a plain close if the FFI is unavailable)
-- chunked       chunks (4)         the normal answer with Transfer-Encoding: chunked, no
--                                  Content-Length, in `chunks` chunks flushed 10 ms apart
-- huge          size (20 MiB)      HTTP 200, a valid envelope of exactly `size` bytes
--                                  ({"code":200,...,"data":{"blob":"xxx..."}}), with Content-Length,
--                                  streamed in 64 KiB pieces (stops when the client goes away)
-- wrong_length  variant ("short")  short: Content-Length is half the normal body, the whole body
--                                  follows, then close (the client reads cut JSON);
--                                  long: Content-Length is 100 more than the body, the body, then
--                                  close (the client sees the connection end early)
-- code          code, msg?         HTTP 200 with the platform envelope {code, msg, data:null,
--                                  extMsg:null}; msg defaults to the platform's text for the code
-- auth          status (401)       "this token is no good", as live clients meet it
--               code               (live-platform-evidence.md, item 4): HTTP `status` with a body
--               msg                of "envelope" ({"code":<status>,"msg":...}, the default), "html"
--               body ("envelope")  (an nginx error page) or "empty"; or, given `code` (401, 4001,
--               until_renewed      1003, 5032, ...), HTTP 200 with that envelope. Only calls that
--               refresh (false)    carry Authorization match, and refreshToken only with
--                                  refresh = true, so a client can renew. until_renewed = true:
--                                  every call made with a token issued before the fault was
--                                  queued, until the client comes back with a newer one
--                                  (refreshed or logged in); count is then ignored and the fault
--                                  stays until DELETE /_fake/faults.
local json = require "quecapi.fakecloud.json"
local state = require "quecapi.fakecloud.state"
local envelope = require "quecapi.fakecloud.envelope"
local wire = require "quecapi.fakecloud.wire"
local auth = require "quecapi.fakecloud.auth"

local REFRESH = "/v2/enduser/enduserapi/refreshToken"

local _M = {}

-- Faults that change how the normal answer travels install a writer that
-- envelope.send hands the answer to.
local function via(writer)
  ngx.ctx.fault_writer = writer
  return false
end

local function slow_body(f)
  local delay = (tonumber(f.delay_ms) or 20) / 1000
  return via(function(status, body, ctype)
    ngx.status = status
    ngx.header["Date"] = envelope.date()
    ngx.header["Content-Type"] = ctype
    ngx.header["Content-Length"] = #body
    ngx.send_headers()
    ngx.flush(true)
    for i = 1, #body do
      ngx.sleep(delay)
      ngx.print(body:sub(i, i))
      if not ngx.flush(true) then return ngx.exit(444) end
    end
    return ngx.exit(status)
  end)
end

local function chunked(f)
  local n = math.max(1, math.floor(tonumber(f.chunks) or 4))
  return via(function(status, body, ctype)
    ngx.status = status
    ngx.header["Date"] = envelope.date()
    ngx.header["Content-Type"] = ctype
    -- no Content-Length: nginx then frames each flush as one HTTP/1.1 chunk
    local size = math.max(1, math.ceil(#body / n))
    local i = 1
    while i <= #body do
      ngx.print(body:sub(i, i + size - 1))
      ngx.flush(true)
      ngx.sleep(0.01)
      i = i + size
    end
    return ngx.exit(status)
  end)
end

local function reset(f)
  return via(function(status, body, ctype)
    local n = tonumber(f.bytes) or math.floor(#body / 2)
    ngx.status = status
    ngx.header["Date"] = envelope.date()
    ngx.header["Content-Type"] = ctype
    ngx.header["Content-Length"] = #body
    ngx.send_headers()
    if n > 0 then ngx.print(body:sub(1, n)) end
    ngx.flush(true)
    -- let the partial answer reach the client before the reset overtakes it
    ngx.sleep(0.05)
    wire.arm_reset()
    return wire.close()
  end)
end

local function wrong_length(f)
  local long = f.variant == "long"
  return via(function(status, body, ctype)
    local sock = wire.socket()
    if not sock then return wire.close() end
    local length = long and #body + 100 or math.floor(#body / 2)
    local headers = { { "Content-Type", ctype }, { "Content-Length", length } }
    if not long then headers[#headers + 1] = { "Connection", "close" } end
    sock:send(wire.head(status, headers) .. body)
    -- returning ends the raw-socket request: nginx closes the connection
  end)
end

local function huge(f)
  local size = math.floor(tonumber(f.size) or 20 * 1024 * 1024)
  local head, tail = '{"code":200,"msg":"","data":{"blob":"', '"},"extMsg":null}'
  local pad = math.max(0, size - #head - #tail)
  ngx.status = 200
  ngx.header["Date"] = envelope.date()
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #head + pad + #tail
  ngx.print(head)
  local piece = string.rep("x", 65536)
  while pad > 0 do
    local n = math.min(pad, #piece)
    ngx.print(n == #piece and piece or piece:sub(1, n))
    if not ngx.flush(true) then return ngx.exit(444) end
    pad = pad - n
  end
  ngx.print(tail)
  return ngx.exit(200)
end

_M.kinds = {
  delay = function(f) ngx.sleep((tonumber(f.delay_ms) or 200) / 1000) return false end,
  slow_headers = function(f) ngx.sleep((tonumber(f.delay_ms) or 1000) / 1000) return false end,
  slow_body = slow_body,
  status = function(f)
    local status = tonumber(f.status) or 502
    if f.code == nil then return envelope.html(status) end
    return envelope.send(status, json.encode { code = tonumber(f.code), msg = f.msg or envelope.message(status),
                                               data = json.null, extMsg = json.null })
  end,
  malformed = function() return envelope.send(200, "<html>upstream says hello</html>", "text/html") end,
  badjson = function() return envelope.send(200, '{"code":200,"msg":"","data":{"total":') end,
  empty = function() return envelope.send(200, "") end,
  truncated = function()
    local sock = wire.socket()
    if sock then
      sock:send(wire.head(200, { { "Content-Type", "application/json" }, { "Content-Length", 400 } }) ..
                '{"code":200,"msg":"","data":{"list":[')
    end
    return true
  end,
  drop = function() return ngx.exit(444) end,
  reset = reset,
  chunked = chunked,
  huge = huge,
  wrong_length = wrong_length,
  code = function(f) return envelope.fail(tonumber(f.code) or 5000, f.msg) end,
  auth = function(f)
    if f.code ~= nil then return envelope.fail(tonumber(f.code), f.msg) end
    local status = tonumber(f.status) or 401
    if f.body == "html" then return envelope.html(status) end
    if f.body == "empty" then return envelope.send(status, "") end
    return envelope.send(status, json.encode { code = status, msg = f.msg or envelope.message(status),
                                               data = json.null, extMsg = json.null })
  end,
}

local AUTH_BODIES = { envelope = true, html = true, empty = true }

local function check_auth(f)
  if f.code ~= nil and f.status ~= nil then return "fault 'auth' takes status or code, not both" end
  if f.code ~= nil and not tonumber(f.code) then return "fault 'auth' needs a numeric code" end
  local status = f.status ~= nil and tonumber(f.status)
  if f.status ~= nil and not (status and status >= 400 and status <= 499) then
    return "fault 'auth' status is an HTTP 4xx status"
  end
  if f.body ~= nil and not AUTH_BODIES[f.body] then return "fault 'auth' body is envelope, html or empty" end
  if f.until_renewed ~= nil and type(f.until_renewed) ~= "boolean" then
    return "fault 'auth' until_renewed is a boolean"
  end
end

-- Options a kind cannot do without, checked when the fault is queued.
function _M.check(f)
  if not _M.kinds[f.kind] then return "unknown fault kind " .. tostring(f.kind) end
  if f.kind == "code" and not tonumber(f.code) then return "fault 'code' needs a numeric code" end
  if f.kind == "wrong_length" and f.variant and f.variant ~= "short" and f.variant ~= "long" then
    return "wrong_length variant is short or long"
  end
  if f.count ~= nil and not tonumber(f.count) then return "count must be a number" end
  if f.kind == "auth" then return check_auth(f) end
end

-- Check a fault and queue it; the queue's length, or nil, err.
function _M.queue(f)
  local err = _M.check(f)
  if err then return nil, err end
  -- tokens issued up to now are the ones a renewal replaces
  if f.until_renewed then f.before = state.token_seq end
  state.faults[#state.faults + 1] = f
  return #state.faults
end

local function matches(f, ctx)
  if f.path ~= nil and f.path ~= ctx.path then return false end
  if f.kind ~= "auth" then return true end
  local header = auth.header(ctx)
  if not header then return false end
  if ctx.path == REFRESH and not f.refresh then return false end
  if f.until_renewed then
    local t = state.access[header]
    return t ~= nil and t.seq <= f.before
  end
  return true
end

-- The first queued fault that matches this request (ctx: path, headers), used
-- up by one.
function _M.take(ctx)
  for i, f in ipairs(state.faults) do
    if matches(f, ctx) then
      if not f.until_renewed then
        f.count = (tonumber(f.count) or 1) - 1
        if f.count <= 0 then table.remove(state.faults, i) end
      end
      return f
    end
  end
end

-- true when the fault answered the request itself
function _M.apply(f)
  local kind = _M.kinds[f.kind]
  return kind(f) ~= false
end

return _M
