/*
 * A libcurl session as a Lua userdata: one easy handle per session, so keep-alive
 * connections, the TLS session cache and the DNS cache survive between requests.
 *
 * session:request{ method, url, headers, body, timeout, connect_timeout, max_body }
 *   -> status, body, headers    or    nil, err, kind
 *
 * Rules kept here:
 *  - no Lua code runs inside curl_easy_perform: the callbacks only append bytes to
 *    C buffers, and Lua values are built after the transfer;
 *  - nothing allocated with malloc is alive while a Lua API call could raise, so a
 *    Lua error can never leak memory or longjmp through libcurl;
 *  - TLS peer and host verification are on unless the session was made with
 *    verify = false; proxies come from the environment, as curl does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core.h"

#define SESSION_MT "quecapi.core.session"
#define MAX_HEADER_BYTES ((size_t)256 * 1024)
#define DEFAULT_MAX_BODY ((size_t)8 * 1024 * 1024)

typedef struct {
    char *data;
    size_t len, cap, limit;
    int overflow; /* set when the limit stopped the transfer */
} buffer_t;

typedef struct {
    CURL *easy;
    int verify;
    char *ca_file;
    buffer_t body, head;
    char errbuf[CURL_ERROR_SIZE];
} session_t;

static int curl_ready = 0;

static int buffer_append(buffer_t *b, const char *p, size_t n)
{
    if (n > b->limit - b->len) {
        b->overflow = 1;
        return 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *data;
        while (cap < b->len + n)
            cap *= 2;
        if ((data = (char *)realloc(b->data, cap)) == NULL)
            return 0;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 1;
}

/* Keep small buffers for the next request; give large ones back. */
static void buffer_reset(buffer_t *b)
{
    if (b->cap > (size_t)1024 * 1024) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->overflow = 0;
}

static void buffer_free(buffer_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buffer_t *b = (buffer_t *)ud;
    return buffer_append(b, p, size * n) ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    buffer_t *b = (buffer_t *)ud;
    size_t len = size * n;
    /* A new status line (after a 1xx or a proxy CONNECT) starts a new header block. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        b->len = 0;
    return buffer_append(b, p, len) ? len : 0;
}

static session_t *check_session(lua_State *L)
{
    return (session_t *)luaL_checkudata(L, 1, SESSION_MT);
}

static void session_release(session_t *s)
{
    if (s->easy != NULL) {
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    free(s->ca_file);
    s->ca_file = NULL;
    buffer_free(&s->body);
    buffer_free(&s->head);
}

/*
 * The options every request of a session shares, set once: the handle keeps them
 * (with its live connections and TLS session cache) from one request to the next.
 */
static void session_setup(session_t *s)
{
    CURL *e = s->easy;
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, s->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, s->verify ? 2L : 0L);
    if (s->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &s->head);
}

/* core.session{ verify = true, ca_file = nil } */
int qc_session_new(lua_State *L)
{
    session_t *s;
    const char *ca_file = NULL;
    int verify = 1;

    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_getfield(L, 1, "verify");
        if (!lua_isnil(L, -1)) {
            luaL_argcheck(L, lua_isboolean(L, -1), 1, "verify must be a boolean");
            verify = lua_toboolean(L, -1);
        }
        lua_getfield(L, 1, "ca_file");
        if (!lua_isnil(L, -1)) {
            luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "ca_file must be a string");
            ca_file = lua_tostring(L, -1);
        }
    }
    s = (session_t *)lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->verify = verify;
    s->body.limit = DEFAULT_MAX_BODY;
    s->head.limit = MAX_HEADER_BYTES;
    luaL_setmetatable(L, SESSION_MT);
    if (ca_file != NULL && (s->ca_file = strdup(ca_file)) == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    if ((s->easy = curl_easy_init()) == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "curl_easy_init failed");
        return 2;
    }
    session_setup(s);
    return 1;
}

/*
 * Optional string field of the request table; raises on a wrong type. The value is
 * left on the stack (one slot per call, nil included): a string that came from an
 * __index metamethod has no other reference, and the collector, run by any later
 * allocation, would free it before curl has copied it.
 */
static const char *opt_string(lua_State *L, int t, const char *name, size_t *len)
{
    const char *v = NULL;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "request.%s must be a string", name);
        v = lua_tolstring(L, -1, len);
    }
    return v;
}

static double opt_number(lua_State *L, int t, const char *name, double dflt)
{
    double v = dflt;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "request.%s must be a number", name);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s) != NULL))
            return 0;
    return 1;
}

static int has_ctl(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 1;
    return 0;
}

/*
 * Copy the headers table into "Name: value" strings kept on the Lua stack (as a
 * list at index `out`), validating every pair before anything is allocated with
 * malloc. Returns an error message for bad runtime data, or NULL.
 */
static const char *collect_headers(lua_State *L, int t, int out)
{
    int n = 0;
    lua_getfield(L, t, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "request.headers must be a table");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        size_t nl, vl;
        const char *name, *value;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "request.headers must map strings to strings");
        name = lua_tolstring(L, -2, &nl);
        value = lua_tolstring(L, -1, &vl);
        if (!is_token(name) || strlen(name) != nl) {
            lua_pop(L, 3);
            return "invalid header name";
        }
        if (has_ctl(value, vl)) {
            lua_pop(L, 3);
            return "header value contains CR, LF or NUL";
        }
        lua_pushvalue(L, -2);
        lua_pushliteral(L, ": ");
        lua_pushvalue(L, -3);
        lua_concat(L, 3);
        lua_rawseti(L, out, ++n);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return NULL;
}

static const char *error_kind(CURLcode rc, const session_t *s)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return "tls";
    case CURLE_WRITE_ERROR:
        return s->body.overflow ? "too_large" : "network";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return "url";
    default:
        return "network";
    }
}

/*
 * Parse the raw header block into { lowercase-name = value }, joining repeats with
 * ", ". A name's repeats are gathered in a list and joined once at the end:
 * joining each as it comes copies the growing value every time, which is quadratic
 * in the block (a 256 KiB block of one short repeated line cost half a second and
 * gigabytes of garbage strings).
 */
static void push_headers(lua_State *L, const buffer_t *h)
{
    size_t i = 0;
    int result, repeats;

    luaL_checkstack(L, LUA_MINSTACK, "response headers");
    lua_newtable(L);
    result = lua_gettop(L);
    lua_newtable(L); /* name -> list of its values, for names seen more than once */
    repeats = result + 1;
    while (i < h->len) {
        size_t end = i, colon;
        char name[128];
        while (end < h->len && h->data[end] != '\n')
            end++;
        for (colon = i; colon < end && h->data[colon] != ':'; colon++)
            ;
        if (colon < end && colon > i && colon - i < sizeof name) {
            size_t vs, ve, k;
            for (k = i; k < colon; k++) {
                char c = h->data[k];
                if (c >= 'A' && c <= 'Z')
                    c = (char)(c - 'A' + 'a');
                name[k - i] = c;
            }
            vs = colon + 1;
            ve = end;
            while (vs < ve && (h->data[vs] == ' ' || h->data[vs] == '\t'))
                vs++;
            while (ve > vs && (h->data[ve - 1] == '\r' || h->data[ve - 1] == ' ' || h->data[ve - 1] == '\t'))
                ve--;
            lua_pushlstring(L, name, colon - i);
            lua_pushvalue(L, -1);
            lua_rawget(L, result); /* name, first value or nil */
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, h->data + vs, ve - vs);
                lua_rawset(L, result);
                i = end + 1;
                continue;
            }
            lua_pushvalue(L, -2);
            lua_rawget(L, repeats); /* name, first value, list or nil */
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_createtable(L, 4, 0);
                lua_insert(L, -2);
                lua_rawseti(L, -2, 1); /* name, list = { first value } */
                lua_pushvalue(L, -2);
                lua_pushvalue(L, -2);
                lua_rawset(L, repeats);
            } else {
                lua_remove(L, -2); /* name, list */
            }
            lua_pushlstring(L, h->data + vs, ve - vs);
            lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
            lua_pop(L, 2);
        }
        i = end + 1;
    }
    lua_pushnil(L);
    while (lua_next(L, repeats)) { /* name, list */
        luaL_Buffer b;
        int list = lua_gettop(L), n = (int)lua_rawlen(L, list), k;
        luaL_buffinit(L, &b);
        for (k = 1; k <= n; k++) {
            if (k > 1)
                luaL_addlstring(&b, ", ", 2);
            lua_rawgeti(L, list, k);
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b); /* name, list, joined */
        lua_pushvalue(L, list - 1);
        lua_insert(L, -2);
        lua_rawset(L, result);
        lua_pop(L, 1); /* name, for lua_next */
    }
    lua_pop(L, 1); /* repeats */
}

/*
 * Seconds -> libcurl milliseconds, rounded up: 0 would mean "no timeout" to
 * libcurl, so a timeout of 0.4 ms must become 1 ms, never 0.
 */
static long timeout_ms(double seconds)
{
    double ms = seconds * 1000;
    long whole = (long)ms;
    if ((double)whole < ms)
        whole++;
    return whole < 1 ? 1 : whole;
}

static int fail(lua_State *L, const char *msg, const char *kind)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, kind);
    return 3;
}

static int says_empty_length(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0 ||
           strcmp(method, "DELETE") == 0;
}

/* The method options, all of them every time: the handle keeps the last request's. */
static void set_method(CURL *e, const char *method, const char *body, size_t blen)
{
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* also clears NOBODY and POST */
    if (strcmp(method, "GET") == 0 && body == NULL)
        return;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    /* POST, PUT, PATCH and DELETE without a body still say Content-Length: 0,
     * which gateways expect (and some require) of them; the cosocket transport
     * does the same. */
    if (body != NULL || says_empty_length(method)) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? blen : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    }
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
}

static int session_request(lua_State *L)
{
    session_t *s = check_session(L);
    const char *url, *method, *body, *herr;
    size_t ulen = 0, mlen = 0, blen = 0, n;
    double timeout, connect_timeout, max_body;
    struct curl_slist *list = NULL;
    CURLcode rc;
    long status = 0;
    int i, nheaders;

    luaL_checktype(L, 2, LUA_TTABLE);
    url = opt_string(L, 2, "url", &ulen);
    if (url == NULL)
        luaL_error(L, "request.url is required");
    method = opt_string(L, 2, "method", &mlen);
    if (method == NULL) {
        method = "GET";
        mlen = 3;
    }
    body = opt_string(L, 2, "body", &blen);
    timeout = opt_number(L, 2, "timeout", 10);
    connect_timeout = opt_number(L, 2, "connect_timeout", 5);
    max_body = opt_number(L, 2, "max_body", DEFAULT_MAX_BODY);
    luaL_argcheck(L, timeout > 0 && timeout <= 1e6 && connect_timeout > 0 && connect_timeout <= 1e6, 2,
                  "timeouts must be between 0 and 1e6 seconds");
    luaL_argcheck(L, max_body >= 0 && max_body <= 1e15, 2, "max_body must be between 0 and 1e15");

    if (s->easy == NULL)
        return fail(L, "session is closed", "closed");
    /* Lengths, not strlen: curl would silently cut both at an embedded NUL. */
    if (!is_token(method) || strlen(method) != mlen)
        return fail(L, "invalid HTTP method", "url");
    if (has_ctl(url, ulen))
        return fail(L, "URL contains CR, LF or NUL", "url");

    lua_newtable(L);
    if ((herr = collect_headers(L, 2, lua_gettop(L))) != NULL)
        return fail(L, herr, "url");
    nheaders = (int)lua_rawlen(L, -1);
    /* From here on nothing may raise until the list is freed. */
    lua_checkstack(L, 8);
    for (i = 1; i <= nheaders; i++) {
        struct curl_slist *next;
        lua_rawgeti(L, -1, i);
        next = curl_slist_append(list, lua_tostring(L, -1));
        lua_pop(L, 1);
        if (next == NULL)
            goto oom;
        list = next;
    }
    /* A body never waits for "100 Continue": the API answers small requests at once. */
    {
        struct curl_slist *next = curl_slist_append(list, "Expect:");
        if (next == NULL)
            goto oom;
        list = next;
    }
    /* libcurl labels posted fields as a form; a request without a body has no type. */
    if (body == NULL) {
        struct curl_slist *next = curl_slist_append(list, "Content-Type:");
        if (next == NULL)
            goto oom;
        list = next;
    }

    buffer_reset(&s->body);
    buffer_reset(&s->head);
    s->body.limit = (size_t)max_body;
    s->errbuf[0] = '\0';
    /* Only what changes per request; session_setup set the rest once. */
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, list);
    set_method(s->easy, method, body, blen);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, timeout_ms(timeout));
    curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms(connect_timeout));

    rc = curl_easy_perform(s->easy);
    /* Both point into this call's memory: never let a later request see them. */
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(list);
    lua_pop(L, 1); /* header strings */

    if (rc != CURLE_OK) {
        const char *kind = error_kind(rc, s);
        if (s->body.overflow) {
            /* %zu, not lua_pushfstring's %d: max_body may exceed an int. */
            char msg[64];
            snprintf(msg, sizeof msg, "response body exceeds %zu bytes", s->body.limit);
            lua_pushnil(L);
            lua_pushstring(L, msg);
            lua_pushstring(L, kind);
            buffer_reset(&s->body);
            return 3;
        }
        n = strlen(s->errbuf);
        lua_pushnil(L);
        lua_pushstring(L, n ? s->errbuf : curl_easy_strerror(rc));
        lua_pushstring(L, kind);
        return 3;
    }
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, s->body.data ? s->body.data : "", s->body.len);
    push_headers(L, &s->head);
    return 3;

oom:
    curl_slist_free_all(list);
    return fail(L, "out of memory", "network");
}

static int session_close(lua_State *L)
{
    session_release(check_session(L));
    return 0;
}

static int session_tostring(lua_State *L)
{
    session_t *s = check_session(L);
    lua_pushfstring(L, "quecapi.core.session (%s)", s->easy ? "open" : "closed");
    return 1;
}

int qc_http_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"request", session_request},
        {"close", session_close},
        {NULL, NULL},
    };
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return luaL_error(L, "curl_global_init failed");
        curl_ready = 1;
    }
    if (luaL_newmetatable(L, SESSION_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, session_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, session_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, session_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    return 0;
}
