-- A decimal-comma locale (de_DE.UTF-8), generated for the specs with localedef
-- (Debian's locales package holds its source) into a directory of their own,
-- and Lua code run under it in a child interpreter: a process finds a locale
-- outside the system's through LOCPATH, which it reads when it calls setlocale.
local shell = require "support.sh"

local _M = {}

local dir

--- Build the locale once; true when it could be built.
function _M.available()
  if dir == nil then
    local d = shell.tempdir()
    dir = shell.run("localedef -i de_DE -f UTF-8 " .. shell.quote(d .. "/de_DE.UTF-8") .. " >/dev/null 2>&1")
      and d or false
  end
  return dir ~= false
end

--- Run `code` in a fresh interpreter of the running kind, after it switched its
-- numeric locale to de_DE.UTF-8; what it printed (stdout and stderr).
function _M.run(code)
  assert(_M.available(), "localedef could not build de_DE.UTF-8 (Debian's locales package)")
  local lua = jit and "luajit" or "lua5.4" -- by name: check-asan puts its wrapper first on PATH
  local script = dir .. "/script.lua"
  shell.write(script, [[
    assert(os.setlocale("de_DE.UTF-8", "numeric"), "no de_DE.UTF-8 locale")
    -- LuaJIT formats numbers itself; Lua 5.4 asks the C library, which follows the locale
    assert(jit or string.format("%.1f", 0.5) == "0,5", "the locale writes a decimal comma")
  ]] .. code)
  return shell.output(("LOCPATH=%s LUA_PATH=%s LUA_CPATH=%s %s %s 2>&1"):format(shell.quote(dir),
    shell.quote(package.path), shell.quote(package.cpath), shell.quote(lua), shell.quote(script)))
end

return _M
