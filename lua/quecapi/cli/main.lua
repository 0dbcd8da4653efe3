--- The dispatcher of the `quecapi` command: parse the command line, load the
-- settings, run one command module (`quecapi.cli.cmd.<name>`), and turn its
-- result into an exit status. bin/quecapi only finds the modules and calls `run`.
--
-- A command module is a table: `summary` (its line in `quecapi --help`),
-- `usage`, `help`, `options` (see `quecapi.cli.args`), `nargs` and `args_help`,
-- `settings = false` when it needs none, and `run(ctx)`, which returns true or
-- `nil, err, code, kind` (kinds as the library's, plus "interrupted").
--
-- `ctx` carries the run: `name`, `command`, `args`, `opts`, `settings`, `host`,
-- and the printers `out` (stdout) and `log` (stderr).
--
-- The host is what the tool touches outside Lua: `getenv`, `stdin`, `stdout`,
-- `stderr`, `isatty(fd)`, `read_secret(prompt)`, and `transport` for the client
-- (nil: the library's own). The specs pass their own to run commands in-process.
-- @module quecapi.cli.main

local args = require "quecapi.cli.args"
local fail = require "quecapi.cli.fail"
local output = require "quecapi.cli.output"

local ipairs, pcall, xpcall, require, tostring = ipairs, pcall, xpcall, require, tostring
local format, find = string.format, string.find
local traceback = debug.traceback

local _M = {}

--- The commands, in the order `quecapi --help` lists them.
_M.COMMANDS = { "login", "logout", "sms", "register", "devices", "device", "tsl", "get", "set", "history",
                "watch", "call", "fakecloud", "help" }

local KNOWN = {}
for _, name in ipairs(_M.COMMANDS) do KNOWN[name] = true end

--- The module of a command; nil when there is no such command; nil, err when
-- its module (or the library under it) cannot be loaded.
function _M.command(name)
  if not KNOWN[name] then return nil end
  local ok, mod = pcall(require, "quecapi.cli.cmd." .. name)
  if not ok then return nil, tostring(mod) end
  return mod
end

--- The host of a real run: the process's environment and standard streams, the
-- terminal through the C core (loaded when first needed).
function _M.default_host()
  local function core() return require "quecapi.core" end
  return {
    getenv = os.getenv, stdin = io.stdin, stdout = io.stdout, stderr = io.stderr,
    isatty = function(fd) return core().isatty(fd) end,
    read_secret = function(prompt) return core().read_secret(prompt) end,
  }
end

local function help(ctx, topic)
  ctx.name = "help"
  ctx.args = { topic }
  return _M.command("help").run(ctx)
end

local function dispatch(argv, ctx)
  local broken
  local function find_command(name)
    local mod, err = _M.command(name)
    if err then
      broken = err
      return {}
    end
    return mod
  end
  local parsed, err, code, kind, hint = args.parse(argv, find_command)
  -- a missing core, a module with a syntax error: said before any usage error
  if broken then return nil, "cannot load the quecapi modules: " .. broken end
  if not parsed then return nil, err, code, kind, hint end
  ctx.name, ctx.command, ctx.args, ctx.opts = parsed.name, parsed.command, parsed.args, parsed.opts
  if parsed.opts.version then
    ctx.out:say("quecapi ", require("quecapi.core").VERSION)
    return true
  end
  if parsed.opts.help then return help(ctx, parsed.name) end
  if not parsed.command then return fail.usage("no command given") end
  local ok
  ok, err, code, kind, hint = args.check_count(parsed)
  if not ok then return nil, err, code, kind, hint end
  if parsed.command.settings ~= false then
    ctx.settings, err, code, kind = require("quecapi.cli.settings").load(parsed.opts, ctx.host.getenv,
      require "quecapi.core")
    if not ctx.settings then return nil, err, code, kind end
  end
  return parsed.command.run(ctx)
end

-- A failure as the line the user reads: the platform's code in brackets, and
-- where the help is for a mistake on the command line.
local function message(ctx, err, code, hint)
  local text = tostring(err)
  if code then text = format("%s [%s]", text, tostring(code)) end
  if hint then
    local where = ctx.name and ("quecapi help " .. ctx.name) or "quecapi --help"
    text = text .. " (see: " .. where .. ")"
  end
  return text
end

-- What escapes a command as an error: Ctrl-C outside a prompt (the interpreter
-- raises "interrupted!"), else a bug, reported with its traceback.
local function on_error(e)
  if find(tostring(e), "interrupted!$") then return { interrupted = true } end
  return { text = traceback(tostring(e), 2) }
end

--- Run the tool.
-- @tparam {string,...} argv the arguments
-- @tparam[opt] table host see the module's description; the process's by default
-- @treturn int the exit status: 0, 1 (the platform or the network), 2 (usage or
--   settings), 130 (interrupted)
function _M.run(argv, host)
  host = host or _M.default_host()
  local ctx = { host = host, out = output.printer(host.stdout), log = output.printer(host.stderr), opts = {} }
  local done, ok, err, code, kind, hint = xpcall(function() return dispatch(argv, ctx) end, on_error)
  if host.stdout.flush then host.stdout:flush() end
  if done and ok then return 0 end
  if not done then
    if ok.interrupted then
      err, kind = "interrupted", "interrupted"
    else
      err = "internal error: " .. ok.text
    end
    code, hint = nil, nil
  end
  ctx.log:note("%s", message(ctx, err, code, hint))
  return fail.status(kind)
end

return _M
