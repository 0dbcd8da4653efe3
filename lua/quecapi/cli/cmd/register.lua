--- `quecapi register`: register a phone number with an SMS code and a password.
-- @module quecapi.cli.cmd.register

local session = require "quecapi.cli.session"
local prompt = require "quecapi.cli.prompt"
local fail = require "quecapi.cli.fail"

-- The user agreement and the privacy policy, accepted on registering.
local AGREEMENTS = {
  { protocolType = 1, privacyVersion = "1.0.0" },
  { protocolType = 2, privacyVersion = "1.0.0" },
}

return {
  summary = "register a phone number (sends the SMS code, asks for it and a password)",
  usage = "register --phone NUMBER [--international-code CC] [--no-send]",
  help = [[
Register a phone number: send the registration SMS code, ask for the code and
a new password (without echo; piped input is read one line each), and register,
accepting the user agreement and the privacy policy (version 1.0.0). The password
may also come from QUECAPI_PASSWORD.

Example:
  quecapi register --phone 13800138000]],
  options = { { name = "no-send", help = "the code was already sent (quecapi sms); do not send another" } },
  nargs = { 0, 0 },
  args_help = "no arguments",
  run = function(ctx)
    local s = ctx.settings
    if not s.phone then return fail.usage("'register' needs --phone (or QUECAPI_PHONE)") end
    local client, err, code, kind = session.client(ctx)
    if not client then return nil, err, code, kind end
    local res
    if not ctx.opts["no-send"] then
      res, err, code, kind = client:send_phone_sms_code {
        phone = s.phone, internationalCode = s.international_code, codeType = 3,
      }
      if not res then return nil, err, code, kind end
      ctx.host.stderr:write("An SMS code was sent to ", session.identity(s), ".\n")
    end
    local sms_code
    sms_code, err, code, kind = prompt.secret(ctx, "SMS code: ", "SMS code")
    if not sms_code then return nil, err, code, kind end
    local password = s.password
    if not password then
      password, err, code, kind = prompt.new_password(ctx)
      if not password then return nil, err, code, kind end
    end
    res, err, code, kind = client:phone_pwd_register {
      phone = s.phone, password = password, smsCode = sms_code,
      internationalCode = s.international_code, agreementList = AGREEMENTS,
    }
    if not res then return nil, err, code, kind end
    ctx.out:say("Registered ", session.identity(s), ". Log in with: quecapi login --phone ", s.phone)
    return true
  end,
}
