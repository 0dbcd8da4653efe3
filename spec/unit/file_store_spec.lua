-- The file store against concurrent writers, dead lock holders, hostile files and
-- directories, fresh machines and NUL bytes in paths (issue 10, items 9, 10, 12,
-- 13, 23). Real processes, real files, real kernel locks; the other user is the
-- real `nobody` where the spec runs as root.
local core = require "quecapi.core"
local file = require "quecapi.store.file"
local json = require "quecapi.json"
local shell = require "support.sh"
local sh, run, write, read, tempdir, quote, mode_of =
  shell.output, shell.run, shell.write, shell.read, shell.tempdir, shell.quote, shell.mode

local LUA = jit and "luajit" or "lua5.4"
local AS_ROOT = core.getuid() == 0
local NOBODY = tonumber(sh("id -u nobody 2>/dev/null"))
-- Under make check-asan the interpreter is a wrapper inside the checkout, which
-- another user cannot run; the other-user specs run with the plain core only.
local can_switch_user = AS_ROOT and NOBODY and run("command -v runuser >/dev/null")
  and not os.getenv("CORE_PREFIX")

local TOKENS = {
  access_token = "Bearer access.jwt", access_expires = 1744787786,
  refresh_token = "Bearer refresh.jwt", refresh_expires = 1747372586,
}

-- A shell command running `code` in a fresh interpreter that finds this checkout.
local function lua_cmd(code)
  local prelude = ("package.path, package.cpath = %q, %q "):format(package.path, package.cpath)
  return LUA .. " -e " .. quote(prelude .. code)
end

-- The same, run as the user `nobody`, who may not read this checkout (a clone in
-- root's 0700 home): the modules and the core go to a copy anyone can read first.
local readable_copy
local function nobody_cmd(code)
  if not readable_copy then
    readable_copy = tempdir()
    local lua_dir = assert(package.searchpath("quecapi.store.file", package.path)):match("^(.*)/quecapi/store/file%.lua$")
    local core_so = assert(package.searchpath("quecapi.core", package.cpath))
    assert(run(("cp -r %s %s/lua && mkdir -p %s/lib/quecapi && cp %s %s/lib/quecapi/ && chmod -R a+rX %s"):format(
      quote(lua_dir), quote(readable_copy), quote(readable_copy), quote(core_so), quote(readable_copy),
      quote(readable_copy))))
  end
  local prelude = ("package.path, package.cpath = %q, %q "):format(readable_copy .. "/lua/?.lua",
    readable_copy .. "/lib/?.so")
  return "runuser -u nobody -- " .. LUA .. " -e " .. quote(prelude .. code)
end

-- Waits until `pred()` is true, for at most `seconds`.
local function wait_for(pred, seconds)
  local deadline = core.monotonic() + seconds
  while not pred() do
    if core.monotonic() > deadline then return false end
    core.sleep(0.01)
  end
  return true
end

local function elapsed(fn)
  local t0 = core.monotonic()
  local a, b = fn()
  return core.monotonic() - t0, a, b
end

describe("file store", function()
  local dir, path, pids

  before_each(function()
    dir = tempdir()
    path = dir .. "/tokens.json"
    pids = {}
  end)

  after_each(function()
    for _, pid in ipairs(pids) do run("kill -KILL " .. pid .. " 2>/dev/null") end
    run("rm -rf " .. quote(dir))
  end)

  local function store(p)
    return assert(file.new { path = p or path })
  end

  -- Starts a process that takes the lock for `key` on `path` and then sleeps
  -- `hold` seconds; returns once it holds the lock.
  local function holder(key, hold)
    local out = dir .. "/holder.out"
    local code = ([[
      local s = assert(require("quecapi.store.file").new { path = %q })
      assert(s:lock(%q, 5))
      io.stdout:write("locked\n") io.stdout:flush()
      require("quecapi.core").sleep(%s)
    ]]):format(path, key, hold)
    local pid = sh(lua_cmd(code) .. " >" .. quote(out) .. " 2>&1 & echo $!")
    assert.matches("^%d+$", pid)
    pids[#pids + 1] = pid
    assert(wait_for(function() return (read(out) or ""):find("locked", 1, true) end, 10),
      "the holder never took the lock: " .. tostring(read(out)))
    return pid
  end

  describe("writes", function()
    it("[10.9] loses no write when several processes write their own keys at once", function()
      local writers, each = 4, 60
      assert.is_true(store():set("stable", TOKENS))
      local writer = [[
        local s = assert(require("quecapi.store.file").new { path = %q })
        for i = 1, %d do
          local ok, err = s:set(%q .. i, { access_token = "t" .. i })
          if not ok then io.stderr:write(err, "\n") os.exit(1) end
        end
      ]]
      -- a reader that takes no lock meanwhile: it must always see a whole file
      local reader = [[
        local s = assert(require("quecapi.store.file").new { path = %q })
        for _ = 1, 400 do
          local t, err = s:get("stable")
          if not (t and t.access_token == %q) then io.stderr:write("lost: ", tostring(err), "\n") os.exit(1) end
        end
      ]]
      local script = { "pids=" }
      for w = 1, writers do
        script[#script + 1] = lua_cmd(writer:format(path, each, "w" .. w .. "-")) .. ' & pids="$pids $!"'
      end
      script[#script + 1] = lua_cmd(reader:format(path, TOKENS.access_token)) .. ' & pids="$pids $!"'
      script[#script + 1] = "st=0; for p in $pids; do wait $p || st=1; done; exit $st"
      assert.is_true(run(table.concat(script, "\n")))

      local doc = json.decode(read(path))
      local count = 0
      for _ in pairs(doc) do count = count + 1 end
      assert.are.equal(writers * each + 1, count)
      for w = 1, writers do
        for i = 1, each do
          assert.are.same({ access_token = "t" .. i }, doc["w" .. w .. "-" .. i])
        end
      end
      assert.are.same(TOKENS, doc.stable)
    end)

    it("[10.9] waits for a writer holding the file, then writes", function()
      local lock = assert(core.open_lock(path .. ".lock"))
      assert.is_true(lock:try())
      -- release it from a process started now, 0.3 s later
      local done = dir .. "/done"
      run(lua_cmd(([[
        local s = assert(require("quecapi.store.file").new { path = %q })
        local ok, err = s:set("k", { access_token = "late" })
        local f = io.open(%q, "w") f:write(tostring(ok or err)) f:close()
      ]]):format(path, done)) .. " >/dev/null 2>&1 &")
      core.sleep(0.3)
      assert.is_nil(read(done)) -- still waiting for the lock
      assert.is_true(lock:release())
      assert.is_true(wait_for(function() return read(done) end, 5))
      assert.are.equal("true", read(done))
      assert.are.equal("late", store():get("k").access_token)
    end)

    it("[10.9] leaves the file lock free after a failed write", function()
      local s = store()
      local ok, err = s:set("k", { access_token = function() end })
      assert.is_nil(ok)
      assert.matches("cannot encode", err)
      local lock = assert(core.open_lock(path .. ".lock"))
      assert.is_true(lock:try())
      assert.is_true(lock:release())
      assert.is_true(s:set("k", TOKENS))
    end)
  end)

  describe("locks", function()
    it("[10.10] are freed at once when their holder is killed with SIGKILL", function()
      local pid = holder("k", 30)
      local s = store()
      assert.are.same({ nil, "timeout" }, { s:lock("k", 0) }) -- held, for 30 s
      assert(run("kill -KILL " .. pid))
      local took, h = elapsed(function() return s:lock("k", 5) end)
      assert.truthy(h)
      assert.is_true(took < 1, "waited " .. took)
      assert.is_true(s:unlock("k", h))
    end)

    it("[10.10] take no notice of an empty or garbage lock file left over", function()
      local s = store()
      local lock_file = path .. ".lock-6b" -- the lock file of key "k"
      for _, junk in ipairs { "", "garbage \0\1\2", "4102444800 someone-elses-handle" } do
        write(lock_file, junk)
        local took, h = elapsed(function() return s:lock("k", 3) end)
        assert.truthy(h)
        assert.is_true(took < 0.5, "waited " .. took)
        assert.is_true(s:unlock("k", h))
      end
    end)

    it("[10.10] time out with nil, \"timeout\" while another process holds them", function()
      holder("k", 30)
      local s = store()
      local took, h, err = elapsed(function() return s:lock("k", 0.4) end)
      assert.is_nil(h)
      assert.are.equal("timeout", err)
      assert.is_true(took >= 0.39 and took < 1, "waited " .. took)
      -- other keys are free
      local other = assert(s:lock("other", 0))
      assert.is_true(s:unlock("other", other))
    end)

    it("[10.10] exclude each other between two stores of one process, and within one store", function()
      local a, b = store(), store()
      local h = assert(a:lock("k", 0))
      assert.are.same({ nil, "timeout" }, { b:lock("k", 0.05) })
      assert.are.same({ nil, "timeout" }, { a:lock("k", 0.05) }) -- not reentrant
      assert.is_true(a:unlock("k", h))
      local h2 = assert(b:lock("k", 0))
      assert.is_true(b:unlock("k", h2))
    end)

    it("[10.10] refuse an unlock with a wrong handle and stay held", function()
      local a, b = store(), store()
      local h = assert(a:lock("k", 0))
      local other = assert(a:lock("other", 0))
      for _, wrong in ipairs { "not the handle", 42, 0 / 0, true, {}, other } do
        assert.are.same({ nil, "lock not held" }, { a:unlock("k", wrong) })
      end
      assert.are.same({ nil, "lock not held" }, { a:unlock("k", nil) })
      assert.are.same({ nil, "lock not held" }, { b:unlock("k", h) }) -- another store's handle
      assert.are.same({ nil, "timeout" }, { b:lock("k", 0) }) -- still held
      assert.is_true(a:unlock("k", h))
      assert.are.same({ nil, "lock not held" }, { a:unlock("k", h) }) -- released already
      assert.is_true(a:unlock("other", other))
    end)

    it("[10.10] are released when a handle dropped without unlock is collected", function()
      local a, b = store(), store()
      assert.truthy(a:lock("k", 0))
      assert.are.same({ nil, "timeout" }, { b:lock("k", 0) })
      collectgarbage()
      collectgarbage()
      local h = assert(b:lock("k", 0))
      assert.is_true(b:unlock("k", h))
    end)

    it("[10.10] are released when a <close> variable goes out of scope (Lua 5.4)", function()
      if _VERSION ~= "Lua 5.4" or jit then return pending("to-be-closed variables need Lua 5.4") end
      local a, b = store(), store()
      local scope = assert(load([[
        local a, b = ...
        do
          local h <close> = assert(a:lock("k", 0))
          local none, err = b:lock("k", 0)
          assert(none == nil and err == "timeout", "not held inside the scope")
        end
      ]]))
      scope(a, b)
      local h = assert(b:lock("k", 0))
      assert.is_true(b:unlock("k", h))
    end)

    it("[10.10] are not kept by programs started while they are held", function()
      local a, b = store(), store()
      assert.truthy(a:lock("k", 0)) -- the handle is dropped at once
      assert(run("sleep 3 >/dev/null 2>&1 &")) -- would inherit the descriptor without O_CLOEXEC
      collectgarbage()
      collectgarbage()
      local h2 = assert(b:lock("k", 0))
      assert.is_true(b:unlock("k", h2))
    end)

    it("[10.10] are plain 0600 files, one per key, left in place", function()
      local s = store()
      local h = assert(s:lock("k", 0))
      assert.is_true(s:unlock("k", h))
      assert.are.equal("600", mode_of(path .. ".lock-6b"))
      assert.are.equal("tokens.json.lock-6b", sh("ls -A " .. quote(dir)))
    end)
  end)

  describe("trust", function()
    local function refused(s, pattern)
      for _, op in ipairs {
        function() return s:get("k") end,
        function() return s:set("k", TOKENS) end,
        function() return s:delete("k") end,
        function() return s:lock("k", 0) end,
      } do
        local ok, err = op()
        assert.is_nil(ok)
        assert.is_string(err)
        assert.matches(pattern, err, 1, true)
      end
    end

    it("[10.12] core.file_info tells files, directories, links and others apart", function()
      write(path, "{}")
      assert(run("chmod 0640 " .. path .. " && ln -s tokens.json " .. dir .. "/link && mkfifo " .. dir .. "/fifo"))
      local uid, gid = tonumber(sh("id -u")), tonumber(sh("id -g"))
      assert.are.same({ type = "file", mode = 416, uid = uid, gid = gid, size = 2 }, core.file_info(path))
      local d = core.file_info(dir)
      assert.are.equal("dir", d.type)
      assert.are.equal(493, d.mode) -- 0755
      assert.are.equal("link", core.file_info(dir .. "/link").type)
      assert.are.equal("file", core.file_info(dir .. "/link", true).type) -- followed
      assert.are.equal("other", core.file_info(dir .. "/fifo").type)
      assert.are.equal(1023, core.file_info("/tmp").mode) -- 01777: the sticky bit is kept
      local none, err, kind = core.file_info(dir .. "/nothing")
      assert.is_nil(none)
      assert.are.equal("cannot inspect " .. dir .. "/nothing: No such file or directory", err)
      assert.are.equal("missing", kind)
      assert.are.same({ nil, "cannot inspect " .. path .. "/x: Not a directory", "error" },
        { core.file_info(path .. "/x") })
      assert.are.equal(uid, core.getuid())
    end)

    it("[10.12] core.read_file reads a regular file, never through a symlink, and describes it", function()
      write(path, "{\"k\":1}\0tail")
      assert(run("chmod 0604 " .. path .. " && ln -s tokens.json " .. dir .. "/link && mkfifo " .. dir .. "/fifo"))
      local data, info = core.read_file(path)
      assert.are.equal("{\"k\":1}\0tail", data)
      assert.are.same({ type = "file", mode = 388, uid = core.getuid(), gid = tonumber(sh("id -g")), size = 12 }, info)
      local big = string.rep("0123456789abcdef", 4096) .. "end" -- more than one read
      write(path, big)
      assert.are.equal(big, (core.read_file(path)))
      assert.are.same({ nil, "cannot read " .. dir .. "/link: it is a symbolic link", "error" },
        { core.read_file(dir .. "/link") })
      assert.are.same({ nil, "cannot read " .. dir .. "/fifo: it is not a regular file", "error" },
        { core.read_file(dir .. "/fifo") }) -- and no hang on a FIFO nobody writes to
      assert.are.same({ nil, "cannot read " .. dir .. ": it is not a regular file", "error" }, { core.read_file(dir) })
      assert.are.same({ nil, "cannot read " .. dir .. "/none: No such file or directory", "missing" },
        { core.read_file(dir .. "/none") })
    end)

    it("[10.12] reads no tokens, and no error, when there is no file or no directory", function()
      assert.are.same({}, { store():get("k") })
      assert.are.same({}, { store(dir .. "/no/such/tokens.json"):get("k") })
    end)

    it("[10.12] refuses a token file that is a symbolic link, and leaves its target alone", function()
      local target = dir .. "/attacker.json"
      write(target, json.encode { k = { access_token = "attacker's session" } })
      assert(run("chmod 0600 " .. target .. " && ln -s " .. target .. " " .. path))
      refused(store(), "refusing the token file " .. path .. ": it is a symbolic link")
      assert.are.equal("attacker's session", json.decode(read(target)).k.access_token)
    end)

    it("[10.12] refuses a token file that is not a regular file", function()
      assert(run("mkfifo -m 0600 " .. path))
      refused(store(), "refusing the token file " .. path .. ": it is not a regular file")
      assert(run("rm " .. path .. " && mkdir -m 0700 " .. path))
      refused(store(), "refusing the token file " .. path .. ": it is not a regular file")
    end)

    it("[10.12] refuses a token file group or others can read or write", function()
      local s = store()
      assert.is_true(s:set("k", TOKENS))
      for _, mode in ipairs { "0640", "0604", "0620", "0602", "0644", "0666" } do
        assert(run("chmod " .. mode .. " " .. path))
        refused(s, "refusing the token file " .. path .. ": group or others have access to it (mode " .. mode)
      end
      assert(run("chmod 0600 " .. path))
      assert.are.same(TOKENS, s:get("k"))
    end)

    it("[10.12] refuses a token file owned by another user", function()
      if not AS_ROOT then
        -- root's file in root's directory: the one other owner a plain user meets
        return refused(store("/etc/passwd"),
          ("refusing the token file /etc/passwd: it is owned by uid 0, not by you (uid %d)"):format(core.getuid()))
      end
      if not NOBODY then return pending("needs a nobody user to chown to") end
      local s = store()
      assert.is_true(s:set("k", TOKENS))
      assert(run("chown nobody " .. path))
      refused(s, ("refusing the token file %s: it is owned by uid %d, not by you (uid 0)"):format(path, NOBODY))
    end)

    it("[10.12] refuses a directory group or others can write to, sticky or not", function()
      for _, mode in ipairs { "1777", "0777", "0775", "0757" } do
        assert(run("chmod " .. mode .. " " .. dir))
        refused(store(), "refusing the token directory " .. dir .. ": group or others can write to it (mode " .. mode)
        assert.are.equal("", sh("ls -A " .. quote(dir))) -- neither lock file nor token file made there
      end
    end)

    it("[10.12] refuses a directory owned by another user", function()
      if not (AS_ROOT and NOBODY) then return pending("needs root and a nobody user to chown to") end
      assert(run("chown nobody " .. dir))
      refused(store(), ("refusing the token directory %s: it is owned by uid %d, not by you (uid 0) or root")
        :format(dir, NOBODY))
    end)

    it("[10.12] refuses the session another user planted in a shared directory", function()
      if not can_switch_user then return pending("needs root, a nobody user, runuser and the plain core") end
      -- a shared sticky directory, as /tmp is; the attacker is a real other process and user
      assert(run("chmod 1777 " .. dir))
      local planted = dir .. "/quecapi/tokens.json"
      assert(run(nobody_cmd(([[
        local s = assert(require("quecapi.store.file").new { path = %q })
        assert(s:set("k", { access_token = "attacker's session" }))
      ]]):format(planted))))
      assert.are.equal(tostring(NOBODY), sh("stat -c %u " .. planted))
      refused(store(planted), ("refusing the token directory %s/quecapi: it is owned by uid %d"):format(dir, NOBODY))
      -- and a symlink the attacker plants at the victim's path in a directory it can write to
      assert(run("runuser -u nobody -- ln -s " .. planted .. " " .. path))
      refused(store(), "refusing the token directory " .. dir .. ": group or others can write to it (mode 1777)")
    end)

    it("[10.12] trusts, as another user, its own file in a directory owned by root", function()
      if not can_switch_user then return pending("needs root, a nobody user, runuser and the plain core") end
      -- root's 0755 directory holding nobody's 0600 file: fine for nobody; root's file is not
      local mine, roots = dir .. "/nobody.json", dir .. "/root.json"
      write(mine, json.encode { k = TOKENS })
      write(roots, json.encode { k = TOKENS })
      assert(run("chmod 0600 " .. mine .. " " .. roots .. " && chown nobody " .. mine))
      local out = sh(nobody_cmd(([[
        local f = require "quecapi.store.file"
        local t, err = f.new({ path = %q }):get("k")
        local _, err2 = f.new({ path = %q }):get("k")
        io.write(tostring(t and t.access_token or err), "\n", tostring(err2))
      ]]):format(mine, roots)) .. " 2>&1")
      assert.are.equal(TOKENS.access_token .. "\n"
        .. ("refusing the token file %s: it is owned by uid 0, not by you (uid %d)"):format(roots, NOBODY), out)
    end)

    it("[10.12] refuses a symbolic link put where a lock file goes", function()
      local elsewhere = dir .. "/elsewhere"
      write(elsewhere, "")
      assert(run("ln -s " .. elsewhere .. " " .. path .. ".lock-6b && ln -s " .. elsewhere .. " " .. path .. ".lock"))
      local s = store()
      assert.are.same({ nil, "cannot open lock file " .. path .. ".lock-6b: it is a symbolic link" }, { s:lock("k", 0) })
      assert.are.same({ nil, "cannot open lock file " .. path .. ".lock: it is a symbolic link" }, { s:set("k", TOKENS) })
      assert(run("rm " .. path .. ".lock && mkfifo " .. path .. ".lock"))
      assert.are.same({ nil, "cannot open lock file " .. path .. ".lock: it is not a regular file" },
        { s:set("k", TOKENS) })
    end)
  end)

  describe("on a fresh machine", function()
    it("[10.13] creates ~/.cache/quecapi 0700 on the first login's write", function()
      local home = dir .. "/home"
      assert(run("mkdir -m 0755 " .. home))
      local out = sh("HOME=" .. quote(home) .. " " .. lua_cmd([[
        local c = assert(require("quecapi").new { user_domain = "d", user_domain_secret = "s", token_store = "file" })
        assert(c:get_tokens() == nil)
        local f = io.open(os.getenv("HOME") .. "/.cache")
        io.write(f and "made on read " or "")
        io.write(tostring(assert(c:set_tokens { access_token = "a", access_expires = 4102444800 })))
      ]]) .. " 2>&1")
      assert.are.equal("true", out)
      assert.are.equal("700", mode_of(home .. "/.cache"))
      assert.are.equal("700", mode_of(home .. "/.cache/quecapi"))
      assert.are.equal("600", mode_of(home .. "/.cache/quecapi/tokens.json"))
      assert.are.equal("755", mode_of(home)) -- what existed is left as it was
    end)

    it("[10.13] makes only what is missing, only to write or lock", function()
      local s = store(dir .. "/a/b/c/tokens.json")
      assert.are.same({}, { s:get("k") })
      assert.is_true(s:delete("k"))
      assert.is_false(run("test -e " .. dir .. "/a")) -- reading and deleting nothing make nothing
      assert(run("mkdir -m 0750 " .. dir .. "/a"))
      local h = assert(s:lock("k", 0))
      assert.is_true(s:unlock("k", h))
      assert.are.equal("750", mode_of(dir .. "/a"))
      assert.are.equal("700", mode_of(dir .. "/a/b"))
      assert.are.equal("700", mode_of(dir .. "/a/b/c"))
      assert.is_true(store(dir .. "/x/y/tokens.json"):set("k", TOKENS))
      assert.are.equal("700", mode_of(dir .. "/x/y"))
    end)

    it("[10.13] core.make_dirs makes a path's missing directories and names the one it cannot", function()
      assert.is_true(core.make_dirs(dir .. "/p//q/r/"))
      assert.are.equal("700", mode_of(dir .. "/p/q/r"))
      assert.is_true(core.make_dirs(dir .. "/p/q/r")) -- there already
      write(dir .. "/plain", "")
      -- the one in the way is named: a file where a directory should be
      assert.are.same({ nil, "cannot create directory " .. dir .. "/plain: Not a directory", "error" },
        { core.make_dirs(dir .. "/plain/x/y") })
      assert.are.same({ nil, "cannot create directory " .. dir .. "/plain: Not a directory", "error" },
        { core.make_dirs(dir .. "/plain") })
      assert.are.same({ nil, "cannot create directory: the path is empty", "error" }, { core.make_dirs("") })
    end)
  end)

  describe("paths with a NUL byte", function()
    it("[10.23] are refused by every path-taking core function, which touch nothing", function()
      local bad = dir .. "/x\0y"
      local function refused(what, ok, err, kind)
        assert.is_nil(ok)
        assert.are.equal("cannot " .. what .. " " .. dir .. "/x\\0...: the path contains a NUL byte", err)
        assert.are.equal("error", kind)
      end
      refused("create", core.create_private(bad, "secret"))
      refused("inspect", core.file_info(bad))
      refused("read", core.read_file(bad))
      refused("create directory", core.make_dirs(bad .. "/z"))
      refused("open lock file", core.open_lock(bad))
      assert.are.equal("", sh("ls -A " .. quote(dir)))
    end)

    it("[10.23] make a file store refuse to write or lock", function()
      local s = store(dir .. "/sub\0dir/tokens.json")
      local ok, err = s:set("k", TOKENS)
      assert.is_nil(ok)
      assert.matches("the path contains a NUL byte", err, 1, true)
      assert.are.same({ nil, err }, { s:lock("k", 0) })
      assert.are.equal("", sh("ls -A " .. quote(dir)))
    end)
  end)
end)
