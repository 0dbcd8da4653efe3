-- Writes an LDoc source that documents every catalog operation as a client method,
-- from lua/quecapi/endpoints.lua: `lua5.4 tools/catalog-doc.lua > build/docs-src/methods.lua`.
-- The module it writes exists for the reference pages only.
package.path = "lua/?.lua;" .. package.path
package.cpath = "build/lua5.4/?.so;" .. package.cpath -- make builds it first

local snake_case = require("quecapi.client").snake_case
local owns = require("quecapi.request").owned
local catalog = dofile("lua/quecapi/endpoints.lua") -- a fresh copy: the client annotates its own

local AUTH = { token = "access token", none = "no token (user domain)", refresh = "refresh token" }

local out = {}
local function w(s) out[#out + 1] = s end

w("--- Every operation of the platform's end-user OpenAPI, as a method of `quecapi.client.Client`.")
w("--")
w("-- Generated from `lua/quecapi/endpoints.lua`. Each method takes the API's own parameters")
w("-- (plaintext passwords as `password`, `old_password`, `new_password`) and an optional table")
w("-- of per-call options (`retry`, `deadline`, `timeout`), and returns the decoded envelope")
w("-- (`res.code == 200`, `res.data`) or `nil, err, code`. Parameters the client fills itself")
w("-- are listed as such.")
w("-- @module quecapi.methods")
w("")
for _, row in ipairs(catalog) do
  local required = {}
  for _, r in ipairs(row.required) do required[r] = true end
  local plain = {}
  for wire, p in pairs(row.encrypt or {}) do plain[wire] = p end
  local names = {}
  for k in pairs(row.params) do names[#names + 1] = k end
  table.sort(names, function(a, b)
    if required[a] ~= required[b] then return required[a] == true end
    return a < b
  end)
  local given, filled = {}, {}
  for _, k in ipairs(names) do
    if plain[k] then
      given[#given + 1] = ("`%s` (string%s; sent encrypted as `%s`)"):format(
        plain[k], required[k] and ", required" or "", k)
    elseif owns(row, k) then
      filled[#filled + 1] = "`" .. k .. "`"
    else
      given[#given + 1] = ("`%s` (%s%s)"):format(k, row.params[k], required[k] and ", required" or "")
    end
  end
  w(("--- %s: `%s %s`."):format(row.summary or row.name, row.method, row.path))
  local notes = { "Operation `" .. row.name .. "`", "auth: " .. AUTH[row.auth] }
  if row.body == "json" then notes[#notes + 1] = "JSON body" end
  if row.paged then notes[#notes + 1] = "paged (see `paginate`)" end
  if row.safe then notes[#notes + 1] = "retried when it fails on the way" end
  if row.tokens == "issue" then notes[#notes + 1] = "keeps the returned tokens" end
  if row.tokens == "revoke" then notes[#notes + 1] = "forgets the tokens" end
  w("-- " .. table.concat(notes, "; ") .. ".")
  if row.sign then w("-- Signed: SHA256(" .. table.concat(row.sign, " + ") .. " + userDomainSecret).") end
  if #filled > 0 then w("-- Filled in by the client: " .. table.concat(filled, ", ") .. ".") end
  w("-- @tparam table params " .. (#given > 0 and table.concat(given, ", ") or "none"))
  w("-- @tparam[opt] table opts per-call options")
  w("-- @return the envelope, or nil, err, code")
  w(("function %s(params, opts) end"):format(snake_case(row.name)))
  w("")
end
io.write(table.concat(out, "\n"))
