-- Loads the fake cloud: every module that registers API routes or control endpoints.
require "fakecloud.account"
require "fakecloud.email"
require "fakecloud.user"
require "fakecloud.devices"
require "fakecloud.binding"
require "fakecloud.model"
require "fakecloud.command"
require "fakecloud.history"
require "fakecloud.sharing"
require "fakecloud.unlisted"
require "fakecloud.seed"

local app = require "fakecloud.app"
local control = require "fakecloud.control"

return {
  handle = app.handle,
  control = control.handle,
  enter = app.enter,
  leave = app.leave,
}
