--- The App (end-user) OpenAPI as data: one row per operation.
--
-- A row says everything the client needs to validate, fill, sign and send a call;
-- the client has no per-endpoint code. Fields:
--
--   name      the API's operation name; the client method is its snake_case
--   method    HTTP method
--   path      path below the base URL
--   auth      "token" (Authorization header), "none" (userDomain, maybe signed),
--             or "refresh" (the refresh-token call)
--   body      nil: every parameter goes in the query string;
--             "json": parameters form a JSON object body
--   query     with body = "json": names that still go in the query string
--   params    documented parameters (wire names) -> type:
--             "string" | "integer" | "number" | "boolean" | "array" | "object" |
--             "list" (a comma-separated string; a Lua list is joined)
--   required  wire names the caller must supply
--   sign      field order of signature = SHA256(values .. userDomainSecret)
--   encrypt   wire field -> plaintext parameter (pwd <- password), AES per the
--             platform's rule with the row's random
--   paged     data is a PageHelper page (list, total, hasNextPage...)
--   tokens    "issue": the response carries access/refresh tokens;
--             "revoke": success ends the session
--   safe      the call has no side effects and may be retried
--
-- The client fills the parameters it owns when the row documents them:
-- userDomain, random (16 characters), ts (milliseconds), signature, and the
-- encrypted password fields.
-- @module quecapi.endpoints

return {
  {
    name = "sendPhoneSmsCode", method = "POST",
    path = "/v2/sms/enduserapi/v2/sendPhoneSmsCode",
    summary = "Send SMS Verification Code",
    auth = "none",
    params = { phone = "string", codeType = "integer", internationalCode = "string",
               random = "string", ts = "integer", userDomain = "string", signature = "string" },
    required = { "phone", "codeType", "internationalCode" },
    sign = { "phone", "codeType", "random", "ts" },
  },
  {
    name = "phonePwdRegister", method = "POST",
    path = "/v2/enduser/enduserapi/v2/phonePwdRegister",
    summary = "Phone Number Password Registration",
    auth = "none", body = "json",
    params = { phone = "string", pwd = "string", random = "string", smsCode = "string",
               userDomain = "string", internationalCode = "string", agreementList = "array",
               lang = "integer", mcc = "integer", nationality = "integer", timezone = "integer" },
    required = { "phone", "pwd", "smsCode", "agreementList" },
    encrypt = { pwd = "password" },
  },
  {
    name = "phonePwdLogin", method = "POST",
    path = "/v2/enduser/enduserapi/phonePwdLogin",
    summary = "Phone Number Password Login",
    auth = "none",
    params = { phone = "string", pwd = "string", random = "string", signature = "string",
               userDomain = "string", internationalCode = "string", mcc = "integer" },
    required = { "phone", "pwd" },
    sign = { "internationalCode", "phone", "pwd", "random" },
    encrypt = { pwd = "password" },
    tokens = "issue",
  },
  {
    name = "userDeviceList", method = "GET",
    path = "/v2/binding/enduserapi/userDeviceList",
    summary = "Query User's Device List",
    auth = "token",
    params = { pkList = "list", dk = "string", deviceName = "string", page = "integer",
               pageSize = "integer", isAssociation = "boolean", isGroupDeviceShow = "boolean",
               secondItemCode = "string" },
    required = {},
    paged = true, safe = true,
  },
}
