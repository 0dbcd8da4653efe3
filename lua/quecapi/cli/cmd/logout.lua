--- `quecapi logout`: end the session on the platform and forget its tokens.
-- @module quecapi.cli.cmd.logout

local session = require "quecapi.cli.session"

return {
  summary = "log out and forget the tokens",
  usage = "logout",
  help = "Log out on the platform and remove the tokens from the token file.",
  nargs = { 0, 0 },
  args_help = "no arguments",
  run = function(ctx)
    local client, err, code, kind = session.client(ctx, { tokens = true })
    if not client then return nil, err, code, kind end
    if not client:get_tokens() then
      ctx.out:say("Not logged in.")
      return true
    end
    local res
    res, err, code, kind = client:logout()
    if not res then
      ctx.log:note("the local session was removed, but the platform did not confirm the logout")
      return nil, err, code, kind
    end
    ctx.out:say("Logged out.")
    return true
  end,
}
