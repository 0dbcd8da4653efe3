# quecapi: build, test, demo, install, deps.
#
#   make                  build quecapi/core.so for Lua 5.4
#   make LUA=luajit       build it for LuaJIT 2.1 (OpenResty)
#   make test             every spec on Lua 5.4 and LuaJIT: unit, against the local fake cloud, in nginx
#   make test-unit        the unit specs alone (no fake cloud, no nginx, no root)
#   make demo             the quickstart example against the local fake cloud
#   make install          install the module under PREFIX (default /usr/local)
#   make deps             install the Debian packages the project needs

LUA        ?= lua5.4
PREFIX     ?= /usr/local
CC         ?= cc
PKG_CONFIG ?= pkg-config

ifeq ($(LUA),luajit)
LUA_VERSION ?= 5.1
LUA_INCDIR  ?= /usr/include/luajit-2.1
else
LUA_VERSION ?= $(shell $(LUA) -e 'print((_VERSION:gsub("Lua ","")))' 2>/dev/null || echo 5.4)
LUA_INCDIR  ?= /usr/include/lua$(LUA_VERSION)
endif

LUA_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_SHARE  ?= $(PREFIX)/share/lua/$(LUA_VERSION)

BUILD    ?= build/$(LUA)
CURL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CFLAGS   ?= -O2 -g
WARN     := -std=c99 -Wall -Wextra -Wshadow -Wstrict-prototypes -pedantic
ALL_CFLAGS = $(WARN) $(CFLAGS) -fPIC -fvisibility=hidden -D_POSIX_C_SOURCE=200809L \
             -I$(LUA_INCDIR) $(CURL_CFLAGS)
LIBFLAG  ?= -shared
LIBS     := -lcurl -lcrypto -lpaho-mqtt3cs

SRC := csrc/core.c csrc/crypto.c csrc/http.c csrc/clock.c csrc/files.c csrc/json.c csrc/term.c csrc/mqtt.c
HDR := csrc/core.h csrc/compat.h
SO  := $(BUILD)/quecapi/core.so

.PHONY: all test test-unit demo install uninstall deps deps-tools clean

all: $(SO)

$(SO): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(LIBFLAG) -o $@ $(SRC) $(LIBS)

test: deps
	$(MAKE) LUA=lua5.4
	$(MAKE) LUA=luajit
	sh spec/run

# The unit specs alone: no fake cloud, no nginx, no root, nothing installed
# beyond busted and the build tools (LuaJIT too when it is there).
test-unit:
	$(MAKE) LUA=lua5.4
	@if command -v luajit >/dev/null; then $(MAKE) LUA=luajit; fi
	LUAS="lua5.4 $$(command -v luajit >/dev/null && echo luajit)" sh spec/run spec/unit

demo: deps
	$(MAKE) LUA=lua5.4
	sh examples/demo

install: $(SO)
	install -d $(DESTDIR)$(LUA_LIBDIR)/quecapi $(DESTDIR)$(LUA_SHARE)/quecapi/transport \
	           $(DESTDIR)$(LUA_SHARE)/quecapi/store $(DESTDIR)$(LUA_SHARE)/quecapi/fakecloud \
	           $(DESTDIR)$(LUA_SHARE)/quecapi/realtime $(DESTDIR)$(LUA_SHARE)/quecapi/cli/cmd
	install -m 0755 $(SO) $(DESTDIR)$(LUA_LIBDIR)/quecapi/core.so
	install -m 0644 lua/quecapi.lua $(DESTDIR)$(LUA_SHARE)/quecapi.lua
	install -m 0644 lua/quecapi/*.lua $(DESTDIR)$(LUA_SHARE)/quecapi/
	install -m 0644 lua/quecapi/transport/*.lua $(DESTDIR)$(LUA_SHARE)/quecapi/transport/
	install -m 0644 lua/quecapi/store/*.lua $(DESTDIR)$(LUA_SHARE)/quecapi/store/
	install -m 0644 lua/quecapi/realtime/*.lua $(DESTDIR)$(LUA_SHARE)/quecapi/realtime/
	install -m 0644 lua/quecapi/fakecloud/*.lua $(DESTDIR)$(LUA_SHARE)/quecapi/fakecloud/
	install -m 0644 lua/quecapi/cli/*.lua $(DESTDIR)$(LUA_SHARE)/quecapi/cli/
	install -m 0644 lua/quecapi/cli/cmd/*.lua $(DESTDIR)$(LUA_SHARE)/quecapi/cli/cmd/
	install -d $(DESTDIR)$(PREFIX)/bin
	# the command runs under the interpreter it was installed for
	sed '1s|^#!.*|#!/usr/bin/env $(LUA)|' bin/quecapi > $(DESTDIR)$(PREFIX)/bin/quecapi
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/quecapi

uninstall:
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/quecapi $(DESTDIR)$(LUA_SHARE)/quecapi $(DESTDIR)$(LUA_SHARE)/quecapi.lua
	rm -f $(DESTDIR)$(PREFIX)/bin/quecapi

deps:
	@sh tools/deps base

# Linters, formatter and LDoc (make check, make docs). After deps, never beside it:
# two apt-get runs at once would fight over the dpkg lock.
deps-tools: deps
	@sh tools/deps tools

clean:
	rm -rf build

# Further targets (checks, benchmarks, docs) live in mk/*.mk.
-include $(wildcard mk/*.mk)
