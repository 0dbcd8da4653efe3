/*
 * A libcurl session as a Lua userdata: one share handle per session, so keep-alive
 * connections, the TLS session cache and the DNS cache survive between requests,
 * one multi handle that runs its transfers, and a fresh easy handle per request.
 *
 * Reusing one easy handle is what libcurl's documentation suggests, but libcurl
 * 7.83 to 8.0 (Debian 12 has 7.88) keep a pointer to the last stored header across
 * requests of a handle after freeing it (curl/curl#11101): an answer whose first
 * header line is a continuation makes libcurl read and free that memory again. A
 * hostile server could corrupt the heap; a handle that has never stored a header
 * cannot. Nothing short of a new handle clears that pointer: curl_easy_reset keeps
 * it, and every answer with a header leaves it behind, so no earlier answer can
 * vouch for the handle. The multi handle is the session's own rather than the one
 * curl_easy_perform makes for each easy handle: that one comes with a socket pair
 * (its wake-up channel) and hashes, made and torn down per request, which cost
 * more than the easy handle itself.
 *
 * session:request{ method, url, headers, body, timeout, connect_timeout, max_body, max_header }
 *   -> status, body, headers    or    nil, err, kind
 *
 * The request's rules (methods, URLs, header names and values, defaults, limits)
 * are quecapi.transport.contract's, checked in Lua before a request gets here: the
 * curl transport hands this file what contract.check returns. What stays here is
 * what protects memory and the process, whoever the caller is:
 *  - argument types, checked before anything is read, so a wrong one raises;
 *  - no NUL in the method, the URL or a header: libcurl takes C strings and would
 *    send a string cut at the NUL, not the one that was checked;
 *  - timeouts, max_body and max_header in range: converting a double outside the
 *    range of long or size_t (or NaN) is undefined behaviour in C;
 *  - HEADER_CAP, a compile-time cap on what a header block may take in memory,
 *    whatever max_header asks: the buffer is C's to bound. The transports ask for
 *    the contract's smaller limit.
 * A caller of the core itself (the spec helpers, tools/rss-check) may leave the
 * optional fields out; the FALLBACK_ values then apply (the contract's defaults,
 * written again because C cannot read them: spec/unit/transport_contract_spec.lua
 * checks that they agree).
 *
 * The answer is held to the contract: its header block becomes a table by the
 * rules of quecapi.transport.http1 (lowercase names, repeats joined with ", ",
 * folded lines unfolded), chunked trailers are counted against the header limit
 * and dropped, and a limit exceeded reads as the ngx transport says it.
 *
 * Rules kept here:
 *  - no Lua code runs inside curl_easy_perform: the callbacks only append bytes to
 *    C buffers, and Lua values are built after the transfer;
 *  - nothing allocated with malloc is alive while a Lua API call could raise, so a
 *    Lua error can never leak memory or longjmp through libcurl;
 *  - TLS peer and host verification are on unless the session was made with
 *    verify = false; proxies come from the environment, as curl does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core.h"

#if defined(LIBCURL_VERSION_NUM) && LIBCURL_VERSION_NUM < 0x073900
#error "libcurl 7.57.0 or newer is needed: connections are kept in a share handle"
#endif

#define SESSION_MT "quecapi.core.session"
#define HEADER_CAP ((size_t)256 * 1024)
#define FALLBACK_TIMEOUT 10.0
#define FALLBACK_CONNECT_TIMEOUT 5.0
#define FALLBACK_MAX_BODY (8.0 * 1024 * 1024)
/* 1e6 s is 1e9 ms, within a 32-bit long; 1e15 bytes is within a 64-bit size_t,
 * and to_size caps it at SIZE_MAX where size_t is narrower. */
#define MAX_TIMEOUT 1e6
#define MAX_BODY 1e15

typedef struct {
    char *data;
    size_t len, cap, limit;
    int overflow; /* set when the limit stopped the transfer */
} buffer_t;

/*
 * What the header callback has seen of one answer. libcurl passes every header
 * block to it: a 1xx block before the final one, and after a chunked body the
 * trailer fields. Only the last block is kept; trailer fields are counted and
 * dropped, as the ngx transport drops them.
 */
typedef struct {
    buffer_t block; /* the current block: status line, fields, empty line */
    size_t trailer; /* bytes of trailer fields so far */
    int in_block; /* a status line was seen, its block's empty line not yet */
    int informational; /* the current block is a 1xx other than 101: another follows */
    int final; /* the final block is over: what follows is a trailer */
    int trailer_overflow;
} head_t;

typedef struct {
    CURLSH *share; /* NULL once closed */
    CURLM *multi; /* runs each request's easy handle; NULL once closed */
    int verify;
    char *ca_file;
    buffer_t body;
    head_t head;
    buffer_t line; /* scratch for one "Name: value" request header */
    char errbuf[CURL_ERROR_SIZE];
} session_t;

static int curl_ready = 0;

static int buffer_append(buffer_t *b, const char *p, size_t n)
{
    if (n == 0) /* an empty buffer has no data pointer to add an offset to */
        return 1;
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

static void head_reset(head_t *h)
{
    buffer_reset(&h->block);
    h->trailer = 0;
    h->in_block = h->informational = h->final = h->trailer_overflow = 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buffer_t *b = (buffer_t *)ud;
    return buffer_append(b, p, size * n) ? size * n : 0;
}

/* White space as the ngx transport's header rules say: SP and HT to CR, never
 * what a locale adds. */
static int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* A status line ("HTTP/1.1 103 Early Hints", "HTTP/2 100") of a 1xx answer that
 * another block follows: every 1xx but 101, which ends the exchange. */
static int is_informational(const char *p, size_t len)
{
    const char *space = (const char *)memchr(p, ' ', len);
    size_t at; /* where the status code starts */
    if (space == NULL)
        return 0;
    at = (size_t)(space - p) + 1;
    if (len < at + 3 || p[at] != '1' || p[at + 1] < '0' || p[at + 1] > '9' || p[at + 2] < '0' ||
        p[at + 2] > '9')
        return 0;
    return !(p[at + 1] == '0' && p[at + 2] == '1');
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    head_t *h = (head_t *)ud;
    size_t len = size * n;
    if (len == 0)
        return 0;
    if (h->final) { /* a trailer field of a chunked body */
        if (len > h->block.limit - h->trailer) {
            h->trailer_overflow = 1;
            return 0;
        }
        h->trailer += len;
        return len;
    }
    if (!h->in_block) {
        /* A status line starts a new block: the final one follows a 1xx. */
        if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
            h->block.len = 0;
            h->in_block = 1;
            h->informational = is_informational(p, len);
        }
    } else if (len <= 2 && (p[0] == '\n' || (p[0] == '\r' && (len == 1 || p[1] == '\n')))) {
        h->in_block = 0;
        h->final = !h->informational;
    }
    return buffer_append(&h->block, p, len) ? len : 0;
}

static session_t *check_session(lua_State *L)
{
    return (session_t *)luaL_checkudata(L, 1, SESSION_MT);
}

static void session_release(session_t *s)
{
    if (s->multi != NULL) {
        curl_multi_cleanup(s->multi); /* no easy handle is left in it */
        s->multi = NULL;
    }
    if (s->share != NULL) {
        curl_share_cleanup(s->share); /* closes the connections it kept */
        s->share = NULL;
    }
    free(s->ca_file);
    s->ca_file = NULL;
    buffer_free(&s->body);
    buffer_free(&s->head.block);
    buffer_free(&s->line);
}

/* The options every request of a session has. */
static void session_setup(session_t *s, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_SHARE, s->share);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    /* A proxy's CONNECT answer is not the server's: keep it out of the header
     * callback, where it would read as the final block. */
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
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
    size_t ca_len = 0;
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
            ca_file = lua_tolstring(L, -1, &ca_len);
            /* a path cut at a NUL would name another file */
            luaL_argcheck(L, strlen(ca_file) == ca_len, 1, "ca_file contains NUL");
        }
    }
    s = (session_t *)lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    s->verify = verify;
    s->body.limit = (size_t)FALLBACK_MAX_BODY;
    s->head.block.limit = HEADER_CAP;
    s->line.limit = SIZE_MAX;
    luaL_setmetatable(L, SESSION_MT);
    if (ca_file != NULL && (s->ca_file = strdup(ca_file)) == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    if ((s->share = curl_share_init()) == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "curl_share_init failed");
        return 2;
    }
    /* One Lua state at a time uses a session: no lock callbacks are needed. */
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if ((s->multi = curl_multi_init()) == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "curl_multi_init failed");
        return 2;
    }
    /* curl_easy_perform's own multi handle keeps as many idle connections as an
     * easy handle's default (CURLOPT_MAXCONNECTS, 5); so does this one. */
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 5L);
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

/* The length of s is n: no NUL inside. */
static int no_nul(const char *s, size_t n)
{
    return memchr(s, '\0', n) == NULL;
}

/* ASCII case-insensitive equality of a header name with a lowercase one. */
static int name_is(const char *name, size_t n, const char *lower)
{
    size_t i;
    if (strlen(lower) != n)
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return 0;
    }
    return 1;
}

/* Only blanks (or nothing): libcurl would take "Name: " as "do not send Name". */
static int is_blank(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/*
 * Check the headers table: string names and values without NUL (a NUL is an error
 * message returned, a wrong type raises). *has_type and *has_accept say whether
 * the caller gave Content-Type and Accept. Allocates nothing with malloc, so
 * raising here leaks nothing; add_headers then builds the list without a check.
 */
static const char *check_headers(lua_State *L, int headers, int *has_type, int *has_accept)
{
    lua_pushnil(L);
    while (lua_next(L, headers)) {
        size_t nl, vl;
        const char *name, *value;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "request.headers must map strings to strings");
        name = lua_tolstring(L, -2, &nl);
        value = lua_tolstring(L, -1, &vl);
        if (!no_nul(name, nl)) {
            lua_pop(L, 2);
            return "header name contains NUL";
        }
        if (!no_nul(value, vl)) {
            lua_pop(L, 2);
            return "header value contains NUL";
        }
        if (name_is(name, nl, "content-type"))
            *has_type = 1;
        else if (name_is(name, nl, "accept"))
            *has_accept = 1;
        lua_pop(L, 1);
    }
    return NULL;
}

/*
 * Append "Name: value" (or "Name;", libcurl's way to send a header with no value)
 * for every pair of the headers table that check_headers accepted, written in the
 * session's scratch buffer and copied by curl_slist_append. No Lua string is made:
 * lua_next and lua_tolstring on strings cannot raise, so the list (malloc'd) is
 * safe. Returns 0 when out of memory; *list holds what was built either way.
 */
static int add_headers(lua_State *L, session_t *s, int headers, struct curl_slist **list)
{
    buffer_t *b = &s->line;
    lua_pushnil(L);
    while (lua_next(L, headers)) {
        size_t nl, vl;
        const char *name = lua_tolstring(L, -2, &nl), *value = lua_tolstring(L, -1, &vl);
        struct curl_slist *next;
        int blank = is_blank(value, vl);
        lua_pop(L, 1);
        b->len = 0;
        if (!buffer_append(b, name, nl) || !buffer_append(b, blank ? ";" : ": ", blank ? 1 : 2) ||
            (!blank && !buffer_append(b, value, vl)) || !buffer_append(b, "", 1)) {
            lua_pop(L, 1);
            return 0;
        }
        if ((next = curl_slist_append(*list, b->data)) == NULL) {
            lua_pop(L, 1);
            return 0;
        }
        *list = next;
    }
    return 1;
}

/* Add a fixed line to the list; 0 when out of memory. */
static int add_line(struct curl_slist **list, const char *line)
{
    struct curl_slist *next = curl_slist_append(*list, line);
    if (next == NULL)
        return 0;
    *list = next;
    return 1;
}

/*
 * Run one transfer on the session's multi handle, as curl_easy_perform runs it
 * on a multi handle of its own (wait, then perform, until the transfer is done).
 */
static CURLcode perform(session_t *s, CURL *e)
{
    CURLMcode mc = curl_multi_add_handle(s->multi, e);
    CURLcode result = CURLE_OK;
    int done = 0;
    while (!done && mc == CURLM_OK) {
        int running = 0;
        mc = curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
        if (mc == CURLM_OK)
            mc = curl_multi_perform(s->multi, &running);
        if (mc == CURLM_OK && !running) {
            int left;
            CURLMsg *msg = curl_multi_info_read(s->multi, &left);
            if (msg != NULL) {
                result = msg->data.result;
                done = 1;
            }
        }
    }
    if (mc != CURLM_OK)
        result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_BAD_FUNCTION_ARGUMENT;
    curl_multi_remove_handle(s->multi, e);
    return result;
}

static const char *error_kind(CURLcode rc, const session_t *s, CURL *e)
{
    long sent = 0;
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
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* After the request went out, the server's answer was not HTTP (a bad
         * status line, HTTP/0.9); before, the URL's scheme was refused. */
        curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent);
        return sent > 0 ? "network" : "url";
    case CURLE_URL_MALFORMAT:
        return "url";
    default:
        return "network";
    }
}

/* Add `sep` and the string on top of the stack (popped) to the pieces of the
 * field whose name is at index `name`: its list in `pieces`, begun with the
 * field's first value from `result` at its first repeat or continuation. */
static void add_piece(lua_State *L, int result, int pieces, int name, const char *sep)
{
    int list;
    lua_pushvalue(L, name);
    lua_rawget(L, pieces);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 4, 0);
        lua_pushvalue(L, name);
        lua_rawget(L, result);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, name);
        lua_pushvalue(L, -2);
        lua_rawset(L, pieces);
    }
    list = lua_gettop(L);
    lua_pushstring(L, sep);
    lua_rawseti(L, list, (int)lua_rawlen(L, list) + 1);
    lua_pushvalue(L, list - 1);
    lua_rawseti(L, list, (int)lua_rawlen(L, list) + 1);
    lua_pop(L, 2); /* list, string */
}

/*
 * Parse the raw header block into { lowercase-name = value } by the rules of
 * quecapi.transport.http1: the status line skipped; a line that starts with a
 * space or tab continues the field before it, after one space (none while that
 * value is empty); a line whose name is empty or holds white space is ignored,
 * with the lines that continue it; values trimmed of white space; repeats joined
 * with ", ". A line without a colon, or a continuation with no field before it,
 * makes the block malformed: 0 is returned and nothing pushed (libcurl refuses
 * both itself, but not every version does).
 *
 * The pieces of a name seen more than once are gathered in a list and joined
 * once at the end: joining each as it comes copies the growing value every time,
 * which is quadratic in the block (a 256 KiB block of one short repeated line cost
 * half a second and gigabytes of garbage strings). Names are lowercased in place:
 * the block is the session's.
 */
static int push_headers(lua_State *L, buffer_t *h)
{
    size_t i = 0;
    int result, pieces, last, fields = 0, empty = 0;
    char *d = h->data;

    luaL_checkstack(L, LUA_MINSTACK, "response headers");
    lua_newtable(L);
    result = lua_gettop(L);
    lua_newtable(L); /* name -> list of its pieces, for names seen more than once */
    pieces = result + 1;
    lua_pushnil(L); /* the name of the field before this line, or nil */
    last = result + 2;
    if (h->len >= 5 && memcmp(d, "HTTP/", 5) == 0) { /* the status line */
        while (i < h->len && d[i] != '\n')
            i++;
        i++;
    }
    for (; i < h->len; i++) {
        size_t end = i, stop, colon, k, vs, ve;
        while (end < h->len && d[end] != '\n')
            end++;
        stop = end;
        if (stop > i && d[stop - 1] == '\r')
            stop--;
        if (stop == i) { /* the block's empty line */
            i = end;
            continue;
        }
        if (d[i] == ' ' || d[i] == '\t') {
            if (fields == 0)
                goto malformed;
            vs = i;
            ve = stop;
            while (vs < ve && is_space(d[vs]))
                vs++;
            while (ve > vs && is_space(d[ve - 1]))
                ve--;
            if (ve > vs && !lua_isnil(L, last)) {
                lua_pushlstring(L, d + vs, ve - vs);
                add_piece(L, result, pieces, last, empty ? "" : " ");
                empty = 0;
            }
            i = end;
            continue;
        }
        fields++;
        if (memchr(d + i, ':', stop - i) == NULL)
            goto malformed;
        for (colon = i; d[colon] != ':' && !is_space(d[colon]); colon++)
            ;
        if (colon == i || d[colon] != ':') { /* an empty name, or white space in it */
            lua_pushnil(L);
            lua_replace(L, last);
            i = end;
            continue;
        }
        for (k = i; k < colon; k++)
            if (d[k] >= 'A' && d[k] <= 'Z')
                d[k] = (char)(d[k] - 'A' + 'a');
        vs = colon + 1;
        ve = stop;
        while (vs < ve && is_space(d[vs]))
            vs++;
        while (ve > vs && is_space(d[ve - 1]))
            ve--;
        empty = ve == vs;
        lua_pushlstring(L, d + i, colon - i);
        lua_replace(L, last);
        lua_pushvalue(L, last);
        lua_rawget(L, result);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushvalue(L, last);
            lua_pushlstring(L, d + vs, ve - vs);
            lua_rawset(L, result);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, d + vs, ve - vs);
            add_piece(L, result, pieces, last, ", ");
        }
        i = end;
    }
    lua_pop(L, 1); /* last */
    lua_pushnil(L);
    while (lua_next(L, pieces)) { /* name, list */
        luaL_Buffer b;
        int list = lua_gettop(L), n = (int)lua_rawlen(L, list), k;
        luaL_buffinit(L, &b);
        for (k = 1; k <= n; k++) {
            lua_rawgeti(L, list, k);
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b); /* name, list, joined */
        lua_pushvalue(L, list - 1);
        lua_insert(L, -2);
        lua_rawset(L, result);
        lua_pop(L, 1); /* name, for lua_next */
    }
    lua_pop(L, 1); /* pieces */
    return 1;

malformed:
    lua_pop(L, 3);
    return 0;
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

/* The method options of a request. */
static void set_method(CURL *e, const char *method, const char *body, size_t blen)
{
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

/* A limit in bytes as a size_t: max_body may exceed a 32-bit size_t. */
static size_t to_size(double v)
{
    return v >= (double)SIZE_MAX ? SIZE_MAX : (size_t)v;
}

/* The error of a transfer that libcurl ended, of the kind error_kind found. */
static int transfer_failed(lua_State *L, session_t *s, CURLcode rc, const char *kind)
{
    /* %zu, not lua_pushfstring's %d: the limits may exceed an int. */
    char msg[64];
    if (s->body.overflow) {
        snprintf(msg, sizeof msg, "response body exceeds %zu bytes", s->body.limit);
        buffer_reset(&s->body);
        return fail(L, msg, kind);
    }
    if (s->head.block.overflow || s->head.trailer_overflow) {
        snprintf(msg, sizeof msg, "response %s exceeds %zu bytes",
                 s->head.trailer_overflow ? "trailer" : "header", s->head.block.limit);
        return fail(L, msg, "network");
    }
    return fail(L, strlen(s->errbuf) ? s->errbuf : curl_easy_strerror(rc), kind);
}

static int session_request(lua_State *L)
{
    session_t *s = check_session(L);
    const char *url, *method, *body, *herr, *kind;
    size_t ulen = 0, mlen = 0, blen = 0;
    double timeout, connect_timeout, max_body, max_header;
    struct curl_slist *list = NULL;
    CURL *e;
    CURLcode rc;
    long status = 0;
    int headers = 0, has_type = 0, has_accept = 0;

    luaL_checktype(L, 2, LUA_TTABLE);
    url = opt_string(L, 2, "url", &ulen);
    if (url == NULL)
        return luaL_error(L, "request.url is required");
    method = opt_string(L, 2, "method", &mlen);
    if (method == NULL) {
        method = "GET";
        mlen = 3;
    }
    body = opt_string(L, 2, "body", &blen);
    timeout = opt_number(L, 2, "timeout", FALLBACK_TIMEOUT);
    connect_timeout = opt_number(L, 2, "connect_timeout", FALLBACK_CONNECT_TIMEOUT);
    max_body = opt_number(L, 2, "max_body", FALLBACK_MAX_BODY);
    max_header = opt_number(L, 2, "max_header", (double)HEADER_CAP);
    /* Written so that NaN fails too; the contract raises first for the same values. */
    luaL_argcheck(
        L, timeout > 0 && timeout <= MAX_TIMEOUT && connect_timeout > 0 && connect_timeout <= MAX_TIMEOUT, 2,
        "timeouts must be between 0 and 1e6 seconds");
    luaL_argcheck(L, max_body >= 0 && max_body <= MAX_BODY, 2, "max_body must be between 0 and 1e15");
    luaL_argcheck(L, max_header >= 0 && max_header <= (double)HEADER_CAP, 2,
                  "max_header must be between 0 and 262144 (HEADER_CAP)");

    if (s->multi == NULL)
        return fail(L, "session is closed", "closed");
    /* Lengths, not strlen: curl would silently cut both at an embedded NUL. */
    if (!no_nul(method, mlen))
        return fail(L, "HTTP method contains NUL", "url");
    if (!no_nul(url, ulen))
        return fail(L, "URL contains NUL", "url");

    lua_getfield(L, 2, "headers"); /* kept on the stack: its strings stay alive */
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return luaL_error(L, "request.headers must be a table");
        headers = lua_gettop(L);
        if ((herr = check_headers(L, headers, &has_type, &has_accept)) != NULL)
            return fail(L, herr, "url");
    }
    /* From here on nothing may raise until the list is freed. */
    lua_checkstack(L, 8);
    if (headers != 0 && !add_headers(L, s, headers, &list))
        goto oom;
    /* A body never waits for "100 Continue": the API answers small requests at once.
     * libcurl labels posted fields as a form and accepts any type: the request's
     * headers are the caller's alone, as on the ngx transport. */
    if (!add_line(&list, "Expect:") || (!has_type && !add_line(&list, "Content-Type:")) ||
        (!has_accept && !add_line(&list, "Accept:")))
        goto oom;

    if ((e = curl_easy_init()) == NULL)
        goto oom;
    buffer_reset(&s->body);
    head_reset(&s->head);
    s->body.limit = to_size(max_body);
    s->head.block.limit = (size_t)max_header;
    s->errbuf[0] = '\0';
    session_setup(s, e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    set_method(e, method, body, blen);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms(timeout));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms(connect_timeout));

    rc = perform(s, e);
    kind = rc == CURLE_OK ? NULL : error_kind(rc, s, e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e); /* its connection stays in the share */
    curl_slist_free_all(list);

    if (rc != CURLE_OK)
        return transfer_failed(L, s, rc, kind);
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, s->body.data ? s->body.data : "", s->body.len);
    if (!push_headers(L, &s->head.block)) {
        lua_pop(L, 2);
        return fail(L, "malformed header line in the response", "network");
    }
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
    lua_pushfstring(L, "quecapi.core.session (%s)", s->share ? "open" : "closed");
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
