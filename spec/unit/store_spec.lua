-- Token stores in this process: memory and file (the shdict store runs in a
-- real nginx: spec/nginx/shdict_store_spec.lua).
local json = require "quecapi.json"
local memory = require "quecapi.store.memory"
local file = require "quecapi.store.file"

local TOKENS = {
  access_token = "Bearer access.jwt", access_expires = 1744787786,
  refresh_token = "Bearer refresh.jwt", refresh_expires = 1747372586,
}

local shell = require "support.sh"
local sh, run, write, read, tempdir = shell.output, shell.run, shell.write, shell.read, shell.tempdir

describe("memory store", function()
  it("keeps, replaces and forgets tokens", function()
    local s = memory.new()
    assert.is_nil(s:get("k"))
    assert.is_true(s:set("k", TOKENS))
    assert.are.same(TOKENS, s:get("k"))
    assert.is_true(s:delete("k"))
    assert.is_nil(s:get("k"))
  end)

  it("grants its lock at once", function()
    local s = memory.new()
    local h = s:lock("k", 1)
    assert.is_truthy(h)
    assert.is_true(s:unlock("k", h))
  end)
end)

do
  describe("file store", function()
    local dir, path

    before_each(function()
      dir = tempdir()
      path = dir .. "/tokens.json"
    end)

    after_each(function()
      run("rm -rf " .. dir)
    end)

    -- junk for the store to read: written by hand, so given the mode the store itself would use
    local function write_private(p, data)
      write(p, data)
      assert(run("chmod 0600 " .. p))
    end

    local function store(opts)
      local o = { path = path }
      for k, v in pairs(opts or {}) do o[k] = v end
      return assert(file.new(o))
    end

    it("round-trips tokens, strings and numbers alike", function()
      local s = store()
      assert.is_nil(s:get("k"))
      assert.is_true(s:set("k", TOKENS))
      local got = store():get("k") -- another store on the same file sees them
      assert.are.same(TOKENS, got)
      if math.type then assert.are.equal("integer", math.type(got.access_expires)) end
      assert.are.same(TOKENS, json.decode(read(path)).k)
    end)

    it("keeps several keys and deletes one", function()
      local s = store()
      assert.is_true(s:set("a", TOKENS))
      assert.is_true(s:set("b", { access_token = "other" }))
      assert.is_true(s:delete("a"))
      assert.is_nil(s:get("a"))
      assert.are.equal("other", s:get("b").access_token)
      assert.is_true(s:delete("nothing there"))
    end)

    it("replaces the file atomically and leaves no temporary files", function()
      local s = store()
      for i = 1, 5 do assert.is_true(s:set("k" .. i, TOKENS)) end
      assert.is_true(s:delete("k1"))
      -- the writers' lock file stays: removing it could let two writers in at once
      assert.are.equal("tokens.json\ntokens.json.lock", sh("ls -A " .. dir))
    end)

    it("creates the file 0600, and never writes tokens into a wider file", function()
      local s = store()
      assert.is_true(s:set("k", TOKENS))
      assert.are.equal("600", sh("stat -c %a " .. path))
      os.remove(path)
      write(path, "{}")
      run("chmod 0644 " .. path)
      local ok, err = s:set("k", TOKENS)
      assert.is_nil(ok)
      assert.matches(path .. ": group or others have access to it (mode 0644", err, 1, true)
      assert.are.equal("{}", read(path))
      assert.are.equal("644", sh("stat -c %a " .. path))
    end)

    it("reads a missing or corrupt file as empty, and repairs it on set", function()
      local s = store()
      assert.is_nil(s:get("k"))
      for _, junk in ipairs { "", "{not json", "[1,2,3]", "42", "null", '{"k":"not a table"}' } do
        write_private(path, junk)
        assert.is_nil(s:get("k"))
        assert.is_true(s:set("k", TOKENS))
        assert.are.same(TOKENS, s:get("k"))
        assert.are.same({ k = TOKENS }, json.decode(read(path)))
      end
    end)

    it("fails to set where the directory cannot be made, with an error", function()
      write(dir .. "/plain", "a file where a directory should be")
      local s = assert(file.new { path = dir .. "/plain/sub/tokens.json" })
      assert.is_nil(s:get("k"))
      local ok, err = s:set("k", TOKENS)
      assert.is_nil(ok)
      assert.are.equal("cannot create directory " .. dir .. "/plain: Not a directory", err)
    end)

    it("refuses bad options", function()
      assert.is_nil((file.new {}))
      assert.is_nil((file.new { path = path, lock_ttl = -1 }))
      assert.is_nil((file.new { path = 42 }))
    end)

    it("lets one holder at a time have a key's lock", function()
      local a, b = store(), store()
      local h = assert(a:lock("k", 1))
      local t0 = os.time()
      local none, err = b:lock("k", 0.2)
      assert.is_nil(none)
      assert.are.equal("timeout", err)
      assert.is_true(os.time() - t0 <= 1)
      assert.truthy(b:lock("other key", 0)) -- locks are per key
      assert.is_nil(b:unlock("k", "not the handle"))
      assert.is_true(a:unlock("k", h))
      local h2 = assert(b:lock("k", 0.2))
      assert.is_true(b:unlock("k", h2))
      assert.is_nil(b:unlock("k", h2)) -- released already
    end)

    it("works on another file system than /tmp's", function()
      if not run("test -d /dev/shm") then return pending("no /dev/shm here") end
      local shm = "/dev/shm/quecapi-store-" .. os.time() .. "-" .. math.random(1e6)
      assert(run("mkdir " .. shm))
      local s = assert(file.new { path = shm .. "/tokens.json" })
      local ok, err = s:set("k", TOKENS)
      run("rm -rf " .. shm)
      assert.is_true(ok, err)
    end)

    do
      it("never breaks a live holder's lock, whatever lock_ttl says", function()
        local a, b = store { lock_ttl = 1 }, store()
        local h = assert(a:lock("k", 0))
        local none, err = b:lock("k", 1.5) -- longer than lock_ttl
        assert.is_nil(none)
        assert.are.equal("timeout", err)
        assert.is_true(a:unlock("k", h))
      end)

      it("excludes other processes", function()
        local s = store()
        local h = assert(s:lock("k", 0))
        local code = ([[
          package.path, package.cpath = %q, %q
          local f = require("quecapi.store.file").new { path = %q }
          local h, err = f:lock("k", 0.3)
          io.write(h and "locked" or err)
          if h then f:unlock("k", h) end
        ]]):format(package.path, package.cpath, path)
        local cmd = (jit and "luajit" or "lua5.4") .. " -e '" .. code:gsub("\n", " ") .. "'"
        assert.are.equal("timeout", sh(cmd))
        assert.is_true(s:unlock("k", h))
        assert.are.equal("locked", sh(cmd))
      end)
    end
  end)
end

-- Locations that drive the shdict store; each answers JSON.
