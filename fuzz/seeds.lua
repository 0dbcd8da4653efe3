-- Writes the seed corpora in fuzz/corpus/<target>/ (committed; rerun after a change
-- of an input format): lua5.4 fuzz/seeds.lua [dir]. Each file is one input in the
-- format its target's header comment describes.
-- (fuzz/corpus/json/ is not generated here: its seeds are kept as files.)
local dir = arg[1] or "fuzz/corpus"

local function b64decode(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local bits = s:gsub("=", ""):gsub(".", function(c)
    local v = alphabet:find(c, 1, true) - 1
    local t = {}
    for i = 5, 0, -1 do t[#t + 1] = (v >> i) & 1 end
    return table.concat(t)
  end)
  bits = bits:sub(1, #bits - #bits % 8) -- drop the padding bits
  return (bits:gsub("%d%d%d%d%d%d%d%d", function(byte) return string.char(tonumber(byte, 2)) end))
end

local function field(s) -- one length byte, then the bytes
  assert(#s < 256, "field too long")
  return string.char(#s) .. s
end

local function gzip(s)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(s)
  f:close()
  local p = assert(io.popen("gzip -9 -n -c < " .. tmp, "r"))
  local out = p:read("a")
  p:close()
  os.remove(tmp)
  return out
end

local function write(target, name, bytes)
  os.execute("mkdir -p " .. dir .. "/" .. target)
  local f = assert(io.open(dir .. "/" .. target .. "/" .. name, "wb"))
  f:write(bytes)
  f:close()
end

-- decrypt: [flags][random length][random][payload]; flags bit 0: payload is raw ciphertext
local function decrypt(name, flags, random, payload)
  write("decrypt", name, string.char(flags) .. field(random) .. payload)
end
decrypt("golden-china1234", 0, "j1acpdj2bmtqZXVb", "lkZMvj0KDSJXlp66jBieHA==")
decrypt("golden-abcd1234", 0, "abcdef", "KbbO5AsWloh9gulLei6NhQ==")
decrypt("golden-raw", 1, "j1acpdj2bmtqZXVb", b64decode("lkZMvj0KDSJXlp66jBieHA=="))
decrypt("wrong-key", 0, "wrong", "lkZMvj0KDSJXlp66jBieHA==")
decrypt("empty-random", 0, "", "KbbO5AsWloh9gulLei6NhQ==")
decrypt("bad-padding-raw", 1, "k", string.rep("\0", 15) .. "\17")
decrypt("two-blocks-raw", 1, "abcdef", string.rep("\255", 32))
decrypt("not-blocks", 0, "k", "QUJD")
decrypt("empty", 0, "k", "")
decrypt("pad-only", 0, "k", "====")
decrypt("pad-three", 0, "k", "a===")
decrypt("pad-inside", 0, "k", "QQ=A")
decrypt("trailing-bits", 0, "k", "QR==")
decrypt("short-pad", 0, "j1acpdj2bmtqZXVb", "lkZMvj0KDSJXlp66jBieHA=")
decrypt("bang", 0, "j1acpdj2bmtqZXVb", "lkZMvj0KDSJXlp66jBieHA=!")
decrypt("space", 0, "j1acpdj2bmtqZXVb", "lkZMvj0K DSJXlp66jBieHA==")
decrypt("nul", 0, "j1acpdj2bmtqZXVb", "lkZMvj0KDSJX\0p66jBieHA==")
decrypt("newline", 0, "j1acpdj2bmtqZXVb", "lkZMvj0KDSJXlp66\njBieHA==")

-- roundtrip: [random length][random][plain]
local function roundtrip(name, random, plain)
  write("roundtrip", name, field(random) .. plain)
end
roundtrip("golden-china1234", "j1acpdj2bmtqZXVb", "china1234")
roundtrip("golden-abcd1234", "abcdef", "abcd1234")
roundtrip("empty", "", "")
roundtrip("block-minus-one", "r", string.rep("a", 15))
roundtrip("block", "r", string.rep("b", 16))
roundtrip("block-plus-one", "r", string.rep("c", 17))
roundtrip("utf8", "\0\1\2", "密码🔒pässwörd")
roundtrip("nul", string.rep("z", 100), "nul\0inside\0")

-- headers: [limit lo][limit hi][flags][repeat][head length lo][head length hi][head][body]
local function headers(name, limit, flags, rep, head, body)
  write("headers", name, string.char(limit & 255, limit >> 8, flags, rep, #head & 255, #head >> 8) .. head .. body)
end
local ok_head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
headers("plain", 1024, 0, 0, ok_head, '{"ok":true}')
headers("pieces", 1024, 0x35, 0, ok_head, '{"ok":true}')
headers("folded", 64, 0, 0,
  "HTTP/1.1 200 OK\r\nX-Long: part1\r\n  part2\r\n\tpart3: x\r\n continued:\r\n\r\n", "")
headers("duplicate", 64, 0, 0,
  "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nSET-COOKIE:c=3\r\nSet-Cookie:\r\n\r\n", "")
headers("empty-lines", 64, 0, 0,
  "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Blank:   \t \r\n:novalue\r\n\r\n\n\r\n:\r\n \r\n\r\n", "")
headers("continue-then-ok", 64, 0, 0,
  "HTTP/1.1 100 Continue\r\nX-First: 1\r\n\r\nHTTP/1.1 200 OK\r\nX-Second: 2\r\n\r\n", "body")
headers("bare-lf", 64, 0, 0, "HTTP/1.1 200 OK\nA: b\nA:  c  \n\n", "")
headers("nul-bytes", 64, 0, 0, "HTTP/1.1 200 OK\r\nA\0B: c\0d\r\nE: \0\r\n\r\n", "")
headers("name-127", 64, 0, 0, string.rep("N", 127) .. ": v\r\n", "")
headers("name-128", 64, 0, 0, string.rep("N", 128) .. ": v\r\n", "")
headers("huge-line", 64, 0, 255, "X-Huge: " .. string.rep("a", 1092), "") -- 256 copies: past 256 KiB
headers("huge-block", 64, 0, 255, "X-Many: " .. string.rep("b", 1090) .. "\r\n", "")
headers("huge-exact", 64, 0, 255, "X-Huge: " .. string.rep("c", 1016), "") -- exactly 256 KiB: still fits
-- the shapes of the header parser shared with the cosocket transport (http1.lua)
headers("fold-first", 64, 0, 0, "HTTP/1.1 200 OK\r\n x: y\r\nA: b\r\n\r\n", "")
headers("no-colon", 64, 0, 0, "HTTP/1.1 200 OK\r\nA: b\r\njunk\r\n\r\n", "")
headers("early-hints", 64, 0, 0,
  "HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\nX-Trailer: t\r\n\r\n", "")
headers("trailer-over", 64, 0, 255, "HTTP/1.1 200 OK\r\n\r\nX-T: " .. string.rep("t", 1070) .. "\r\n", "")
headers("fold-empty", 64, 0, 0, "HTTP/1.1 200 OK\r\nA:\r\n b\r\nA:\r\n\r\n", "")
headers("dup-many", 64, 0, 255, string.rep("a:b\r\n", 200), "") -- 51200 repeats of one name
headers("body-over-limit", 5, 0x10, 0, ok_head, '{"ok":true}')
headers("body-at-limit", 11, 0xf0, 0, ok_head, '{"ok":true}')
headers("body-zero-limit", 0, 0, 0, ok_head, "x")
headers("trailers", 64, 0, 0,
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nX-Trailer: t\r\n\r\n", "abc")

-- request: [flags][method][url][body][max_body] then (name, value) pairs
-- flags: 1 method, 2 body, 4 proxy table with GC in __index, 8 headers, 16 closed session
local function request(name, flags, method, url, body, max_body, pairs)
  local t = { string.char(flags), field(method), field(url), field(body), string.char(max_body) }
  for _, kv in ipairs(pairs or {}) do t[#t + 1] = field(kv[1]) .. field(kv[2]) end
  write("request", name, table.concat(t))
end
local json = { { "Content-Type", "application/json" }, { "Authorization", "Bearer X" } }
request("post", 11, "POST", "127.0.0.1/v2/binding/enduserapi/userDeviceList?a=1", '{"a":1}', 0, json)
request("get", 0, "", "127.0.0.1/", "", 255)
request("put-empty-body", 3, "PUT", "h/", "", 1)
request("header-injection", 8, "", "h/", "", 0, { { "X-A", "1\r\nX-Evil: 1" } })
request("header-nul", 8, "", "h/", "", 0, { { "X-A", "1\0" }, { "X\0B", "1" } })
request("header-bad-name", 8, "", "h/", "", 0, { { "Bad Name", "1" }, { "", "empty" }, { "Empty", "" } })
request("method-space", 1, "GE T", "h/", "", 0)
request("method-nul", 1, "GET\0X", "h/", "", 0)
request("method-empty", 1, "", "h/", "", 0)
request("url-crlf", 0, "", "h/\r\nHost: evil", "", 0)
request("url-nul", 0, "", "h/\0evil", "", 0)
request("proxy-long-url", 15, "POST",
  "127.0.0.1/v2/binding/enduserapi/userDeviceList?" .. string.rep("p", 80), string.rep("b", 60), 3, json)
request("closed", 16, "", "h/", "", 0)

-- response: [flags][raw response]; flags bits 0-1 max_body 0/16/4096/default, bit 2 HEAD
local function response(name, flags, raw)
  write("response", name, string.char(flags) .. raw)
end
response("ok", 3, ok_head .. '{"ok":true}')
response("ok-limit-16", 1, ok_head .. '{"ok":true}')
response("over-limit", 0, ok_head .. '{"ok":true}')
response("head", 7, ok_head)
response("chunked-trailer", 3,
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: done\r\n\r\n")
response("continue", 3, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
response("folded-dup", 3,
  "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nX-A: 2\r\nx-a:\r\nContent-Length: 0\r\n\r\n")
response("short-body", 3, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
response("close-delimited", 3, "HTTP/1.0 200 OK\r\n\r\nuntil the end")
response("no-content", 3, "HTTP/1.1 204 No Content\r\n\r\n")
local gz = gzip('{"code":200,"data":{"list":[]}}')
response("gzip", 3, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " .. #gz .. "\r\n\r\n" .. gz)
response("gzip-limit", 1, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " .. #gz .. "\r\n\r\n" .. gz)
response("garbage", 3, "HELLO\r\n\r\n")
response("empty", 3, "")
