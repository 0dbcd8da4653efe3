-- HTTP/1.1 on the wire (quecapi.transport.http1) in plain Lua, against scripted
-- sockets (spec/support/cosocket.lua) and a clock that moves only when the script
-- says so: the request head, the header rules both transports share, framing,
-- chunked bodies and trailers, limits, deadlines. The same answers through both
-- transports, from a real server: spec/nginx/transport_contract_spec.lua.
local contract = require "quecapi.transport.contract"
local cosocket = require "support.cosocket"
local http1 = require "quecapi.transport.http1"

local function checked(req)
  return assert(contract.check(req))
end

-- Read one answer played by `pieces`. Returns what read_response does, then the
-- exchange's state and the socket's log.
local function read(pieces, req)
  local now = 0
  local log = { wait = function(s) now = now + s end }
  local r = checked(req or { url = "http://h/" })
  local c = http1.conn(cosocket.socket(pieces, log), function() return now end, now + r.timeout, r)
  local status, body, headers, reusable = http1.read_response(c, r.method)
  return { status = status, body = body, headers = headers, reusable = reusable }, c, log
end

local OK = "HTTP/1.1 200 OK\r\n"

describe("transport.http1", function()
  describe("the request head", function()
    it("[12.6] says Host, the caller's headers sorted, and the body's length; never the caller's framing", function()
      local head, body, close = http1.head(checked {
        method = "POST", url = "http://Example.com:8080/p?q=1#frag", body = "abc",
        headers = { ["X-B"] = "2", ["X-A"] = "1", ["Content-Length"] = "99", ["transfer-encoding"] = "chunked" },
      })
      assert.are.equal("POST /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-A: 1\r\nX-B: 2\r\n"
        .. "Content-Length: 3\r\n\r\n", head)
      assert.are.equal("abc", body)
      assert.is_false(close)
    end)

    it("[12.6] leaves the default port out of Host, and takes the caller's Host and Connection", function()
      local head = http1.head(checked { url = "https://h:443?x" })
      assert.are.equal("GET /?x HTTP/1.1\r\nHost: h\r\n\r\n", head)
      local _, close
      head, _, close = http1.head(checked { url = "http://h/", headers = { host = "other", Connection = "Keep-Alive, Close" } })
      assert.are.equal("GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\nhost: other\r\n\r\n", head)
      assert.is_true(close)
    end)

    it("[12.6] announces an empty body for POST, PUT, PATCH and DELETE; HEAD never carries one", function()
      for _, m in ipairs { "POST", "PUT", "PATCH", "DELETE" } do
        assert.are.equal(m .. " / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", (http1.head(checked { method = m, url = "http://h" })))
      end
      local head, body = http1.head(checked { method = "HEAD", url = "http://h", body = "x" })
      assert.are.equal("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", head)
      assert.is_nil(body)
      assert.are.equal("GET / HTTP/1.1\r\nHost: h\r\n\r\n", (http1.head(checked { url = "http://h" })))
    end)

    it("[12.6] sends in pieces that each get the time left", function()
      local now = 0
      local log = { wait = function() end }
      local r = checked { url = "http://h/", timeout = 2 }
      local c = http1.conn(cosocket.socket({}, log), function() now = now + 0.25 return now end, 2, r)
      assert.is_true(http1.send(c, ("x"):rep(150 * 1024)))
      assert.are.same({ 65536, 65536, 22528 }, { #log.sent[1], #log.sent[2], #log.sent[3] })
      assert.are.same({ 1750, 1500, 1250 }, log.timeouts)
      local ok, err, kind = http1.send(c, ("x"):rep(300 * 1024)) -- the fifth piece finds no time left
      assert.is_nil(ok)
      assert.are.equal("timeout", kind)
      assert.are.equal("timed out after 2000 ms while sending the request", err)
    end)
  end)

  describe("the header rules", function()
    -- the block after the status line -> the headers, or the error
    local cases = {
      { "Content-Type: text/plain\r\nX-Mixed-Case: Yes", { ["content-type"] = "text/plain", ["x-mixed-case"] = "Yes" } },
      { "Set-Cookie: a=1\r\nset-cookie: b=2\r\nSET-COOKIE: c=3", { ["set-cookie"] = "a=1, b=2, c=3" } },
      { "X-F: one\r\n\ttwo\r\n   three  ", { ["x-f"] = "one two three" } },
      { "X-E:\r\n b\r\n c", { ["x-e"] = "b c" } },
      { "X-R: a\r\nX-R:", { ["x-r"] = "a, " } },
      { "X-R: a\r\nX-R:\r\n b", { ["x-r"] = "a, b" } },
      { "X-A: 1\r\n \t \r\nX-B: 2", { ["x-a"] = "1", ["x-b"] = "2" } },
      { "Bad Name: x\r\n cont\r\n:empty\r\nX-Ok: y", { ["x-ok"] = "y" } },
      { "X-T: \t v \t w \v\f\r", { ["x-t"] = "v \t w" } },
      { "X-Colons: a:b: c", { ["x-colons"] = "a:b: c" } },
      { "X-Empty:", { ["x-empty"] = "" } },
      { "X-A: 1\r\nNoColon\r\nX-B: 2", nil },
      { " first\r\nX-A: 1", nil },
    }

    it("[12.6] lowercase names, join repeats with \", \", unfold, trim, ignore bad names, refuse lines without a colon",
      function()
        for _, c in ipairs(cases) do
          local lines = { "HTTP/1.1 200 OK" }
          for line in (c[1] .. "\r\n"):gmatch("(.-)\r\n") do lines[#lines + 1] = line end
          local headers, err = http1.parse_headers(lines)
          if c[2] then
            assert.are.same(c[2], headers, c[1])
          else
            assert.is_nil(headers, c[1])
            assert.are.equal("malformed header line in the response", err)
          end
        end
      end)

    it("[12.6] through a socket, whatever the pieces: lines split anywhere, bare LF, CR CR", function()
      local answer = OK .. "X-A: 1\nX-B: two\r\n\tparts\r\r\nContent-Length: 2\r\n\r\nok"
      for _, size in ipairs { 1, 2, 3, 7, 64 } do
        local res = read(cosocket.split(answer, size))
        assert.are.equal(200, res.status, size)
        assert.are.equal("ok", res.body)
        assert.are.same({ ["x-a"] = "1", ["x-b"] = "two parts", ["content-length"] = "2" }, res.headers)
      end
      local res = read { OK .. "X-A: 1\r\nbroken\r\n\r\n" }
      assert.is_nil(res.status)
      assert.are.equal("malformed header line in the response", res.body)
      assert.are.equal("network", res.headers)
    end)

    it("[12.6] skips 1xx blocks and tolerates blank lines before a status line", function()
      local res = read { "\r\n", "HTTP/1.1 103 Early Hints\r\nX-Early: 1\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
                         OK .. "X-Final: yes\r\nContent-Length: 2\r\n\r\nok" }
      assert.are.equal(200, res.status)
      assert.are.same({ ["x-final"] = "yes", ["content-length"] = "2" }, res.headers)
      assert.are.equal("ok", res.body)
    end)

    it("[12.6] refuses a malformed status line", function()
      for _, line in ipairs { "HTTP/1.1 2OO OK", "HTTP/2.0 200 OK", "HTTP/1.1 099 X", "HTTP/1.1 200OK", "SSH-2.0-OpenSSH_9.2" } do
        local res = read { line .. "\r\nContent-Length: 0\r\n\r\n" }
        assert.is_nil(res.status, line)
        assert.are.equal("malformed status line in the response", res.body)
        assert.are.equal("network", res.headers)
      end
      assert.are.equal(200, read { "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n" }.status)
    end)
  end)

  describe("framing", function()
    it("[12.6] by method, status, Transfer-Encoding and Content-Length", function()
      local cases = {
        { "HEAD", 200, { ["content-length"] = "5" }, "none" },
        { "GET", 204, { ["content-length"] = "5" }, "none" },
        { "GET", 304, {}, "none" },
        { "GET", 101, {}, "none" },
        { "GET", 200, { ["transfer-encoding"] = "chunked", ["content-length"] = "5" }, "chunked" },
        { "GET", 200, { ["transfer-encoding"] = "gzip, Chunked " }, "chunked" },
        { "GET", 200, { ["transfer-encoding"] = "chunked, gzip" }, "close" },
        { "GET", 200, { ["transfer-encoding"] = "chunked," }, "close" },
        { "GET", 200, { ["content-length"] = "5" }, "length", 5 },
        { "GET", 200, { ["content-length"] = " 5 , 5,5" }, "length", 5 },
        { "GET", 200, { ["content-length"] = "0" }, "length", 0 },
        { "GET", 200, {}, "close" },
        { "GET", 200, { ["content-length"] = "5, 6" }, nil, "invalid Content-Length in the response" },
        { "GET", 200, { ["content-length"] = "abc" }, nil, "invalid Content-Length in the response" },
        { "GET", 200, { ["content-length"] = "-1" }, nil, "invalid Content-Length in the response" },
        { "GET", 200, { ["content-length"] = "" }, nil, "invalid Content-Length in the response" },
        { "GET", 200, { ["content-length"] = ("9"):rep(16) }, nil, "invalid Content-Length in the response" },
      }
      for i, c in ipairs(cases) do
        assert.are.same({ c[4], c[5] }, { http1.framing(c[1], c[2], c[3]) }, "case " .. i)
      end
    end)

    it("[12.6] reads chunked bodies with extensions and drops the trailer", function()
      local res = read { OK .. "Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n",
                         "7 ; a=\"b;c\"\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n" }
      assert.are.equal("hello, world", res.body)
      assert.is_nil(res.headers["x-trailer"])
      assert.is_true(res.reusable)
    end)

    it("[12.6] refuses a malformed chunk, a trailer over max_header, and a trailer line over its limit", function()
      local res = read { OK .. "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" }
      assert.are.equal("malformed chunk size in the response body", res.body)
      res = read { OK .. "Transfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n" }
      assert.are.equal("malformed chunk in the response body", res.body)
      local limit, line = contract.LIMITS.max_header_bytes, contract.LIMITS.max_trailer_line
      local function trailer(n, size) -- n lines of `size` bytes with their line ends
        return OK .. "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
          .. ("X-T: " .. ("t"):rep(size - 7) .. "\r\n"):rep(n) .. "\r\n"
      end
      res = read(cosocket.split(trailer(math.floor(limit / line), line), 4096))
      assert.are.equal("ok", res.body)
      res = read(cosocket.split(trailer(math.floor(limit / line) + 1, line), 4096))
      assert.is_nil(res.status)
      assert.are.equal(("response trailer exceeds %d bytes"):format(limit), res.body)
      assert.are.equal("network", res.headers)
      res = read(cosocket.split(trailer(1, line + 1), 1000))
      assert.are.equal(("response trailer line exceeds %d bytes"):format(line), res.body)
      assert.are.equal("network", res.headers)
    end)

    it("[12.6] says when the connection may carry another request", function()
      local cases = {
        { OK .. "Content-Length: 2\r\n\r\nok", true },
        { OK .. "Connection: close\r\nContent-Length: 2\r\n\r\nok", false },
        { "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false },
        { "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", true },
        { OK .. "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n", false },
        { OK .. "Content-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", false }, -- bytes nobody asked for
        { OK .. "\r\nok", false },                                      -- to the connection's end
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", false },
      }
      for _, c in ipairs(cases) do
        local res = read { c[1] }
        assert.are.equal("ok", res.status ~= 101 and res.body or "ok", c[1])
        assert.are.equal(c[2], res.reusable, c[1])
      end
    end)
  end)

  describe("limits", function()
    it("[12.6] takes a header block of exactly max_header bytes, and refuses one byte more", function()
      local limit = contract.LIMITS.max_header_bytes
      local function answer(size)
        local fixed = #OK + #"Content-Length: 2\r\n" + #"X-Pad: \r\n" + 2
        return OK .. "Content-Length: 2\r\nX-Pad: " .. ("p"):rep(size - fixed) .. "\r\n\r\nok"
      end
      local res = read(cosocket.split(answer(limit), 1000))
      assert.are.equal(200, res.status, res.body)
      res = read(cosocket.split(answer(limit + 1), 1000))
      assert.is_nil(res.status)
      assert.are.equal(("response header exceeds %d bytes"):format(limit), res.body)
      assert.are.equal("network", res.headers)
      -- one line that never ends is refused as soon as it passes the limit
      local _, c = read(cosocket.split(OK .. "X-Long: " .. ("l"):rep(4 * limit), 1000))
      assert.is_true(c.received < limit + 2000)
    end)

    it("[12.6] stops at max_body, however the body is framed", function()
      local cases = {
        OK .. "Content-Length: 11\r\n\r\n",
        OK .. "Transfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
        OK .. "\r\n12345678901",
      }
      for _, answer in ipairs(cases) do
        local res = read({ answer }, { url = "http://h/", max_body = 10 })
        assert.is_nil(res.status, answer)
        assert.are.equal("response body exceeds 10 bytes", res.body)
        assert.are.equal("too_large", res.headers)
      end
      assert.are.equal("1234567890", read({ OK .. "\r\n1234567890" }, { url = "http://h/", max_body = 10 }).body)
    end)
  end)

  describe("time and broken connections", function()
    it("[12.6] gives every receive the time left, and gives up at the deadline", function()
      local res, _, log = read({ OK, { wait = 4 }, "X-A: 1\r\n", { wait = 7 }, "\r\n" }, { url = "http://h/", timeout = 10 })
      assert.is_nil(res.status)
      assert.are.equal("timeout", res.headers)
      assert.are.equal("timed out after 10000 ms while reading the response body", res.body)
      assert.are.same({ 10000, 10000, 6000 }, log.timeouts)
      res = read({ OK, { err = "timeout" } }, { url = "http://h/", timeout = 0.0004 })
      assert.are.equal("timeout", res.headers)
      assert.are.equal("timed out after 0 ms while reading the response header", res.body)
    end)

    it("[12.6] says how much of a promised body came, and whether any answer came at all", function()
      local res, c = read { OK .. "Content-Length: 10\r\n\r\nabc" }
      assert.are.equal("connection closed after 3 of 10 body bytes", res.body)
      assert.are.equal("network", res.headers)
      assert.is_true(c.received > 0)
      res, c = read {}
      assert.are.equal("connection closed by the server while reading the response header", res.body)
      assert.are.equal(0, c.received) -- the transport may send such a request again
      res = read { OK, { err = "connection reset by peer" } }
      assert.are.equal("connection reset by peer while reading the response header", res.body)
      assert.are.equal("network", res.headers)
    end)
  end)
end)
