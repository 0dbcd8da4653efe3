/*
 * decrypt_password(b64, random) on untrusted bytes.
 *
 * Input: [flags][random length][random][payload]. With flags bit 0 clear the
 * payload is handed over as the Base64 text, which exercises the strict decoder;
 * with it set the payload is raw ciphertext that the target Base64-encodes first,
 * so that most inputs get past the decoder into AES and the padding check.
 *
 * Property: decrypt answers a string or nil, err and never raises; when it answers
 * a string, encrypting that string with the same random gives back exactly the
 * Base64 we started from (the decoder accepts canonical Base64 only, and CBC with
 * a fixed IV and PKCS#7 padding is deterministic).
 */
#include "fuzz.h"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Plain Base64 with padding; out must hold 4 * ((n + 2) / 3) bytes. */
static size_t encode(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    unsigned flags = take_byte(&in);
    size_t rlen, plen;
    const char *random = take_field(&in, &rlen);
    const char *payload = take(&in, in.n, &plen);
    lua_State *L = fuzz_state(0);

    push_core_fn(L, "decrypt_password");
    if (flags & 1) {
        char *b64 = (char *)malloc(4 * ((plen + 2) / 3) + 1);
        CHECK(b64 != NULL);
        lua_pushlstring(L, b64, encode((const unsigned char *)payload, plen, b64));
        free(b64);
    } else {
        lua_pushlstring(L, payload, plen);
    }
    lua_pushvalue(L, -1);
    lua_insert(L, 2); /* keep the Base64 text at index 2 */
    lua_pushlstring(L, random, rlen);
    call_ok(L, 2, 2);

    if (lua_isnil(L, -2)) {
        CHECK(lua_type(L, -1) == LUA_TSTRING);
    } else {
        size_t plain_len;
        CHECK(lua_type(L, -2) == LUA_TSTRING && lua_isnil(L, -1));
        lua_tolstring(L, -2, &plain_len);
        CHECK(plain_len < lua_rawlen(L, 2)); /* PKCS#7 takes at least one byte */
        push_core_fn(L, "encrypt_password");
        lua_pushvalue(L, -3);
        lua_pushlstring(L, random, rlen);
        call_ok(L, 2, 1);
        CHECK(lua_type(L, -1) == LUA_TSTRING && lua_rawequal(L, -1, 2));
    }
    lua_close(L);
    return 0;
}
