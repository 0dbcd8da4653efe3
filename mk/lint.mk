# Quality gates: luacheck on the Lua, cppcheck and clang-tidy on the C core,
# clang-format on the C sources. Configuration: .luacheckrc, .clang-tidy,
# .clang-format; cppcheck's options are below.
#
#   make lint      every gate (part of make check)
#   make format    rewrite csrc/ and fuzz/ in the project's C style

LUA_SOURCES  := lua bin/quecapi examples spec bench tools/catalog-doc.lua
C_SOURCES     = $(wildcard csrc/*.c csrc/*.h fuzz/*.c fuzz/*.h bench/*.c)
TIDY_FLAGS   := -std=c99 -D_POSIX_C_SOURCE=200809L -I/usr/include/lua5.4 $(CURL_CFLAGS)
CPPCHECK     := cppcheck --std=c99 --enable=warning,style,performance,portability \
                --error-exitcode=1 --inline-suppr --quiet --suppress=missingIncludeSystem \
                --suppress=missingInclude -D__GNUC__ -I csrc

.PHONY: lint lint-lua lint-c format

check:: lint

lint: lint-lua lint-c

lint-lua: deps-tools
	luacheck --no-color -q $(LUA_SOURCES)

lint-c: deps-tools
	$(CPPCHECK) csrc/*.c
	clang-tidy --quiet $(wildcard csrc/*.c) -- $(TIDY_FLAGS)
	clang-format --style=file --dry-run --Werror $(C_SOURCES)

format: deps-tools
	clang-format --style=file -i $(C_SOURCES)
