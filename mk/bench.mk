# Performance against the limits and the alternatives, in one reproducible run.
#
#   make bench     one table of ratios (medians of repeated runs): primitives,
#                  HTTPS round trips, JSON, nginx, memory, the ngx vs curl
#                  transport under 50 ms of cloud latency, and the realtime channel
#                  (events decoded per second, publish-to-receive latency)
#                  -> build/bench/results.md
#
# It installs what it needs (tools/deps base bench), builds the cores for Lua 5.4
# and LuaJIT and the C baselines (build/bench/prims: OpenSSL EVP; build/bench/http:
# libcurl), starts and stops its own fake cloud and nginx on 127.0.0.1, and takes
# about three minutes. BENCH_REPS=N changes the number of runs per row (default 7).

BENCH_CFLAGS := -std=c99 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -pedantic -D_POSIX_C_SOURCE=200809L

.PHONY: bench deps-bench

# After deps, never beside it: two apt-get runs at once would fight over the dpkg lock.
deps-bench: deps
	@sh tools/deps bench

build/bench/prims: bench/prims.c | deps-bench
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $< -lcrypto

build/bench/http: bench/http.c | deps-bench
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $(CURL_CFLAGS) -o $@ $< -lcurl

bench: deps-bench build/bench/prims build/bench/http
	@$(MAKE) --no-print-directory LUA=lua5.4
	@$(MAKE) --no-print-directory LUA=luajit
	@sh bench/run
