--- `quecapi get PK DK [CODE...]`: a device's current property values, typed by
-- the thing model (client:get_properties). A code the thing model does not
-- have is a mistake on the command line, not an empty answer.
-- @module quecapi.cli.cmd.get

local session = require "quecapi.cli.session"
local output = require "quecapi.cli.output"
local fail = require "quecapi.cli.fail"

local ipairs, pairs, type = ipairs, pairs, type
local sort = table.sort
local plain, clean = output.plain, output.clean

-- The codes among `codes` that the thing model has no property for.
local function unknown_codes(model, codes)
  local known = {}
  for _, p in ipairs(type(model.properties) == "table" and model.properties or {}) do
    if type(p) == "table" and p.code ~= nil then known[p.code] = true end
  end
  local missing = {}
  for _, c in ipairs(codes) do
    if not known[c] then missing[#missing + 1] = "'" .. clean(c) .. "'" end
  end
  return missing
end

return {
  summary = "read a device's current property values",
  usage = "get PRODUCT_KEY DEVICE_KEY [CODE...] [--json]",
  help = [[
Read a device's current property values (all, or the CODEs given), typed by the
thing model. A CODE the product's thing model does not have is an error.]],
  options = { { name = "json", help = "print the values as a JSON object" } },
  nargs = { 2 },
  args_help = "PRODUCT_KEY DEVICE_KEY",
  run = function(ctx)
    local pk, dk = ctx.args[1], ctx.args[2]
    local codes = {}
    for i = 3, #ctx.args do codes[#codes + 1] = ctx.args[i] end
    local client, err, code, kind = session.session(ctx)
    if not client then return nil, err, code, kind end
    if #codes > 0 then
      -- the model is cached by the client: get_properties below fetches it no more
      local model
      model, err, code, kind = client:thing_model(pk)
      if not model then return nil, err, code, kind end
      local missing = unknown_codes(model, codes)
      if #missing > 0 then
        return fail.input("product %s has no propert%s %s in its thing model (quecapi tsl %s lists them)",
          clean(pk), #missing == 1 and "y" or "ies", table.concat(missing, ", "), clean(pk))
      end
    end
    local values
    values, err, code, kind = client:get_properties(pk, dk, #codes > 0 and codes or nil)
    if not values then return nil, err, code, kind end
    if ctx.opts.json then return ctx.out:json(values) end
    local order = codes
    if #order == 0 then
      for c in pairs(values) do order[#order + 1] = c end
      sort(order)
    end
    local rows = {}
    for _, c in ipairs(order) do
      if values[c] ~= nil then rows[#rows + 1] = { plain(c), plain(values[c]) } end
    end
    if #rows == 0 then
      ctx.out:say("No values.")
      return true
    end
    ctx.out:table(rows)
    return true
  end,
}
