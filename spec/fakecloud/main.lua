-- Loads the fake cloud: every module that registers API routes.
require "fakecloud.account"
require "fakecloud.devices"

local app = require "fakecloud.app"
local control = require "fakecloud.control"

return {
  handle = app.handle,
  control = control.handle,
  enter = app.enter,
  leave = app.leave,
}
