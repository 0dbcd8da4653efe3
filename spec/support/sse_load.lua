-- Many Server-Sent-Events clients at once, run inside an nginx of their own (a
-- "load" nginx, one worker) so that hundreds of streams cost hundreds of
-- cosockets, not hundreds of processes. Used by the realtime specs and by
-- bench/realtime_nginx.lua.
--
--   POST /load/start?name=N   { host, port, clients = { { path, count, stall, last_event_id }, ... },
--                               code, fast, ping = { path, every }, timeout }
--   GET  /load/status?name=N  { streaming = clients whose headers came, done, ping = {...} }
--   POST /load/stop?name=N    every client and the pinger end
--   GET  /load/result?name=N  { clients = { { status, values, times, snapshot, comments, err }, ... },
--                               ping = { n, max_ms, failed } }
--
-- A client reads the stream (chunked or not) as it comes: for every `data:` line
-- it keeps the arrival time (ms on the monotonic clock, see now_ms) and
-- `values[code]` of the event (or its type when it has none; with `fast`, the
-- number that follows `"code":` in the line, without decoding it); `count` data
-- lines end it. A `stall` client reads the response head and then nothing more,
-- with a small receive buffer: the reader that stops reading. The pinger opens a new connection for every GET of
-- `ping.path`, every `ping.every` seconds, and keeps the slowest answer.
-- luacheck: std +ngx_lua
local json = require "quecapi.json"
local monotonic = require("quecapi.core").monotonic

local _M = {}

local runs = {}

-- Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC, the same in
-- every process): arrival times compare with a publisher's core.monotonic().
local function now_ms()
  return monotonic() * 1000
end

-- A stream's body as lines: the HTTP/1.1 chunked encoding undone as bytes come.
local Stream = {}
Stream.__index = Stream

local function open(o, path, headers, rcvbuf)
  local sock = ngx.socket.tcp()
  sock:settimeouts(5000, 5000, 5000)
  local ok, err = sock:connect(o.host, o.port)
  if not ok then return nil, "connect: " .. tostring(err) end
  if rcvbuf then sock:setoption("rcvbuf", rcvbuf) end
  local req = { "GET ", path, " HTTP/1.1\r\nHost: ", o.host, "\r\nAccept: text/event-stream\r\n" }
  for k, v in pairs(headers or {}) do req[#req + 1] = k .. ": " .. v .. "\r\n" end
  req[#req + 1] = "\r\n"
  ok, err = sock:send(req)
  if not ok then return nil, "send: " .. tostring(err) end
  local status_line
  status_line, err = sock:receive("*l")
  if not status_line then return nil, "status: " .. tostring(err) end
  local chunked, content_type = false, nil
  while true do
    local line
    line, err = sock:receive("*l")
    if not line then return nil, "headers: " .. tostring(err) end
    if line == "" then break end
    local lower = line:lower()
    if lower:find("^transfer%-encoding:.*chunked") then chunked = true end
    content_type = lower:match("^content%-type:%s*(.-)%s*$") or content_type
  end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d+)"))
  return setmetatable({ sock = sock, chunked = chunked, raw = "", body = "", pos = 1, need = nil, status = status,
                        content_type = content_type }, Stream)
end

-- Bytes read: the chunked encoding undone, appended to the body (each byte copied once or twice).
function Stream:feed(data)
  local parts = { self.body:sub(self.pos) }
  if not self.chunked then
    parts[2] = data
  else
    local raw, p = self.raw .. data, 1
    while true do
      if self.need == nil then
        local e = raw:find("\r\n", p, true)
        if not e then break end
        self.need = tonumber(raw:sub(p, e - 1):match("^%x+"), 16)
        p = e + 2
        if self.need == 0 or self.need == nil then return nil, "end of stream" end
      end
      if #raw - p + 1 < self.need + 2 then break end
      parts[#parts + 1] = raw:sub(p, p + self.need - 1)
      p = p + self.need + 2
      self.need = nil
    end
    self.raw = raw:sub(p)
  end
  self.body, self.pos = table.concat(parts), 1
  return true
end

-- The next line of the body; nil, "timeout" (nothing within the read timeout), nil, err.
function Stream:line(timeout_ms)
  while true do
    local body, pos = self.body, self.pos
    local i = body:find("\n", pos, true)
    if i then
      self.pos = i + 1
      return body:sub(pos, i - 1)
    end
    self.sock:settimeouts(5000, 5000, timeout_ms)
    local data, err = self.sock:receiveany(65536)
    if not data then return nil, err end
    local ok, ferr = self:feed(data)
    if not ok then return nil, ferr end
  end
end

local function client(run, i, c)
  local out = { values = {}, times = {}, comments = 0 }
  run.results[i] = out
  local s, err = open(run.o, c.path, c.last_event_id and { ["Last-Event-ID"] = c.last_event_id },
    c.stall and 4096 or nil)
  if not s then
    out.err = err
    return
  end
  out.status, out.content_type = s.status, s.content_type
  run.streaming = run.streaming + 1
  if c.stall then
    -- the reader that stops reading: keep the connection, read nothing
    while not run.stop do ngx.sleep(0.05) end
    s.sock:close()
    return
  end
  local code = run.o.code or "brightness"
  local fast = run.o.fast and ('"' .. code .. '":(%-?[%d.]+)')
  while #out.values < (c.count or 1e9) and not run.stop do
    local line, lerr = s:line(200)
    if not line then
      if lerr ~= "timeout" then
        out.err = lerr
        break
      end
    elseif fast and out.event == nil and line:sub(1, 6) == "data: " then
      -- (the benchmark's clients: the number after "code": is all they read)
      local t = now_ms()
      out.values[#out.values + 1] = tonumber(line:match(fast, 7)) or "?"
      out.times[#out.times + 1] = t
    elseif line:sub(1, 6) == "data: " then
      local t = now_ms()
      local ev = json.decode(line:sub(7))
      if out.event == "snapshot" then
        out.snapshot = ev
      else
        local v = type(ev) == "table" and (type(ev.values) == "table" and ev.values[code] or ev.type) or "?"
        out.values[#out.values + 1] = v
        out.times[#out.times + 1] = t
      end
      out.event = nil
    elseif line:sub(1, 7) == "event: " then
      out.event = line:sub(8)
    elseif line:sub(1, 1) == ":" then
      out.comments = out.comments + 1
      if line == ": heartbeat" then out.heartbeats = (out.heartbeats or 0) + 1 end
      if line:find("Last-Event-ID", 1, true) then out.last_event_id_note = line end
      if line:find("dropped", 1, true) then out.dropped_note = line end
    end
  end
  out.done = true
  run.done = run.done + 1
  s.sock:close()
end

local function pinger(run, p)
  local r = { n = 0, max_ms = 0, failed = 0, slow = 0 }
  run.ping = r
  while not run.stop do
    local t0 = now_ms()
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 1000, 1000)
    local ok = sock:connect(run.o.host, run.o.port)
    local line
    if ok then
      sock:send("GET " .. p.path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      line = sock:receive("*l")
    end
    sock:close()
    local ms = now_ms() - t0
    r.n = r.n + 1
    if not (line and line:find(" 200 ", 1, true)) then r.failed = r.failed + 1 end
    if ms > r.max_ms then r.max_ms = ms end
    if ms >= 50 then r.slow = r.slow + 1 end
    ngx.sleep(p.every or 0.02)
  end
end

local function main(premature, run)
  if premature then return end
  local threads = {}
  for i, c in ipairs(run.o.clients) do
    threads[#threads + 1] = ngx.thread.spawn(client, run, i, c)
  end
  if run.o.ping then threads[#threads + 1] = ngx.thread.spawn(pinger, run, run.o.ping) end
  local deadline = ngx.now() + (run.o.timeout or 60)
  while ngx.now() < deadline and not run.stop do
    if run.done == #run.o.clients and not run.o.ping then break end
    ngx.sleep(0.05)
  end
  run.stop = true
  for _, t in ipairs(threads) do ngx.thread.wait(t) end
  run.finished = true
end

function _M.start(name, body)
  local o = json.decode(body)
  local run = { o = o, results = {}, streaming = 0, done = 0, stop = false, finished = false }
  runs[name] = run
  assert(ngx.timer.at(0, main, run))
end

function _M.status(name)
  local run = runs[name]
  if not run then return { error = "no run " .. name } end
  return { streaming = run.streaming, done = run.done, finished = run.finished, ping = run.ping }
end

function _M.stop(name)
  local run = runs[name]
  if run then run.stop = true end
end

function _M.result(name)
  local run = runs[name]
  if not run then return { error = "no run " .. name } end
  local clients = {}
  for i = 1, #run.o.clients do
    local r = run.results[i] or {}
    clients[i] = { status = r.status, values = json.array(r.values or {}), times = json.array(r.times or {}),
                   snapshot = r.snapshot, comments = r.comments, heartbeats = r.heartbeats, err = r.err,
                   done = r.done, content_type = r.content_type,
                   last_event_id_note = r.last_event_id_note, dropped_note = r.dropped_note }
  end
  return { clients = json.array(clients), ping = run.ping, finished = run.finished }
end

-- The locations of a load nginx (support.nginx's `server` option).
_M.SERVER = [[
location = /load/start { content_by_lua_block {
    ngx.req.read_body()
    require("support.sse_load").start(ngx.var.arg_name, ngx.req.get_body_data())
    ngx.say("{}")
} }
location = /load/status { content_by_lua_block {
    ngx.say(require("quecapi.json").encode(require("support.sse_load").status(ngx.var.arg_name)))
} }
location = /load/stop { content_by_lua_block {
    require("support.sse_load").stop(ngx.var.arg_name)
    ngx.say("{}")
} }
location = /load/result { content_by_lua_block {
    ngx.say(require("quecapi.json").encode(require("support.sse_load").result(ngx.var.arg_name)))
} }
]]

-- A body bigger than nginx's default buffer still arrives in memory.
_M.HTTP = "client_body_buffer_size 1m;"

return _M
