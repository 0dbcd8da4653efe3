/*
 * json_decode(text[, max_depth]) on untrusted bytes: the decoder every response
 * body goes through.
 *
 * Input: [depth][text]; depth 0 means the default max_depth, otherwise it is the
 * max_depth passed (1..255).
 *
 * Properties: decode never raises on a string; it answers a value, a lone nil
 * (top-level null) or nil, "invalid JSON at byte N: ..."; and what it decodes is
 * stable: writing the value back as JSON (keys sorted, floats marked as such)
 * and decoding that gives a value that writes back the same.
 */
#include <math.h>

#include "fuzz.h"

typedef struct {
    char *p;
    size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n)
            cap *= 2;
        o->p = (char *)realloc(o->p, cap);
        CHECK(o->p != NULL);
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_string(out_t *o, const char *s, size_t n)
{
    size_t i;
    put(o, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, (const char *)&s[i], 1);
        }
    }
    put(o, "\"", 1);
}

typedef struct {
    const char *s;
    size_t n;
} key_t_;

static int key_cmp(const void *a, const void *b)
{
    const key_t_ *x = (const key_t_ *)a, *y = (const key_t_ *)b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static void write_value(lua_State *L, out_t *o);

/* The table on top: an array when every key is a positive integer, else an object
 * with string keys (the decoder makes nothing else). */
static void write_table(lua_State *L, out_t *o)
{
    lua_Integer max = 0, i;
    size_t nkeys = 0, k;
    int strings = 0, ints = 0;
    key_t_ *keys;

    CHECK(lua_checkstack(L, 4));
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            strings = 1;
        } else {
            CHECK(lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1);
            ints = 1;
            if (lua_tointeger(L, -2) > max)
                max = lua_tointeger(L, -2);
        }
        nkeys++;
        lua_pop(L, 1);
    }
    CHECK(!(strings && ints));
    if (!strings) {
        put(o, "[", 1);
        for (i = 1; i <= max; i++) {
            if (i > 1)
                put(o, ",", 1);
            lua_rawgeti(L, -1, i);
            if (lua_isnil(L, -1))
                put(o, "null", 4);
            else
                write_value(L, o);
            lua_pop(L, 1);
        }
        put(o, "]", 1);
        return;
    }
    keys = (key_t_ *)malloc(nkeys * sizeof *keys);
    CHECK(keys != NULL);
    k = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        keys[k].s = lua_tolstring(L, -2, &keys[k].n); /* kept alive by the table */
        k++;
        lua_pop(L, 1);
    }
    qsort(keys, nkeys, sizeof *keys, key_cmp);
    put(o, "{", 1);
    for (k = 0; k < nkeys; k++) {
        if (k > 0)
            put(o, ",", 1);
        put_string(o, keys[k].s, keys[k].n);
        put(o, ":", 1);
        lua_pushlstring(L, keys[k].s, keys[k].n);
        lua_rawget(L, -2);
        write_value(L, o);
        lua_pop(L, 1);
    }
    put(o, "}", 1);
    free(keys);
}

/* The value on top, left in place. */
static void write_value(lua_State *L, out_t *o)
{
    char num[64];
    switch (lua_type(L, -1)) {
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, -1))
            put(o, "true", 4);
        else
            put(o, "false", 5);
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        put_string(o, s, n);
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, -1)) {
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -1));
        } else {
            double d = lua_tonumber(L, -1);
            CHECK(!isnan(d));
            if (isinf(d)) {
                snprintf(num, sizeof num, "%s", d > 0 ? "1e999" : "-1e999");
            } else {
                snprintf(num, sizeof num, "%.17g", d);
                if (strpbrk(num, ".e") == NULL)
                    strcat(num, ".0"); /* keep it a float */
            }
        }
        put(o, num, strlen(num));
        break;
    case LUA_TTABLE:
        write_table(L, o);
        break;
    default:
        CHECK(!"the decoder made a value of another type");
    }
}

/* json_decode(text, depth) with the results left on the stack; returns their number. */
static int decode(lua_State *L, const char *text, size_t n, lua_Integer depth)
{
    int top = lua_gettop(L);
    push_core_fn(L, "json_decode");
    lua_pushlstring(L, text, n);
    if (depth > 0)
        lua_pushinteger(L, depth);
    call_ok(L, depth > 0 ? 2 : 1, LUA_MULTRET);
    return lua_gettop(L) - top;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    unsigned d = take_byte(&in);
    lua_Integer depth = (lua_Integer)d;
    size_t n;
    const char *text = take(&in, in.n, &n);
    out_t first = {NULL, 0, 0}, second = {NULL, 0, 0};
    lua_State *L = fuzz_state(0);
    int results = decode(L, text, n, depth);

    if (results == 2) {
        CHECK(lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING);
        CHECK(strncmp(lua_tostring(L, -1), "invalid JSON at byte ", 21) == 0);
    } else {
        CHECK(results == 1);
        if (!lua_isnil(L, -1)) {
            write_value(L, &first);
            CHECK(decode(L, first.p, first.len, 1000) == 1);
            write_value(L, &second);
            CHECK(first.len == second.len && memcmp(first.p, second.p, first.len) == 0);
        }
    }
    free(first.p);
    free(second.p);
    lua_close(L);
    return 0;
}
