--- The token lifecycle: keep, hand out, renew, forget.
--
-- Tokens live in the client's token store under its token_key, as
-- `{access_token, access_expires, refresh_token, refresh_expires}` (expiry in epoch
-- seconds). Before an authenticated call the access token is renewed when it
-- expires within `refresh_margin` seconds: with the refresh token when there is a
-- valid one, else by logging in again when the client was given an `account`.
-- Renewal is single-flight: the store's lock lets one caller (one nginx worker)
-- renew while the others wait and then pick up its result.
-- @module quecapi.tokens

local type, tonumber = type, tonumber

local _M = {}

function _M.get(client)
  local t = client.store:get(client.token_key)
  if type(t) == "table" then return t end
end

--- Save the tokens of a login or refresh answer's `data`.
-- @return tokens, or nil, err
function _M.save(client, data)
  local access = type(data) == "table" and data.accessToken
  if type(access) ~= "table" or type(access.token) ~= "string" or access.token == "" then
    return nil, "the response carries no access token"
  end
  local tokens = { access_token = access.token, access_expires = tonumber(access.expirationTime) }
  local refresh = data.refreshToken
  if type(refresh) == "table" and type(refresh.token) == "string" then
    tokens.refresh_token = refresh.token
    tokens.refresh_expires = tonumber(refresh.expirationTime)
  end
  local ok, err = client.store:set(client.token_key, tokens)
  if not ok then return nil, "cannot keep the tokens: " .. tostring(err) end
  return tokens
end

function _M.clear(client)
  client.store:delete(client.token_key)
end

local function fresh(client, t, margin)
  return t and type(t.access_token) == "string"
    and (not t.access_expires or t.access_expires - margin > client:now_ms() / 1000)
end

local function refreshable(client, t)
  return t and type(t.refresh_token) == "string"
    and (not t.refresh_expires or t.refresh_expires > client:now_ms() / 1000)
end

--- Get a new access token, replacing `stale` (the one the caller saw).
-- @return access token, or nil, err, code
function _M.renew(client, stale)
  local store, key = client.store, client.token_key
  local handle, lock_err
  if store.lock then
    handle, lock_err = store:lock(key, client.lock_timeout)
  else
    handle = true
  end
  -- Someone else may have renewed while we waited for the lock.
  local t = _M.get(client)
  if t and t.access_token ~= stale and fresh(client, t, 0) then
    if handle and store.unlock then store:unlock(key, handle) end
    return t.access_token
  end
  if not handle then
    return nil, "token renewal by another caller did not finish: " .. tostring(lock_err)
  end

  local res, err, code
  if refreshable(client, t) then
    res, err, code = client:_refresh(t)
    if not res then client.log("warn", "token refresh failed: %s", err) end
  end
  if not res and client.account then
    res, err, code = client:login()
  end
  if store.unlock then store:unlock(key, handle) end
  if not res then
    if not err then err = stale and "the access token expired and there is no refresh token"
                       or "not logged in (no access token)" end
    return nil, err, code
  end
  t = _M.get(client)
  return t and t.access_token
end

--- The access token for an authenticated call, renewed first when it is about to expire.
-- @return access token, or nil, err, code
function _M.access(client)
  local t = _M.get(client)
  if fresh(client, t, client.refresh_margin) then return t.access_token end
  if not t and not client.account then
    return nil, "not logged in (no access token)"
  end
  local token, err, code = _M.renew(client, t and t.access_token)
  if token then return token end
  -- Renewal failed: an access token that has not yet expired is still worth sending.
  if fresh(client, t, 0) then return t.access_token end
  return nil, err, code
end

return _M
