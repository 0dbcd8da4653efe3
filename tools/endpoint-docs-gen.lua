-- Writes lua/quecapi/endpoint_docs.lua, the meaning of every catalog parameter, from a
-- Markdown copy of the platform's per-endpoint documentation (one `<a id="ep-<name>">`
-- section per operation, with its "Request parameters:" table):
--
--   lua5.4 tools/endpoint-docs-gen.lua REFERENCE.md > lua/quecapi/endpoint_docs.lua
--
-- Run by hand when the catalog or the documentation changes; the build and the specs
-- read only the module it writes. Parameters the pages do not describe (and the rows
-- of live clients, which have no page) take their meaning from HAND below; anything
-- still missing is reported on stderr and makes the run fail.

local reference = arg[1]
if not reference then
  io.stderr:write("usage: lua5.4 tools/endpoint-docs-gen.lua REFERENCE.md > lua/quecapi/endpoint_docs.lua\n")
  os.exit(2)
end

local endpoints = dofile("lua/quecapi/endpoints.lua")

-- Meanings written from the catalog row where no page gives one: the operations
-- taken from live clients, pages whose table is not in English or not the shape
-- the catalog sends, and parameters the platform's table names only by themselves.
local LIVE = "From live clients (undocumented)"

-- The documentation's parts, as short titles for the reference's contents.
local GROUPS = {
  ["Verification codes, registration, login, token refresh"] = "Codes, registration and login",
  ["Account: user info, logout, password, deletion, linked phone/email, third-party login"] =
    "Account and third-party login",
  ["Device binding and unbinding"] = "Device binding",
  ["Device list, detail, TSL, current data, remote control, history"] = "Devices: data, control, history",
  ["Device sharing"] = "Device sharing",
  ["Homes (families), rooms, members, frequently-used devices"] = "Homes, rooms and members",
  ["Messages and push settings"] = "Messages and push settings",
  ["Scenes"] = "Scenes",
  ["Automation"] = "Automation",
  ["Cloud timers (scheduled tasks)"] = "Cloud timers",
}
local COMPARE = "Comparison operator: `>`, `>=`, `<`, `<=` or `==`"
local HAND = {
  getDeviceOnlineStatus = {
    group = LIVE,
    description = "Whether a bound device is online now",
    params = { pk = "Product key of the device", dk = "Device key" },
  },
  getDeviceBindingInfo = {
    group = LIVE,
    description = "Binding information of a device the user has bound, such as its product name",
    params = { pk = "Product key of the device", dk = "Device key" },
  },
  getProductList = {
    group = LIVE,
    description = "The products of the devices the user has bound (product key and name)",
    params = { pageNum = "Page number, from 1", pageSize = "Items per page" },
  },
  -- the body is a list: its items' fields come from the page
  addDeviceInFamilyRoom = {
    params = { param = "Devices to move: one item per device" },
  },
  batchGetPureBtResetCredentials = {
    params = { param = "Devices whose reset credentials are wanted: one item per device" },
  },
  familySetDeviceInfo = {
    params = { params = "Devices to change: one item per device" },
  },
  setFamilyRoomSort = {
    params = { roomSortList = "The rooms' new order: one item per room" },
  },
  deviceBindingByPureBt = {
    params = {
      pwd = "The device's Bluetooth password, sent as given; the signature covers it",
      random = "Random string, also the IV of the encrypted fields (the caller chooses it)",
    },
  },
  deviceBindingByWifi = {
    params = { bindingCode = "Binding code the device gives during network provisioning" },
    fields = {
      ["matterInfo.catList"] = "Matter CATs: one item per CAT",
      ["matterInfo.matterVersion"] = "Matter version",
    },
  },
  -- the pages' own table loses this cell's operators at their `|`
  automationSave = { fields = { ["actions.property.compare"] = COMPARE, ["conditions.property.compare"] = COMPARE } },
  automationEdit = { fields = { ["actions.property.compare"] = COMPARE, ["conditions.property.compare"] = COMPARE } },
  automationTest = {
    params = { fid = "Family ID" },
    fields = { ["actions.property.compare"] = COMPARE },
  },
  deleteFamilyMember = {
    description = "Remove a member from a family",
    params = { fid = "Family ID", memberUid = "User ID of the family member to remove" },
  },
  phonePwdRegister = {
    params = {
      agreementList = "Agreements the user accepted: one item per agreement",
    },
    fields = {
      ["agreementList.protocolType"] = "Agreement type (1 Privacy Policy, 2 Service Agreement)",
      ["agreementList.privacyVersion"] = "Agreement version",
    },
    required_fields = { "agreementList.protocolType", "agreementList.privacyVersion" },
  },
  setMsgPushSetting = {
    params = {
      deviceNotify = "Whether device messages are pushed at all",
      smartNotify = "Whether smart (scene and automation) messages are pushed at all",
      systemNotify = "Whether system messages are pushed at all",
      device = "Channels for device messages: `{ app = true, sms = true, voice = true }`",
      smart = "Channels for smart messages: `{ app = true, sms = true, voice = true }`",
      system = "Channels for system messages: `{ app = true, sms = true, voice = true }`",
    },
  },
}

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- One table cell as one line of plain text: the explanation, without the worked
-- examples and the cipher recipes (the client computes those fields itself).
local function meaning(text)
  local parts = {}
  for seg in (text .. "<br/>"):gmatch("(.-)<br%s*/?>") do
    seg = trim(seg)
    if seg:find("^<b>") or seg:find("^Example") or seg:find("^After SHA256") then break end
    seg = trim(seg:gsub("</?%a+>", ""))
    if seg ~= "" then parts[#parts + 1] = seg end
  end
  local out = parts[1] or ""
  for i = 2, #parts do
    local sep = "; "
    if out:find("[.:;,]$") then sep = " " elseif i == 2 then sep = ". " end
    out = out .. sep .. parts[i]
  end
  return (out:gsub("%s+", " "))
end

local function cells(line)
  local row = {}
  for cell in line:sub(2):gmatch("(.-)|") do row[#row + 1] = trim(cell) end
  return row
end

-- section id -> { summary, description, rows = { {name, text, kind, required}, ... } }
local sections, current, state, group = {}, nil, nil, nil
for line in io.lines(reference) do
  local id = line:match('^<a id="ep%-([%w]+)"></a>')
  local heading = line:match("^### [%d.]+ (.*)$")
  if heading then group = heading end
  if id then
    current = { rows = {}, group = group }
    sections[id] = current
    state = nil
  elseif current then
    local desc = line:match("^%- Description: (.*)$")
    if desc and not current.description then current.description = trim(desc) end
    if line:find("^Request parameters:") and not current.table_done then
      state = "wait"
    elseif state == "wait" and line:find("^|") then
      state, current.columns = "head", #cells(line)
    elseif state == "head" then
      state = "rows"
    elseif state == "rows" then
      if line:find("^|") then
        local c = cells(line)
        -- an unescaped `|` inside a description splits it: join it back
        while #c > current.columns do
          c[2] = c[2] .. " | " .. table.remove(c, 3)
        end
        current.rows[#current.rows + 1] = { name = c[1], text = c[2], kind = c[3], required = c[4] == "true" }
      else
        state, current.table_done = nil, true
      end
    end
    if line:find("^## ") then current = nil end
  end
end

local failures = 0
local function fail(msg)
  io.stderr:write("endpoint-docs-gen: ", msg, "\n")
  failures = failures + 1
end

local function has_cjk(s) return s:find("[\228-\233][\128-\191][\128-\191]") ~= nil end

local docs = {}
for _, row in ipairs(endpoints) do
  local hand = HAND[row.name] or {}
  local doc = { params = {}, fields = {}, required_fields = {} }
  local sec = sections[row.name:lower()]
  if sec and not has_cjk(sec.description or "") then doc.description = sec.description end
  doc.group = hand.group or sec and GROUPS[sec.group]
  -- The body's root row (`param`, `body`...): its children are the row's parameters,
  -- or the items of the list parameter that is the whole body.
  local root
  for _, r in ipairs(sec and sec.rows or {}) do
    if r.kind == "body" and not r.name:find("%.") then
      for _, r2 in ipairs(sec.rows) do
        if r2.name:sub(1, #r.name + 1) == r.name .. "." then root = r.name break end
      end
    end
  end
  for _, r in ipairs(sec and sec.rows or {}) do
    local name, text = r.name, meaning(r.text)
    if has_cjk(text) then text = "" end
    if root and name == root then
      name = row.body_list
    elseif root and name:sub(1, #root + 1) == root .. "." then
      name = name:sub(#root + 2)
      if row.body_list then name = row.body_list .. "." .. name end
    end
    if name and text ~= "" then
      local top = name:match("^[^.]+")
      if row.params[top] then
        if name == top then
          doc.params[name] = text
        else
          doc.fields[name] = text
          if r.required then doc.required_fields[#doc.required_fields + 1] = name end
        end
      end
    end
  end
  for k, v in pairs(hand.params or {}) do doc.params[k] = v end
  for k, v in pairs(hand.fields or {}) do doc.fields[k] = v end
  for _, v in ipairs(hand.required_fields or {}) do doc.required_fields[#doc.required_fields + 1] = v end
  doc.description = hand.description or doc.description
  for k in pairs(row.params) do
    if not doc.params[k] then fail(row.name .. ": no meaning for parameter " .. k) end
  end
  if not doc.description then fail(row.name .. ": no description") end
  if not doc.group then fail(row.name .. ": no group for " .. tostring(sec and sec.group)) end
  docs[#docs + 1] = { name = row.name, doc = doc }
end
if failures > 0 then os.exit(1) end

local function q(s) return ("%q"):format(s) end
local function key(k) return k:find("^[%a_][%w_]*$") and k or "[" .. q(k) .. "]" end
local function sorted(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local out = {}
local function w(s) out[#out + 1] = s end
w("--- What each catalog operation and its parameters mean, as the platform's documentation")
w("-- describes them.")
w("--")
w("-- Data derived from the per-endpoint pages of the Quectel IoT platform's App (end-user)")
w("-- OpenAPI documentation: their parameter tables' descriptions, without the worked")
w("-- examples. The operations taken from live clients have no page: their meanings are")
w("-- written from the catalog row. Made by `tools/endpoint-docs-gen.lua`; the methods page")
w("-- of the reference (`make docs`) reads it. One entry per operation name:")
w("--")
w("-- * `group`: the part of the documentation the operation belongs to")
w("-- * `description`: the page's one-line description")
w("-- * `params`: wire name -> meaning, for every parameter of the catalog row")
w("-- * `fields`: `param.field` -> meaning, for the fields of list and object parameters")
w("-- * `required_fields`: the fields every item (or the object) must have")
w("--")
w("--     local docs = require \"quecapi.endpoint_docs\"")
w("--     print(docs.batchControlDevice.params.qos)")
w("--     --> QoS level setting, parameter value range 0, 1, default is 1")
w("-- @module quecapi.endpoint_docs")
w("")
w("-- luacheck: no max line length (one meaning per line, as the pages give it)")
w("")
w("return {")
for _, e in ipairs(docs) do
  local d = e.doc
  w("  " .. key(e.name) .. " = {")
  w("    group = " .. q(d.group) .. ",")
  w("    description = " .. q(d.description) .. ",")
  w("    params = {")
  for _, k in ipairs(sorted(d.params)) do w("      " .. key(k) .. " = " .. q(d.params[k]) .. ",") end
  w("    },")
  if next(d.fields) then
    w("    fields = {")
    for _, k in ipairs(sorted(d.fields)) do w("      " .. key(k) .. " = " .. q(d.fields[k]) .. ",") end
    w("    },")
  end
  if #d.required_fields > 0 then
    table.sort(d.required_fields)
    local qs = {}
    for i, k in ipairs(d.required_fields) do qs[i] = q(k) end
    w("    required_fields = { " .. table.concat(qs, ", ") .. " },")
  end
  w("  },")
end
w("}")
io.write(table.concat(out, "\n"), "\n")
