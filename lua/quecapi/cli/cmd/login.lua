--- `quecapi login`: log in with a phone number or email and a password, and keep
-- the session in the token file for the other commands.
-- @module quecapi.cli.cmd.login

local session = require "quecapi.cli.session"
local prompt = require "quecapi.cli.prompt"
local fail = require "quecapi.cli.fail"

return {
  summary = "log in with a phone number or email and a password; keeps the tokens",
  usage = "login [--phone NUMBER | --email ADDRESS]",
  help = [[
Log in with a phone number (and --international-code, default 86) or an email
address, and a password: QUECAPI_PASSWORD, the config file's password, or typed
at the prompt (without echo; piped input is read as one line). The tokens are
kept in the token file for the other commands.

Example:
  quecapi login --phone 13800138000]],
  nargs = { 0, 0 },
  args_help = "no arguments",
  run = function(ctx)
    local s = ctx.settings
    if not (s.phone or s.email) then
      return fail.usage("'login' needs --phone or --email (or QUECAPI_PHONE, QUECAPI_EMAIL, phone/email in the "
        .. "config file)")
    end
    local password = s.password
    if not password then
      local err, code, kind
      password, err, code, kind = prompt.secret(ctx, "Password for " .. session.identity(s) .. ": ", "password")
      if not password then return nil, err, code, kind end
    end
    local client, err, code, kind = session.client(ctx, { tokens = true, password = password })
    if not client then return nil, err, code, kind end
    local res
    res, err, code, kind = client:login(session.account(s, password))
    if not res then return nil, err, code, kind end
    ctx.out:say("Logged in as ", session.identity(s), " (tokens in ", ctx.token_path, ").")
    return true
  end,
}
