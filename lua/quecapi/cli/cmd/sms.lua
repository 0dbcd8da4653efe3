--- `quecapi sms`: send an SMS verification code to a phone.
-- @module quecapi.cli.cmd.sms

local session = require "quecapi.cli.session"
local args = require "quecapi.cli.args"
local fail = require "quecapi.cli.fail"

local format = string.format

return {
  summary = "send an SMS verification code",
  usage = "sms --phone NUMBER [--international-code CC] [--type N]",
  help = [[
Send an SMS verification code to a phone. Types: 1 password reset, 2 login,
3 registration (default), 4 account cancellation, 5 add a push recipient.]],
  options = { { name = "type", value = "N", help = "the code's purpose (default 3)" } },
  nargs = { 0, 0 },
  args_help = "no arguments",
  run = function(ctx)
    local s = ctx.settings
    if not s.phone then return fail.usage("'sms' needs --phone (or QUECAPI_PHONE)") end
    local code_type, err, code, kind = args.count(ctx.opts.type or "3", "type")
    if not code_type then return nil, err, code, kind end
    local client
    client, err, code, kind = session.client(ctx)
    if not client then return nil, err, code, kind end
    local res
    res, err, code, kind = client:send_phone_sms_code {
      phone = s.phone, internationalCode = s.international_code, codeType = code_type,
    }
    if not res then return nil, err, code, kind end
    ctx.out:say(format("SMS code (type %d) sent to %s.", code_type, session.identity(s)))
    return true
  end,
}
