# Memory safety of the C core, measured.
#
#   make check            check-clang, check-asan, check-valgrind, check-rss, fuzz-regress
#   make check-clang      the core builds with clang -Werror against Lua 5.4 and LuaJIT headers
#   make check-asan       the specs of SPECS, Lua 5.4 and LuaJIT, core built with ASan + UBSan
#   make check-valgrind   the specs of VALGRIND_SPECS on Lua 5.4 under valgrind memcheck
#   make check-rss        tools/rss-check: RSS stays flat over 100k crypto rounds and 10k requests
#   make fuzz             every libFuzzer target for FUZZ_SECONDS (default 30) each
#   make fuzz-regress     every libFuzzer target over its committed seed corpus, once
#   make deps-check       install the extra Debian packages (tools/deps-check)
#
# Everything is built under build/ in directories of its own (build/asan-<lua>,
# build/valgrind-lua5.4, build/clang-<lua>, build/fuzz); build/lua5.4 is only ever
# built by the plain rule. Each suite run starts its own fake cloud, in
# $(FAKECLOUD_DIR)-<run> when FAKECLOUD_DIR is set, else in build/fakecloud-<run>.
#
# A fuzz failure leaves its input in build/fuzz/artifacts/; replay it with
# build/fuzz/<target> build/fuzz/artifacts/<target>-crash-..., then add it to
# fuzz/corpus/<target>/ and a spec to spec/nginx/regressions_spec.lua once fixed.
# fuzz/seeds.lua regenerates the committed seeds.

CLANG        ?= clang
# The specs the sanitizer and valgrind runs take: those whose own process drives
# the instrumented core. The other nginx specs are left out: nginx loads the
# plain build (build/luajit), so under a sanitizer they would only repeat make test.
SPECS        ?= spec/unit spec/integration spec/fakecloud spec/nginx/regressions_spec.lua \
                spec/nginx/transport_contract_spec.lua
# valgrind is the slowest run by far. Only the busted process runs under it (see
# check-valgrind), so it also leaves out the specs whose work is done by the
# processes they start (the command line, the examples) and the fake cloud's own.
VALGRIND_SKIP  := spec/integration/cli_spec.lua spec/integration/examples_spec.lua \
                  spec/integration/realtime_cli_spec.lua
VALGRIND_SPECS ?= spec/unit $(filter-out $(VALGRIND_SKIP),$(sort $(wildcard spec/integration/*_spec.lua))) \
                  $(filter spec/nginx/%,$(SPECS))
CHECK_LUAS   ?= lua5.4 luajit
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := decrypt roundtrip headers request response json

SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer $(SAN_FLAGS)
# The ASan runtime a plain interpreter needs preloaded to load an ASan core; it
# carries the UBSan handlers too, so no separate UBSan runtime is preloaded.
ASAN_RT      = $(shell $(CLANG) -print-file-name=libclang_rt.asan-x86_64.so)
# intercept_tls_get_addr=0: clang 14's LeakSanitizer misreads glibc 2.36's dynamic
# TLS ranges (modules with thread-locals loaded by dlopen) and its tracer dies of
# SIGSEGV at exit; without the interception those blocks are plain heap blocks,
# reachable from the thread's static TLS, so leak checking loses nothing.
ASAN_ENV     = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:intercept_tls_get_addr=0:log_path=$(1)/asan \
               LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(1)/ubsan
LDSO        ?= /lib64/ld-linux-x86-64.so.2
VALGRIND     = valgrind --tool=memcheck --error-exitcode=99 --child-silent-after-fork=yes --leak-check=full \
               --errors-for-leak-kinds=definite --show-leak-kinds=definite \
               --suppressions=$(CURDIR)/tools/valgrind.supp --log-file=$(1)/vg.%p.log
check_fc     = $(if $(FAKECLOUD_DIR),$(FAKECLOUD_DIR)-$(1),$(CURDIR)/build/fakecloud-$(1))

FUZZ_BINS     := $(addprefix build/fuzz/,$(FUZZ_TARGETS))
FUZZ_CFLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=undefined $(WARN) -D_POSIX_C_SOURCE=200809L \
                 -I/usr/include/lua5.4 $(CURL_CFLAGS)
FUZZ_LIBS     := -llua5.4 -lcurl -lcrypto -lpaho-mqtt3cs -lpthread
# A target that compiles a core file into itself (to reach its static functions)
# links the other core files only.
FUZZ_SRC_headers := $(filter-out csrc/http.c,$(SRC))

.PHONY: check deps-check check-clang check-asan check-valgrind check-rss fuzz fuzz-regress

check:: check-clang check-asan check-valgrind check-rss fuzz-regress

# After deps, never beside it: two apt-get runs at once would fight over the dpkg lock.
deps-check: deps
	@sh tools/deps-check

# -Werror on top of the project's warning flags; an up-to-date build is a clean one.
check-clang: deps-check
	@set -e; for lua in $(CHECK_LUAS); do \
	    $(MAKE) --no-print-directory LUA=$$lua BUILD=build/clang-$$lua CC=$(CLANG) CFLAGS="-O2 -g -Werror"; \
	    echo "check-clang $$lua: no warnings"; \
	done

# The suite runs through a wrapper named like the interpreter, first on PATH, that
# starts it with the ASan runtime preloaded and the options below; spec/run takes
# the core from build/asan-<lua> (CORE_PREFIX). The wrapper preloads with the
# dynamic loader's --preload, not LD_PRELOAD, so the tools the specs start (sh,
# curl, nginx, ...) run without the runtime and its leak reports about them,
# while a child interpreter (the proxy and CLI specs start some, the CLI ones
# under env -i) goes through the wrapper again and gets the same options. Reports
# go to files, so one from any of those processes fails the run, as does a spec
# that fails or a run cut short.
check-asan: deps-check
	@set -e; status=0; for lua in $(CHECK_LUAS); do \
	    dir=$(CURDIR)/build/asan-$$lua; \
	    $(MAKE) --no-print-directory LUA=$$lua BUILD=build/asan-$$lua CC=$(CLANG) \
	        CFLAGS="$(ASAN_CFLAGS)" LDFLAGS="$(SAN_FLAGS)"; \
	    rm -rf $$dir/bin $$dir/logs; mkdir -p $$dir/bin $$dir/logs; \
	    printf '#!/bin/sh\nexport %s\nexec %s --preload %s %s "$$@"\n' \
	        "$(call ASAN_ENV,$$dir/logs)" $(LDSO) "$(ASAN_RT)" "$$(command -v $$lua)" > $$dir/bin/$$lua; \
	    chmod +x $$dir/bin/$$lua; \
	    specs=ok; \
	    PATH=$$dir/bin:$$PATH CORE_PREFIX=asan- LUAS=$$lua \
	        FAKECLOUD_DIR=$(call check_fc,asan-$$lua) sh spec/run $(SPECS) || specs=FAILED; \
	    reports=$$(ls $$dir/logs | wc -l); \
	    [ "$$reports" -eq 0 ] || cat $$dir/logs/*; \
	    echo "check-asan $$lua: specs $$specs, sanitizer reports: $$reports"; \
	    [ "$$specs" = ok ] && [ "$$reports" -eq 0 ] || status=1; \
	done; exit $$status

# Same shape as check-asan, with valgrind in the wrapper: one log per process, each
# of which must end with "ERROR SUMMARY: 0 errors" (definite leaks count as errors).
# Only the busted process runs under valgrind: the interpreters the specs start
# (the CLI specs start dozens) would take the run from minutes to a quarter of an
# hour, and check-asan covers them. VALGRIND_ALL=1 puts them under valgrind too.
check-valgrind: deps-check
	@set -e; dir=$(CURDIR)/build/valgrind-lua5.4; \
	$(MAKE) --no-print-directory LUA=lua5.4 BUILD=build/valgrind-lua5.4 CFLAGS="-O1 -g"; \
	rm -rf $$dir/bin $$dir/logs; mkdir -p $$dir/bin $$dir/logs; \
	lua=$$(command -v lua5.4); \
	printf '#!/bin/sh\ncase "$$1" in %s) exec %s %s "$$@" ;; esac\nexec %s "$$@"\n' \
	    '$(if $(VALGRIND_ALL),*,*/busted)' "$(call VALGRIND,$$dir/logs)" "$$lua" "$$lua" > $$dir/bin/lua5.4; \
	chmod +x $$dir/bin/lua5.4; \
	specs=ok; \
	PATH=$$dir/bin:$$PATH CORE_PREFIX=valgrind- LUAS=lua5.4 \
	    FAKECLOUD_DIR=$(call check_fc,valgrind) sh spec/run $(VALGRIND_SPECS) || specs=FAILED; \
	logs=$$(ls $$dir/logs/vg.*.log | wc -l); \
	bad=$$(grep -L 'ERROR SUMMARY: 0 errors' $$dir/logs/vg.*.log || true); \
	[ -z "$$bad" ] || cat $$bad; \
	grep -h -E 'definitely lost:|ERROR SUMMARY:' $$dir/logs/vg.*.log | sed 's/^==[0-9]*== *//' | sort | uniq -c; \
	echo "check-valgrind lua5.4: specs $$specs, processes $$logs, with errors: $$(echo $$bad | wc -w)"; \
	[ "$$specs" = ok ] && [ -z "$$bad" ]

check-rss: deps
	@$(MAKE) --no-print-directory LUA=lua5.4
	@FAKECLOUD_DIR=$(call check_fc,rss) sh tools/rss-check

$(FUZZ_BINS): build/fuzz/%: fuzz/%.c fuzz/fuzz.h $(SRC) $(HDR) | deps-check
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(or $(FUZZ_SRC_$*),$(SRC)) $(FUZZ_LIBS)

# New inputs go to build/fuzz/corpus/<target> (kept between runs, not committed);
# fuzz/corpus/<target> holds the committed seeds. A crash, a leak, a sanitizer
# report or a failed property stops the run and leaves the input in build/fuzz/artifacts.
fuzz: deps-check $(FUZZ_BINS)
	@set -e; mkdir -p build/fuzz/artifacts; for t in $(FUZZ_TARGETS); do \
	    mkdir -p build/fuzz/corpus/$$t; \
	    echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	    build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=25 -print_final_stats=1 \
	        -artifact_prefix=build/fuzz/artifacts/$$t- build/fuzz/corpus/$$t fuzz/corpus/$$t \
	        > build/fuzz/$$t.log 2>&1 || { tail -n 60 build/fuzz/$$t.log; echo "fuzz $$t FAILED"; exit 1; }; \
	    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' build/fuzz/$$t.log; \
	done

fuzz-regress: deps-check $(FUZZ_BINS)
	@set -e; mkdir -p build/fuzz/artifacts; for t in $(FUZZ_TARGETS); do \
	    build/fuzz/$$t -runs=0 -timeout=25 -artifact_prefix=build/fuzz/artifacts/$$t- fuzz/corpus/$$t > build/fuzz/$$t-regress.log 2>&1 \
	        || { tail -n 60 build/fuzz/$$t-regress.log; echo "fuzz-regress $$t FAILED"; exit 1; }; \
	    echo "fuzz-regress $$t: $$(ls fuzz/corpus/$$t | wc -l) seeds ok"; \
	done
