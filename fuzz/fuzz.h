/*
 * Shared by the libFuzzer targets: a fresh Lua state with the core loaded, a
 * cursor that cuts the input into fields, and CHECK for the properties each
 * target asserts (a failed CHECK aborts, which libFuzzer reports as a crash).
 *
 * Every target builds its own lua_State per input and closes it, so whatever the
 * core allocates for one input must be freed by the time lua_close returns; the
 * leak checker then flags any per-input leak.
 */
#ifndef QUECAPI_FUZZ_H
#define QUECAPI_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_quecapi_core(lua_State *L);

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                         \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

typedef struct {
    const uint8_t *p;
    size_t n;
} input_t;

static inline unsigned take_byte(input_t *in)
{
    unsigned b;
    if (in->n == 0)
        return 0;
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

/* Up to n bytes off the front; *got says how many there were. */
static inline const char *take(input_t *in, size_t n, size_t *got)
{
    const char *p = (const char *)in->p;
    if (n > in->n)
        n = in->n;
    in->p += n;
    in->n -= n;
    *got = n;
    return p;
}

/* A field prefixed by its length in one byte. */
static inline const char *take_field(input_t *in, size_t *got)
{
    return take(in, take_byte(in), got);
}

/*
 * A state with the core's table at index 1, as require "quecapi.core" would
 * return it, and the standard libraries only when the target runs Lua code
 * (opening them costs more than most inputs).
 */
static inline lua_State *fuzz_state(int stdlibs)
{
    lua_State *L = luaL_newstate();
    CHECK(L != NULL);
    if (stdlibs)
        luaL_openlibs(L);
    lua_pushcfunction(L, luaopen_quecapi_core);
    CHECK(lua_pcall(L, 0, 1, 0) == 0);
    CHECK(lua_type(L, 1) == LUA_TTABLE);
    return L;
}

/* Push core[name] ready for a call. */
static inline void push_core_fn(lua_State *L, const char *name)
{
    lua_getfield(L, 1, name);
    CHECK(lua_type(L, -1) == LUA_TFUNCTION);
}

/* The core's functions must not raise on string arguments: report an error as a crash. */
static inline void call_ok(lua_State *L, int nargs, int nresults)
{
    if (lua_pcall(L, nargs, nresults, 0) != 0) {
        fprintf(stderr, "core raised: %s\n", lua_tostring(L, -1));
        abort();
    }
}

#endif
