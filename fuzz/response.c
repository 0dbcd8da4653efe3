/*
 * A whole session:request against a server that answers with untrusted bytes:
 * libcurl's own parsing feeds our header and body callbacks (1xx blocks, chunked
 * bodies and trailers, gzip and deflate, short and over-long bodies, max_body),
 * then the results are built in Lua.
 *
 * A thread serves on 127.0.0.1: for every connection it reads the request head,
 * writes the current input and closes, so each request ends as soon as curl has
 * read what there is.
 *
 * Input: [flags][raw response...]
 *   flags bits 0-1: max_body 0, 16, 4096 or the default;  bit 2: HEAD instead of GET.
 *
 * Properties: request never raises and answers status, body, headers or nil, err,
 * kind; a body within max_body was kept whole.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *answer;
static size_t answer_len;
static int listener = -1;
static char url[64];

static void serve(int fd)
{
    char buf[4096];
    size_t have = 0, sent = 0;
    unsigned char *copy;
    size_t len;

    /* The request head: curl sends it whole before it reads anything. */
    while (have < sizeof buf) {
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have >= 4 && memcmp(buf + have - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    pthread_mutex_lock(&lock);
    len = answer_len;
    copy = (unsigned char *)malloc(len ? len : 1);
    if (copy != NULL)
        memcpy(copy, answer, len);
    pthread_mutex_unlock(&lock);
    while (copy != NULL && sent < len) {
        ssize_t w = send(fd, copy + sent, len - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    free(copy);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void *server(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd >= 0)
            serve(fd);
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    pthread_t t;

    (void)argc;
    (void)argv;
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(listener >= 0);
    CHECK(bind(listener, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(listener, 16) == 0);
    CHECK(getsockname(listener, (struct sockaddr *)&a, &alen) == 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/fuzz", (unsigned)ntohs(a.sin_port));
    CHECK(pthread_create(&t, NULL, server, NULL) == 0);
    CHECK(pthread_detach(t) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const lua_Integer limits[] = {0, 16, 4096, -1};
    input_t in = {data, size};
    unsigned flags = take_byte(&in);
    lua_Integer limit = limits[flags & 3];
    lua_State *L = fuzz_state(0);

    pthread_mutex_lock(&lock);
    free(answer);
    answer_len = in.n;
    answer = (unsigned char *)malloc(in.n ? in.n : 1);
    CHECK(answer != NULL);
    memcpy(answer, in.p, in.n);
    pthread_mutex_unlock(&lock);

    push_core_fn(L, "session");
    call_ok(L, 0, 1);
    lua_getfield(L, -1, "request");
    lua_pushvalue(L, -2);
    lua_newtable(L);
    lua_pushstring(L, url);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, (flags & 4) ? "HEAD" : "GET");
    lua_setfield(L, -2, "method");
    lua_pushnumber(L, 5);
    lua_setfield(L, -2, "timeout");
    if (limit >= 0) {
        lua_pushinteger(L, limit);
        lua_setfield(L, -2, "max_body");
    }
    call_ok(L, 2, 3);
    if (lua_isnil(L, -3)) {
        CHECK(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING);
    } else {
        CHECK(lua_isinteger(L, -3) && lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1));
        CHECK(limit < 0 || (lua_Integer)lua_rawlen(L, -2) <= limit);
    }
    lua_close(L);
    return 0;
}
