-- A scripted broker for the realtime channel's unit specs: `connect` takes the
-- place of the C core's (quecapi.realtime.channel's env.connect), records what
-- each connect was given, and answers from a script; its links record what was
-- subscribed and published and hand out the messages a spec queues.
local core = require "quecapi.core"

local _M = {}

local Link = {}
Link.__index = Link

-- As the C core: true, or true and the topics refused (those with the
-- broker's `refuse_topic` in their name), or nil, err, kind.
function Link:subscribe(list, qos)
  if not self.alive then return nil, "the connection was lost", "closed" end
  self.subscribes[#self.subscribes + 1] = { topics = list, qos = qos }
  local refused
  for _, t in ipairs(list) do
    if self.broker.refuse_topic and t:find(self.broker.refuse_topic, 1, true) then
      refused = refused or {}
      refused[#refused + 1] = t
    else
      self.subscribed[t] = true
    end
  end
  return true, refused
end

function Link:unsubscribe(list)
  if not self.alive then return nil, "the connection was lost", "closed" end
  for _, t in ipairs(list) do self.subscribed[t] = nil end
  self.unsubscribes[#self.unsubscribes + 1] = list
  return true
end

function Link:publish(topic, payload, qos)
  if not self.alive then return nil, "the connection was lost", "closed" end
  self.published[#self.published + 1] = { topic = topic, payload = payload, qos = qos }
  return true
end

-- Queued messages first; else wait as the real link does and say "timeout".
function Link:receive(wait)
  if self.closed then return nil, "the connection is closed", "closed" end
  local m = table.remove(self.inbox, 1)
  if m then return m[1], m[2], m[3] end
  if not self.alive then return nil, "the connection was lost", "closed" end
  if wait > 0 then core.sleep(wait) end
  return nil, "timeout", "timeout"
end

function Link:close()
  self.alive, self.closed = false, true
end

--- A broker. `answers`: for each connect in turn, nil (accepted) or
-- { err, kind, connack } (refused); past the list every connect is accepted.
function _M.new(answers)
  local b = { answers = answers or {}, connects = {}, links = {} }
  function b.connect(o)
    b.connects[#b.connects + 1] = o
    local a = table.remove(b.answers, 1)
    if a then return nil, a[1], a[2], a[3] end
    local link = setmetatable({ broker = b, options = o, alive = true, closed = false, inbox = {},
                                subscribes = {}, subscribed = {}, unsubscribes = {}, published = {} }, Link)
    b.links[#b.links + 1] = link
    b.current = link
    return link
  end
  -- a message for the current link: topic, payload (false for too large), size
  function b.deliver(topic, payload, size)
    table.insert(b.current.inbox, { topic, payload, size })
  end
  -- the connection breaks (the link notices on its next receive)
  function b.lose()
    b.current.alive = false
  end
  -- links open at the same time (never more than one)
  function b.open_links()
    local n = 0
    for _, l in ipairs(b.links) do
      if not l.closed then n = n + 1 end
    end
    return n
  end
  return b
end

return _M
