-- The transport contract as a table of cases, run the same way by the curl
-- transport (in the busted process) and by the ngx transport (inside nginx):
-- spec/nginx/transport_contract_spec.lua. A case says what to send, what the
-- server answers, and what must come out; `run` reports what did.
--
--   { name, req = { ... }, opts = { ... },      -- the request and the transport's options
--     answer = { ... },                         -- what /contract/raw writes, in order:
--                                               --   "bytes", seconds to sleep,
--                                               --   { trickle = "bytes", every = seconds },
--                                               --   { rep = "x", n = count }
--     environment = { VAR = "value" },          -- for the curl run: a child process with these
--     expect = { ... }                          -- the same for both transports, or
--     curl = { ... }, ngx = { ... }, differs = "why"   -- where they differ by necessity
--   }
--
-- Expectations: status, body, length, headers = { name = value | false (absent) },
-- echo = { what the echo server received }, kind, err (exact), err_has (part of
-- it), raises (part of the message), max_seconds, min_seconds.
--
-- Placeholders in strings, filled from the run's environment: {origin} (the
-- server, http://127.0.0.1:PORT), {origin_host} (127.0.0.1:PORT), {port}, {raw}
-- (this case's raw answer), {echo} (the echo server), {never} (a URL that counts
-- requests which must never arrive), {fake} (the fake cloud over HTTPS by name),
-- {fake_ip} (by address), {wronghost}, {unknownca} (its servers with the
-- wrong name and an untrusted CA), {ca} (the CA that signs the fake's
-- certificates), {other_ca} (a CA that does not).
local core = require "quecapi.core"

local _M = {}

local LIMIT = require("quecapi.transport.contract").LIMITS.max_header_bytes
local DEFAULT_MAX_BODY = require("quecapi.transport.contract").DEFAULTS.max_body

local TRAILER_LINE = require("quecapi.transport.contract").LIMITS.max_trailer_line

local OK = "HTTP/1.1 200 OK\r\n"

-- A chunked answer whose trailer has `n` lines of `size` bytes each, line ends included.
local function trailer(n, size)
  local lines = {}
  for i = 1, n do
    local name = ("X-T%d: "):format(i)
    lines[i] = name .. ("t"):rep(size - #name - 2) .. "\r\n"
  end
  return OK .. "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" .. table.concat(lines) .. "\r\n"
end

-- An answer whose status line and header block take exactly `size` bytes.
local function block_of(size)
  local fixed = #OK + #"Content-Length: 2\r\n" + #"X-Pad: \r\n" + 2
  return OK .. "Content-Length: 2\r\nX-Pad: " .. ("p"):rep(size - fixed) .. "\r\n\r\nok"
end

local function refused(err) return { kind = "url", err = err } end
local function raises(part) return { raises = part } end

-- Not in a case, so the table is data both sides can load: the differences by
-- necessity that no case can show here.
_M.UNTESTED_DIFFERENCES = {
  "curl may speak HTTP/2 to a TLS server that offers it; cosockets speak HTTP/1.1",
  "host names: libcurl resolves them itself; nginx needs a `resolver` directive (but for localhost)",
}

_M.cases = {
  -- ---------------------------------------------------------------- refused before sending
  { name = "a method with a space", req = { url = "{never}", method = "GE T" }, expect = refused "invalid HTTP method" },
  { name = "an empty method", req = { url = "{never}", method = "" }, expect = refused "invalid HTTP method" },
  { name = "a method with CR LF", req = { url = "{never}", method = "GET /x HTTP/1.1\r\nX:" },
    expect = refused "invalid HTTP method" },
  { name = "a method with NUL", req = { url = "{never}", method = "GET\0X" }, expect = refused "invalid HTTP method" },
  { name = "a URL with CR LF", req = { url = "{never}\r\nHost: evil" }, expect = refused "URL contains CR, LF or NUL" },
  { name = "a URL with NUL", req = { url = "{never}\0http://elsewhere/" }, expect = refused "URL contains CR, LF or NUL" },
  { name = "a URL with a space", req = { url = "{never}/a b" },
    expect = refused "URL contains spaces or control characters" },
  { name = "a URL with a tab", req = { url = "{never}/a\tb" },
    expect = refused "URL contains spaces or control characters" },
  { name = "a URL with DEL", req = { url = "{never}/a\127" },
    expect = refused "URL contains spaces or control characters" },
  { name = "a header name with a space", req = { url = "{never}", headers = { ["Bad Name"] = "v" } },
    expect = refused "invalid header name" },
  { name = "a header name with a colon", req = { url = "{never}", headers = { ["X:Y"] = "v" } },
    expect = refused "invalid header name" },
  { name = "an empty header name", req = { url = "{never}", headers = { [""] = "v" } },
    expect = refused "invalid header name" },
  { name = "a header name with NUL", req = { url = "{never}", headers = { ["X\0Y"] = "v" } },
    expect = refused "invalid header name" },
  { name = "a header value with CR LF", req = { url = "{never}", headers = { X = "1\r\nX-Evil: 1" } },
    expect = refused "header value contains CR, LF or NUL" },
  { name = "a header value with a bare LF", req = { url = "{never}", headers = { X = "1\nX-Evil: 1" } },
    expect = refused "header value contains CR, LF or NUL" },
  { name = "a header value with NUL", req = { url = "{never}", headers = { X = "1\0" } },
    expect = refused "header value contains CR, LF or NUL" },
  { name = "the ftp scheme", req = { url = "ftp://127.0.0.1:{port}/" }, expect = refused "unsupported URL scheme 'ftp'" },
  { name = "the file scheme", req = { url = "file:///etc/passwd" }, expect = refused "unsupported URL scheme 'file'" },
  { name = "no scheme", req = { url = "127.0.0.1:{port}/contract/never" }, expect = refused "malformed URL" },
  { name = "credentials in the URL", req = { url = "http://user:pw@127.0.0.1:{port}/contract/never" },
    expect = refused "credentials in URLs are not supported" },
  { name = "no host", req = { url = "http:///contract/never" }, expect = refused "URL has no host" },
  { name = "an IPv4 address out of range", req = { url = "http://300.1.1.1/" }, expect = refused "invalid host name in URL" },
  { name = "a host with an underscore", req = { url = "http://bad_host/" }, expect = refused "invalid host name in URL" },
  { name = "a host label starting with a hyphen", req = { url = "http://-x.example/" },
    expect = refused "invalid host name in URL" },
  { name = "a host label of 64 bytes", req = { url = "http://" .. ("a"):rep(64) .. ".example/" },
    expect = refused "invalid host name in URL" },
  { name = "a host of digits", req = { url = "http://123/" }, expect = refused "invalid host name in URL" },
  { name = "port 0", req = { url = "http://127.0.0.1:0/" }, expect = refused "invalid port in URL" },
  { name = "port 65536", req = { url = "http://127.0.0.1:65536/" }, expect = refused "invalid port in URL" },
  { name = "a port that is not a number", req = { url = "http://127.0.0.1:http/" },
    expect = refused "malformed host or port in URL" },
  { name = "a malformed IPv6 address", req = { url = "http://[::g]/" }, expect = refused "invalid IPv6 address in URL" },
  { name = "an IPv6 zone id", req = { url = "http://[fe80::1%25lo]/" }, expect = refused "invalid IPv6 address in URL" },

  -- ---------------------------------------------------------------- programmer errors
  { name = "no url", req = {}, expect = raises "request.url is required" },
  { name = "a url that is not a string", req = { url = 1 }, expect = raises "request.url must be a string" },
  { name = "headers that are not a table", req = { url = "{never}", headers = "h" },
    expect = raises "request.headers must be a table" },
  { name = "a header value that is not a string", req = { url = "{never}", headers = { X = 1 } },
    expect = raises "request.headers must map strings to strings" },
  { name = "a timeout that is not a number", req = { url = "{never}", timeout = "5" },
    expect = raises "request.timeout must be a number" },
  { name = "a timeout of 0", req = { url = "{never}", timeout = 0 }, expect = raises "timeouts must be between 0 and" },
  { name = "a negative timeout", req = { url = "{never}", timeout = -1 }, expect = raises "timeouts must be between 0 and" },
  { name = "a timeout over 1e6 s", req = { url = "{never}", timeout = 1e6 + 1 },
    expect = raises "timeouts must be between 0 and" },
  { name = "a NaN timeout", req = { url = "{never}", timeout = 0 / 0 }, expect = raises "timeouts must be between 0 and" },
  { name = "a connect_timeout of 0", req = { url = "{never}", connect_timeout = 0 },
    expect = raises "timeouts must be between 0 and" },
  { name = "a negative max_body", req = { url = "{never}", max_body = -1 }, expect = raises "max_body must be between 0 and" },
  { name = "a max_body over 1e15", req = { url = "{never}", max_body = 1e15 + 1 },
    expect = raises "max_body must be between 0 and" },

  -- ---------------------------------------------------------------- answers
  { name = "status, body and lowercase headers",
    answer = { OK .. "Content-Type: text/plain\r\nX-Mixed-Case: Yes\r\nContent-Length: 5\r\n\r\nhello" },
    expect = { status = 200, body = "hello",
               headers = { ["content-type"] = "text/plain", ["x-mixed-case"] = "Yes", ["content-length"] = "5",
                           ["Content-Type"] = false } } },
  { name = "repeated headers joined in order, whatever the case of their names",
    answer = { OK .. "Set-Cookie: a=1\r\nset-cookie: b=2\r\nSET-COOKIE: c=3\r\nContent-Length: 0\r\n\r\n" },
    expect = { status = 200, body = "", headers = { ["set-cookie"] = "a=1, b=2, c=3" } } },
  { name = "folded lines unfolded",
    answer = { OK .. "X-Folded: one\r\n\ttwo\r\n   three  \r\nX-E:\r\n e\r\nContent-Length: 0\r\n\r\n" },
    expect = { status = 200, headers = { ["x-folded"] = "one two three", ["x-e"] = "e" } } },
  { name = "values trimmed; empty values kept; lines with a bad name ignored",
    answer = { OK .. "X-Trim:   padded \t\r\nX-Empty:\r\nBad Name: x\r\n cont\r\n:e\r\nX-After: ok\r\n"
               .. "Content-Length: 0\r\n\r\n" },
    expect = { status = 200, headers = { ["x-trim"] = "padded", ["x-empty"] = "", ["x-after"] = "ok",
                                         ["bad name"] = false, [""] = false } } },
  { name = "a header line without a colon", answer = { OK .. "X-A: 1\r\nNoColon\r\nContent-Length: 0\r\n\r\n" },
    expect = { kind = "network" } },
  { name = "a continuation with no field before it", answer = { OK .. " first\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n" },
    expect = { kind = "network" } },
  { name = "a status line without a reason", answer = { "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok" },
    expect = { status = 200, body = "ok" } },
  { name = "an HTTP/1.0 answer", answer = { "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok" },
    expect = { status = 200, body = "ok" } },
  { name = "1xx blocks before the answer are not its headers",
    answer = { "HTTP/1.1 103 Early Hints\r\nX-Early: 1\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
               .. OK .. "X-Final: yes\r\nContent-Length: 2\r\n\r\nok" },
    expect = { status = 200, body = "ok", headers = { ["x-final"] = "yes", ["x-early"] = false } } },
  { name = "a 204 has no body", answer = { "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n" },
    expect = { status = 204, body = "", headers = { ["x-a"] = "1" } } },
  { name = "a 304 has no body", answer = { "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n" },
    expect = { status = 304, body = "", headers = { etag = "\"e\"" } } },
  { name = "a HEAD answer has no body", req = { method = "HEAD" },
    answer = { OK .. "Content-Length: 5\r\n\r\n" },
    expect = { status = 200, body = "", headers = { ["content-length"] = "5" } } },
  { name = "a 404 is an answer, not a failure", answer = { "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope" },
    expect = { status = 404, body = "nope" } },
  { name = "a chunked body with extensions; its trailer dropped",
    answer = { OK .. "Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n7 ; a=\"b;c\"\r\n, world\r\n"
               .. "0\r\nX-Trailer: yes\r\n\r\n" },
    expect = { status = 200, body = "hello, world",
               headers = { ["transfer-encoding"] = "chunked", ["x-trailer"] = false } } },
  { name = "a chunked body in pieces",
    answer = { OK .. "Transfer-Encoding: chunked\r\n\r\n", 0.05, "3\r\nabc\r\n", 0.05, "3\r\ndef\r\n", 0.05, "0\r\n\r\n" },
    expect = { status = 200, body = "abcdef" } },
  { name = "a body that ends with the connection", answer = { OK .. "Content-Type: text/plain\r\n\r\nno length, ends at close" },
    expect = { status = 200, body = "no length, ends at close" } },
  { name = "Content-Length repeats that agree", answer = { OK .. "Content-Length: 2\r\nContent-Length: 2\r\n\r\nok" },
    expect = { status = 200, body = "ok", headers = { ["content-length"] = "2, 2" } } },
  { name = "Content-Length repeats that disagree", answer = { OK .. "Content-Length: 5, 6\r\n\r\nhello" },
    expect = { kind = "network" } },
  { name = "a Content-Length that is not a number", answer = { OK .. "Content-Length: five\r\n\r\nhello" },
    expect = { kind = "network" } },
  { name = "a Content-Length longer than the body", answer = { OK .. "Content-Length: 10\r\n\r\nabc" },
    expect = { kind = "network" } },
  { name = "a malformed status line", answer = { "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n" },
    expect = { kind = "network" } },
  { name = "a status under 100", answer = { "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n" },
    expect = { kind = "network" } },
  { name = "an answer that is not HTTP", answer = { "SSH-2.0-OpenSSH_9.2\r\n\r\n" }, expect = { kind = "network" } },
  { name = "no answer at all", answer = {}, expect = { kind = "network" } },
  { name = "a malformed chunk size", answer = { OK .. "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" },
    expect = { kind = "network" } },

  -- ---------------------------------------------------------------- limits
  { name = "a body over max_body, by Content-Length", req = { max_body = 10 },
    answer = { OK .. "Content-Length: 11\r\n\r\n12345678901" },
    expect = { kind = "too_large", err = "response body exceeds 10 bytes" } },
  { name = "a body over max_body, chunked", req = { max_body = 10 },
    answer = { OK .. "Transfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n" },
    expect = { kind = "too_large", err = "response body exceeds 10 bytes" } },
  { name = "a body over max_body, to the connection's end", req = { max_body = 10 },
    answer = { OK .. "\r\n12345678901" },
    expect = { kind = "too_large", err = "response body exceeds 10 bytes" } },
  { name = "a body of exactly max_body", req = { max_body = 10 },
    answer = { OK .. "Content-Length: 10\r\n\r\n1234567890" }, expect = { status = 200, body = "1234567890" } },
  { name = "max_body 0 and an empty body", req = { max_body = 0 }, answer = { OK .. "Content-Length: 0\r\n\r\n" },
    expect = { status = 200, body = "" } },
  { name = "max_body 0 and one byte", req = { max_body = 0 }, answer = { OK .. "Content-Length: 1\r\n\r\nx" },
    expect = { kind = "too_large", err = "response body exceeds 0 bytes" } },
  { name = "the default max_body, exactly", answer = { OK .. "Content-Length: " .. DEFAULT_MAX_BODY .. "\r\n\r\n",
                                                        { rep = "b", n = DEFAULT_MAX_BODY } },
    expect = { status = 200, length = DEFAULT_MAX_BODY } },
  { name = "one byte over the default max_body", answer = { OK .. "\r\n", { rep = "b", n = DEFAULT_MAX_BODY + 1 } },
    expect = { kind = "too_large", err = ("response body exceeds %d bytes"):format(DEFAULT_MAX_BODY) } },
  { name = "a header block of exactly the limit", answer = { block_of(LIMIT) }, expect = { status = 200, body = "ok" } },
  { name = "a header block one byte over the limit", answer = { block_of(LIMIT + 1) },
    expect = { kind = "network", err = ("response header exceeds %d bytes"):format(LIMIT) } },
  { name = "a trailer within the limits, read and dropped", answer = { trailer(10, TRAILER_LINE) },
    expect = { status = 200, body = "ok", headers = { ["x-t1"] = false, ["x-t10"] = false } } },
  { name = "a trailer line over its limit", answer = { trailer(1, TRAILER_LINE + 1) }, expect = { kind = "network" } },
  { name = "a trailer over the limit", answer = { trailer(math.ceil(LIMIT / TRAILER_LINE) + 1, TRAILER_LINE) },
    expect = { kind = "network", err = ("response trailer exceeds %d bytes"):format(LIMIT) } },
  { name = "timeouts of 1e6 s are in range", req = { timeout = 1e6, connect_timeout = 1e6 },
    answer = { OK .. "Content-Length: 2\r\n\r\nok" }, expect = { status = 200, body = "ok" } },

  -- ---------------------------------------------------------------- time and connections
  { name = "a silent server past the timeout", req = { timeout = 0.5 }, answer = { OK, 3 },
    expect = { kind = "timeout", min_seconds = 0.45, max_seconds = 1.5 } },
  { name = "a server that trickles its body past the timeout", req = { timeout = 1 },
    answer = { OK .. "Content-Length: 40\r\n\r\n", { trickle = ("b"):rep(40), every = 0.1 } },
    expect = { kind = "timeout", min_seconds = 0.95, max_seconds = 2 } },
  { name = "a timeout under a millisecond is still a bound", req = { timeout = 0.0004 }, answer = { 3 },
    expect = { kind = "timeout", max_seconds = 1 } },
  { name = "a refused connection", req = { url = "http://127.0.0.1:1/" }, expect = { kind = "connect" } },

  -- ---------------------------------------------------------------- the request as sent
  { name = "method, target, body, type and the caller's headers",
    req = { method = "POST", url = "{echo}/p?q=1", body = '{"a":1}',
            headers = { ["Content-Type"] = "application/json", ["X-Custom"] = "v" } },
    expect = { status = 200, echo = { method = "POST", target = "/p?q=1", body = '{"a":1}',
               headers = { ["content-length"] = "7", ["content-type"] = "application/json", ["x-custom"] = "v",
                           host = "{origin_host}", ["transfer-encoding"] = false, expect = false,
                           ["user-agent"] = false, accept = false } } } },
  { name = "a bodiless POST says Content-Length: 0 and no type", req = { method = "POST", url = "{echo}/" },
    expect = { status = 200, echo = { method = "POST", body = "",
               headers = { ["content-length"] = "0", ["content-type"] = false } } } },
  { name = "a bodiless PUT says Content-Length: 0", req = { method = "PUT", url = "{echo}/" },
    expect = { status = 200, echo = { method = "PUT", headers = { ["content-length"] = "0" } } } },
  { name = "a bodiless PATCH says Content-Length: 0", req = { method = "PATCH", url = "{echo}/" },
    expect = { status = 200, echo = { method = "PATCH", headers = { ["content-length"] = "0" } } } },
  { name = "a bodiless DELETE says Content-Length: 0", req = { method = "DELETE", url = "{echo}/" },
    expect = { status = 200, echo = { method = "DELETE", headers = { ["content-length"] = "0" } } } },
  { name = "a GET says no length", req = { url = "{echo}/" },
    expect = { status = 200, echo = { method = "GET", body = "", headers = { ["content-length"] = false } } } },
  { name = "a DELETE with a body", req = { method = "DELETE", url = "{echo}/", body = "{}" },
    expect = { status = 200, echo = { method = "DELETE", body = "{}", headers = { ["content-length"] = "2" } } } },
  { name = "a HEAD never carries a body", req = { method = "HEAD", url = "{echo}/", body = "x" },
    expect = { status = 200, body = "", headers = { ["x-echo-method"] = "HEAD", ["x-echo-length"] = "none" } } },
  { name = "the caller's Content-Length and Transfer-Encoding are ignored",
    req = { method = "POST", url = "{echo}/", body = "abc",
            headers = { ["Content-Length"] = "99", ["Transfer-Encoding"] = "chunked" } },
    expect = { status = 200, echo = { body = "abc",
               headers = { ["content-length"] = "3", ["transfer-encoding"] = false } } } },
  { name = "an empty header value is sent", req = { url = "{echo}/", headers = { ["X-Empty"] = "" } },
    expect = { status = 200, echo = { headers = { ["x-empty"] = "" } } } },
  { name = "the caller's Host and Accept replace the defaults",
    req = { url = "{echo}/", headers = { Host = "example.com", Accept = "application/json" } },
    expect = { status = 200, echo = { headers = { host = "example.com", accept = "application/json" } } } },
  { name = "a fragment never goes on the wire", req = { url = "{echo}/f?x=1#frag" },
    expect = { status = 200, echo = { target = "/f?x=1" } } },
  { name = "a query without a path", req = { url = "{origin}?q=1" },
    expect = { status = 200, echo = { target = "/?q=1" } } },
  { name = "an uppercase scheme and host", req = { url = "HTTP://LOCALHOST:{port}/u" },
    expect = { status = 200, echo = { target = "/u", headers = { host = "localhost:{port}" } } } },

  -- ---------------------------------------------------------------- TLS
  { name = "https with a trusted certificate for the name", req = { url = "{fake}/_fake/health" }, opts = { ca_file = "{ca}" },
    expect = { status = 200, body = '{"ok":true}' } },
  { name = "a certificate for another name", req = { url = "{wronghost}/_fake/health" }, opts = { ca_file = "{ca}" },
    expect = { kind = "tls" } },
  { name = "a certificate from an unknown CA", req = { url = "{unknownca}/_fake/health" }, opts = { ca_file = "{ca}" },
    expect = { kind = "tls" } },
  { name = "a certificate from an unknown CA, with verify = false", req = { url = "{unknownca}/_fake/health" },
    opts = { verify = false }, expect = { status = 404 } },

  -- ---------------------------------------------------------------- different by necessity
  { name = "ca_file naming a CA that did not sign the certificate", req = { url = "{fake}/_fake/health" },
    opts = { ca_file = "{other_ca}" },
    differs = "cosockets trust lua_ssl_trusted_certificate alone: a CA file per request is not possible",
    curl = { kind = "tls" }, ngx = { status = 200 } },
  { name = "https to an IP address", req = { url = "{fake_ip}/_fake/health" }, opts = { ca_file = "{ca}" },
    differs = "nginx checks certificates against host names only (X509_check_host), never IP address entries",
    curl = { status = 200 }, ngx = { kind = "tls", err_has = "host names only" } },
  { name = "an IPv6 literal", req = { url = "http://[::1]:1/" },
    differs = "the cosocket transport takes host names and IPv4 literals only",
    curl = { kind = "connect" }, ngx = { kind = "url", err_has = "IPv6 addresses are not supported" } },
  { name = "a proxy from the environment", req = { url = "{echo}/", connect_timeout = 2 },
    environment = { http_proxy = "http://127.0.0.1:1", no_proxy = "" },
    differs = "libcurl takes proxies from the environment, as curl does; cosockets have no proxy support",
    curl = { kind = "connect" }, ngx = { status = 200 } },
  { name = "content decoding", req = { url = "{echo}/" },
    differs = "libcurl offers and decodes gzip, deflate, br and zstd; the cosocket transport has no decoder and "
      .. "asks for the identity encoding",
    curl = { status = 200, echo = { headers = { ["accept-encoding"] = "deflate, gzip, br, zstd" } } },
    ngx = { status = 200, echo = { headers = { ["accept-encoding"] = false } } } },
}

local by_name = {}
for _, c in ipairs(_M.cases) do
  assert(not by_name[c.name], "two cases named " .. c.name)
  by_name[c.name] = c
end

function _M.case(name)
  return by_name[name]
end

--- What one transport must give for a case.
function _M.expected(case, transport)
  return case[transport] or case.expect
end

local function urlencode(s)
  return (s:gsub("[^%w]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- `v` with the placeholders filled (tables copied); env as `run` takes it.
local function fill(v, env, case)
  if type(v) == "string" then
    return (v:gsub("{([%w_]+)}", function(key)
      if key == "raw" then return env.origin .. "/contract/raw?case=" .. urlencode(case.name) end
      if key == "echo" then return env.origin end
      if key == "never" then return env.origin .. "/contract/never" end
      if key == "origin_host" then return (env.origin:gsub("^http://", "")) end
      if key == "port" then return env.origin:match(":(%d+)$") end
      return env[key]
    end))
  elseif type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[fill(k, env, case)] = fill(x, env, case) end
    return out
  end
  return v
end
_M.fill = fill

--- Run a case through one transport ("curl" or "ngx").
-- env = { origin, fake, fake_ip, wronghost, unknownca, ca, other_ca }
-- @return { raised, err, kind, status, body (up to 64 KiB), length, headers, elapsed }
function _M.run(case, env, transport)
  local req = fill(case.req or {}, env, case)
  if case.answer and req.url == nil then req.url = fill("{raw}", env, case) end
  local t = require("quecapi.transport." .. transport).new(fill(case.opts or {}, env, case))
  local started = core.monotonic()
  local ok, status, body, headers = pcall(t.request, t, req)
  local out = { elapsed = core.monotonic() - started }
  if not ok then
    out.raised, out.err = true, tostring(status)
  elseif status then
    out.status, out.length, out.headers = status, #body, headers
    if #body <= 65536 then out.body = body end
  else
    out.err, out.kind = body, headers
  end
  t:close()
  return out
end

-- ------------------------------------------------------------------------
-- random header blocks, read by both parsers (csrc/http.c and http1.lua)
-- ------------------------------------------------------------------------

-- The pieces header lines are made of; framing and decoding headers stay out
-- (libcurl acts on those), the rest is what the rules are about.
local NAMES = { "X-A", "x-a", "X-B", "Set-Cookie", "Bad Name", "", "X_C", "X-\1" }
local SEPS = { ":", ": ", ":\t", " :", ":  " }
local VALUES = { "1", "v w", "", "  padded  ", "a, b", "\t", "x\ry", "\v", "ends\r" }
local ENDS = { "\r\n", "\r\n", "\r\n", "\n" }
-- a continuation first, or a line without a colon, make the block malformed: rare
local FIRST = { "field", "field", "field", "field", "field", "field", "field", "field", "field", "fold" }
local LATER = { "field", "field", "field", "field", "field", "field", "fold", "fold", "blank fold", "no colon" }

--- `n` header blocks (status line to the empty line) from a seed: the same
-- blocks on every interpreter (a small generator of its own, not math.random).
function _M.random_blocks(seed, n)
  local state = seed
  local function pick(list)
    -- exact in doubles too (the product stays under 2^53); the high bits vary most
    state = (state * 69069 + 1) % 4294967296
    return list[math.floor(state / 65536) % #list + 1]
  end
  local blocks = {}
  for b = 1, n do
    local lines = { "HTTP/1.1 200 OK\r\n" }
    for i = 1, pick { 1, 2, 3, 4, 6, 8 } do
      local kind = pick(i == 1 and FIRST or LATER)
      if kind == "field" then
        lines[#lines + 1] = pick(NAMES) .. pick(SEPS) .. pick(VALUES) .. pick(ENDS)
      elseif kind == "fold" then
        lines[#lines + 1] = pick { " ", "\t", "  " } .. pick(VALUES) .. pick(ENDS)
      elseif kind == "blank fold" then
        lines[#lines + 1] = pick { " ", "\t " } .. pick(ENDS)
      else
        lines[#lines + 1] = "junk" .. pick(ENDS)
      end
    end
    lines[#lines + 1] = "Content-Length: 2\r\n\r\nok"
    blocks[b] = table.concat(lines)
  end
  return blocks
end

local function from_hex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

function _M.to_hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- Through one transport: { status, headers } or { kind } for each block,
-- served by the origin's /contract/block.
function _M.read_blocks(blocks, origin, transport)
  local t = require("quecapi.transport." .. transport).new {}
  local out = {}
  for i, block in ipairs(blocks) do
    local status, body, headers = t:request { url = origin .. "/contract/block?b=" .. _M.to_hex(block), timeout = 5 }
    out[i] = status and { status = status, headers = headers } or { kind = headers, err = body }
  end
  t:close()
  return out
end

-- ------------------------------------------------------------------------
-- the server side, inside nginx (spec/nginx/transport_contract_spec.lua)
-- ------------------------------------------------------------------------

--- Write the block given in hex as the whole answer.
function _M.serve_block(hex)
  local ngx = rawget(_G, "ngx")
  local sock = assert(ngx.req.socket(true))
  sock:send(from_hex(hex))
end

--- Write a case's answer on the raw connection; nginx closes it afterwards.
function _M.serve_raw(name)
  local ngx = rawget(_G, "ngx")
  local case = assert(by_name[name], "no case " .. tostring(name))
  local sock = assert(ngx.req.socket(true))
  for _, piece in ipairs(case.answer) do
    if type(piece) == "number" then
      ngx.sleep(piece)
    elseif type(piece) == "string" then
      if not sock:send(piece) then return end
    elseif piece.trickle then
      for i = 1, #piece.trickle do
        if not sock:send(piece.trickle:sub(i, i)) then return end
        ngx.sleep(piece.every)
      end
    else
      local chunk = piece.rep:rep(65536)
      local left = piece.n
      while left > 0 do
        if not sock:send(left >= #chunk and chunk or chunk:sub(1, left)) then return end
        left = left - #chunk
      end
    end
  end
end

--- Answer with what the request said: JSON { method, target, headers, body },
-- and for HEAD (which gets no body) the method and length as headers.
function _M.serve_echo()
  local ngx = rawget(_G, "ngx")
  local json = require "quecapi.json"
  ngx.req.read_body()
  local headers = {}
  for k, v in pairs(ngx.req.get_headers(100)) do
    headers[k] = type(v) == "table" and table.concat(v, ", ") or v
  end
  ngx.header["X-Echo-Method"] = ngx.req.get_method()
  ngx.header["X-Echo-Length"] = headers["content-length"] or "none"
  ngx.header["Content-Type"] = "application/json"
  ngx.print(json.encode { method = ngx.req.get_method(), target = ngx.var.request_uri, headers = headers,
                          body = ngx.req.get_body_data() or "" })
end

return _M
