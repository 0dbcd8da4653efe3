-- The C core's primitives: golden vectors from the platform's guide, edge cases,
-- and what happens with bad input.
local quecapi = require "quecapi"

local SECRET_VM22 = "57Fk69oYgbs2aWWN362NtZwYB2RqKNqQ7yZESnF5VM22"
local SECRET_VM33 = "57Fk69oYgbs2aWWN362NtZwYB2RqKNqQ7yZESnF5VM33"

describe("sha256_hex", function()
  it("matches the guide's SMS curl signature (secret ...VM22)", function()
    assert.are.equal("2deb6518ca0ee701e28a6359a91270c59dbe69456a3336dc5f625bfa32e64df6",
      quecapi.sha256_hex("17132136550" .. "3" .. "76a6L647F02CAoN9" .. "1744773894369" .. SECRET_VM22))
  end)

  it("gives the corrected value of the guide's table example (secret ...VM33)", function()
    assert.are.equal("adf0cd13e4a086f78577ca284df28a5382a7af36e011e1aec6375a0a615fb891",
      quecapi.sha256_hex("13800138000" .. "3" .. "76a6L647F02CAoN9" .. "1744773894369" .. SECRET_VM33))
  end)

  it("matches the guide's login curl signature over the encrypted pwd", function()
    assert.are.equal("1fd91ebf096be51dae1c6055bc930bd8e24b1f477d2a47ae87eedb0f73057bf0",
      quecapi.sha256_hex("86" .. "17132136550" .. "KbbO5AsWloh9gulLei6NhQ==" .. "abcdef" .. SECRET_VM22))
  end)

  it("hashes the empty string to the value the guide printed by mistake", function()
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", quecapi.sha256_hex(""))
  end)

  it("is binary safe (embedded NULs)", function()
    -- reference values from `printf 'a\0b' | openssl dgst -sha256`
    assert.are.equal("59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138", quecapi.sha256_hex("a\0b"))
    assert.are_not.equal(quecapi.sha256_hex("a\0b"), quecapi.sha256_hex("a\0c"))
  end)

  it("handles large inputs", function()
    local big = string.rep("x", 5 * 1024 * 1024)
    assert.are.equal(64, #quecapi.sha256_hex(big))
    assert.are_not.equal(quecapi.sha256_hex(big), quecapi.sha256_hex(big .. "x"))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() quecapi.sha256_hex({}) end)
    assert.has_error(function() quecapi.sha256_hex() end)
  end)
end)

describe("md5_hex", function()
  it("gives lowercase hex", function()
    assert.are.equal("d41d8cd98f00b204e9800998ecf8427e", quecapi.md5_hex(""))
    assert.are.equal("900150983cd24fb0d6963f7d28e17f72", quecapi.md5_hex("abc"))
  end)

  it("is binary safe", function()
    assert.are.equal("693e9af84d3dfcc71e640e005bdc5e2e", quecapi.md5_hex("\0\0\0"))
    assert.are_not.equal(quecapi.md5_hex("\0"), quecapi.md5_hex("\0\0"))
  end)
end)

describe("encrypt_password / decrypt_password", function()
  it("reproduces the guide's AES example", function()
    assert.are.equal("lkZMvj0KDSJXlp66jBieHA==", quecapi.encrypt_password("china1234", "j1acpdj2bmtqZXVb"))
    assert.are.equal("china1234", quecapi.decrypt_password("lkZMvj0KDSJXlp66jBieHA==", "j1acpdj2bmtqZXVb"))
  end)

  it("decrypts the guide's registration pwd", function()
    assert.are.equal("abcd1234", quecapi.decrypt_password("KbbO5AsWloh9gulLei6NhQ==", "abcdef"))
    assert.are.equal("KbbO5AsWloh9gulLei6NhQ==", quecapi.encrypt_password("abcd1234", "abcdef"))
  end)

  it("round-trips edge cases", function()
    local cases = {
      "", "x", string.rep("a", 15), string.rep("b", 16), string.rep("c", 17),
      "密码🔒pässwörd", "nul\0inside\0", string.rep("\255", 33), string.rep("long", 10000),
      -- around the size where the core switches from stack to heap scratch space
      string.rep("s", 239), string.rep("s", 240), string.rep("s", 255), string.rep("s", 256), string.rep("s", 257),
    }
    for _, plain in ipairs(cases) do
      local random = quecapi.random_string(16)
      local b64 = quecapi.encrypt_password(plain, random)
      assert.is_string(b64)
      assert.truthy(b64:match("^[A-Za-z0-9+/]+=*$"))
      assert.are.equal(0, #b64 % 4)
      assert.are.equal(plain, quecapi.decrypt_password(b64, random))
    end
  end)

  it("pads a 16-byte password to two blocks", function()
    local b64 = quecapi.encrypt_password(string.rep("p", 16), "r")
    assert.are.equal(44, #b64) -- 32 bytes of ciphertext
  end)

  it("accepts any random, including empty and binary", function()
    for _, random in ipairs { "", "abcdef", "\0\1\2", string.rep("z", 100) } do
      assert.are.equal("pw", quecapi.decrypt_password(quecapi.encrypt_password("pw", random), random))
    end
  end)

  it("rejects bad Base64 with nil, err", function()
    for _, bad in ipairs { "", "abc", "a===", "====", "lkZMvj0KDSJXlp66jBieHA=", "lkZMvj0KDSJXlp66jBieHA=!",
                           "lkZMvj0K DSJXlp66jBieHA==", "lkZMvj0KDSJX\0p66jBieHA==", "QQ=A" } do
      local plain, err = quecapi.decrypt_password(bad, "j1acpdj2bmtqZXVb")
      assert.is_nil(plain)
      assert.is_string(err)
    end
  end)

  it("rejects non-canonical trailing bits", function()
    -- "QR==" carries bits that "QQ==" does not: both decode to "A" in a lax decoder
    local plain, err = quecapi.decrypt_password("QR==", "k")
    assert.is_nil(plain)
    assert.matches("Base64", err)
  end)

  it("rejects a ciphertext that is not whole AES blocks", function()
    local plain, err = quecapi.decrypt_password("QUJD", "k") -- 3 bytes
    assert.is_nil(plain)
    assert.matches("block", err)
  end)

  it("rejects a wrong key (bad padding) with nil, err", function()
    local failures = 0
    for i = 1, 20 do
      local plain = quecapi.decrypt_password("lkZMvj0KDSJXlp66jBieHA==", "wrong" .. i)
      if plain == nil then failures = failures + 1 end
    end
    -- a wrong key yields valid padding by chance about 1 time in 256
    assert.is_true(failures >= 18)
    local plain, err = quecapi.decrypt_password("lkZMvj0KDSJXlp66jBieHA==", "wrong")
    assert.is_nil(plain)
    assert.are.equal("bad padding or wrong key", err)
  end)

  it("raises on non-string arguments", function()
    assert.has_error(function() quecapi.encrypt_password(nil, "r") end)
    assert.has_error(function() quecapi.encrypt_password("p", {}) end)
    assert.has_error(function() quecapi.decrypt_password(1 > 0, "r") end)
  end)
end)

describe("random_string", function()
  it("returns n characters of [0-9A-Za-z]", function()
    for _, n in ipairs { 0, 1, 16, 100, 4096 } do
      local s = quecapi.random_string(n)
      assert.are.equal(n, #s)
      assert.is_nil(s:find("[^0-9A-Za-z]"))
    end
  end)

  it("differs between calls", function()
    assert.are_not.equal(quecapi.random_string(16), quecapi.random_string(16))
  end)

  it("uses the whole alphabet about evenly", function()
    local counts, n = {}, 62 * 2000
    local s = quecapi.random_string(n)
    for c in s:gmatch(".") do counts[c] = (counts[c] or 0) + 1 end
    local distinct, min, max = 0, math.huge, 0
    for _, k in pairs(counts) do
      distinct = distinct + 1
      if k < min then min = k end
      if k > max then max = k end
    end
    assert.are.equal(62, distinct)
    -- expected 2000 each; a modulo bias would skew the first 8 characters by ~25%
    assert.is_true(min > 1700 and max < 2300, ("min %d max %d"):format(min, max))
  end)

  it("raises on a bad length", function()
    assert.has_error(function() quecapi.random_string(-1) end)
    assert.has_error(function() quecapi.random_string("x") end)
    assert.has_error(function() quecapi.random_string(2 ^ 40) end)
  end)
end)
