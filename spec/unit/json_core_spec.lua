-- core.json_decode (csrc/json.c): the strict RFC 8259 decoder behind
-- quecapi.json.decode. Nulls are dropped, integers stay integers on Lua 5.3+,
-- nesting is bounded, and no input makes it raise or crash.
local core = require "quecapi.core"

local decode = core.json_decode
local has_integers = math.type ~= nil

-- decode must answer a value, or nil and a message naming the byte; never raise.
local function bad(text, where)
  local ok, v, err = pcall(decode, text)
  assert(ok, "raised: " .. tostring(v))
  assert(v == nil and type(err) == "string", "accepted " .. string.format("%q", text))
  assert.matches("^invalid JSON at byte %d+: ", err)
  if where then assert.matches("^invalid JSON at byte " .. where .. ":", err) end
  return err
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("core.json_decode", function()
  describe("values", function()
    it("decodes the examples of RFC 8259, section 13", function()
      local image = assert(decode [[
        {
          "Image": {
            "Width":  800,
            "Height": 600,
            "Title":  "View from 15th Floor",
            "Thumbnail": {
              "Url":    "http://www.example.com/image/481989943",
              "Height": 125,
              "Width":  100
            },
            "Animated" : false,
            "IDs": [116, 943, 234, 38793]
          }
        }]])
      assert.are.same({
        Width = 800, Height = 600, Title = "View from 15th Floor",
        Thumbnail = { Url = "http://www.example.com/image/481989943", Height = 125, Width = 100 },
        Animated = false, IDs = { 116, 943, 234, 38793 },
      }, image.Image)
      local places = assert(decode [[
        [
          {
             "precision": "zip",
             "Latitude":  37.7668,
             "Longitude": -122.3959,
             "Address":   "",
             "City":      "SAN FRANCISCO",
             "State":     "CA",
             "Zip":       "94107",
             "Country":   "US"
          },
          {
             "precision": "zip",
             "Latitude":  37.371991,
             "Longitude": -122.026020,
             "Address":   "",
             "City":      "SUNNYVALE",
             "State":     "CA",
             "Zip":       "94085",
             "Country":   "US"
          }
        ] ]])
      assert.are.equal(2, #places)
      assert.are.equal(37.371991, places[2].Latitude)
      assert.are.equal(-122.026020, places[2].Longitude)
      assert.are.equal("SUNNYVALE", places[2].City)
    end)

    it("decodes any value at the top level, null as a single nil", function()
      assert.are.equal(42, decode "42")
      assert.are.equal("s", decode '"s"')
      assert.is_true(decode "true")
      assert.is_false(decode "false")
      assert.are.equal(1, select("#", decode "null"))
      assert.is_nil(decode "null")
      assert.are.same({}, decode "{}")
      assert.are.same({}, decode "[]")
    end)

    it("allows the four whitespace characters, and only those", function()
      assert.are.same({ 1, 2 }, decode " \t\n\r[ 1 ,\n\t2 ]\r\n ")
      bad "\f[1]"
      bad "\v1"
      bad "[1,\0112]"
      bad("\194\160" .. "1") -- no-break space
    end)

    it("drops null members, and a later null removes an earlier duplicate", function()
      local t = decode '{"a":null,"b":{"c":null,"d":1},"e":[]}'
      assert.are.equal(2, count(t))
      assert.are.same({ d = 1 }, t.b)
      assert.are.same({}, decode '{"a":1,"a":null}')
      assert.are.same({ a = 2 }, decode '{"a":null,"a":2}')
      assert.are.same({ a = 3 }, decode '{"a":1,"a":3}')
    end)

    it("leaves holes for null array elements", function()
      local t = decode "[1,null,3,null]"
      assert.are.equal(1, t[1])
      assert.is_nil(t[2])
      assert.are.equal(3, t[3])
      assert.is_nil(t[4])
      assert.are.equal(2, count(t))
      assert.are.same({}, decode "[null]")
    end)

    it("keeps member names as given, including empty and escaped ones", function()
      local t = decode '{"":1,"a b":2,"\\u00e9":3,"1":4}'
      assert.are.equal(1, t[""])
      assert.are.equal(2, t["a b"])
      assert.are.equal(3, t["é"])
      assert.are.equal(4, t["1"])
      assert.is_nil(t[1])
    end)

    it("decodes a large document", function()
      local parts = {}
      for i = 1, 5000 do parts[i] = string.format('{"i":%d,"s":"v%d","n":null}', i, i) end
      local t = decode("[" .. table.concat(parts, ",") .. "]")
      assert.are.equal(5000, #t)
      assert.are.same({ i = 4321, s = "v4321" }, t[4321])
    end)
  end)

  describe("numbers", function()
    it("makes integers of literals without fraction or exponent on Lua 5.3+", function()
      local t = decode '{"total":23,"ts":1744780781133,"neg":-7,"zero":0,"f":1.5,"one":1.0,"e":1e3}'
      assert.are.equal(23, t.total)
      assert.are.equal(1744780781133, t.ts)
      assert.are.equal(-7, t.neg)
      assert.are.equal(1.5, t.f)
      assert.are.equal(1, t.one)
      assert.are.equal(1000, t.e)
      if has_integers then
        for _, k in ipairs { "total", "ts", "neg", "zero" } do
          assert.are.equal("integer", math.type(t[k]), k)
        end
        for _, k in ipairs { "f", "one", "e" } do
          assert.are.equal("float", math.type(t[k]), k)
        end
      end
    end)

    it("reads exponents in every form", function()
      assert.are.equal(100, decode "1e2")
      assert.are.equal(100, decode "1E2")
      assert.are.equal(100, decode "1e+2")
      assert.are.equal(0.01, decode "1e-2")
      assert.are.equal(0.0025, decode "2.5E-3")
      assert.are.equal(-1.5e10, decode "-1.5e10")
      assert.are.equal(1, decode "1e0")
      assert.are.equal(1, decode "100e-2")
    end)

    it("rounds decimals correctly", function()
      assert.are.equal(0.1, decode "0.1")
      assert.are.equal(1.7976931348623157e308, decode "1.7976931348623157e308")
      assert.are.equal(5e-324, decode "5e-324")
      assert.are.equal(2 ^ 53 + 2, decode "9007199254740993.5")
    end)

    it("[10.23] handles -0 as a float that keeps its sign", function()
      local z = decode "-0"
      assert.are.equal(0, z)
      -- an integer has no sign of zero: -0 stays a float, as cjson keeps it
      if has_integers then assert.are.equal("float", math.type(z)) end
      assert.are.equal(-math.huge, 1 / z)
      local f = decode "-0.0"
      assert.are.equal(-math.huge, 1 / f)
      assert.are.equal(-math.huge, 1 / decode "-0e5")
    end)

    it("keeps the integer range on Lua 5.3+ and goes to floats beyond it", function()
      if has_integers then
        assert.are.equal(math.maxinteger, decode "9223372036854775807")
        assert.are.equal("integer", math.type(decode "9223372036854775807"))
        assert.are.equal(math.mininteger, decode "-9223372036854775808")
        assert.are.equal("integer", math.type(decode "-9223372036854775808"))
        assert.are.equal("float", math.type(decode "9223372036854775808"))
        assert.are.equal("float", math.type(decode "-9223372036854775809"))
      end
      assert.are.equal(2 ^ 63, decode "9223372036854775808")
      assert.are.equal(-2 ^ 63, decode "-9223372036854775809")
      assert.are.equal(2 ^ 53, decode "9007199254740992")
      assert.are.equal(1.2345678901234568e29, decode "123456789012345678901234567890")
      assert.are.equal(1e19, decode "10000000000000000000")
    end)

    it("turns magnitudes beyond the double range into +-huge and tiny ones into 0", function()
      assert.are.equal(math.huge, decode "1e400")
      assert.are.equal(-math.huge, decode "-1e400")
      assert.are.equal(math.huge, decode("1" .. string.rep("0", 400)))
      assert.are.equal(0, decode "1e-400")
      assert.are.equal(1, decode("1." .. string.rep("0", 1000)))
    end)

    it("refuses what the grammar does not allow", function()
      for _, text in ipairs { "01", "-01", "00", "1.", ".1", "+1", "1e", "1e+", "1E-", "-", "--1", "0x10",
                              "1.5e", "1..2", "NaN", "Infinity", "-Infinity", "1_000", "1,5", "- 1" } do
        bad(text)
      end
    end)

    it("reads the decimal point as '.' whatever the locale", function()
      -- under de_DE, which a spec builds with localedef (spec/support/locale.lua)
      local out = require("support.locale").run [[
        local v = require("quecapi.core").json_decode("[1.5,2.5e2,0.125]", 10)
        print(v[1] == 1.5 and v[2] == 250 and v[3] == 0.125)
      ]]
      assert.are.equal("true", out)
    end)
  end)

  describe("strings", function()
    it("decodes every escape", function()
      assert.are.equal('"\\/\b\f\n\r\t', decode [["\"\\\/\b\f\n\r\t"]])
    end)

    it("decodes \\u escapes to UTF-8, in either case", function()
      assert.are.equal("A", decode [["\u0041"]])
      assert.are.equal("é", decode [["\u00e9"]])
      assert.are.equal("é", decode [["\u00E9"]])
      assert.are.equal("€", decode [["\u20ac"]])
      assert.are.equal("\239\191\191", decode [["\uffff"]])
      assert.are.equal("\0", decode [["\u0000"]])
      assert.are.equal("a\0b", decode [["a\u0000b"]])
    end)

    it("combines surrogate pairs", function()
      assert.are.equal("😀", decode [["\ud83d\ude00"]])
      assert.are.equal("\240\144\128\128", decode [["\uD800\uDC00"]])   -- U+10000
      assert.are.equal("\244\143\191\191", decode [["\uDBFF\uDFFF"]])   -- U+10FFFF
      assert.are.equal("x😀y", decode [["x\ud83d\ude00y"]])
    end)

    it("refuses lone surrogates and broken \\u escapes", function()
      bad([["\ud83d"]], 2)
      bad([["\ude00"]], 2)
      bad [["\ud83d\u0041"]]
      bad [["\ud83dx"]]
      bad [["\ud83d\ud83d"]]
      bad [["\ud83d\"]]
      bad [["\u12G4"]]
      bad [["\u12"]]
      bad [["\u"]]
      bad [["\U0041"]]
    end)

    it("refuses unknown escapes, raw control characters and unterminated strings", function()
      bad([["\x41"]], 2)
      bad [["\'"]]
      bad [["\a"]]
      for _, c in ipairs { 0, 1, 9, 10, 13, 31 } do
        bad('"a' .. string.char(c) .. 'b"', 3)
      end
      bad '"abc'
      bad '"abc\\'
      bad '"abc\\"'
      bad '"'
    end)

    it("passes other bytes through as they are, DEL and UTF-8 included", function()
      assert.are.equal("\127", decode '"\127"')
      assert.are.equal("RGB灯 两轮车", decode '"RGB灯 两轮车"')
      assert.are.equal("\255\254", decode '"\255\254"') -- not validated, as lua-cjson
    end)

    it("builds long strings with many escapes", function()
      local piece = "ab\\n\\u00e9\\\"" -- 5 characters, 6 bytes decoded
      local s = decode('"' .. string.rep(piece, 10000) .. '"')
      assert.are.equal(string.rep('ab\né"', 10000), s)
    end)
  end)

  describe("structure", function()
    it("refuses malformed texts with the byte where they go wrong", function()
      bad("[1,]", 4)
      bad('{"a":1,}', 8)
      bad("[1 2]", 4)
      bad('{"a" 1}', 6)
      bad("{a:1}", 2)
      bad("{'a':1}", 2)
      bad('{"a":}', 6)
      bad('{"a"}', 5)
      bad("[,1]", 2)
      bad("[1]]", 4)
      bad("[1] x", 5)
      bad("tru", 4)
      bad("True", 1)
      bad("nulll", 5)
      bad("\239\187\191{}", 1) -- a byte order mark
      bad("/* c */ 1", 1)
      bad("// c\n1", 1)
      bad("[1]\0", 4)
      bad("\0", 1)
    end)

    it("calls a text that ends too early an unexpected end", function()
      for _, text in ipairs { "", "   ", "[", "{", '{"a"', '{"a":', "[1,", '"ab', "-", "1e", "nul" } do
        assert.matches("unexpected end of input", bad(text))
      end
      assert.matches("^invalid JSON at byte 4:", bad("[1,"))
    end)
  end)

  describe("nesting", function()
    local function nested(n, open, close)
      return string.rep(open or "[", n) .. string.rep(close or "]", n)
    end

    it("allows 200 levels by default and refuses 201", function()
      assert.is_table(decode(nested(200)))
      local err = bad(nested(201), 201)
      assert.matches("nesting deeper than 200", err)
      assert.is_table(decode(string.rep('{"a":', 200) .. "1" .. string.rep("}", 200)))
      bad(string.rep('{"a":', 201) .. "1" .. string.rep("}", 201))
    end)

    it("takes another limit, between 1 and 1000", function()
      assert.are.same({ 1 }, decode("[1]", 1))
      assert.matches("nesting deeper than 1", select(2, decode("[[1]]", 1)))
      assert.is_table(decode(nested(1000), 1000))
      assert.is_nil((decode(nested(1001), 1000)))
      assert.are.equal(5, decode("5", 1))
      for _, limit in ipairs { 0, -1, 1001, 1e9 } do
        assert.has_error(function() decode("[]", limit) end)
      end
    end)

    it("survives hostile nesting without crashing", function()
      assert.is_nil((decode(nested(1000000))))
      assert.is_nil((decode(nested(1000000, "[", ""))))
      assert.is_nil((decode(string.rep('{"a":', 100000))))
      assert.is_nil((decode(string.rep("[1,", 100000))))
    end)
  end)

  describe("robustness", function()
    -- A document with every kind of token, cut and mangled in every way.
    local doc = '{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\ud83d\\ude00\\n"],' ..
                '"b":{"c":{},"d":[]},"e":-0,"f":9223372036854775808,"g":"RGB灯"}'

    it("answers a value or nil, err for every prefix of a document", function()
      assert.is_table(decode(doc))
      for i = 0, #doc - 1 do
        local ok, v, err = pcall(decode, doc:sub(1, i))
        assert(ok, v)
        assert(v == nil and err, "prefix " .. i .. " accepted")
      end
    end)

    it("answers a value or nil, err for mutated documents", function()
      local bytes = { "[", "]", "{", "}", '"', "\\", ",", ":", "0", "-", "e", ".", "u", "\0", "\255", " " }
      local seed = 12345
      local function rand(n) -- a fixed sequence on every interpreter
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n + 1
      end
      for _ = 1, 3000 do
        local s = doc
        for _ = 1, rand(3) do
          local at = rand(#s)
          s = s:sub(1, at - 1) .. bytes[rand(#bytes)] .. s:sub(at + rand(2) - 1)
        end
        local ok, v, err = pcall(decode, s)
        assert(ok, v)
        assert(v ~= nil or err == nil or type(err) == "string")
      end
    end)

    it("raises for a text that is not a string (a programmer error)", function()
      assert.has_error(function() decode(nil) end)
      assert.has_error(function() decode({}) end)
    end)
  end)
end)
