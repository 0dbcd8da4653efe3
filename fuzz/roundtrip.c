/*
 * encrypt_password / decrypt_password round trip, the hex digests and
 * random_string, on untrusted bytes.
 *
 * Input: [random length][random][plain...]; the last byte also sizes random_string.
 *
 * Properties: encrypt never fails on strings and gives canonical Base64 of whole
 * AES blocks, one more block than the plain text fills; decrypt gives the plain
 * text back; sha256_hex and md5_hex agree with OpenSSL called directly;
 * random_string(n) is n characters of [0-9A-Za-z].
 */
#include <openssl/evp.h>

#include "fuzz.h"

static void check_digest(lua_State *L, const char *fn, const EVP_MD *md, const char *s, size_t n)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    unsigned int dlen = 0, i;

    CHECK(EVP_Digest(s, n, d, &dlen, md, NULL));
    for (i = 0; i < dlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    push_core_fn(L, fn);
    lua_pushlstring(L, s, n);
    call_ok(L, 1, 1);
    CHECK(lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) == 2 * dlen);
    CHECK(memcmp(lua_tostring(L, -1), hex, 2 * dlen) == 0);
    lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    size_t rlen, plen, blen, i, n = size ? data[size - 1] : 0;
    const char *random = take_field(&in, &rlen);
    const char *plain = take(&in, in.n, &plen);
    const char *b64, *r;
    lua_State *L = fuzz_state(0);

    push_core_fn(L, "encrypt_password");
    lua_pushlstring(L, plain, plen);
    lua_pushlstring(L, random, rlen);
    call_ok(L, 2, 1);
    CHECK(lua_type(L, -1) == LUA_TSTRING);
    b64 = lua_tolstring(L, -1, &blen);
    CHECK(blen == 4 * (((plen / 16 + 1) * 16 + 2) / 3));
    for (i = 0; i < blen; i++)
        CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", b64[i]) != NULL &&
              b64[i] != '\0');

    push_core_fn(L, "decrypt_password");
    lua_pushvalue(L, -2);
    lua_pushlstring(L, random, rlen);
    call_ok(L, 2, 2);
    CHECK(lua_isnil(L, -1) && lua_type(L, -2) == LUA_TSTRING);
    CHECK(lua_rawlen(L, -2) == plen && memcmp(lua_tostring(L, -2), plain, plen) == 0);
    lua_pop(L, 3);

    check_digest(L, "sha256_hex", EVP_sha256(), (const char *)data, size);
    check_digest(L, "md5_hex", EVP_md5(), (const char *)data, size);

    push_core_fn(L, "random_string");
    lua_pushinteger(L, (lua_Integer)n);
    call_ok(L, 1, 1);
    r = lua_tostring(L, -1);
    CHECK(r != NULL && lua_rawlen(L, -1) == n);
    for (i = 0; i < n; i++)
        CHECK((r[i] >= '0' && r[i] <= '9') || (r[i] >= 'A' && r[i] <= 'Z') || (r[i] >= 'a' && r[i] <= 'z'));
    lua_close(L);
    return 0;
}
