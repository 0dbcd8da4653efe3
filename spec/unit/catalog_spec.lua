-- The catalog as data: the shape of every row, a sample checked against the
-- platform's reference, every row called through the client with a recording
-- transport, and the error-code table.

-- A fresh copy of the catalog: the client decorates the rows it loads
-- (method_name, passwords, ...), and the data checks want the file as written.
local function load_catalog()
  local path = assert(package.searchpath("quecapi.endpoints", package.path))
  return dofile(path)
end

local catalog = load_catalog()

local BASE_URL = "https://iot-api.quectelcn.com"

local FIELDS = {
  name = true, method = true, path = true, summary = true, auth = true, body = true,
  body_list = true, query = true, params = true, required = true, sign = true, encrypt = true,
  sign_substitute = true, secret = true, defaults = true, source = true,
  paged = true, tokens = true, safe = true,
}
local METHODS = { GET = true, POST = true, PUT = true, DELETE = true }
local AUTHS = { none = true, token = true, refresh = true }
local TYPES = {
  string = true, integer = true, number = true, boolean = true, array = true, object = true,
  list = true,
}
-- Parameters the client fills itself; a row may document them but never requires them.
local CLIENT_FILLED = { userDomain = true, random = true, ts = true, signature = true }

-- The client's own methods: no catalog row may take one of these names.
local CLIENT_METHODS = {
  "prepare", "call", "paginate", "request", "get_tokens", "set_tokens", "secrets", "close",
  "login", "logout", "get_properties", "set_properties", "call_service", "send_raw",
}

-- The rule of client.snake_case, restated so these checks need only the data.
local function snake_case(name)
  name = name:gsub("(%u+)(%u%l)", "%1_%2")
  name = name:gsub("([%l%d])(%u)", "%1_%2")
  return name:lower()
end

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function sorted(list)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = v end
  table.sort(copy)
  return copy
end

local function by_name()
  local rows = {}
  for _, row in ipairs(catalog) do rows[row.name] = row end
  return rows
end

-- Every problem of every row, so one failure shows them all.
local function problems_of(check)
  local found = {}
  for i, row in ipairs(catalog) do
    check(row, function(msg)
      found[#found + 1] = string.format("row %d (%s): %s", i, tostring(row.name), msg)
    end)
  end
  return found
end

local function assert_none(found)
  assert.are.same({}, found, table.concat(found, "\n"))
end

describe("the catalog", function()
  it("has one row for each of the 124 documented endpoints, in the reference's order", function()
    -- The endpoint index of the reference, page names in order.
    local INDEX = {
      "sendPhoneSmsCode", "sendEmail", "phonePwdRegister", "emailPwdRegister", "phonePwdLogin",
      "emailPwdLogin", "refreshToken", "userInfo", "setUserInfo", "userLogout", "setUserPwd",
      "userPwdReset", "userDelete", "setPhone", "relationPhone", "deletePhoneRelation",
      "relationEmail", "deleteEmailRelation", "phoneAuthLogin", "alipayAuthLogin", "qqAuthLogin",
      "wechatMiniprogramAuthLogin", "wechatOffiaccountAuthLogin", "appleAuthLogin",
      "facebookAuthLogin", "twitterAuthLogin", "getDeviceInfoByBinding", "bindDeviceSn",
      "bindDeviceDk", "deviceBindingByWifi", "deviceBindingByPureBt",
      "batchGetPureBtResetCredentials", "setBtLastUseTime", "unbundlingDeviceDk", "userDeviceList",
      "deviceInfo", "dmSetDeviceInfo", "getGatewayDeviceChildList", "getDeviceTimeZone",
      "setDeviceTimeZone", "getProductManual", "productTSL", "getDeviceBusinessAttributes",
      "batchControlDevice", "getPropertyDataList", "getPropertyChartList", "getPropertyStatistics",
      "deviceEventList", "getLocationHistory", "shareInfo", "shareByUid", "shareDevice",
      "deviceShareUserList", "setShareTime", "changeShareDeviceName", "ownerUserUnshareDevice",
      "shareUserUnshareDevice", "enabledFamilyMode", "getFamilyModeConfig", "enabledAutoSwitch",
      "addFamily", "deleteFamily", "getFamilyList", "getCurrentFamily", "setFamily",
      "getFamilyDeviceList", "familySetDeviceInfo", "getFamilyRoomList", "addFamilyRoom",
      "setFamilyRoom", "setFamilyRoomSort", "addDeviceInFamilyRoom", "getFamilyRoomDeviceList",
      "deleteFamilyRoom", "getCommonUsedDeviceList", "addCommonUsedDevice", "deleteCommonUsedDevice",
      "inviteFamilyMember", "setFamilyMemberRole", "setFamilyMemberName", "deleteFamilyMember",
      "getFamilyMemberList", "getFamilyInviteList", "familyMemberInviteHandle", "leaveFamily",
      "userMsgList", "getMsgStats", "readMsg", "deleteMsg", "batchDeleteMsg", "getMsgPushSetting",
      "setMsgPushSetting", "setDeviceInfo", "deleteDeviceInfo", "sceneCreate", "sceneTest",
      "sceneExecute", "selectSceneList", "selectSceneDetail", "sceneEdit", "sceneDelete",
      "batchAddCommonScene", "selectCommonSceneList", "batchDeleteCommonScene", "selectSceneLogList",
      "selectSceneLogDetail", "deleteSceneLog", "automationPublished", "automationSave",
      "automationList", "automationDetail", "automationStatus", "automationTest",
      "automationGetTestAutomation", "automationEdit", "automationDelete", "automationLogList",
      "automationLogDetail", "automationLogClear", "addCornJob", "getCronJobList", "getCronJobInfo",
      "setCronJob", "batchDeleteCronJob",
    }
    assert.are.equal(124, #INDEX)
    local names, live = {}, {}
    for _, row in ipairs(catalog) do
      if row.source == "live" then live[#live + 1] = row.name else names[#names + 1] = row.name end
    end
    assert.are.equal(124, #names)
    assert.are.same(INDEX, names)
    -- [11.8] and, after them, what the live cloud's clients use that the index lacks
    assert.are.same({ "getDeviceOnlineStatus", "getDeviceBindingInfo", "getProductList" }, live)
  end)

  it("has rows of a valid shape", function()
    assert_none(problems_of(function(row, bad)
      for k in pairs(row) do
        if not FIELDS[k] then bad("unknown field '" .. tostring(k) .. "'") end
      end
      if type(row.name) ~= "string" or not row.name:find("^%l%w*$") then bad("name") end
      if not METHODS[row.method] then bad("method " .. tostring(row.method)) end
      if type(row.path) ~= "string" or not row.path:find("^/v2/[%w/]+$") then
        bad("path " .. tostring(row.path))
      end
      if type(row.summary) ~= "string" or row.summary == "" then bad("summary") end
      if not AUTHS[row.auth] then bad("auth " .. tostring(row.auth)) end
      if row.body ~= nil and row.body ~= "json" then bad("body " .. tostring(row.body)) end
      if row.method == "GET" and row.body then bad("a GET with a body") end
      if row.tokens ~= nil and row.tokens ~= "issue" and row.tokens ~= "revoke" then
        bad("tokens " .. tostring(row.tokens))
      end
      if row.safe ~= nil and row.safe ~= true then bad("safe must be nil or true") end
      if row.paged ~= nil and row.paged ~= true then bad("paged must be nil or true") end
    end))
  end)

  it("[10.5] marks secret fields as data: documented parameters, signatures and encrypted fields", function()
    assert_none(problems_of(function(row, bad)
      if row.secret == nil then
        if row.sign then bad("signs but marks no secret") end
        if row.encrypt then bad("encrypts but marks no secret") end
        return
      end
      if type(row.secret) ~= "table" or #row.secret == 0 then return bad("secret must be a non-empty list") end
      local marked = {}
      for _, name in ipairs(row.secret) do
        if not row.params[name] then bad("secret field '" .. tostring(name) .. "' is not a parameter") end
        marked[name] = true
      end
      if row.sign and not marked.signature then bad("signature is not marked secret") end
      for wire in pairs(row.encrypt or {}) do
        if not marked[wire] then bad("encrypted field '" .. wire .. "' is not marked secret") end
      end
    end))
    -- The fields a review of 0.1 found shown verbatim in error excerpts.
    local rows = by_name()
    local function secret(name, field)
      for _, f in ipairs(rows[name].secret or {}) do
        if f == field then return true end
      end
      return false
    end
    for _, case in ipairs {
      { "setPhone", "newPhoneCode" }, { "setPhone", "oldPhoneCode" }, { "phoneAuthLogin", "sign" },
      { "phoneAuthLogin", "token" }, { "twitterAuthLogin", "oauthToken" },
      { "twitterAuthLogin", "oauthTokenSecret" }, { "deviceBindingByPureBt", "encryptedBindingCode" },
      { "deviceBindingByPureBt", "encryptedNewBindingSecret" },
      { "deviceBindingByPureBt", "encryptedOldBindingSecret" }, { "shareDevice", "shareCode" },
      { "shareInfo", "authKey" }, { "shareByUid", "authKey" }, { "phonePwdRegister", "smsCode" },
      { "refreshToken", "refreshToken" },
    } do
      assert.is_true(secret(case[1], case[2]), case[1] .. "." .. case[2] .. " must be secret")
    end
    -- setUserInfo's signature is the user's profile text, not a secret
    assert.is_false(secret("setUserInfo", "signature"))
  end)

  it("types every parameter with a known type", function()
    assert_none(problems_of(function(row, bad)
      if type(row.params) ~= "table" then return bad("params is not a table") end
      for k, v in pairs(row.params) do
        if type(k) ~= "string" or not k:find("^%a%w*$") then bad("parameter name " .. tostring(k)) end
        if not TYPES[v] then bad("parameter '" .. tostring(k) .. "' has type " .. tostring(v)) end
      end
      if row.params.Authorization then bad("Authorization is a header, covered by auth") end
    end))
  end)

  it("requires only documented parameters, never one the client fills", function()
    assert_none(problems_of(function(row, bad)
      if not is_list(row.required) then return bad("required is not a list") end
      local seen = {}
      for _, name in ipairs(row.required) do
        if type(name) ~= "string" or not row.params[name] then
          bad("required '" .. tostring(name) .. "' is not a parameter")
        end
        if CLIENT_FILLED[name] then bad("required '" .. name .. "' is filled by the client") end
        if seen[name] then bad("required '" .. name .. "' twice") end
        seen[name] = true
      end
    end))
  end)

  it("signs and encrypts only documented parameters", function()
    assert_none(problems_of(function(row, bad)
      if row.sign ~= nil then
        if not is_list(row.sign) or #row.sign == 0 then return bad("sign is not a list") end
        if row.params.signature ~= "string" then bad("signed, but documents no signature") end
        for _, name in ipairs(row.sign) do
          if not row.params[name] then bad("sign field '" .. tostring(name) .. "' is not a parameter") end
        end
      end
      if row.encrypt ~= nil then
        if type(row.encrypt) ~= "table" or next(row.encrypt) == nil then return bad("encrypt") end
        -- the platform decrypts with the random sent beside the password
        if row.params.random ~= "string" then bad("encrypts, but documents no random") end
        local plains = {}
        for wire, plain in pairs(row.encrypt) do
          if row.params[wire] ~= "string" then
            bad("encrypted '" .. tostring(wire) .. "' is not a string parameter")
          end
          if type(plain) ~= "string" or row.params[plain] or plains[plain] then
            bad("plaintext name '" .. tostring(plain) .. "' clashes")
          end
          plains[plain] = true
        end
      end
    end))
  end)

  it("keeps query and body_list consistent with the body", function()
    assert_none(problems_of(function(row, bad)
      if row.query ~= nil then
        if row.body ~= "json" then bad("query without a JSON body") end
        if not is_list(row.query) or #row.query == 0 then return bad("query is not a list") end
        for _, name in ipairs(row.query) do
          if not row.params[name] then bad("query '" .. tostring(name) .. "' is not a parameter") end
        end
      end
      if row.body_list ~= nil then
        if row.body ~= "json" then bad("body_list without a JSON body") end
        if row.query ~= nil then bad("body_list with query parameters") end
        if row.params[row.body_list] ~= "array" then bad("body_list is not an array parameter") end
        for k in pairs(row.params) do
          if k ~= row.body_list then bad("body_list row has another parameter '" .. k .. "'") end
        end
      end
    end))
  end)

  it("marks paged and safe rows consistently", function()
    assert_none(problems_of(function(row, bad)
      if row.paged and not (row.params.page == "integer" and row.params.pageSize == "integer") then
        bad("paged without integer page and pageSize")
      end
      if row.method == "GET" and not row.safe then bad("a GET that is not safe") end
      if row.safe and row.method ~= "GET" and row.method ~= "POST" then bad("a safe " .. row.method) end
      if row.tokens and row.safe then bad("a token call marked safe") end
    end))
  end)

  it("gives the calls without a token a userDomain, and only those", function()
    assert_none(problems_of(function(row, bad)
      if row.auth == "none" and not row.params.userDomain then bad("no userDomain") end
      if row.auth ~= "none" and row.params.userDomain then bad("userDomain on a " .. row.auth .. " call") end
    end))
  end)

  it("has unique names, method names and method/path pairs", function()
    local names, snakes, routes, found = {}, {}, {}, {}
    local reserved = set_of(CLIENT_METHODS)
    for _, row in ipairs(catalog) do
      local snake = snake_case(row.name)
      if names[row.name] then found[#found + 1] = "name " .. row.name end
      if snakes[snake] then
        found[#found + 1] = "method " .. snake .. " (" .. snakes[snake] .. ", " .. row.name .. ")"
      end
      if reserved[snake] then found[#found + 1] = "method " .. snake .. " is a client method" end
      -- No path repeats in the reference: the three setDeviceInfo calls live in
      -- different services (binding, family, mobilepush).
      local route = row.method .. " " .. row.path
      if routes[route] then found[#found + 1] = "route " .. route end
      names[row.name], snakes[snake], routes[route] = true, row.name, true
    end
    assert_none(found)
  end)
end)

describe("the catalog against the reference", function()
  local rows = by_name()

  -- { name, method, path, required } as documented; required leaves out what
  -- the client fills (userDomain, random, ts, signature). phonePwdRegister is
  -- the guide's v2 form with its JSON body.
  local SAMPLE = {
    { "sendPhoneSmsCode", "POST", "/v2/sms/enduserapi/v2/sendPhoneSmsCode",
      { "codeType", "internationalCode", "phone" } },
    { "sendEmail", "POST", "/v2/mail/enduserapi/v2/sendEmail", { "email", "emailType" } },
    { "phonePwdRegister", "POST", "/v2/enduser/enduserapi/v2/phonePwdRegister",
      { "phone", "pwd", "smsCode", "agreementList" } },
    { "emailPwdRegister", "POST", "/v2/enduser/enduserapi/emailPwdRegister", { "code", "email", "pwd" } },
    { "phonePwdLogin", "POST", "/v2/enduser/enduserapi/phonePwdLogin", { "phone", "pwd" } },
    { "emailPwdLogin", "POST", "/v2/enduser/enduserapi/emailPwdLogin", { "email", "pwd" } },
    { "refreshToken", "PUT", "/v2/enduser/enduserapi/refreshToken", { "refreshToken" } },
    { "userInfo", "GET", "/v2/enduser/enduserapi/userInfo", {} },
    { "userLogout", "DELETE", "/v2/enduser/enduserapi/userLogout", {} },
    { "setUserPwd", "PUT", "/v2/enduser/enduserapi/setUserPwd", { "newPwd", "oldPwd" } },
    { "userPwdReset", "PUT", "/v2/enduser/enduserapi/userPwdReset", { "code" } },
    { "twitterAuthLogin", "POST", "/v2/enduser/enduserapi/twitterAuthLogin",
      { "appId", "oauthToken", "oauthTokenSecret" } },
    { "bindDeviceSn", "POST", "/v2/binding/enduserapi/bindDeviceSn", { "pk", "sn" } },
    { "bindDeviceDk", "POST", "/v2/binding/enduserapi/bindDeviceDk", { "dk", "pk" } },
    { "deviceBindingByPureBt", "POST", "/v2/binding/enduserapi/deviceBindingByPureBt",
      { "dk", "encryptedNewBindingSecret", "pk" } },
    { "unbundlingDeviceDk", "DELETE", "/v2/binding/enduserapi/unbundlingDeviceDk", { "dk", "pk" } },
    { "deviceInfo", "GET", "/v2/binding/enduserapi/deviceInfo", {} },
    { "dmSetDeviceInfo", "PUT", "/v2/binding/enduserapi/setDeviceInfo", { "deviceName", "dk", "pk" } },
    { "productTSL", "GET", "/v2/binding/enduserapi/productTSL", { "pk" } },
    { "getDeviceBusinessAttributes", "GET", "/v2/binding/enduserapi/getDeviceBusinessAttributes",
      { "dk", "pk" } },
    { "batchControlDevice", "POST", "/v2/binding/enduserapi/batchControlDevice",
      { "data", "deviceList", "type" } },
    { "getPropertyDataList", "GET", "/v2/quecdatastorage/enduserapi/getPropertyDataList",
      { "attributeCode", "dk", "endTimestamp", "pk", "startTimestamp" } },
    { "getPropertyChartList", "GET", "/v2/quecdatastorage/enduserapi/getPropertyChartList",
      { "attributeCode", "dk", "endTimestamp", "pk", "startTimestamp" } },
    { "getLocationHistory", "GET", "/v2/quecdatastorage/enduserapi/getLocationHistory",
      { "dk", "endTimestamp", "pk", "startTimestamp" } },
    { "deviceEventList", "POST", "/v2/quecdatastorage/enduserapi/v2/deviceEventList",
      { "codeList", "deviceKey", "endTime", "productKey", "startTime" } },
    { "shareInfo", "POST", "/v2/binding/enduserapi/shareInfo", { "acceptingExpireAt", "dk", "pk" } },
    { "shareByUid", "POST", "/v2/binding/enduserapi/shareByUid", { "dk", "pk" } },
    { "shareDevice", "POST", "/v2/binding/enduserapi/shareDevice", { "shareCode" } },
    { "deviceShareUserList", "GET", "/v2/binding/enduserapi/deviceShareUserList", { "dk", "pk" } },
    { "ownerUserUnshareDevice", "DELETE", "/v2/binding/enduserapi/ownerUserUnshareDevice", { "shareCode" } },
    { "shareUserUnshareDevice", "DELETE", "/v2/binding/enduserapi/shareUserUnshareDevice", { "shareCode" } },
    { "addFamily", "POST", "/v2/family/enduserapi/addFamily", { "familyName" } },
    { "familySetDeviceInfo", "PUT", "/v2/family/enduserapi/setDeviceInfo", { "params" } },
    { "deleteFamilyMember", "DELETE", "/v2/family/enduserapi/deleteFamilyMember", { "fid", "memberUid" } },
    { "userMsgList", "GET", "/v2/mobilepush/enduserapi/userMsgList", {} },
    { "setDeviceInfo", "POST", "/v2/mobilepush/enduserapi/setDeviceInfo", { "deviceLanguage" } },
    { "sceneExecute", "POST", "/v2/cep/enduserapi/sceneExecute", { "sceneId" } },
    { "selectSceneLogList", "POST", "/v2/cep/enduserapi/selectSceneLogList", { "lastExecutionId", "limit" } },
    { "automationStatus", "POST", "/v2/cep/enduserapi/automation/status", { "automationId", "status" } },
    { "automationDelete", "DELETE", "/v2/cep/enduserapi/automation/del", { "automationId" } },
    { "addCornJob", "POST", "/v2/cep/enduserapi/v2/addCornJob", { "dk", "pk", "timers", "type" } },
    { "batchDeleteCronJob", "DELETE", "/v2/cep/enduserapi/batchDeleteCronJob", { "ruleIdList" } },
  }

  it("matches the sample's method, path and required fields", function()
    assert.is_true(#SAMPLE >= 25)
    for _, s in ipairs(SAMPLE) do
      local row = rows[s[1]]
      assert.is_table(row, s[1])
      assert.are.same({ s[1], s[2], s[3], sorted(s[4]) },
                      { row.name, row.method, row.path, sorted(row.required) })
    end
  end)

  it("covers every path family in the sample", function()
    local families = {}
    for _, s in ipairs(SAMPLE) do
      local family = s[3]:match("^/v2/(%w+)/")
      if family == "cep" then
        family = s[3]:find("/automation/", 1, true) and "cep automation"
          or s[3]:find("Cron", 1, true) and "cep cron" or "cep scenes"
      end
      families[family] = true
    end
    for _, f in ipairs { "sms", "mail", "enduser", "binding", "quecdatastorage", "family", "mobilepush",
                         "cep scenes", "cep automation", "cep cron" } do
      assert.is_true(families[f] == true, f)
    end
  end)

  it("signs with the documented field orders", function()
    -- signature = SHA256(fields .. userDomainSecret), in this order
    local SIGN = {
      sendPhoneSmsCode = { "phone", "codeType", "random", "ts" },
      phonePwdLogin = { "internationalCode", "phone", "pwd", "random" },
      emailPwdLogin = { "email", "pwd", "random" },
      deviceBindingByPureBt = { "pk", "dk", "bindingCode", "pwd" },
      alipayAuthLogin = { "appId", "authCode" },
      appleAuthLogin = { "identityToken" },
      facebookAuthLogin = { "appId", "code" },
      qqAuthLogin = { "accessToken" },
      twitterAuthLogin = { "appId", "oauthToken", "oauthTokenSecret" },
      wechatMiniprogramAuthLogin = { "appId", "jsCode" },
      wechatOffiaccountAuthLogin = { "appId", "code" },
    }
    local got = {}
    for _, row in ipairs(catalog) do got[row.name] = row.sign end
    assert.are.same(SIGN, got)
  end)

  it("encrypts the user passwords the pages describe", function()
    local ENCRYPT = {
      phonePwdRegister = { pwd = "password" },
      emailPwdRegister = { pwd = "password" },
      phonePwdLogin = { pwd = "password" },
      emailPwdLogin = { pwd = "password" },
      userPwdReset = { pwd = "password" },
      setUserPwd = { oldPwd = "old_password", newPwd = "new_password" },
    }
    local got = {}
    for _, row in ipairs(catalog) do got[row.name] = row.encrypt end
    assert.are.same(ENCRYPT, got)
    -- the Bluetooth pwd of a pure-BLE binding is the device's, not a user password
    assert.are.equal("string", rows.deviceBindingByPureBt.params.pwd)
  end)

  it("issues and revokes tokens on the login, refresh, logout and delete calls", function()
    local TOKENS = {
      phonePwdLogin = "issue", emailPwdLogin = "issue", refreshToken = "issue",
      phoneAuthLogin = "issue", alipayAuthLogin = "issue", qqAuthLogin = "issue",
      wechatMiniprogramAuthLogin = "issue", wechatOffiaccountAuthLogin = "issue",
      appleAuthLogin = "issue", facebookAuthLogin = "issue", twitterAuthLogin = "issue",
      userLogout = "revoke", userDelete = "revoke",
    }
    local got = {}
    for _, row in ipairs(catalog) do got[row.name] = row.tokens end
    assert.are.same(TOKENS, got)
    assert.are.equal("refresh", rows.refreshToken.auth)
  end)

  it("sends the documented array bodies as lists and the mixed calls' query fields", function()
    local LISTS = {
      batchGetPureBtResetCredentials = "param", familySetDeviceInfo = "params",
      setFamilyRoomSort = "roomSortList", addDeviceInFamilyRoom = "param", deleteFamilyRoom = "fridList",
    }
    local QUERY = { automationStatus = { "automationId", "status" }, automationDelete = { "automationId" } }
    local lists, query = {}, {}
    for _, row in ipairs(catalog) do
      lists[row.name] = row.body_list
      query[row.name] = row.query
    end
    assert.are.same(LISTS, lists)
    assert.are.same(QUERY, query)
  end)
end)

describe("every catalog row through the client", function()
  local quecapi = require "quecapi"
  local json = require "quecapi.json"

  local LOGIN_DATA = {
    accessToken = { token = "Bearer A", expirationTime = 4102444800 },
    refreshToken = { token = "Bearer R", expirationTime = 4102444800 },
  }

  -- Records every request; answers with success, and with tokens when asked to.
  local transport = { sent = {}, data = {} }
  function transport:request(req)
    self.sent[#self.sent + 1] = req
    return 200, json.encode { code = 200, msg = "", data = self.data }, {}
  end

  local client = assert(quecapi.new {
    user_domain = "C.DM.1.1", user_domain_secret = "s", transport = transport,
  })

  -- A plausible value of each type; fresh tables every time.
  local function value(kind)
    if kind == "string" then return "x" end
    if kind == "integer" then return 1 end
    if kind == "number" then return 1.5 end
    if kind == "boolean" then return true end
    if kind == "list" then return "a" end
    return {}
  end

  -- The required parameters, passwords under their plaintext names.
  local function required_params(row)
    local params = {}
    for _, name in ipairs(row.required) do
      local plain = row.encrypt and row.encrypt[name]
      if plain then params[plain] = "secret-1" else params[name] = value(row.params[name]) end
    end
    return params
  end

  local function reset(row)
    transport.sent = {}
    transport.data = row.tokens == "issue" and LOGIN_DATA or {}
    assert(client:set_tokens { access_token = "Bearer t" })
  end

  local function escape(s)
    return (s:gsub("%p", "%%%0"))
  end

  for _, row in ipairs(catalog) do
    local method = snake_case(row.name)

    it(method .. " sends " .. row.method .. " " .. row.path, function()
      reset(row)
      assert.is_function(client[method])
      local res, err = client[method](client, required_params(row))
      assert.is_table(res, err)
      assert.are.equal(200, res.code)
      assert.are.equal(1, #transport.sent)
      local req = transport.sent[1]
      assert.are.equal(row.method, req.method)
      local prefix = BASE_URL .. row.path
      assert.are.equal(prefix, req.url:sub(1, #prefix))
      local rest = req.url:sub(#prefix + 1)
      assert.is_true(rest == "" or rest:sub(1, 1) == "?", req.url)

      local query = set_of(row.query or {})
      if row.body_list then
        assert.is_truthy(req.body and req.body:find("^%s*%["), "the list is the whole body")
      elseif row.body == "json" then
        local body = json.decode(req.body)
        assert.is_table(body, req.body)
        for _, name in ipairs(row.required) do
          if query[name] then
            assert.is_nil(body[name], name .. " goes in the query string")
            assert.matches("[?&]" .. escape(name) .. "=", rest)
          else
            assert.is_not_nil(body[name], name .. " goes in the body")
          end
        end
      elseif row.method == "POST" or row.method == "PUT" then
        -- [11.2] a form body: nothing of the parameters in the request line
        assert.are.equal("", rest, "parameters in the URL: " .. req.url)
        if #row.required > 0 then
          assert.are.equal("application/x-www-form-urlencoded", req.headers["Content-Type"])
        end
        for _, name in ipairs(row.required) do
          assert.truthy(("&" .. (req.body or "")):find("&" .. name .. "=", 1, true), name .. " in " .. tostring(req.body))
        end
      else
        assert.is_nil(req.body)
        for _, name in ipairs(row.required) do
          assert.matches("[?&]" .. escape(name) .. "=", rest)
        end
      end
      if row.sign then
        assert.matches("signature", (req.body or "") .. rest, 1, true)
      end
    end)

    if #row.required > 0 then
      it(method .. " names a missing parameter and sends nothing", function()
        reset(row)
        local first = row.required[1]
        first = row.encrypt and row.encrypt[first] or first
        local res, err = client[method](client, {})
        assert.is_nil(res)
        assert.matches("missing required parameter '" .. first .. "'", err, 1, true)
        assert.are.equal(0, #transport.sent)
      end)
    end
  end
end)

describe("the error-code table", function()
  local errors = require "quecapi.errors"

  it("maps integer codes to messages", function()
    local n = 0
    for code, msg in pairs(errors) do
      n = n + 1
      assert.is_number(code)
      assert.are.equal(code, math.floor(code))
      assert.is_true(code >= 1000 and code < 10000, tostring(code))
      assert.is_string(msg)
      assert.is_true(#msg > 0, tostring(code))
    end
    assert.is_true(n >= 400, n .. " entries")
  end)

  it("has the codes a client meets most", function()
    assert.are.equal("Token verification failed.", errors[5032])
    assert.are.equal("Signature verification failed.", errors[5420])
    assert.are.equal("Please input the token.", errors[5106])
    assert.are.equal("SMS sending is out of the limited frequency allowable range.", errors[5058])
    assert.are.equal("SMS verification failed.", errors[5037])
  end)

  it("has the codes found only on endpoint pages", function()
    assert.are.equal("Please enter signature", errors[5550])
    assert.are.equal("Phone number or password incorrect, you have 1 more attempt", errors[5579])
    -- the first of the pages' wordings
    assert.are.equal("Please enter Family ID", errors[5618])
    assert.are.equal("MCC does not belong to current data center", errors[6084])
  end)
end)
