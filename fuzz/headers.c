/*
 * The response side of http.c without a network: the header and body callbacks
 * libcurl calls, the buffers they fill, and push_headers, which turns the raw
 * header block into the headers table. The static functions are reached by
 * compiling http.c into this target.
 *
 * Input: [limit lo][limit hi][flags][repeat][head length lo][head length hi][head][body]
 *   - the head bytes, once or, for repeat >= 240, (repeat - 239) * 16 times (up
 *     to 272, enough to pass HEADER_CAP or to build one huge line), are fed to
 *     on_header line by line as libcurl does, or in fixed-size pieces when flags
 *     bit 0 is set;
 *   - the body is fed to on_body in pieces of 1 + 97 * (flags >> 4) bytes against
 *     a limit of (hi << 8 | lo) bytes.
 *
 * Properties: the header block and the trailer count never exceed their limit;
 * a body within its limit is kept intact, one past it sets overflow;
 * push_headers never raises and either refuses the block (nothing pushed) or
 * gives lowercase names without a colon or white space, and values trimmed of
 * white space (but for the ", " a repeated empty value leaves).
 */
#include "../csrc/http.c"

#include "fuzz.h"

/* Feed a callback like libcurl: stop at the first short write. */
typedef size_t (*callback_t)(char *, size_t, size_t, void *);

static int feed(callback_t cb, void *ud, char *p, size_t n, size_t piece)
{
    while (n > 0) {
        size_t k = n < piece ? n : piece;
        if (cb(p, 1, k, ud) != k)
            return 0;
        p += k;
        n -= k;
    }
    return 1;
}

static int feed_lines(head_t *h, char *p, size_t n)
{
    while (n > 0) {
        char *nl = (char *)memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) + 1 : n;
        if (on_header(p, 1, k, h) != k)
            return 0;
        p += k;
        n -= k;
    }
    return 1;
}

static int call_push_headers(lua_State *L)
{
    int top = lua_gettop(L);
    if (!push_headers(L, (buffer_t *)lua_touserdata(L, 1))) {
        CHECK(lua_gettop(L) == top);
        lua_pushnil(L);
    }
    return 1;
}

static void check_table(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        size_t kl, vl, i;
        const char *k, *v;
        CHECK(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING);
        k = lua_tolstring(L, -2, &kl);
        v = lua_tolstring(L, -1, &vl);
        CHECK(kl > 0);
        for (i = 0; i < kl; i++)
            CHECK(!(k[i] >= 'A' && k[i] <= 'Z') && k[i] != ':' && !is_space(k[i]));
        for (i = 0; i < vl; i++)
            CHECK(v[i] != '\n');
        if (vl > 0) {
            CHECK(!is_space(v[0]));
            /* a repeat with an empty value leaves the ", " of the join */
            CHECK(!is_space(v[vl - 1]) || (v[vl - 1] == ' ' && vl >= 2 && v[vl - 2] == ','));
        }
        lua_pop(L, 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    size_t limit = take_byte(&in);
    unsigned flags, repeat, i;
    int fed;
    size_t hlen, blen, total;
    const char *head, *body;
    char *stream, *copy;
    head_t hb;
    buffer_t bb;
    lua_State *L;

    limit |= (size_t)take_byte(&in) << 8;
    flags = take_byte(&in);
    repeat = take_byte(&in);
    repeat = repeat < 240 ? 1 : (repeat - 239) * 16; /* big streams are slow: keep them rare */
    hlen = take_byte(&in);
    hlen |= (size_t)take_byte(&in) << 8;
    head = take(&in, hlen, &hlen);
    body = take(&in, in.n, &blen);

    memset(&hb, 0, sizeof hb);
    memset(&bb, 0, sizeof bb);
    hb.block.limit = HEADER_CAP;
    bb.limit = limit;

    /* Private, writable copies, so a stray write is caught outside the input too. */
    total = hlen * repeat;
    stream = (char *)malloc(total + 1);
    copy = (char *)malloc(blen + 1);
    CHECK(stream != NULL && copy != NULL);
    for (i = 0; i < repeat; i++)
        memcpy(stream + i * hlen, head, hlen);
    memcpy(copy, body, blen);

    if (flags & 1)
        fed = feed(on_header, &hb, stream, total, 1 + ((flags >> 1) & 7) * 61);
    else
        fed = feed_lines(&hb, stream, total);
    CHECK(hb.block.len <= hb.block.limit && hb.block.len <= hb.block.cap && hb.trailer <= hb.block.limit);
    CHECK(fed || hb.block.overflow || hb.trailer_overflow);

    if (feed(on_body, &bb, copy, blen, 1 + 97 * (flags >> 4))) {
        CHECK(!bb.overflow && bb.len == blen && (blen == 0 || memcmp(bb.data, body, blen) == 0));
    } else {
        CHECK(bb.overflow && blen > limit && bb.len <= limit);
        CHECK(memcmp(bb.data ? bb.data : "", body, bb.len) == 0);
    }

    L = luaL_newstate();
    CHECK(L != NULL);
    lua_pushcfunction(L, call_push_headers);
    lua_pushlightuserdata(L, &hb.block);
    CHECK(lua_pcall(L, 1, 1, 0) == 0);
    if (lua_istable(L, -1))
        check_table(L);
    else
        CHECK(lua_isnil(L, -1));
    lua_close(L);

    /* The reuse path of a session: reset keeps small buffers, then they are freed. */
    head_reset(&hb);
    buffer_reset(&bb);
    CHECK(hb.block.len == 0 && hb.trailer == 0 && !hb.final && bb.len == 0 && !bb.overflow);
    buffer_free(&hb.block);
    buffer_free(&bb);
    free(stream);
    free(copy);
    return 0;
}
