-- The meanings the reference pages show (quecapi.endpoint_docs) against the catalog
-- (quecapi.endpoints): one entry per operation, a meaning for every parameter,
-- nothing for an operation or parameter the catalog does not have.

local endpoints = require "quecapi.endpoints"
local docs = require "quecapi.endpoint_docs"

local ENTRY_FIELDS = { group = true, description = true, params = true, fields = true, required_fields = true }

local function nonempty(s)
  return type(s) == "string" and s:find("%S") ~= nil
end

local by_name = {}
for _, row in ipairs(endpoints) do by_name[row.name] = row end

describe("quecapi.endpoint_docs", function()
  it("has an entry for every catalog operation, with a group and a description", function()
    for _, row in ipairs(endpoints) do
      local doc = docs[row.name]
      assert.is_table(doc, row.name)
      assert.is_true(nonempty(doc.group), row.name .. ": group")
      assert.is_true(nonempty(doc.description), row.name .. ": description")
    end
  end)

  it("has no entry for an operation the catalog lacks, and no unknown field", function()
    for name, doc in pairs(docs) do
      assert.is_table(by_name[name], "not a catalog operation: " .. tostring(name))
      for k in pairs(doc) do
        assert.is_true(ENTRY_FIELDS[k] ~= nil, name .. ": unknown field " .. tostring(k))
      end
    end
  end)

  it("gives every parameter of every row a meaning", function()
    for _, row in ipairs(endpoints) do
      local params = docs[row.name].params
      for k in pairs(row.params) do
        assert.is_true(nonempty(params[k]), row.name .. ": no meaning for " .. k)
      end
    end
  end)

  it("documents only the parameters the row has", function()
    for name, doc in pairs(docs) do
      local row = by_name[name]
      for k, meaning in pairs(doc.params) do
        assert.is_true(row.params[k] ~= nil, name .. ": unknown parameter " .. tostring(k))
        assert.is_true(nonempty(meaning), name .. ": empty meaning for " .. tostring(k))
      end
    end
  end)

  it("documents fields only under list and object parameters, each with a meaning", function()
    for name, doc in pairs(docs) do
      local row = by_name[name]
      for path, meaning in pairs(doc.fields or {}) do
        local top = path:match("^([^.]+)%.[^.]")
        local kind = top and row.params[top]
        assert.is_true(kind == "array" or kind == "object", name .. ": field under no list or object: " .. path)
        assert.is_true(nonempty(meaning), name .. ": empty meaning for " .. path)
      end
      for _, path in ipairs(doc.required_fields or {}) do
        assert.is_true(doc.fields ~= nil and doc.fields[path] ~= nil, name .. ": required field not documented: " .. path)
      end
    end
  end)

  it("keeps the worked examples and markup of the pages out", function()
    for name, doc in pairs(docs) do
      local texts = { doc.description }
      for _, v in pairs(doc.params) do texts[#texts + 1] = v end
      for _, v in pairs(doc.fields or {}) do texts[#texts + 1] = v end
      for _, s in ipairs(texts) do
        assert.is_nil(s:find("<br", 1, true), name .. ": " .. s)
        assert.is_nil(s:find("userDomainSecret: ", 1, true), name .. ": " .. s)
        assert.is_nil(s:find("\n", 1, true), name .. ": " .. s)
      end
    end
  end)
end)
