--- What the tool prints: plain values, tables with aligned columns, JSON, local
-- times; and printers over a stream (stdout, stderr, or a buffer in the specs).
--
-- Text from the network (device names, thing model texts) is printed with its
-- control characters replaced, so it cannot drive the terminal.
-- @module quecapi.cli.output

-- Loaded when first needed: printing plain text needs no C core.
local function json() return require "quecapi.json" end

local type, pairs, ipairs, tostring, tonumber, select = type, pairs, ipairs, tostring, tonumber, select
local setmetatable, getmetatable = setmetatable, getmetatable
local format, gsub, rep, byte, find = string.format, string.gsub, string.rep, string.byte, string.find
local concat = table.concat
local floor = math.floor

local _M = {}

--- Control characters as "?".
function _M.clean(s)
  return (gsub(tostring(s), "%c", "?"))
end

--- A value as one cell of text: "" for nil, JSON on one line for a table.
function _M.plain(v)
  if v == nil then return "" end
  if type(v) == "table" then return _M.clean(json().encode(v) or "?") end
  if type(v) == "number" then return json().number_text(v) end
  return _M.clean(v)
end

-- Columns a code point takes: two for East Asian wide characters and emoji.
local function char_width(c)
  if c < 0x1100 then return 1 end
  if c <= 0x115F or (c >= 0x2E80 and c <= 0xA4CF) or (c >= 0xAC00 and c <= 0xD7A3)
     or (c >= 0xF900 and c <= 0xFAFF) or (c >= 0xFE30 and c <= 0xFE4F)
     or (c >= 0xFF00 and c <= 0xFF60) or (c >= 0xFFE0 and c <= 0xFFE6)
     or (c >= 0x1F300 and c <= 0x1FAFF) or (c >= 0x20000 and c <= 0x3FFFD) then
    return 2
  end
  return 1
end

--- Columns a text takes on a terminal; its length in bytes when it is not UTF-8.
function _M.width(s)
  if not find(s, "[\128-\255]") then return #s end
  local w, i, n = 0, 1, #s
  while i <= n do
    local c = byte(s, i)
    -- continuation bytes after the first: 0 (ASCII), 1, 2 or 3
    local more = c < 0x80 and 0 or (c >= 0xC2 and c <= 0xDF) and 1 or (c >= 0xE0 and c <= 0xEF) and 2
      or (c >= 0xF0 and c <= 0xF4) and 3 or nil
    if not more then return n end
    local point = more == 0 and c or c % 2 ^ (6 - more)
    for k = i + 1, i + more do
      local cc = byte(s, k)
      if not cc or cc < 0x80 or cc > 0xBF then return n end
      point = point * 64 + cc % 64
    end
    w = w + char_width(point)
    i = i + more + 1
  end
  return w
end

--- Rows of cells as lines, each column padded to its widest cell, two spaces apart.
-- @tparam {{string,...},...} rows
-- @tparam[opt] string prefix put before every line
-- @treturn {string,...}
function _M.table_lines(rows, prefix)
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      local w = _M.width(cell)
      if w > (widths[i] or 0) then widths[i] = w end
    end
  end
  local lines = {}
  for r, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      if i < #row then cell = cell .. rep(" ", widths[i] - _M.width(cell)) end
      cells[i] = cell
    end
    lines[r] = (prefix or "") .. gsub(concat(cells, "  "), "%s+$", "")
  end
  return lines
end

--- A value as indented JSON, keys sorted.
-- @return the text, or nil, err
function _M.json_text(v)
  return json().encode(v, { indent = "  " })
end

local function masked(v, secret)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if secret[k] and type(x) ~= "table" then
      out[k] = "***"
    else
      out[k] = masked(x, secret)
    end
  end
  return setmetatable(out, getmetatable(v))
end

--- A copy of an answer with the catalog's token fields (`ANSWER_SECRETS`) masked.
function _M.mask(v)
  local secret = {}
  for _, name in ipairs(require("quecapi.catalog").ANSWER_SECRETS) do secret[name] = true end
  return masked(v, secret)
end

--- Milliseconds since the epoch as local "YYYY-MM-DD hh:mm:ss", or nil.
function _M.local_time(ms)
  local n = tonumber(ms)
  if not n then return nil end
  return os.date("%Y-%m-%d %H:%M:%S", floor(n / 1000))
end

-- ------------------------------------------------------------------------
-- printers
-- ------------------------------------------------------------------------

local Printer = {}
Printer.__index = Printer

--- Write the arguments and a newline.
function Printer:say(...)
  local stream = self.stream
  for i = 1, select("#", ...) do stream:write((select(i, ...))) end
  stream:write("\n")
end

--- Write rows with aligned columns.
function Printer:table(rows, prefix)
  for _, line in ipairs(_M.table_lines(rows, prefix)) do self.stream:write(line, "\n") end
end

--- Write a value as JSON: true, or nil, err, nil, "http" for data JSON cannot hold.
function Printer:json(v)
  local text, err = _M.json_text(v)
  if not text then return nil, "cannot print the answer as JSON: " .. tostring(err), nil, "http" end
  self.stream:write(text, "\n")
  return true
end

--- A message to the user on this stream: "quecapi: " and the formatted text.
function Printer:note(fmt, ...)
  self.stream:write("quecapi: ", format(fmt, ...), "\n")
end

--- A printer writing to `stream` (anything with `write`).
function _M.printer(stream)
  return setmetatable({ stream = stream }, Printer)
end

return _M
