/*
 * The limit for an HTTPS round trip from a client library: a C loop on one
 * reused libcurl easy handle (keep-alive connection, TLS session kept), asking
 * for the same URL with the same headers as quecapi's user_device_list and
 * keeping the body in memory, as quecapi's core does.
 *
 *   http URL CA_FILE TOKEN SECONDS [fresh]
 *
 * prints "c_http\t<requests per second>" and "c_http_cpu\t<CPU microseconds of
 * this process per request>". Runs for SECONDS after one warm-up request; any
 * answer other than HTTP 200 with a non-empty body stops it with an error.
 *
 * With "fresh" it runs each request as quecapi's core does (csrc/http.c): a new
 * easy handle per request, with the same options, on one share handle and one
 * multi handle; it prints "c_http_fresh" and "c_http_fresh_cpu". What that
 * costs over the reused handle is what the core's protection from
 * curl/curl#11101 costs.
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

/* For "fresh": the handles a new easy handle joins, and its options. */
static CURLSH *share;
static CURLM *multi;
static const char *url, *ca_file;
static struct curl_slist *headers;

static void set_options(CURL *e, buffer_t *body)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
}

/* A transfer on a new easy handle in the shared multi handle, as the core runs it. */
static CURLcode perform_fresh(buffer_t *body, long *status)
{
    CURL *e = curl_easy_init();
    CURLcode rc = CURLE_FAILED_INIT;
    CURLMsg *msg;
    int running, left;
    if (e == NULL)
        return rc;
    set_options(e, body);
    curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_multi_add_handle(multi, e);
    for (;;) {
        curl_multi_perform(multi, &running);
        if ((msg = curl_multi_info_read(multi, &left)) != NULL && msg->msg == CURLMSG_DONE) {
            rc = msg->data.result;
            break;
        }
        if (curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    }
    curl_multi_remove_handle(multi, e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    return rc;
}

/* One GET, on `e` or (NULL) on a fresh handle; 0 when it answered 200 with a body. */
static int get(CURL *e, buffer_t *body)
{
    long status = 0;
    CURLcode rc;
    body->len = 0;
    rc = e ? curl_easy_perform(e) : perform_fresh(body, &status);
    if (rc != CURLE_OK) {
        fprintf(stderr, "http: %s\n", curl_easy_strerror(rc));
        return 1;
    }
    if (e)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || body->len == 0) {
        fprintf(stderr, "http: HTTP %ld, %zu bytes\n", status, body->len);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    CURL *e = NULL;
    buffer_t body = {NULL, 0, 0};
    char auth[4096];
    double seconds, start, elapsed;
    clock_t cpu;
    long n = 0;
    int fresh = argc == 6 && strcmp(argv[5], "fresh") == 0;
    const char *name = fresh ? "c_http_fresh" : "c_http";

    if (argc != 5 && !fresh) {
        fprintf(stderr, "usage: %s URL CA_FILE TOKEN SECONDS [fresh]\n", argv[0]);
        return 2;
    }
    url = argv[1];
    ca_file = argv[2];
    seconds = atof(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(auth, sizeof auth, "Authorization: %s", argv[3]);
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "User-Agent: bench-libcurl");
    headers = curl_slist_append(headers, auth);
    if (fresh) {
        share = curl_share_init();
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        multi = curl_multi_init();
    } else {
        e = curl_easy_init();
        set_options(e, &body);
    }

    if (get(e, &body))
        return 1;
    start = now();
    cpu = clock();
    do {
        if (get(e, &body))
            return 1;
        n++;
    } while ((elapsed = now() - start) < seconds);
    printf("%s\t%.1f\n", name, (double)n / elapsed);
    printf("%s_cpu\t%.1f\n", name, (double)(clock() - cpu) / CLOCKS_PER_SEC / (double)n * 1e6);

    curl_slist_free_all(headers);
    if (e)
        curl_easy_cleanup(e);
    if (multi)
        curl_multi_cleanup(multi);
    if (share)
        curl_share_cleanup(share);
    free(body.data);
    curl_global_cleanup();
    return 0;
}
