-- Writes the LDoc source of the reference page that documents every catalog operation
-- as a client method: `lua5.4 tools/catalog-doc.lua > build/docs-src/methods.lua`
-- (make docs). The rows come from `quecapi.catalog` (over lua/quecapi/endpoints.lua),
-- what each operation and parameter means from `quecapi.endpoint_docs`. The module it
-- writes exists for the reference pages only.
package.path = "lua/?.lua;" .. package.path
package.cpath = (os.getenv("QUECAPI_CPATH") or "build/lua5.4/?.so") .. ";" .. package.cpath

local catalog = require "quecapi.catalog"
local docs = require "quecapi.endpoint_docs"

local format, concat = string.format, table.concat

local out = {}
local function w(s) out[#out + 1] = s end

-- Text from the platform's pages is prose, not Markdown: outside `code` spans,
-- characters Markdown or HTML would act on are shown as themselves.
local function text(s)
  local parts = {}
  local i = 1
  while i <= #s do
    local a, b = s:find("`[^`]*`", i)
    local plain = s:sub(i, (a or #s + 1) - 1)
    plain = plain:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub("([*_%[%]\\])", "\\%1")
    parts[#parts + 1] = plain
    if not a then break end
    parts[#parts + 1] = s:sub(a, b)
    i = b + 1
  end
  return concat(parts)
end

-- A sentence: the pages' cells rarely end with a full stop.
local function sentence(s)
  s = s:gsub("%s+$", "")
  if not s:find("[.!?)`]$") then s = s .. "." end
  return s
end

local function code(names)
  local t = {}
  for i, n in ipairs(names) do t[i] = "`" .. n .. "`" end
  if #t <= 1 then return t[1] or "" end
  return concat(t, ", ", 1, #t - 1) .. " and " .. t[#t]
end

local LDOC_TYPE = {
  string = "string", integer = "int", number = "number", boolean = "bool",
  array = "table", object = "table", list = "string|{string,...}",
}

local EXAMPLE = {
  string = '"..."', integer = "1", number = "1", boolean = "true",
  array = "{ ... }", object = "{ ... }", list = '{ "..." }',
}

local AUTH = {
  token = "Sent with the access token.",
  none = "Sent without a token, under the user domain.",
  refresh = "Sent with the refresh token.",
}

-- The fields of a list or object parameter, each right after its parent.
local function nested(doc, param)
  local names = {}
  for path in pairs(doc.fields or {}) do
    if path:sub(1, #param + 1) == param .. "." then names[#names + 1] = path end
  end
  table.sort(names)
  return names
end

local function document(e)
  local doc = assert(docs[e.name], "no documentation for " .. e.name)
  local required, secret = {}, e.secret_set
  for _, r in ipairs(e.required) do required[r] = true end
  local required_field = {}
  for _, f in ipairs(doc.required_fields or {}) do required_field[f] = true end

  -- parameters as the caller passes them: required first (in the catalog's order),
  -- then the rest by name; the ones the client fills are listed apart
  local given, filled = {}, {}
  for _, r in ipairs(e.required) do given[#given + 1] = r end
  local rest = {}
  for k in pairs(e.params) do
    if catalog.owned(e, k) then
      filled[#filled + 1] = k
    elseif not required[k] then
      rest[#rest + 1] = k
    end
  end
  table.sort(rest)
  table.sort(filled)
  for _, k in ipairs(rest) do given[#given + 1] = k end

  w(format("--- %s.", text(e.summary or e.name)))
  local desc = doc.description
  if desc and desc:lower():gsub("%W", "") ~= (e.summary or ""):lower():gsub("%W", "") then
    w("-- " .. sentence(text(desc)))
  end
  w("--")
  w(format("-- `%s %s` (operation `%s`). %s", e.method, e.path, e.name, AUTH[e.auth]))
  local notes = {}
  if e.body == "json" then
    if e.body_list then
      notes[#notes + 1] = format("The list `%s` is the JSON body.", e.body_list)
    else
      notes[#notes + 1] = "Parameters form a JSON body" ..
        (e.query and #e.query > 0 and " (" .. code(e.query) .. " in the query string)." or ".")
    end
  end
  if e.sign then
    local t = {}
    for i, f in ipairs(e.sign) do t[i] = "`" .. f .. "`" end
    local s = "Signed by the client: SHA-256 of " .. concat(t, ", ") .. " and the user-domain secret, in that order"
    for field, instead in pairs(e.sign_substitute or {}) do
      s = s .. format(" (`%s` in place of `%s` when that is sent)", instead, field)
    end
    notes[#notes + 1] = s .. "."
  end
  if e.paged then
    notes[#notes + 1] = "Paged: `res.data.list` holds one page; `client:paginate(\"" ..
      e.method_name .. "\", params)` walks them all."
  end
  if e.safe then notes[#notes + 1] = "No side effects: retried after a failure on the way." end
  if e.tokens == "issue" then notes[#notes + 1] = "The client keeps the tokens it returns." end
  if e.tokens == "revoke" then notes[#notes + 1] = "The client forgets its tokens." end
  if #notes > 0 then w("-- " .. concat(notes, " ")) end
  if e.source == "live" then
    w("--")
    w("-- *From live clients:* the platform's documentation does not list this operation;")
    w("-- its shape follows the open-source clients of the live cloud.")
  end
  if #filled > 0 then
    w("--")
    w("-- Filled in by the client (not parameters of the call):")
    w("--")
    for _, k in ipairs(filled) do
      w(format("-- * `%s`: %s", k, sentence(text(doc.params[k]))))
    end
  end
  local secrets = {}
  for _, k in ipairs(given) do
    if secret[k] then secrets[#secrets + 1] = e.encrypt and e.encrypt[k] or k end
  end
  if #secrets > 0 then
    w("--")
    w("-- Secret, never shown in errors or logs: " .. code(secrets) .. ".")
  end

  w("-- @tparam" .. (#e.required == 0 and "[opt]" or "") .. " table params the API's parameters:")
  for _, k in ipairs(given) do
    local name, kind, meaning = k, e.params[k], sentence(text(doc.params[k]))
    local opt = required[k] and "" or "[opt]"
    local lead = required[k] and "**required.** " or ""
    if e.encrypt and e.encrypt[k] then
      name, kind = e.encrypt[k], "string"
      meaning = meaning:gsub("%.$", "") .. format(", in plaintext: the client sends it AES-encrypted as `%s`.", k)
    end
    if e.auth == "refresh" and k == "refreshToken" then
      opt, lead = "[opt]", ""
      meaning = meaning .. " The client sends the one it holds when none is given."
    end
    local default = e.defaults and e.defaults[k]
    if default ~= nil then
      opt, lead = "[opt]", ""
      meaning = meaning .. format(" The client sends `%q` when none is given.", default)
    end
    if kind == "list" then meaning = meaning .. " A Lua list is sent joined by commas." end
    local fields = nested(doc, k)
    if #fields > 0 then
      meaning = meaning .. (kind == "array" and " Each item is a table of the fields below." or
        " A table of the fields below.")
    end
    if secret[k] then meaning = meaning .. " *Secret.*" end
    w(format("-- @tparam%s %s params.%s %s%s", opt, LDOC_TYPE[kind], name, lead, meaning))
    for _, path in ipairs(fields) do
      local lead_field = required_field[path] and "**required.** " or ""
      w(format("-- @param params.%s %s%s", path, lead_field, sentence(text(doc.fields[path]))))
    end
  end
  w("-- @tparam[opt] table opts this call's `retry` (true, false or a policy), `deadline` and `timeout`")
  w("-- @return the decoded envelope (`res.code == 200`, `res.data`), or `nil, err, code, kind`")
  local example = {}
  for _, k in ipairs(given) do
    if required[k] and e.auth ~= "refresh" and not (e.defaults and e.defaults[k] ~= nil) then
      local name = e.encrypt and e.encrypt[k] or k
      example[#example + 1] = format("%s = %s", name, e.encrypt and e.encrypt[k] and '"..."' or EXAMPLE[e.params[k]])
    end
  end
  local call = format("local res, err = client:%s { %s }", e.method_name, concat(example, ", "))
  if #example > 0 and #call <= 90 then
    w("-- @usage " .. call)
  elseif #example > 0 then
    w(format("-- @usage local res, err = client:%s {", e.method_name))
    for _, x in ipairs(example) do w("--   " .. x .. ",") end
    w("-- }")
  else
    w(format("-- @usage local res, err = client:%s()", e.method_name))
  end
  w("-- @function client:" .. e.method_name)
  w("")
end

w("--- Every operation of the platform's App (end-user) OpenAPI, as a method of a client.")
w("--")
w("-- A client made by `quecapi.new` has one method per row of the catalog")
w("-- (`quecapi.endpoints`): the snake_case of the operation's name. Each takes the API's")
w("-- own parameters in a table, and an optional table of per-call options:")
w("--")
w("--     local res, err, code, kind = client:user_device_list({ pageSize = 50 }, { timeout = 5 })")
w("--     if not res then error(err) end")
w("--     for _, device in ipairs(res.data.list) do print(device.productKey, device.deviceKey) end")
w("--")
w("-- * Success returns the decoded envelope: `res.code == 200`, the payload in `res.data`.")
w("-- * Failure returns `nil, err, code, kind`: `err` one printable line, `code` the")
w("--   platform's number when it answered, `kind` one of usage, config, auth, timeout,")
w("--   connect, tls, network, too\\_large, http, platform, rate\\_limited.")
w("-- * Plaintext passwords go in `password`, `old_password` and `new_password`: the client")
w("--   encrypts them into the API's `pwd`, `oldPwd` and `newPwd` with the call's `random`.")
w("-- * The client fills `userDomain`, `ts`, `random` and `signature` where the operation has")
w("--   them; passing them is an error. Parameters the client sends a default for say so.")
w("-- * A parameter's meaning is the platform documentation's; operations marked *from live")
w("--   clients* are not in that documentation.")
w("--")
w("-- The same call by the operation's API name: `client:call(\"userDeviceList\", params, opts)`.")
w("-- @module quecapi.methods")
w("")

-- one section per part of the documentation, in the catalog's order
local groups, by_group = {}, {}
for _, e in ipairs(catalog.entries) do
  local g = assert(docs[e.name], "no documentation for " .. e.name).group
  if not by_group[g] then
    by_group[g] = {}
    groups[#groups + 1] = g
  end
  local list = by_group[g]
  list[#list + 1] = e
end
for i, g in ipairs(groups) do
  w(format("--- %s", sentence(text(g))))
  w(format("-- @section part%d", i))
  w("")
  for _, e in ipairs(by_group[g]) do document(e) end
end
io.write(concat(out, "\n"), "\n")
