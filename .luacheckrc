-- luacheck settings: `make lint` (part of `make check`).
std = "max"              -- code that runs on Lua 5.1 (LuaJIT) through 5.4
max_line_length = 120
codes = true

-- busted's globals in specs
-- (tables of cases read better unwrapped)
files["spec"] = { std = "+busted", max_line_length = 140 }
-- code that runs inside nginx sees the ngx API
files["lua/quecapi/fakecloud"] = { std = "+ngx_lua" }
files["spec/support/in_nginx.lua"] = { std = "+ngx_lua" }
files["bench"] = { std = "+ngx_lua" }

exclude_files = { "build/", ".run/" }
