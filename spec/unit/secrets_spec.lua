-- Every catalog call through a matrix of hostile answers: whatever the platform,
-- a proxy or the network echoes back, no secret reaches an error or a log line.
local quecapi = require "quecapi"
local catalog = require "quecapi.catalog"
local json = require "quecapi.json"
local recorder = require "support.recorder"

local SECRET = "Dom41n-S3cret-0123456789abcdef"
local ACCESS = "Bearer eyJACCESS.S3cretAccessPart.sig"
local REFRESH = "Bearer eyJREFRESH.S3cretRefreshPart.sig"
local PASSWORD = { password = "Pl41n/Pass+word=", old_password = "0ld-Pass/word", new_password = "N3w+Pass/word" }

-- Secret fields are those the catalog marks; each gets a value of its own.
local function secret_value(name)
  return "S3cret-" .. name .. "-4711"
end

-- A value of the right type for a parameter; the row's secret fields get secret values.
local function value_for(row, name, kind)
  if row.secret_set[name] then return secret_value(name) end
  if kind == "integer" or kind == "number" then return 1 end
  if kind == "boolean" then return true end
  if kind == "array" then return {} end
  if kind == "object" then return {} end
  return "x-" .. name
end

-- Every required parameter, and every secret one the caller may pass.
local function params_for(row)
  local p = {}
  for _, plain in pairs(row.encrypt or {}) do p[plain] = PASSWORD[plain] end
  for _, name in ipairs(row.required) do
    if not (row.encrypt and row.encrypt[name]) then p[name] = value_for(row, name, row.params[name]) end
  end
  for name in pairs(row.secret_set) do
    if p[name] == nil and not catalog.owned(row, name) and not (row.encrypt and row.encrypt[name]) then
      p[name] = secret_value(name)
    end
  end
  return p
end

-- Everything the request carried, echoed in one string.
local function echo(req)
  local h = {}
  for k, v in pairs(req.headers) do h[#h + 1] = k .. ": " .. v end
  return req.method .. " " .. req.url .. "\n" .. table.concat(h, "\n") .. "\n\n" .. (req.body or "")
end

local FAULTS = {
  network = function(req) return nil, "failed talking to " .. echo(req), "network" end,
  html502 = function(req) return 502, "<html><pre>" .. echo(req) .. "</pre></html>", {} end,
  not_json = function(req) return 200, "oops " .. echo(req), {} end,
  signature = function(req) return 200, json.encode { code = 5420, msg = "bad: " .. echo(req) }, {} end,
  rate_limit = function(req) return 200, json.encode { code = 5058, msg = "slow down " .. echo(req) }, {} end,
  expired = function(req) return 200, json.encode { code = 5032, msg = "expired " .. echo(req) }, {} end,
  -- the bare JWT, without its Bearer prefix
  raw_token = function(req)
    local token = (req.headers.Authorization or ""):gsub("^Bearer ", "")
    return 200, json.encode { code = 4001, msg = "token " .. token .. " is no good" }, {}
  end,
  truncated_login = function()
    return 200, '{"code":200,"data":{"accessToken":{"token":"' .. ACCESS .. '","expirationTime":1},' ..
                '"refreshToken":{"token":"' .. REFRESH, {}
  end,
}

-- The secret values the request carried: the row's secret fields (signature and
-- encrypted passwords included) as sent.
local function wire_secrets(row, req)
  local found = {}
  local function grab(k, v)
    if row.secret_set[k] then found[#found + 1] = v end
  end
  for k, v in pairs(recorder.args(req)) do grab(k, v) end
  local body = req.body and json.decode(req.body)
  if type(body) == "table" then
    for k, v in pairs(body) do if type(v) == "string" then grab(k, v) end end
  end
  return found
end

describe("secret hygiene", function()
  it("[10.4] [10.5] keeps every secret out of errors and logs, for every call and every fault", function()
    local checked, leaks = 0, {}
    for _, row in ipairs(catalog.entries) do
      for fault_name, fault in pairs(FAULTS) do
        local sent = {}
        local transport = {
          request = function(_, req)
            sent[#sent + 1] = req
            return fault(req)
          end,
        }
        local lines = {}
        local c = assert(quecapi.new {
          user_domain = "C.DM.1.1", user_domain_secret = SECRET, transport = transport,
          retry = { attempts = 2, base_delay = 0 }, log = function(_, msg) lines[#lines + 1] = msg end,
        })
        c:set_tokens { access_token = ACCESS, access_expires = os.time() + 7200,
                       refresh_token = REFRESH, refresh_expires = os.time() + 86400 }
        local ok, res, err = pcall(c.call, c, row.name, params_for(row))
        assert.is_true(ok, row.name .. " raised: " .. tostring(res))
        local secrets = { SECRET, ACCESS, REFRESH, ACCESS:sub(8), REFRESH:sub(8),
                          PASSWORD.password, PASSWORD.old_password, PASSWORD.new_password }
        for name in pairs(row.secret_set) do secrets[#secrets + 1] = secret_value(name) end
        for _, req in ipairs(sent) do
          for _, v in ipairs(wire_secrets(row, req)) do secrets[#secrets + 1] = v end
        end
        local texts = { err or "" }
        for _, l in ipairs(lines) do texts[#texts + 1] = l end
        for _, text in ipairs(texts) do
          for _, s in ipairs(secrets) do
            if #s >= 4 and text:find(s, 1, true) then
              leaks[#leaks + 1] = ("%s/%s leaked %q in: %s"):format(row.name, fault_name, s, text)
            end
          end
        end
        if res == nil then assert.is_string(err, row.name .. "/" .. fault_name) end
        checked = checked + 1
      end
    end
    local faults = 0
    for _ in pairs(FAULTS) do faults = faults + 1 end
    assert.are.equal(#quecapi.endpoints * faults, checked)
    assert.are.same({}, leaks)
  end)

  it("would notice a leak: the hostile answers do carry the secrets", function()
    local req = assert(quecapi.new { user_domain = "C.DM.1.1", user_domain_secret = SECRET })
    req:set_tokens { access_token = ACCESS, access_expires = os.time() + 7200 }
    local r = assert(req:prepare("user_device_list", {}))
    local _, body = FAULTS.html502(r)
    assert.truthy(body:find(ACCESS, 1, true))
    local l = assert(req:prepare("phone_pwd_login", { phone = "1", password = PASSWORD.password }))
    local sig = recorder.args(l).signature
    assert.truthy(select(2, FAULTS.not_json(l)):find(sig, 1, true))
  end)
end)
