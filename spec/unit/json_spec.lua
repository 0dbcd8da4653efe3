-- quecapi.json: null handling, integers, deterministic encoding, and a private
-- cjson instance that leaves the global one alone.
local json = require "quecapi.json"

local has_integers = math.type ~= nil

describe("json.decode", function()
  it("turns null into an absent field", function()
    local t = json.decode('{"a":null,"b":{"c":null,"d":1},"e":[1,null,3]}')
    assert.is_nil(t.a)
    assert.is_nil(t.b.c)
    assert.are.equal(1, t.b.d)
    assert.are.equal(1, t.e[1])
    assert.is_nil(t.e[2])
    assert.are.equal(3, t.e[3])
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    assert.are.equal(2, n)
  end)

  it("makes integral numbers integers on Lua 5.3+", function()
    local t = json.decode('{"total":23,"ts":1744780781133,"f":1.5,"neg":-7,"list":[1,2.25]}')
    assert.are.equal(23, t.total)
    assert.are.equal(1744780781133, t.ts)
    assert.are.equal(1.5, t.f)
    if has_integers then
      assert.are.equal("integer", math.type(t.total))
      assert.are.equal("integer", math.type(t.ts))
      assert.are.equal("integer", math.type(t.neg))
      assert.are.equal("integer", math.type(t.list[1]))
      assert.are.equal("float", math.type(t.f))
      assert.are.equal("float", math.type(t.list[2]))
    end
  end)

  it("decodes scalars and top-level null", function()
    assert.are.equal("x", json.decode('"x"'))
    assert.are.equal(5, json.decode("5"))
    assert.is_nil(json.decode("null"))
    assert.is_true(json.decode("true"))
  end)

  it("returns nil, err for invalid or truncated JSON", function()
    for _, bad in ipairs { "", "{", '{"code":200,"data":{"total":', "<html>", "{'a':1}", "\0" } do
      local v, err = json.decode(bad)
      assert.is_nil(v)
      assert.is_string(err)
    end
  end)

  it("survives hostile nesting without crashing", function()
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    local v, err = json.decode(deep)
    assert.is_nil(v)
    assert.is_string(err)
  end)
end)

describe("json.encode", function()
  it("sorts object keys so bodies are reproducible", function()
    assert.are.equal('{"a":1,"b":[1,2],"c":{"x":true,"y":"z"}}',
      json.encode { c = { y = "z", x = true }, a = 1, b = { 1, 2 } })
  end)

  it("writes integers without a fraction and escapes strings", function()
    assert.are.equal('[1744773894369,1.5,"a\\"b\\\\c\\n\\u0001"]', json.encode { 1744773894369, 1.5, 'a"b\\c\n\1' })
  end)

  it("keeps UTF-8 as is", function()
    assert.are.equal('"RGB灯"', json.encode "RGB灯")
  end)

  it("encodes an empty table as an object unless marked as an array", function()
    assert.are.equal("{}", json.encode {})
    assert.are.equal("[]", json.encode(json.array {}))
  end)

  it("returns nil, err for what JSON cannot hold", function()
    assert.is_nil((json.encode { f = print }))
    assert.is_nil((json.encode { [{}] = 1 }))
    assert.is_nil((json.encode(0 / 0)))
    local loop = {}
    loop.self = loop
    local v, err = json.encode(loop)
    assert.is_nil(v)
    assert.matches("deep", err)
  end)
end)

describe("the private cjson instance", function()
  it("does not change the global cjson settings", function()
    local cjson = require "cjson"
    -- quecapi.json limits nesting to 200; the global instance keeps its default of 1000
    local deep = string.rep("[", 500) .. string.rep("]", 500)
    assert.is_table(cjson.decode(deep))
    assert.is_nil((json.decode(deep)))
    -- and global decoding still yields cjson.null, not nil
    assert.are.equal(cjson.null, cjson.decode('{"a":null}').a)
  end)
end)

describe("round trips and pretty printing", function()
  it("[13.5] keeps decoded empty arrays arrays when encoded again", function()
    local v = json.decode('{"failureList":[],"holes":[null,null],"list":[1],"obj":{}}')
    assert.are.equal('{"failureList":[],"holes":[],"list":[1],"obj":{}}', json.encode(v))
    assert.are.equal(json.array_mt, getmetatable(v.failureList))
    assert.is_nil(getmetatable(v.list)) -- only arrays that hold nothing need the mark
    assert.are.equal("[]", json.encode(json.decode("[]")))
  end)

  it("[13.5] writes one member per line with an indent", function()
    local text = json.encode({ b = { 1, { x = true } }, a = "s", e = {}, l = json.array {} }, { indent = "  " })
    assert.are.equal(table.concat({
      "{",
      '  "a": "s",',
      '  "b": [',
      "    1,",
      "    {",
      '      "x": true',
      "    }",
      "  ],",
      '  "e": {},',
      '  "l": []',
      "}",
    }, "\n"), text)
    assert.are.same({ b = { 1, { x = true } }, a = "s", e = {}, l = {} }, json.decode(text))
    assert.is_nil((json.encode({}, { indent = "x" })))
  end)

  it("[13.3] encodes the null sentinel of the surroundings as null", function()
    assert.are.equal('{"a":null}', json.encode { a = json.null })
    assert.are.equal("[1,null,2]", json.encode { 1, json.null, 2 })
  end)
end)
