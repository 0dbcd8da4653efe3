-- The platform's checks on who is calling: user domain, signature, timestamp, token.
local state = require "quecapi.fakecloud.state"
local crypto = require "quecapi.fakecloud.crypto"
local config = require "quecapi.fakecloud.config"
local realtime = require "quecapi.fakecloud.realtime"

local _M = {}

local SECRETS = {
  [config.user_domain] = config.user_domain_secret,
  [config.second_user_domain] = config.second_user_domain_secret,
}

-- true for a user domain the fake knows
function _M.known_domain(ud)
  return SECRETS[ud] ~= nil
end

-- nil when the domain is fine, else code. Live Apps use C.DM.x and U.DM.x domains.
function _M.domain(ud)
  if not ud or ud == "" then return 5023 end
  if not ud:find("^[CU]%.DM%.%d+%.%d+$") then return 5013 end
  if not SECRETS[ud] then return 5015 end
end

-- true when a login's account (found by phone or email) lives under the user
-- domain the login asks for. When it does not, the login answers 5015: live
-- clients retry with the App's other domain on 5015, 5031 or 5420
-- (live-platform-evidence.md, "Hosts and regions"), and 5015, "the user domain
-- does not exist", is the one of the three that blames the domain rather than
-- the address or the signature, so phone and email logins report it alike.
function _M.in_domain(user, ud)
  return (user.userDomain or config.user_domain) == ud
end

-- signature = SHA256(fields in order .. userDomainSecret); absent fields count as ""
function _M.signature(args, fields)
  local sig = args.signature
  if not sig or sig == "" then return 5550 end
  local parts = {}
  for i, f in ipairs(fields) do parts[i] = args[f] or "" end
  parts[#parts + 1] = SECRETS[args.userDomain] or ""
  if crypto.sha256_hex(table.concat(parts)) ~= sig then return 5420 end
end

-- ts must be within 10 minutes of the cloud's clock
function _M.timestamp(ts)
  local n = tonumber(ts)
  if not n then return 5420 end
  if math.abs(n / 1000 - state.now()) > 600 then return 5420 end
end

-- A new access + refresh pair; each remembers the other so a refresh or a
-- logout can retire both.
function _M.issue_tokens(uid)
  local now = state.now()
  local a_exp = math.floor(now + state.config.access_ttl)
  local r_exp = math.floor(now + state.config.refresh_ttl)
  local access, refresh = crypto.token("access", uid, a_exp), crypto.token("refresh", uid, r_exp)
  -- seq orders tokens by issue, so a fault can tell tokens from before a renewal
  state.token_seq = state.token_seq + 1
  state.access[access] = { uid = uid, exp = a_exp, refresh = refresh, seq = state.token_seq }
  state.refresh[refresh] = { uid = uid, exp = r_exp, access = access }
  local user = state.users[uid]
  if user then user.last_login = now end
  -- the broker takes the new token before the App can have it
  realtime.tokens_changed()
  return {
    accessToken = { token = access, expirationTime = a_exp },
    refreshToken = { token = refresh, expirationTime = r_exp },
  }
end

-- Forget one pair, starting from either token.
function _M.revoke_access(token)
  local t = state.access[token]
  state.access[token] = nil
  if t and t.refresh then state.refresh[t.refresh] = nil end
  realtime.tokens_changed()
end

function _M.revoke_refresh(token)
  local t = state.refresh[token]
  state.refresh[token] = nil
  if t and t.access then state.access[t.access] = nil end
  realtime.tokens_changed()
end

-- Forget every token of a user (logout, password reset).
function _M.revoke_user(uid)
  for token, t in pairs(state.access) do
    if t.uid == uid then state.access[token] = nil end
  end
  for token, t in pairs(state.refresh) do
    if t.uid == uid then state.refresh[token] = nil end
  end
  realtime.tokens_changed()
end

-- The Authorization header as sent (the token string verbatim), or nil.
function _M.header(ctx)
  local header = ctx.headers["authorization"]
  if type(header) == "table" then header = header[1] end
  if not header or header == "" then return nil end
  return header
end

-- The calling user, or nil, code: 5106 without a token, 5032 for a bad or expired one.
function _M.user(ctx)
  local header = _M.header(ctx)
  if not header then return nil, 5106 end
  local t = state.access[header]
  if not t or t.exp <= state.now() then return nil, 5032 end
  return state.users[t.uid], nil, header
end

return _M
