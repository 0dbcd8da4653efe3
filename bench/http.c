/*
 * The limit for an HTTPS round trip from a client library: a C loop on one
 * reused libcurl easy handle (keep-alive connection, TLS session kept), asking
 * for the same URL with the same headers as quecapi's user_device_list and
 * keeping the body in memory, as quecapi's core does.
 *
 *   http URL CA_FILE TOKEN SECONDS
 *
 * prints "c_http\t<requests per second>" and "c_http_cpu\t<CPU microseconds of
 * this process per request>". Runs for SECONDS after one warm-up request; any
 * answer other than HTTP 200 with a non-empty body stops it with an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

typedef struct {
    char *data;
    size_t len, cap;
} buffer_t;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buffer_t *b = (buffer_t *)ud;
    size_t len = size * n;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16384;
        char *data;
        while (cap < b->len + len)
            cap *= 2;
        if ((data = (char *)realloc(b->data, cap)) == NULL)
            return 0;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return len;
}

/* One GET; 0 when it answered 200 with a body. */
static int get(CURL *e, buffer_t *body)
{
    long status = 0;
    CURLcode rc;
    body->len = 0;
    rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
        fprintf(stderr, "http: %s\n", curl_easy_strerror(rc));
        return 1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || body->len == 0) {
        fprintf(stderr, "http: HTTP %ld, %zu bytes\n", status, body->len);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    CURL *e;
    struct curl_slist *headers = NULL;
    buffer_t body = {NULL, 0, 0};
    char auth[4096];
    double seconds, start, elapsed;
    clock_t cpu;
    long n = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: %s URL CA_FILE TOKEN SECONDS\n", argv[0]);
        return 2;
    }
    seconds = atof(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    e = curl_easy_init();
    snprintf(auth, sizeof auth, "Authorization: %s", argv[3]);
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "User-Agent: bench-libcurl");
    headers = curl_slist_append(headers, auth);
    curl_easy_setopt(e, CURLOPT_URL, argv[1]);
    curl_easy_setopt(e, CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);

    if (get(e, &body))
        return 1;
    start = now();
    cpu = clock();
    do {
        if (get(e, &body))
            return 1;
        n++;
    } while ((elapsed = now() - start) < seconds);
    printf("c_http\t%.1f\n", (double)n / elapsed);
    printf("c_http_cpu\t%.1f\n", (double)(clock() - cpu) / CLOCKS_PER_SEC / (double)n * 1e6);

    curl_slist_free_all(headers);
    curl_easy_cleanup(e);
    free(body.data);
    curl_global_cleanup();
    return 0;
}
