/*
 * The limit for quecapi's primitives: C loops calling OpenSSL EVP directly.
 *
 *   prims SIGNING_STRING PASSWORD RANDOM SECONDS
 *
 * prints one line per loop, "<name>\t<calls per second>\t<last result>":
 *
 *   c_sha         EVP_Digest + hex with the SHA-256 implementation fetched once: the
 *                 calls quecapi.sha256_hex makes
 *   c_enc         MD5 key schedule, AES-128-CBC, Base64, implementations fetched once:
 *                 the calls encrypt_password makes
 *   c_sha_getter  the same through EVP_sha256(), looked up on every call
 *   c_enc_getter  the same through EVP_md5() and EVP_aes_128_cbc()
 *
 * On OpenSSL 3 a one-shot call on EVP_sha256() looks its implementation up in
 * the provider store every time; the *_getter loops show what that costs. The
 * results are printed so the driver can check they equal quecapi's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#define BATCH 1000

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void to_hex(const unsigned char *in, size_t n, char *out, const char *digits)
{
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static size_t b64(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

typedef struct {
    const char *text, *password, *random;
    const EVP_MD *sha256, *md5;
    const EVP_CIPHER *aes;
    char out[256];
} job_t;

static void sha(job_t *j)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (!EVP_Digest(j->text, strlen(j->text), d, &dlen, j->sha256, NULL))
        abort();
    to_hex(d, dlen, j->out, "0123456789abcdef");
}

/* The platform's password cipher, step by step as csrc/crypto.c does it. */
static void enc(job_t *j)
{
    unsigned char d[16], key[16], iv[16], cipher[96];
    char hex[33];
    unsigned int dlen = 0;
    int n = 0, tail = 0;
    EVP_CIPHER_CTX *ctx;
    size_t plen = strlen(j->password);

    if (plen > 64 || !EVP_Digest(j->random, strlen(j->random), d, &dlen, j->md5, NULL))
        abort();
    to_hex(d, 16, hex, "0123456789ABCDEF");
    memcpy(key, hex + 8, 16);
    memcpy(iv, key + 8, 8);
    memcpy(iv + 8, key, 8);
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL || !EVP_CipherInit_ex(ctx, j->aes, NULL, key, iv, 1) ||
        !EVP_CipherUpdate(ctx, cipher, &n, (const unsigned char *)j->password, (int)plen) ||
        !EVP_CipherFinal_ex(ctx, cipher + n, &tail))
        abort();
    EVP_CIPHER_CTX_free(ctx);
    b64(cipher, (size_t)(n + tail), j->out);
}

/* Calls per second of f over `seconds`, after a warm-up of a tenth of that. */
static double rate(void (*f)(job_t *), job_t *j, double seconds)
{
    double start = now(), elapsed;
    long n = 0;
    int i;
    while (now() - start < seconds / 10)
        f(j);
    start = now();
    do {
        for (i = 0; i < BATCH; i++)
            f(j);
        n += BATCH;
    } while ((elapsed = now() - start) < seconds);
    return (double)n / elapsed;
}

static void report(const char *name, void (*f)(job_t *), job_t *j, double seconds)
{
    double r = rate(f, j, seconds);
    printf("%s\t%.0f\t%s\n", name, r, j->out);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    job_t j;
    double seconds;
    EVP_MD *sha256, *md5;
    EVP_CIPHER *aes;

    if (argc != 5) {
        fprintf(stderr, "usage: %s SIGNING_STRING PASSWORD RANDOM SECONDS\n", argv[0]);
        return 2;
    }
    j.text = argv[1];
    j.password = argv[2];
    j.random = argv[3];
    seconds = atof(argv[4]);

    j.sha256 = EVP_sha256();
    j.md5 = EVP_md5();
    j.aes = EVP_aes_128_cbc();
    report("c_sha_getter", sha, &j, seconds);
    report("c_enc_getter", enc, &j, seconds);

    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    aes = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    if (sha256 == NULL || md5 == NULL || aes == NULL)
        return 1;
    j.sha256 = sha256;
    j.md5 = md5;
    j.aes = aes;
    report("c_sha", sha, &j, seconds);
    report("c_enc", enc, &j, seconds);

    EVP_MD_free(sha256);
    EVP_MD_free(md5);
    EVP_CIPHER_free(aes);
    return 0;
}
