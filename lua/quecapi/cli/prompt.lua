--- Asking for secrets (passwords, SMS codes): typed on the terminal without
-- echo (the C core's read_secret, which restores the terminal however the read
-- ends), or read a line at a time from piped standard input. Never from argv.
-- @module quecapi.cli.prompt

local fail = require "quecapi.cli.fail"

local gsub = string.gsub

local _M = {}

--- One line for `what`, asked with `prompt`.
-- @param ctx the run (its host: stdin, stderr, isatty, read_secret)
-- @return the line, or nil, err, nil, "usage" | "interrupted"
function _M.secret(ctx, prompt, what)
  local host = ctx.host
  local line, err, kind
  if host.isatty(0) then
    line, err, kind = host.read_secret(prompt)
    if kind == "interrupted" then return nil, "interrupted", nil, "interrupted" end
    if not line and kind ~= "eof" then return fail.input("cannot read the %s: %s", what, err) end
  else
    host.stderr:write(prompt)
    if host.stderr.flush then host.stderr:flush() end
    line = host.stdin:read("*l")
    host.stderr:write("\n")
  end
  if line == nil then return fail.input("no %s given", what) end
  line = gsub(line, "\r$", "")
  if line == "" then return fail.input("empty %s", what) end
  return line
end

--- A new password; typed twice when it comes from the terminal.
-- @return the password, or nil, err, nil, kind
function _M.new_password(ctx)
  local pw, err, code, kind = _M.secret(ctx, "New password: ", "password")
  if not pw then return nil, err, code, kind end
  if ctx.host.isatty(0) then
    local again
    again, err, code, kind = _M.secret(ctx, "Repeat the password: ", "password")
    if not again then return nil, err, code, kind end
    if again ~= pw then return fail.input("the passwords differ") end
  end
  return pw
end

return _M
