--- `quecapi help [COMMAND]`: the tool's help, made from the command modules'
-- summaries and the option and setting lists the parser and the settings use,
-- or one command's page.
-- @module quecapi.cli.cmd.help

local main = require "quecapi.cli.main"
local args = require "quecapi.cli.args"
local settings = require "quecapi.cli.settings"
local output = require "quecapi.cli.output"
local fail = require "quecapi.cli.fail"

local ipairs = ipairs
local concat = table.concat

-- Words joined by ", " and wrapped to lines of at most `width` characters.
local function wrap(words, indent, width)
  local lines, line = {}, indent
  for i, word in ipairs(words) do
    local piece = word .. (i < #words and "," or "")
    if #line + #piece + 1 > width and line ~= indent then
      lines[#lines + 1] = line
      line = indent
    end
    line = line .. (line == indent and "" or " ") .. piece
  end
  lines[#lines + 1] = line
  return concat(lines, "\n")
end

--- The help lines of a list of options (`quecapi.cli.args` declarations).
local function option_lines(list)
  local rows = {}
  for i, o in ipairs(list) do
    local left = (o.short and ("-" .. o.short .. ", ") or "") .. "--" .. o.name .. (o.value and (" " .. o.value) or "")
    rows[i] = { left, o.help or "" }
  end
  return concat(output.table_lines(rows, "  "), "\n")
end

local function tool_help()
  local commands = {}
  for i, name in ipairs(main.COMMANDS) do
    local c = main.command(name)
    commands[i] = { name, c and c.summary or "" }
  end
  local variables = {}
  for i, pair in ipairs(settings.ENVIRONMENT) do variables[i] = pair[1] end
  return concat({
    "quecapi - the Quectel IoT platform's App (end-user) OpenAPI from the command line",
    "",
    "Usage: quecapi [options] COMMAND [arguments]",
    "",
    "Commands:",
    concat(output.table_lines(commands, "  "), "\n"),
    "",
    "Options (every command):",
    option_lines(args.GLOBAL),
    "",
    [[
Settings, later sources winning:
  1. the config file: --config FILE, else $QUECAPI_CONFIG, else
     $XDG_CONFIG_HOME/quecapi/config.lua (~/.config/quecapi/config.lua): a Lua
     file returning a table with user_domain, user_domain_secret, region or
     base_url, ca_file, phone or email, international_code, password. It must
     not be readable by group or others (chmod 600), else it is refused.
  2. the environment:]],
    wrap(variables, "     ", 79),
    [[
  3. the options above.
`quecapi watch` also reads QUECAPI_REALTIME_URL (the realtime channel's URL).
With neither a region nor a base URL, quecapi uses the cn cloud and says so
on stderr. The user domain secret and passwords are never taken as options
(anyone could read them in `ps`): give them in the environment or the config
file. A password that is not configured is asked for, without echo.

Tokens are kept in $XDG_CACHE_HOME/quecapi/tokens.json (~/.cache/quecapi/tokens.json,
mode 0600) and renewed automatically; with a configured password quecapi also
logs in again by itself when the session has ended.

Exit status: 0 success, 1 platform or network error (the platform's code in
brackets), 2 usage or configuration error, 130 interrupted (how `quecapi watch`
ends when all goes well).]],
  }, "\n") .. "\n"
end

local function command_help(c)
  local lines = { "Usage: quecapi " .. c.usage, "", c.help }
  if c.options and #c.options > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Options:"
    lines[#lines + 1] = option_lines(c.options)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Every command also takes the options in `quecapi --help`."
  return concat(lines, "\n") .. "\n"
end

return {
  summary = "show the help of a command",
  usage = "help [COMMAND]",
  help = "Show the help of quecapi or of a command.",
  args_help = "at most one command name",
  nargs = { 0, 1 },
  settings = false,
  run = function(ctx)
    local topic = ctx.args[1]
    if topic == nil then
      ctx.out.stream:write(tool_help())
      return true
    end
    local c, err = main.command(topic)
    if err then return nil, "cannot load the quecapi modules: " .. err end
    if not c then
      ctx.name = nil
      return fail.usage("unknown command '%s'", topic)
    end
    ctx.out.stream:write(command_help(c))
    return true
  end,
}
