/*
 * A strict JSON decoder (RFC 8259) that builds the Lua values quecapi hands to
 * its callers in one pass, instead of decoding with lua-cjson and walking the
 * result again to drop nulls and make integers.
 *
 * core.json_decode(text[, max_depth[, array_mt]]) -> value | nil, err
 *
 *  - Objects become tables. A member whose value is null is left out, so
 *    t.name == nil; with duplicate names the last one wins (a later null removes
 *    an earlier value).
 *  - Arrays become sequences from 1; a null element leaves a nil hole at its
 *    index (so # of such an array is not reliable). An array that holds no
 *    value (`[]`, or only nulls) gets `array_mt` as its metatable when given, so
 *    that encoding it again writes `[]`, not `{}`.
 *  - A top-level null decodes to a single nil, without an error.
 *  - Numbers: on Lua 5.3+ a literal without fraction or exponent that fits a
 *    lua_Integer becomes an integer; every other number is a float, correctly
 *    rounded (strtod), and a magnitude beyond the double range becomes
 *    +-math.huge, as tonumber does. "1.0" and "1e3" stay floats.
 *  - Strings: escapes are decoded to UTF-8 and surrogate pairs combined; a lone
 *    surrogate is an error. Other bytes are copied as they are: like lua-cjson,
 *    the decoder does not validate UTF-8.
 *  - Nesting deeper than max_depth (default 200, at most 1000) is an error, so
 *    the recursion below is bounded by it.
 *  - Anything else the grammar does not allow (comments, trailing commas,
 *    single quotes, leading zeros, NaN, a byte order mark, raw control
 *    characters in strings, text after the value) is an error:
 *    nil, "invalid JSON at byte N: reason".
 *
 * The parser reports errors with lua_error inside a protected call made by
 * qc_json_decode, so no path has to unwind by hand. Everything it allocates
 * (tables, strings, luaL_Buffer) belongs to Lua, so an error midway, or an
 * out-of-memory error (re-raised, not turned into nil, err), leaks nothing.
 *
 * Scanning relies on a property of Lua strings: the byte after the last one is
 * always '\0'. That byte matches no token, so loops stop on it without a bounds
 * check and the position is compared with the end only to name the error. The
 * word-at-a-time scan of strings reads whole 8-byte words only while they lie
 * before the end.
 *
 * The records of a list share their member names, in the same order (a page of
 * devices: 10 objects of 60 names). An array whose first element is an object
 * keeps the names of the object before (a shape): a name whose bytes are the
 * ones at the same place in that object is that Lua string again, found with a
 * memcmp instead of being hashed and interned anew.
 */
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define DEFAULT_MAX_DEPTH 200
#define MAX_DEPTH_LIMIT 1000
/* Names remembered per list, and for all the lists open at once (nested). */
#define SHAPE_NAMES 64
#define SHAPE_POOL 256

typedef struct {
    const char *s; /* the bytes of a Lua string in the shape's table */
    size_t len;
} name_t;

/* The member names of the last object of a list, for the next one. */
typedef struct {
    name_t *names; /* slots in the parser's pool */
    int cap, n;
    int table; /* stack index of the table holding the names (1..n), keeping them alive */
} shape_t;

typedef struct {
    lua_State *L;
    const char *start, *cur, *end;
    int max_depth;
    int array_mt; /* stack index of the metatable for empty arrays, or 0 */
    int pool_used; /* slots of `pool` taken by the lists open now */
    name_t pool[SHAPE_POOL];
} parser_t;

/* An array that holds nothing (`[]`, or only nulls) would encode again as an
 * object; the caller's marker metatable keeps it an array. */
static void mark_empty(parser_t *p, int stored)
{
    if (stored == 0 && p->array_mt != 0) {
        lua_pushvalue(p->L, p->array_mt);
        lua_setmetatable(p->L, -2);
    }
}

/* 1 for the bytes that end the plain run of a string: '"', '\\' and controls. */
/* clang-format off */
static const unsigned char string_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 and up: UTF-8, as is */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

static int parse_value(parser_t *p, int depth, int *members, shape_t *shape);

/* Raise "invalid JSON at byte N: why" (N counts from 1); caught by qc_json_decode.
 * Whatever went wrong at the end of the text, the text ended too early. */
static void fail(parser_t *p, const char *at, const char *why)
{
    char msg[160];
    if (at >= p->end)
        why = "unexpected end of input";
    snprintf(msg, sizeof msg, "invalid JSON at byte %lu: %s", (unsigned long)(at - p->start) + 1, why);
    lua_pushstring(p->L, msg);
    lua_error(p->L);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *skip_space(const char *q)
{
    while (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')
        q++;
    return q;
}

/* The value of four hex digits at q, or -1. Stops at the first non-hex byte, so
 * it never reads past the terminating '\0'. */
static long hex4(const char *q)
{
    long v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = q[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static void add_utf8(luaL_Buffer *b, unsigned long cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    luaL_addlstring(b, out, n);
}

/* \uXXXX at q (a high surrogate must come with its low half): append the
 * character, return the position after the escape. */
static const char *add_unicode_escape(parser_t *p, luaL_Buffer *b, const char *q)
{
    long hi = hex4(q + 2), lo;
    if (hi < 0)
        fail(p, q, "invalid \\u escape");
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        fail(p, q, "lone low surrogate in \\u escape");
    if (hi < 0xD800 || hi > 0xDBFF) {
        add_utf8(b, (unsigned long)hi);
        return q + 6;
    }
    lo = (q[6] == '\\' && q[7] == 'u') ? hex4(q + 8) : -1;
    if (lo < 0xDC00 || lo > 0xDFFF)
        fail(p, q, "high surrogate without its low half in \\u escape");
    add_utf8(b, 0x10000 + (((unsigned long)hi - 0xD800) << 10) + ((unsigned long)lo - 0xDC00));
    return q + 12;
}

/* The escape at q (q[0] == '\\'): append it, return the position after it. */
static const char *add_escape(parser_t *p, luaL_Buffer *b, const char *q)
{
    static const char names[] = "\"\\/bfnrt";
    static const char bytes[] = "\"\\/\b\f\n\r\t";
    const char *hit;

    if (q[1] == 'u')
        return add_unicode_escape(p, b, q);
    hit = q[1] != '\0' ? strchr(names, q[1]) : NULL;
    if (hit == NULL) {
        fail(p, q, "invalid escape in string");
        return q;
    }
    luaL_addlstring(b, bytes + (hit - names), 1);
    return q + 2;
}

/*
 * The first byte at or after q that ends a plain run ('"', '\\' or a control
 * character): eight bytes at a time while a whole word lies before the end, then
 * byte by byte. A word is tested for a byte equal to '"' or '\\' or below 0x20
 * (the classic "has a zero byte" bit trick); a hit may be a false one above the
 * first true one, which the byte loop that follows sorts out.
 */
static const char *plain_run(const char *q, const char *end)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - q >= 8) {
        uint64_t v, quote, slash, low;
        memcpy(&v, q, sizeof v);
        quote = v ^ (ones * '"');
        slash = v ^ (ones * '\\');
        low = (v - ones * 0x20) & ~v;
        if ((((quote - ones) & ~quote) | ((slash - ones) & ~slash) | low) & highs)
            break;
        q += 8;
    }
    while (!string_stop[(unsigned char)*q])
        q++;
    return q;
}

/*
 * The slow path of push_string, for strings with escapes: s is where the
 * current plain run started, q the byte that ended it. Kept apart from the
 * recursive functions so their frames do not carry a luaL_Buffer.
 */
static void push_escaped_string(parser_t *p, const char *s, const char *q)
{
    luaL_Buffer b;
    if (!lua_checkstack(p->L, LUA_MINSTACK))
        fail(p, q, "nesting too deep for the Lua stack");
    luaL_buffinit(p->L, &b);
    for (;;) {
        luaL_addlstring(&b, s, (size_t)(q - s));
        if (*q == '"')
            break;
        if (*q != '\\')
            fail(p, q, "control character in string");
        s = q = add_escape(p, &b, q);
        q = plain_run(q, p->end);
    }
    luaL_pushresult(&b);
    p->cur = q + 1;
}

/* The string at p->cur (its opening quote) onto the stack; 1 when it had no
 * escape (its bytes are the text's), 0 otherwise. */
static int push_string(parser_t *p)
{
    const char *s = p->cur + 1, *q = plain_run(s, p->end);
    if (*q == '"') {
        lua_pushlstring(p->L, s, (size_t)(q - s));
        p->cur = q + 1;
        return 1;
    }
    push_escaped_string(p, s, q);
    return 0;
}

/* Whether the n bytes at a and b are the same: names are short, and a call to
 * memcmp costs more than comparing them a word at a time here. */
static int same_bytes(const char *a, const char *b, size_t n)
{
    while (n >= 8) {
        uint64_t x, y;
        memcpy(&x, a, sizeof x);
        memcpy(&y, b, sizeof y);
        if (x != y)
            return 0;
        a += 8;
        b += 8;
        n -= 8;
    }
    while (n > 0) {
        if (*a++ != *b++)
            return 0;
        n--;
    }
    return 1;
}

/*
 * The member name at p->cur onto the stack, the i-th (from 0) of its object. With
 * a shape, a name equal to the one at the same place in the object before is
 * that string again (lua_rawgeti); any other becomes that place's name for the
 * next object when it had no escape. A remembered name holds no '"', '\\' or
 * control byte, so text equal to it and followed by '"' is exactly that name.
 */
static void push_name(parser_t *p, shape_t *shape, int i)
{
    const char *s = p->cur + 1;
    size_t len;
    if (shape == NULL || i >= shape->cap) {
        push_string(p);
        return;
    }
    if (i < shape->n) {
        const name_t *k = &shape->names[i];
        if ((size_t)(p->end - s) > k->len && s[k->len] == '"' && same_bytes(s, k->s, k->len)) {
            lua_rawgeti(p->L, shape->table, i + 1);
            p->cur = s + k->len + 1;
            return;
        }
    }
    if (!push_string(p) || i > shape->n)
        return; /* escaped, or a gap before it: not remembered */
    shape->names[i].s = lua_tolstring(p->L, -1, &len);
    shape->names[i].len = len;
    lua_pushvalue(p->L, -1);
    lua_rawseti(p->L, shape->table, i + 1);
    if (i == shape->n)
        shape->n++;
}

/*
 * strtod on [s, e). strtod reads the locale's decimal point: if it stops early
 * the locale is not "C", so the literal is copied with its '.' replaced by the
 * locale's and read again.
 */
static double to_double(parser_t *p, const char *s, const char *e)
{
    size_t len = (size_t)(e - s), dlen, i, o = 0;
    const char *point;
    char small[64], *buf, *end;
    double d = strtod(s, &end);

    if (end == e)
        return d;
    point = localeconv()->decimal_point;
    dlen = strlen(point);
    buf = len + dlen + 1 <= sizeof small ? small : (char *)lua_newuserdata(p->L, len + dlen + 1);
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            memcpy(buf + o, point, dlen);
            o += dlen;
        } else {
            buf[o++] = s[i];
        }
    }
    buf[o] = '\0';
    d = strtod(buf, NULL);
    if (buf != small)
        lua_pop(p->L, 1);
    return d;
}

/*
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at p->cur onto the stack.
 * An integral literal of at most 19 digits is read here (it fits an unsigned
 * 64-bit value); longer ones and those with a fraction or exponent go to strtod.
 */
static void push_number(parser_t *p)
{
    const char *s = p->cur, *q = s, *digits;
    unsigned long long u = 0;
    int negative = 0, integral = 1;

    if (*q == '-') {
        negative = 1;
        q++;
    }
    digits = q;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (is_digit(*q))
            u = u * 10 + (unsigned)(*q++ - '0');
    } else {
        fail(p, q, "invalid number");
    }
    if (*q == '.') {
        integral = 0;
        if (!is_digit(*++q))
            fail(p, q, "invalid number: digits must follow the decimal point");
        while (is_digit(*q))
            q++;
    }
    if (*q == 'e' || *q == 'E') {
        integral = 0;
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!is_digit(*q))
            fail(p, q, "invalid number: digits must follow the exponent");
        while (is_digit(*q))
            q++;
    }
    p->cur = q;
    /* "-0" is a float: an integer has no negative zero, and cjson keeps its sign. */
    if (integral && negative && u == 0) {
        lua_pushnumber(p->L, -0.0);
        return;
    }
    if (integral && q - digits <= 19) {
#if LUA_VERSION_NUM >= 503
        if (u <= (unsigned long long)LUA_MAXINTEGER) {
            lua_pushinteger(p->L, negative ? -(lua_Integer)u : (lua_Integer)u);
            return;
        }
        if (negative && u == (unsigned long long)LUA_MAXINTEGER + 1) {
            lua_pushinteger(p->L, LUA_MININTEGER);
            return;
        }
#else
        /* Exact in a double up to 2^53; beyond, strtod rounds it correctly. */
        if (u <= (1ULL << 53)) {
            lua_pushnumber(p->L, negative ? -(lua_Number)u : (lua_Number)u);
            return;
        }
#endif
    }
    lua_pushnumber(p->L, (lua_Number)to_double(p, s, q));
}

/* The literal `word` (true, false, null) at p->cur, or an error at the first
 * byte that differs (the terminating '\0' differs from every letter). */
static void expect_word(parser_t *p, const char *word)
{
    const char *q = p->cur;
    for (; *word != '\0'; word++, q++)
        if (*q != *word)
            fail(p, q, "unexpected character");
    p->cur = q;
}

/* One more level of nesting, with room on the Lua stack for it: the container,
 * a list's shape table, a member name, a value and a temporary (drop_member,
 * to_double). */
static void enter(parser_t *p, int depth)
{
    if (depth > p->max_depth) {
        char why[48];
        snprintf(why, sizeof why, "nesting deeper than %d", p->max_depth);
        fail(p, p->cur, why);
    }
    if (!lua_checkstack(p->L, 5))
        fail(p, p->cur, "nesting too deep for the Lua stack");
}

/* A null member: the name is on top, the object below. Remove an earlier
 * member of that name, if any, so the last one wins. */
static void drop_member(lua_State *L)
{
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 2);
        return;
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
}

/*
 * push_object, push_array and parse_value recurse into each other, one round
 * per level of nesting; enter() stops them at max_depth (1000 at most).
 *
 * `members` comes in as the number of members to make room for and goes out as
 * the number the object got. An array passes each object element the count of
 * the one before: the records of a list share their shape, so the table is made
 * the right size once instead of growing (and rehashing) member by member.
 * `shape`, when not NULL, is the list's (see push_name).
 */
static void push_object(parser_t *p, int depth, int *members, shape_t *shape) /* NOLINT(misc-no-recursion) */
{
    int n = 0, i = 0, none = 0;
    enter(p, depth);
    lua_createtable(p->L, 0, *members);
    p->cur = skip_space(p->cur + 1);
    if (*p->cur == '}') {
        p->cur++;
        *members = 0;
        return;
    }
    for (;;) {
        if (*p->cur != '"')
            fail(p, p->cur, "expected a string (a member name)");
        push_name(p, shape, i++);
        p->cur = skip_space(p->cur);
        if (*p->cur != ':')
            fail(p, p->cur, "expected ':' after a member name");
        p->cur = skip_space(p->cur + 1);
        if (parse_value(p, depth, &none, NULL)) {
            lua_rawset(p->L, -3);
            n++;
        } else {
            drop_member(p->L);
        }
        p->cur = skip_space(p->cur);
        if (*p->cur == ',') {
            p->cur = skip_space(p->cur + 1);
        } else if (*p->cur == '}') {
            p->cur++;
            *members = n;
            return;
        } else {
            fail(p, p->cur, "expected ',' or '}' in an object");
        }
    }
}

static void push_array(parser_t *p, int depth) /* NOLINT(misc-no-recursion) */
{
    int n = 0, members = 0, stored = 0;
    shape_t shape, *sp = NULL;
    enter(p, depth);
    p->cur = skip_space(p->cur + 1);
    /* A list of objects gets a shape, below the array on the stack, while the
     * parser's pool has room for its names. */
    if (*p->cur == '{' && SHAPE_POOL - p->pool_used >= SHAPE_NAMES) {
        lua_createtable(p->L, SHAPE_NAMES / 2, 0);
        shape.table = lua_gettop(p->L);
        shape.names = p->pool + p->pool_used;
        shape.cap = SHAPE_NAMES;
        shape.n = 0;
        p->pool_used += SHAPE_NAMES;
        sp = &shape;
    }
    lua_newtable(p->L);
    if (*p->cur == ']') {
        p->cur++;
        mark_empty(p, 0);
        return;
    }
    for (;;) {
        if (n == INT_MAX)
            fail(p, p->cur, "array too long");
        n++;
        if (parse_value(p, depth, &members, sp)) {
            lua_rawseti(p->L, -2, n);
            stored++;
        }
        p->cur = skip_space(p->cur);
        if (*p->cur == ',') {
            p->cur = skip_space(p->cur + 1);
        } else if (*p->cur == ']') {
            p->cur++;
            mark_empty(p, stored);
            if (sp != NULL) {
                lua_remove(p->L, shape.table); /* the array takes its place */
                p->pool_used -= SHAPE_NAMES;
            }
            return;
        } else {
            fail(p, p->cur, "expected ',' or ']' in an array");
        }
    }
}

/*
 * The value at p->cur (whitespace already skipped) onto the stack; returns 0,
 * pushing nothing, for null. `depth` is the nesting of the value's container;
 * `members` and `shape` are for an object (see push_object).
 */
static int parse_value(parser_t *p, int depth, int *members, shape_t *shape) /* NOLINT(misc-no-recursion) */
{
    switch (*p->cur) {
    case '{':
        push_object(p, depth + 1, members, shape);
        return 1;
    case '[':
        push_array(p, depth + 1);
        return 1;
    case '"':
        push_string(p);
        return 1;
    case 't':
        expect_word(p, "true");
        lua_pushboolean(p->L, 1);
        return 1;
    case 'f':
        expect_word(p, "false");
        lua_pushboolean(p->L, 0);
        return 1;
    case 'n':
        expect_word(p, "null");
        return 0;
    default:
        if (*p->cur == '-' || is_digit(*p->cur)) {
            push_number(p);
            return 1;
        }
        fail(p, p->cur, "expected a value");
        return 0;
    }
}

/* Runs protected: the parser at index 1 (a light userdata) and the array
 * metatable or nil at index 2 -> the value or nil. */
static int decode_protected(lua_State *L)
{
    parser_t *p = (parser_t *)lua_touserdata(L, 1);
    int members = 0;
    p->L = L;
    p->array_mt = lua_istable(L, 2) ? 2 : 0;
    p->cur = skip_space(p->cur);
    if (!parse_value(p, 0, &members, NULL))
        lua_pushnil(L);
    p->cur = skip_space(p->cur);
    if (p->cur != p->end)
        fail(p, p->cur, "unexpected text after the JSON value");
    return 1;
}

/* core.json_decode(text[, max_depth[, array_mt]]) -> value | nil, err */
int qc_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_Integer max_depth = luaL_optinteger(L, 2, DEFAULT_MAX_DEPTH);
    parser_t p;
    int status;

    luaL_argcheck(L, max_depth >= 1 && max_depth <= MAX_DEPTH_LIMIT, 2,
                  "max_depth must be between 1 and 1000");
    luaL_argcheck(L, lua_isnoneornil(L, 3) || lua_istable(L, 3), 3, "array_mt must be a table");
    p.L = L;
    p.start = p.cur = text;
    p.end = text + len;
    p.max_depth = (int)max_depth;
    p.array_mt = 0;
    p.pool_used = 0;
    lua_pushcfunction(L, decode_protected);
    lua_pushlightuserdata(L, &p);
    if (lua_istable(L, 3))
        lua_pushvalue(L, 3);
    else
        lua_pushnil(L);
    status = lua_pcall(L, 2, 1, 0);
    if (status == 0)
        return 1;
    if (status == LUA_ERRMEM)
        return lua_error(L); /* the machine's problem, not the text's */
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}
