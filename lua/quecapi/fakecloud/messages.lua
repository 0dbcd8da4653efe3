-- The platform's `msg` texts, in the language the caller asks for with the
-- X-Q-Language header (live clients send "en"; live-platform-evidence.md, item 5).
-- English is the default; "zh" (and zh-CN, zh_CN, CN) gives Chinese for the
-- common errors and English for the rest.
--
-- Error-code summary texts come from the data table the client ships (data
-- only, no client code); the fake words some codes as the endpoint pages do, and
-- keeps its own texts for codes the docs do not list.
local errors = require "quecapi.errors"

local _M = {}

local EN = setmetatable({
  [5002] = "The mobile number is registered.",
  [5004] = "The mobile number is not registered.",
  [5013] = "Incorrect user domain format.",
  [5015] = "The user domain does not exist.",
  [5019] = "Phone number format incorrect.",
  [5021] = "Please enter phone number.",
  [5022] = "Please enter password.",
  [5023] = "Please input the user domain.",
  [5028] = "Incorrect password.",
  [5032] = "Token verification failed.",
  [5037] = "SMS verification failed.",
  [5056] = "Password format incorrect, please enter 6-20 characters including letters, numbers, or special characters.",
  [5058] = "SMS sending is out of the limited frequency allowable range.",
  [5064] = "Please enter verification code.",
  [5106] = "Please input the token.",
  [5116] = "Please enter international code.",
  [5420] = "Signature verification failed.",
  [5550] = "Please enter signature",
  -- Codes live clients meet that the docs do not list (live-platform-evidence.md).
  [401] = "Unauthorized.",
  [1003] = "Token is invalid.",
  [4001] = "Token is invalid or expired.",
  [4007] = "device is not bound",
  [4021] = "Device is offline.",
  -- as pecron-monitor's docs/known-pecron-api-quirks.md quotes the live answer
  [4026] = "Insufficient resources in the manufacturer's account. Please contact the device manufacturer.",
}, { __index = errors })

-- 5032, 5037 and 5420 as the platform's Chinese walkthrough shows them
-- (app-openapi-guide.zh.md); the others are the fake's own wording.
local ZH = {
  [401] = "未授权",
  [1003] = "token 无效",
  [4001] = "token 无效或已过期",
  [4007] = "设备未绑定",
  [4021] = "设备离线",
  [4026] = "厂商账户资源不足，请联系设备厂商",
  [5000] = "服务异常",
  [5002] = "手机号已注册",
  [5004] = "手机号未注册",
  [5013] = "用户域格式错误",
  [5015] = "用户域不存在",
  [5019] = "手机号格式错误",
  [5021] = "请输入手机号",
  [5022] = "请输入密码",
  [5023] = "请输入用户域",
  [5028] = "密码错误",
  [5031] = "邮箱未注册",
  [5032] = "token 验证失败",
  [5037] = "短信验证码验证失败",
  [5041] = "没有权限",
  [5052] = "设备未绑定",
  [5058] = "短信发送超出频率限制",
  [5064] = "请输入验证码",
  [5106] = "请输入 token",
  [5115] = "请输入刷新 token",
  [5420] = "签名验证失败",
  [5550] = "请输入签名",
}

-- "en" or "zh" for an X-Q-Language value (a string, a list of them, or nil).
function _M.language(header)
  if type(header) == "table" then header = header[1] end
  if type(header) ~= "string" then return "en" end
  local l = header:lower()
  if l:find("^zh") or l == "cn" then return "zh" end
  return "en"
end

-- The text for code in lang ("en" when absent), or "".
function _M.text(code, lang)
  return (lang == "zh" and ZH[code]) or EN[code] or ""
end

return _M
