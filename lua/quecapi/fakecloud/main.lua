-- Loads the fake cloud: every module that registers API routes or control endpoints.
require "quecapi.fakecloud.account"
require "quecapi.fakecloud.email"
require "quecapi.fakecloud.user"
require "quecapi.fakecloud.devices"
require "quecapi.fakecloud.binding"
require "quecapi.fakecloud.model"
require "quecapi.fakecloud.command"
require "quecapi.fakecloud.history"
require "quecapi.fakecloud.sharing"
require "quecapi.fakecloud.unlisted"
require "quecapi.fakecloud.seed"
require "quecapi.fakecloud.realtime_commands"
require "quecapi.fakecloud.broker_control"

local app = require "quecapi.fakecloud.app"
local control = require "quecapi.fakecloud.control"

return {
  handle = app.handle,
  control = control.handle,
  enter = app.enter,
  leave = app.leave,
}
