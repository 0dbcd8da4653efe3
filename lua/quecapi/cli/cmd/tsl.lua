--- `quecapi tsl PK`: a product's thing model in words: its properties (type,
-- access, the values they take), services (inputs) and events (outputs). The
-- model itself comes from `client:thing_model` (quecapi.things); this module
-- only describes it.
-- @module quecapi.cli.cmd.tsl

local session = require "quecapi.cli.session"
local output = require "quecapi.cli.output"

local ipairs, type, tostring = ipairs, type, tostring
local format = string.format
local concat = table.concat
local plain, clean = output.plain, output.clean

local function list_of(v)
  return type(v) == "table" and v or {}
end

local describe

local function range_text(s)
  local parts = {}
  if s.min or s.max then parts[#parts + 1] = format("%s..%s", plain(s.min or ""), plain(s.max or "")) end
  if s.unit and s.unit ~= "" then parts[#parts + 1] = plain(s.unit) end
  local text = concat(parts, " ")
  if s.step and tostring(s.step) ~= "1" and tostring(s.step) ~= "" then
    text = text .. (text ~= "" and ", " or "") .. "step " .. plain(s.step)
  end
  return text
end

local function choices_text(list)
  local parts = {}
  for _, c in ipairs(list_of(list)) do
    if type(c) == "table" then parts[#parts + 1] = plain(c.value) .. "=" .. plain(c.name) end
  end
  return concat(parts, ", ")
end

local function member_text(m)
  local d = describe(m)
  return plain(m.code) .. " " .. plain(m.dataType) .. (d ~= "" and " " .. d or "")
end

--- What values a property (or an input, or an output) takes, in a few words.
describe = function(item)
  local dt, s = item.dataType, list_of(item.specs)
  if dt == "BOOL" or dt == "ENUM" then return choices_text(s) end
  if dt == "INT" or dt == "FLOAT" or dt == "DOUBLE" then return range_text(s) end
  if dt == "TEXT" then return s.length and ("up to " .. plain(s.length) .. " characters") or "" end
  if dt == "STRUCT" then
    local parts = {}
    for _, m in ipairs(s) do
      if type(m) == "table" then parts[#parts + 1] = member_text(m) end
    end
    return "{" .. concat(parts, "; ") .. "}"
  end
  if dt == "ARRAY" then
    local d = describe { code = "", dataType = s.dataType, specs = s.specs }
    return (s.size and ("up to " .. plain(s.size) .. " x ") or "") .. plain(s.dataType or "?")
      .. (d ~= "" and " " .. d or "")
  end
  return ""
end

local function params_text(list)
  local parts = {}
  for _, m in ipairs(list_of(list)) do
    if type(m) == "table" then parts[#parts + 1] = member_text(m) end
  end
  return #parts > 0 and concat(parts, ", ") or "-"
end

-- One section: a title, then a table of its items (or "(none)").
local function section(out, title, header, items, row)
  local rows = { header }
  for _, item in ipairs(list_of(items)) do
    if type(item) == "table" then rows[#rows + 1] = row(item) end
  end
  out:say("\n", title)
  if #rows > 1 then out:table(rows, "  ") else out:say("  (none)") end
end

local function print_model(out, pk, tsl)
  out:say("Thing model of product ", clean(pk))
  section(out, "Properties", { "CODE", "NAME", "TYPE", "ACCESS", "VALUES" }, tsl.properties, function(p)
    return { plain(p.code), plain(p.name), plain(p.dataType), plain(p.subType), describe(p) }
  end)
  section(out, "Services", { "CODE", "NAME", "TYPE", "INPUTS" }, tsl.services, function(sv)
    return { plain(sv.code), plain(sv.name), plain(sv.subType), params_text(sv.inputData) }
  end)
  section(out, "Events", { "CODE", "NAME", "TYPE", "OUTPUTS" }, tsl.events, function(ev)
    return { plain(ev.code), plain(ev.name), plain(ev.subType), params_text(ev.outputData) }
  end)
end

return {
  summary = "show a product's thing model: properties, services, events",
  usage = "tsl PRODUCT_KEY [--json]",
  help = "Show a product's thing model: its properties (type, access, values), services and events.",
  options = { { name = "json", help = "print the thing model as JSON" } },
  nargs = { 1, 1 },
  args_help = "PRODUCT_KEY",
  describe = describe,
  run = function(ctx)
    local pk = ctx.args[1]
    local client, err, code, kind = session.session(ctx)
    if not client then return nil, err, code, kind end
    local tsl
    tsl, err, code, kind = client:thing_model(pk)
    if not tsl then return nil, err, code, kind end
    if ctx.opts.json then return ctx.out:json(tsl) end
    print_model(ctx.out, pk, tsl)
    return true
  end,
}
