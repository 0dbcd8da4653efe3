--- `quecapi fakecloud start|stop|env|status`: the local fake cloud
-- (quecapi.fakecloud.ctl), to try the tool, a script or an nginx config offline.
-- @module quecapi.cli.cmd.fakecloud

local ctl = require "quecapi.fakecloud.ctl"
local fail = require "quecapi.cli.fail"

local function start(ctx, dir)
  local env, already = ctl.start { dir = dir, getenv = ctx.host.getenv }
  if not env then return nil, already end
  ctx.out:say(already and "fake cloud already running at " or "fake cloud at ", env.FAKECLOUD_URL,
    " (", dir, "; settings in ", dir, "/env)")
  return true
end

local ACTIONS = {
  start = start,
  stop = function(_, dir)
    ctl.stop(dir)
    return true
  end,
  env = function(ctx, dir)
    local env, err = ctl.status(dir)
    if not env then return nil, err end
    ctx.out.stream:write(ctl.exports(env))
    return true
  end,
  status = function(ctx, dir)
    local env, err = ctl.status(dir)
    if not env then return nil, err end
    ctx.out:say("fake cloud at ", env.FAKECLOUD_URL, " (", dir, ")")
    return true
  end,
}

return {
  summary = "run the local fake cloud for offline tests: start, stop, env, status",
  usage = "fakecloud start|stop|env|status",
  help = [[
Run the fake Quectel cloud on 127.0.0.1 (nginx with its Lua module): the App
API over HTTPS with its own CA, for trying quecapi, your scripts and your nginx
configs offline. It keeps its files in $FAKECLOUD_DIR, else
$XDG_RUNTIME_DIR/quecapi-fakecloud, else /tmp/quecapi-fakecloud-$USER.

  start    start it (if it is not running) and print its URL; writes the env
           file FAKECLOUD_DIR/env (FAKECLOUD_URL, FAKECLOUD_CA, ...)
  stop     stop it
  env      print the env file as shell exports:  eval "$(quecapi fakecloud env)"
  status   exit 0 and print its URL when it runs, else exit 1

Its test App's user domain is in FAKECLOUD_USER_DOMAIN; seeding users and
devices, reading SMS codes and injecting faults: see the fake cloud's README.]],
  nargs = { 1, 1 },
  args_help = "start, stop, env or status",
  settings = false,
  run = function(ctx)
    local action = ACTIONS[ctx.args[1]]
    if not action then return fail.usage("'fakecloud' takes start, stop, env or status, not '%s'", ctx.args[1]) end
    return action(ctx, ctl.default_dir(ctx.host.getenv))
  end,
}
