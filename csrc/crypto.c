/*
 * Hashes, the platform's password cipher and random strings, on OpenSSL EVP:
 * sha256_hex and md5_hex, encrypt_password and decrypt_password (AES-128-CBC with
 * key and IV from MD5(random), Base64 with a strict decoder), random_string
 * (RAND_bytes with rejection sampling).
 *
 * The SHA-256, MD5 and AES algorithms are fetched once per Lua state and freed
 * with it (see algorithms_t). Short inputs are worked on in stack buffers; longer
 * ones in a Lua userdata, which the GC frees even if Lua raises. The per-call
 * OpenSSL contexts are created and freed inside the call, so no path leaks.
 * Failures drain the OpenSSL error queue so a later, unrelated ERR_get_error()
 * in the host never sees our leftovers.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core.h"

/*
 * The algorithms, looked up once per Lua state. With OpenSSL 3 the
 * EVP_sha256()-style getters make every EVP_Digest/EVP_CipherInit_ex search the
 * providers again, which costs more than hashing a signing string; a fetched
 * object skips that search. The fetched objects live in a userdata that every
 * core function gets as its upvalue, and its __gc frees them when the state
 * closes (before the core is unloaded). Should a fetch fail (a provider without
 * MD5, say), the getter is used instead.
 */
typedef struct {
    EVP_MD *sha256, *md5;
    EVP_CIPHER *aes;
} algorithms_t;

static int algorithms_gc(lua_State *L)
{
    algorithms_t *a = (algorithms_t *)lua_touserdata(L, 1);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(a->sha256);
    EVP_MD_free(a->md5);
    EVP_CIPHER_free(a->aes);
#endif
    memset(a, 0, sizeof *a);
    return 0;
}

void qc_crypto_push_algorithms(lua_State *L)
{
    algorithms_t *a = (algorithms_t *)lua_newuserdata(L, sizeof *a);
    memset(a, 0, sizeof *a);
    lua_newtable(L);
    lua_pushcfunction(L, algorithms_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    a->md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    a->aes = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    ERR_clear_error();
#endif
}

static const algorithms_t *algorithms(lua_State *L)
{
    static const algorithms_t none = {NULL, NULL, NULL};
    const algorithms_t *a = (const algorithms_t *)lua_touserdata(L, lua_upvalueindex(1));
    return a != NULL ? a : &none;
}

static const EVP_MD *sha256_md(lua_State *L)
{
    const algorithms_t *a = algorithms(L);
    return a->sha256 != NULL ? a->sha256 : EVP_sha256();
}

static const EVP_MD *md5_md(lua_State *L)
{
    const algorithms_t *a = algorithms(L);
    return a->md5 != NULL ? a->md5 : EVP_md5();
}

static const EVP_CIPHER *aes_cipher(lua_State *L)
{
    const algorithms_t *a = algorithms(L);
    return a->aes != NULL ? a->aes : EVP_aes_128_cbc();
}

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

static void to_hex(const unsigned char *in, size_t n, char *out, const char *digits)
{
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
}

/* Digest s with md and push the lowercase hex, or return 0 after draining errors. */
static int push_digest_hex(lua_State *L, const EVP_MD *md)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char digest[EVP_MAX_MD_SIZE];
    char hex[2 * EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (!EVP_Digest(s, len, digest, &dlen, md, NULL)) {
        ERR_clear_error();
        lua_pushnil(L);
        lua_pushliteral(L, "digest failed");
        return 2;
    }
    to_hex(digest, dlen, hex, hex_lower);
    lua_pushlstring(L, hex, 2 * (size_t)dlen);
    return 1;
}

int qc_sha256_hex(lua_State *L)
{
    return push_digest_hex(L, sha256_md(L));
}

int qc_md5_hex(lua_State *L)
{
    return push_digest_hex(L, md5_md(L));
}

/*
 * The platform's key schedule: key = characters 9..24 of the uppercase hex
 * MD5(random), taken as 16 ASCII bytes; IV = the key's two 8-byte halves swapped.
 */
static int derive_key_iv(const EVP_MD *md5, const char *random, size_t rlen, unsigned char key[16],
                         unsigned char iv[16])
{
    unsigned char digest[16];
    char hex[32];
    unsigned int dlen = 0;

    if (!EVP_Digest(random, rlen, digest, &dlen, md5, NULL) || dlen != 16)
        return 0;
    to_hex(digest, 16, hex, hex_upper);
    memcpy(key, hex + 8, 16);
    memcpy(iv, key + 8, 8);
    memcpy(iv + 8, key, 8);
    return 1;
}

/* One-shot AES-128-CBC with PKCS#7; returns the output length or -1. */
static int aes_cbc(const EVP_CIPHER *aes, int encrypt, const unsigned char key[16],
                   const unsigned char iv[16], const unsigned char *in, int inlen, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, tail = 0, ok;

    if (ctx == NULL)
        return -1;
    ok = EVP_CipherInit_ex(ctx, aes, NULL, key, iv, encrypt) && EVP_CipherUpdate(ctx, out, &n, in, inlen) &&
         EVP_CipherFinal_ex(ctx, out + n, &tail);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? n + tail : -1;
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        unsigned long v = (unsigned long)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)in[i + 1] << 8;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64_alphabet[(v >> 6) & 63];
        else
            out[o++] = '=';
        out[o++] = '=';
    }
    return o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Strict standard Base64 (padded, no whitespace, canonical trailing bits), because
 * a lenient decoder would turn a mangled password into a confusing "wrong key".
 * Returns the decoded length or -1.
 */
static long b64_decode(const char *in, size_t n, unsigned char *out)
{
    size_t i, o = 0, pad = 0;

    if (n == 0 || n % 4 != 0)
        return -1;
    if (in[n - 1] == '=')
        pad = (in[n - 2] == '=') ? 2 : 1;
    for (i = 0; i < n; i += 4) {
        int v[4], k, last = (i + 4 == n);
        for (k = 0; k < 4; k++) {
            if (last && k >= 4 - (int)pad) {
                v[k] = 0;
                if (in[i + k] != '=')
                    return -1;
            } else if ((v[k] = b64_value((unsigned char)in[i + k])) < 0) {
                return -1;
            }
        }
        out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
        if (!(last && pad == 2))
            out[o++] = (unsigned char)(((v[1] & 15) << 4) | (v[2] >> 2));
        else if (v[1] & 15)
            return -1;
        if (!(last && pad >= 1))
            out[o++] = (unsigned char)(((v[2] & 3) << 6) | v[3]);
        else if (pad == 1 && (v[2] & 3))
            return -1;
    }
    return (long)o;
}

/*
 * Scratch space: on the C stack for the usual short inputs (no allocation, no
 * garbage), else a Lua userdata, which the collector frees even if Lua raises.
 */
#define SMALL_INPUT 256

static void *scratch(lua_State *L, void *local, size_t local_size, size_t need)
{
    return need <= local_size ? local : lua_newuserdata(L, need);
}

/* encrypt_password(plain, random) -> Base64 of AES-128-CBC(plain) */
int qc_encrypt_password(lua_State *L)
{
    size_t plen, rlen, clen_max;
    const char *plain = luaL_checklstring(L, 1, &plen);
    const char *random = luaL_checklstring(L, 2, &rlen);
    unsigned char key[16], iv[16], *cipher, cipher_local[SMALL_INPUT + 16];
    char *b64, b64_local[4 * ((SMALL_INPUT + 16 + 2) / 3)];
    int clen;

    if (plen > (size_t)0x7fffffff - 32) {
        lua_pushnil(L);
        lua_pushliteral(L, "password too long");
        return 2;
    }
    clen_max = plen + 16;
    cipher = (unsigned char *)scratch(L, cipher_local, sizeof cipher_local, clen_max);
    b64 = (char *)scratch(L, b64_local, sizeof b64_local, 4 * ((clen_max + 2) / 3));
    if (!derive_key_iv(md5_md(L), random, rlen, key, iv) ||
        (clen = aes_cbc(aes_cipher(L), 1, key, iv, (const unsigned char *)plain, (int)plen, cipher)) < 0) {
        ERR_clear_error();
        lua_pushnil(L);
        lua_pushliteral(L, "encryption failed");
        return 2;
    }
    lua_pushlstring(L, b64, b64_encode(cipher, (size_t)clen, b64));
    return 1;
}

/* decrypt_password(b64, random) -> plain, or nil, err */
int qc_decrypt_password(lua_State *L)
{
    size_t blen, rlen;
    const char *b64 = luaL_checklstring(L, 1, &blen);
    const char *random = luaL_checklstring(L, 2, &rlen);
    unsigned char key[16], iv[16], *cipher, *plain;
    unsigned char cipher_local[SMALL_INPUT + 1], plain_local[SMALL_INPUT + 16];
    long clen;
    int plen;

    if (blen > (size_t)0x7fffffff) {
        lua_pushnil(L);
        lua_pushliteral(L, "ciphertext too long");
        return 2;
    }
    cipher = (unsigned char *)scratch(L, cipher_local, sizeof cipher_local, blen / 4 * 3 + 1);
    plain = (unsigned char *)scratch(L, plain_local, sizeof plain_local, blen / 4 * 3 + 16);
    clen = b64_decode(b64, blen, cipher);
    if (clen < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid Base64");
        return 2;
    }
    if (clen == 0 || clen % 16 != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "ciphertext is not a whole number of AES blocks");
        return 2;
    }
    if (!derive_key_iv(md5_md(L), random, rlen, key, iv) ||
        (plen = aes_cbc(aes_cipher(L), 0, key, iv, cipher, (int)clen, plain)) < 0) {
        ERR_clear_error();
        lua_pushnil(L);
        lua_pushliteral(L, "bad padding or wrong key");
        return 2;
    }
    lua_pushlstring(L, (const char *)plain, (size_t)plen);
    return 1;
}

/*
 * random_string(n): n characters of [0-9A-Za-z] from RAND_bytes. Bytes >= 248
 * (= 4 * 62) are rejected so every character is equally likely.
 */
int qc_random_string(lua_State *L)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    lua_Integer n = luaL_checkinteger(L, 1);
    unsigned char pool[64];
    char *out;
    size_t have = 0;

    luaL_argcheck(L, n >= 0 && n <= (1 << 20), 1, "length must be between 0 and 1048576");
    out = (char *)lua_newuserdata(L, (size_t)n + 1);
    while (have < (size_t)n) {
        size_t i;
        if (RAND_bytes(pool, (int)sizeof pool) != 1) {
            ERR_clear_error();
            lua_pushnil(L);
            lua_pushliteral(L, "random generator failed");
            return 2;
        }
        for (i = 0; i < sizeof pool && have < (size_t)n; i++)
            if (pool[i] < 248)
                out[have++] = alphabet[pool[i] % 62];
    }
    OPENSSL_cleanse(pool, sizeof pool);
    lua_pushlstring(L, out, (size_t)n);
    return 1;
}
