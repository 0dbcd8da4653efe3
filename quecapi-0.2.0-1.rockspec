rockspec_format = "3.0"
package = "quecapi"
version = "0.2.0-1"
source = {
   url = "git+https://github.com/quecapi/quecapi.git",
   tag = "v0.2.0",
}
description = {
   summary = "Quectel IoT platform App (end-user) OpenAPI client for Lua and OpenResty",
   detailed = [[
      Sign and send App OpenAPI calls of the Quectel IoT platform (Developer Center,
      Acceleronix): SMS codes, registration, login with encrypted passwords, tokens,
      device lists, device data and remote control. A C core does SHA-256 signing,
      AES-128-CBC password encryption and HTTP(S) through libcurl; responses come
      back as Lua tables. Runs in Lua 5.1-5.4, LuaJIT and OpenResty (non-blocking),
      with a command-line tool and an offline fake of the cloud for tests.
   ]],
   homepage = "https://github.com/quecapi/quecapi",
   license = "MIT",
}
-- Nothing beyond Lua: lua-cjson is optional (its null sentinel is used when present).
dependencies = {
   "lua >= 5.1",
}
-- Only the libraries are probed: Debian keeps curl.h under a multiarch include
-- folder the compiler searches by itself, where luarocks' header probe would not
-- look. A libcurl or OpenSSL under another prefix (Homebrew, /opt/...) is used
-- with CURL_DIR=... and OPENSSL_DIR=... (or CURL_INCDIR/CURL_LIBDIR, ...): the
-- build passes their include and library folders to the compiler and linker.
external_dependencies = {
   CURL = { library = "curl" },
   OPENSSL = { library = "crypto" },
   PAHO = { library = "paho-mqtt3cs" },
}
build = {
   type = "builtin",
   modules = {
      ["quecapi"] = "lua/quecapi.lua",
      ["quecapi.catalog"] = "lua/quecapi/catalog.lua",
      ["quecapi.cli.args"] = "lua/quecapi/cli/args.lua",
      ["quecapi.cli.cmd.call"] = "lua/quecapi/cli/cmd/call.lua",
      ["quecapi.cli.cmd.device"] = "lua/quecapi/cli/cmd/device.lua",
      ["quecapi.cli.cmd.devices"] = "lua/quecapi/cli/cmd/devices.lua",
      ["quecapi.cli.cmd.fakecloud"] = "lua/quecapi/cli/cmd/fakecloud.lua",
      ["quecapi.cli.cmd.get"] = "lua/quecapi/cli/cmd/get.lua",
      ["quecapi.cli.cmd.help"] = "lua/quecapi/cli/cmd/help.lua",
      ["quecapi.cli.cmd.history"] = "lua/quecapi/cli/cmd/history.lua",
      ["quecapi.cli.cmd.login"] = "lua/quecapi/cli/cmd/login.lua",
      ["quecapi.cli.cmd.logout"] = "lua/quecapi/cli/cmd/logout.lua",
      ["quecapi.cli.cmd.register"] = "lua/quecapi/cli/cmd/register.lua",
      ["quecapi.cli.cmd.set"] = "lua/quecapi/cli/cmd/set.lua",
      ["quecapi.cli.cmd.sms"] = "lua/quecapi/cli/cmd/sms.lua",
      ["quecapi.cli.cmd.tsl"] = "lua/quecapi/cli/cmd/tsl.lua",
      ["quecapi.cli.cmd.watch"] = "lua/quecapi/cli/cmd/watch.lua",
      ["quecapi.cli.fail"] = "lua/quecapi/cli/fail.lua",
      ["quecapi.cli.main"] = "lua/quecapi/cli/main.lua",
      ["quecapi.cli.output"] = "lua/quecapi/cli/output.lua",
      ["quecapi.cli.prompt"] = "lua/quecapi/cli/prompt.lua",
      ["quecapi.cli.session"] = "lua/quecapi/cli/session.lua",
      ["quecapi.cli.settings"] = "lua/quecapi/cli/settings.lua",
      ["quecapi.client"] = "lua/quecapi/client.lua",
      ["quecapi.config"] = "lua/quecapi/config.lua",
      ["quecapi.endpoint_docs"] = "lua/quecapi/endpoint_docs.lua",
      ["quecapi.endpoints"] = "lua/quecapi/endpoints.lua",
      ["quecapi.errors"] = "lua/quecapi/errors.lua",
      ["quecapi.fakecloud.account"] = "lua/quecapi/fakecloud/account.lua",
      ["quecapi.fakecloud.app"] = "lua/quecapi/fakecloud/app.lua",
      ["quecapi.fakecloud.auth"] = "lua/quecapi/fakecloud/auth.lua",
      ["quecapi.fakecloud.binding"] = "lua/quecapi/fakecloud/binding.lua",
      ["quecapi.fakecloud.broker"] = "lua/quecapi/fakecloud/broker.lua",
      ["quecapi.fakecloud.broker_control"] = "lua/quecapi/fakecloud/broker_control.lua",
      ["quecapi.fakecloud.broker_plugin"] = "lua/quecapi/fakecloud/broker_plugin.lua",
      ["quecapi.fakecloud.command"] = "lua/quecapi/fakecloud/command.lua",
      ["quecapi.fakecloud.config"] = "lua/quecapi/fakecloud/config.lua",
      ["quecapi.fakecloud.control"] = "lua/quecapi/fakecloud/control.lua",
      ["quecapi.fakecloud.crypto"] = "lua/quecapi/fakecloud/crypto.lua",
      ["quecapi.fakecloud.ctl"] = "lua/quecapi/fakecloud/ctl.lua",
      ["quecapi.fakecloud.device_py"] = "lua/quecapi/fakecloud/device_py.lua",
      ["quecapi.fakecloud.devices"] = "lua/quecapi/fakecloud/devices.lua",
      ["quecapi.fakecloud.email"] = "lua/quecapi/fakecloud/email.lua",
      ["quecapi.fakecloud.envelope"] = "lua/quecapi/fakecloud/envelope.lua",
      ["quecapi.fakecloud.faults"] = "lua/quecapi/fakecloud/faults.lua",
      ["quecapi.fakecloud.history"] = "lua/quecapi/fakecloud/history.lua",
      ["quecapi.fakecloud.json"] = "lua/quecapi/fakecloud/json.lua",
      ["quecapi.fakecloud.main"] = "lua/quecapi/fakecloud/main.lua",
      ["quecapi.fakecloud.messages"] = "lua/quecapi/fakecloud/messages.lua",
      ["quecapi.fakecloud.model"] = "lua/quecapi/fakecloud/model.lua",
      ["quecapi.fakecloud.nginx_conf"] = "lua/quecapi/fakecloud/nginx_conf.lua",
      ["quecapi.fakecloud.probe_py"] = "lua/quecapi/fakecloud/probe_py.lua",
      ["quecapi.fakecloud.products"] = "lua/quecapi/fakecloud/products.lua",
      ["quecapi.fakecloud.quota"] = "lua/quecapi/fakecloud/quota.lua",
      ["quecapi.fakecloud.realtime"] = "lua/quecapi/fakecloud/realtime.lua",
      ["quecapi.fakecloud.realtime_commands"] = "lua/quecapi/fakecloud/realtime_commands.lua",
      ["quecapi.fakecloud.seed"] = "lua/quecapi/fakecloud/seed.lua",
      ["quecapi.fakecloud.sharing"] = "lua/quecapi/fakecloud/sharing.lua",
      ["quecapi.fakecloud.state"] = "lua/quecapi/fakecloud/state.lua",
      ["quecapi.fakecloud.testing"] = "lua/quecapi/fakecloud/testing.lua",
      ["quecapi.fakecloud.things"] = "lua/quecapi/fakecloud/things.lua",
      ["quecapi.fakecloud.times"] = "lua/quecapi/fakecloud/times.lua",
      ["quecapi.fakecloud.tsl"] = "lua/quecapi/fakecloud/tsl.lua",
      ["quecapi.fakecloud.unlisted"] = "lua/quecapi/fakecloud/unlisted.lua",
      ["quecapi.fakecloud.user"] = "lua/quecapi/fakecloud/user.lua",
      ["quecapi.fakecloud.wire"] = "lua/quecapi/fakecloud/wire.lua",
      ["quecapi.json"] = "lua/quecapi/json.lua",
      ["quecapi.jwt"] = "lua/quecapi/jwt.lua",
      ["quecapi.log"] = "lua/quecapi/log.lua",
      ["quecapi.lru"] = "lua/quecapi/lru.lua",
      ["quecapi.realtime.backoff"] = "lua/quecapi/realtime/backoff.lua",
      ["quecapi.realtime.channel"] = "lua/quecapi/realtime/channel.lua",
      ["quecapi.realtime.commands"] = "lua/quecapi/realtime/commands.lua",
      ["quecapi.realtime.connection"] = "lua/quecapi/realtime/connection.lua",
      ["quecapi.realtime.events"] = "lua/quecapi/realtime/events.lua",
      ["quecapi.realtime.hub"] = "lua/quecapi/realtime/hub.lua",
      ["quecapi.realtime.mqtt_codec"] = "lua/quecapi/realtime/mqtt_codec.lua",
      ["quecapi.realtime.ngx_link"] = "lua/quecapi/realtime/ngx_link.lua",
      ["quecapi.realtime.topics"] = "lua/quecapi/realtime/topics.lua",
      ["quecapi.redact"] = "lua/quecapi/redact.lua",
      ["quecapi.request"] = "lua/quecapi/request.lua",
      ["quecapi.response"] = "lua/quecapi/response.lua",
      ["quecapi.retry"] = "lua/quecapi/retry.lua",
      ["quecapi.skew"] = "lua/quecapi/skew.lua",
      ["quecapi.store.file"] = "lua/quecapi/store/file.lua",
      ["quecapi.store.memory"] = "lua/quecapi/store/memory.lua",
      ["quecapi.store.shdict"] = "lua/quecapi/store/shdict.lua",
      ["quecapi.things"] = "lua/quecapi/things.lua",
      ["quecapi.time"] = "lua/quecapi/time.lua",
      ["quecapi.tokens"] = "lua/quecapi/tokens.lua",
      ["quecapi.transport.auto"] = "lua/quecapi/transport/auto.lua",
      ["quecapi.transport.contract"] = "lua/quecapi/transport/contract.lua",
      ["quecapi.transport.curl"] = "lua/quecapi/transport/curl.lua",
      ["quecapi.transport.http1"] = "lua/quecapi/transport/http1.lua",
      ["quecapi.transport.ngx"] = "lua/quecapi/transport/ngx.lua",
      ["quecapi.transport.url"] = "lua/quecapi/transport/url.lua",
      ["quecapi.core"] = {
         sources = { "csrc/core.c", "csrc/crypto.c", "csrc/http.c", "csrc/clock.c", "csrc/files.c", "csrc/json.c",
                     "csrc/term.c", "csrc/mqtt.c" },
         defines = { "_POSIX_C_SOURCE=200809L" },
         libraries = { "curl", "crypto", "paho-mqtt3cs" },
         incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(PAHO_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(PAHO_LIBDIR)" },
      },
   },
   install = {
      bin = { quecapi = "bin/quecapi" },
   },
}
-- `luarocks test` runs plain `busted` in the checkout: the unit specs (.busted).
-- The "command" type, because luarocks' "busted" type insists on installing busted
-- as a rock, which a machine with Debian's lua-busted and no registry cannot do.
test = {
   type = "command",
   command = "busted",
}
