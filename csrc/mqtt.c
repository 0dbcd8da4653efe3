/*
 * The realtime channel's connection: MQTT 3.1.1 over (secure) WebSocket through
 * Eclipse Paho's synchronous client (MQTTClient, libpaho-mqtt3cs), as a userdata.
 *
 * core.mqtt{ url, client_id, username, password, keepalive, timeout, ca_file, verify,
 *            max_message }                 -> conn   or   nil, err, kind, connack
 * conn:subscribe({ topic, ... }, qos)      -> true   or   true, { refused topic, ... }   or   nil, err, kind
 * conn:unsubscribe{ topic, ... }           -> true   or   nil, err, kind
 * conn:publish(topic, payload, qos)        -> true   or   nil, err, kind
 * conn:receive(seconds)                    -> topic, payload
 *                                             topic, false, size    (larger than max_message: dropped)
 *                                             nil, "timeout", "timeout"
 *                                             nil, err, kind        ("closed" once the connection is gone)
 * conn:connected()                         -> boolean
 * conn:close()                             (also __gc, __close)
 *
 * What Paho does here, and what it does not:
 *  - no callbacks are registered (MQTTClient_setCallbacks is never called), so
 *    Paho starts no thread: everything happens inside these calls, on the
 *    caller's thread. Keepalive rides on receive: MQTTClient_receive cycles the
 *    socket and, at least every keepalive/10 seconds, sends the PINGREQ that is
 *    due and closes a session whose PINGRESP is 1.5 keepalives late;
 *  - no Lua code runs inside a Paho call; a message is copied into the
 *    userdata's own buffer and Paho's copy freed before anything is pushed, so
 *    a memory error raised by the Lua API cannot leak Paho's memory;
 *  - TLS: the peer's certificate and host name are verified unless verify is
 *    false; trust comes from ca_file, else OpenSSL's default paths. Paho leaves
 *    OpenSSL's initialisation to the host (OpenSSL 3 initialises itself);
 *  - process-wide effects of Paho, documented in the README: its first client
 *    sets SIGPIPE to SIG_IGN (writes to a closed socket must not kill the
 *    process), and MQTT_C_CLIENT_TRACE in the environment turns its trace on.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTClient.h>

#include "core.h"

#define MQTT_MT "quecapi.core.mqtt"
#define MAX_MESSAGE ((size_t)256 * 1024 * 1024) /* MQTT's own limit */
#define DEFAULT_MAX_MESSAGE ((size_t)1024 * 1024)
#define MAX_TOPICS 1000 /* per SUBSCRIBE / UNSUBSCRIBE */
#define KEEP_BUFFER ((size_t)1024 * 1024)

typedef struct {
    MQTTClient client; /* NULL once closed */
    size_t max_message;
    unsigned long slice_ms; /* the longest single wait in receive */
    char *buf; /* the last message: topic then payload */
    size_t cap;
    char tls_error[256]; /* the first TLS error OpenSSL reported through Paho */
} conn_t;

static int paho_ready = 0;

static conn_t *check_conn(lua_State *L)
{
    return (conn_t *)luaL_checkudata(L, 1, MQTT_MT);
}

static int fail(lua_State *L, const char *msg, const char *kind)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, kind);
    return 3;
}

static void conn_release(conn_t *c)
{
    if (c->client != NULL) {
        if (MQTTClient_isConnected(c->client))
            MQTTClient_disconnect(c->client, 0); /* DISCONNECT sent, nothing waited for */
        MQTTClient_destroy(&c->client);
        c->client = NULL;
    }
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
}

/*
 * OpenSSL's error lines, through ERR_print_errors_cb, while Paho connects or
 * reads. Only the first is kept, and of it the reason ("certificate verify
 * failed"): OpenSSL 3 writes "<thread>:error:<code>:<library>:<function>:<reason>:
 * <file>:<line>:"; a line of another shape is kept whole.
 */
static int on_tls_error(const char *str, size_t len, void *u)
{
    conn_t *c = (conn_t *)u;
    const char *from = str, *end = str + len, *p = str;
    int colons = 0;
    if (c->tls_error[0] != '\0')
        return 1;
    for (; p < end && colons < 6; p++) {
        if (*p != ':')
            continue;
        colons++;
        if (colons == 5)
            from = p + 1;
        else if (colons == 6)
            end = p;
    }
    if (colons < 6 || from >= end) {
        from = str;
        end = str + len;
    }
    while (end > from && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    len = (size_t)(end - from) < sizeof c->tls_error - 1 ? (size_t)(end - from) : sizeof c->tls_error - 1;
    memcpy(c->tls_error, from, len);
    c->tls_error[len] = '\0';
    return 1;
}

/* Optional string field of the options table, without NUL bytes; raises otherwise. */
static const char *opt_string(lua_State *L, const char *name, size_t *len)
{
    const char *v = NULL;
    size_t n = 0;
    lua_getfield(L, 1, name); /* left on the stack: keeps the string alive */
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "mqtt.%s must be a string", name);
        v = lua_tolstring(L, -1, &n);
        if (len != NULL)
            *len = n;
        else if (strlen(v) != n)
            luaL_error(L, "mqtt.%s must not contain NUL bytes", name);
    }
    return v;
}

static double opt_number(lua_State *L, const char *name, double dflt, double lo, double hi)
{
    double v = dflt;
    lua_getfield(L, 1, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "mqtt.%s must be a number", name);
        v = lua_tonumber(L, -1);
        if (!(v >= lo && v <= hi)) /* NaN fails too */
            luaL_error(L, "mqtt.%s must be between %f and %f", name, lo, hi);
    }
    lua_pop(L, 1);
    return v;
}

static double monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static const char *connack_text(int rc)
{
    switch (rc) {
    case 1:
        return "the broker refused the connection: unacceptable protocol version";
    case 2:
        return "the broker refused the connection: client identifier not valid";
    case 3:
        return "the broker refused the connection: server unavailable";
    case 4:
        return "the broker refused the connection: bad user name or password";
    case 5:
        return "the broker refused the connection: not authorized";
    default:
        return "the broker refused the connection";
    }
}

/* A failed connect as nil, err, kind, connack (nil for no CONNACK). */
static int connect_failed(lua_State *L, conn_t *c, int rc, double started, int timeout_s)
{
    MQTTClient_destroy(&c->client);
    c->client = NULL;
    if (rc >= 1 && rc <= 5) {
        lua_pushnil(L);
        lua_pushstring(L, connack_text(rc));
        lua_pushstring(L, rc == 4 || rc == 5 ? "auth" : "platform");
        lua_pushinteger(L, rc);
        return 4;
    }
    if (c->tls_error[0] != '\0') {
        lua_pushnil(L);
        lua_pushfstring(L, "TLS handshake failed: %s", c->tls_error);
        lua_pushliteral(L, "tls");
        return 3;
    }
    if (monotonic_ms() - started >= (double)timeout_s * 1000 - 50)
        return fail(L, "no answer from the broker in time (TCP, TLS, WebSocket and MQTT connect)", "timeout");
    /* Paho says SOCKET_ERROR for a refused TCP connect, a certificate for another
     * host name and a refused WebSocket upgrade alike. */
    lua_pushnil(L);
    lua_pushfstring(L, "cannot connect to the broker (TCP, TLS or WebSocket handshake failed; paho %d)", rc);
    lua_pushliteral(L, "connect");
    return 3;
}

static int is_tls_url(const char *url)
{
    return strncmp(url, "wss://", 6) == 0 || strncmp(url, "ssl://", 6) == 0 ||
           strncmp(url, "mqtts://", 8) == 0;
}

/* core.mqtt{ ... }: create a Paho client and connect it; blocks up to `timeout` seconds. */
int qc_mqtt_connect(lua_State *L)
{
    MQTTClient_createOptions create = MQTTClient_createOptions_initializer;
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    const char *url, *client_id, *username, *password, *ca_file;
    size_t password_len = 0;
    double keepalive, timeout, max_message, started;
    int verify = 1, rc, timeout_s;
    conn_t *c;

    luaL_checktype(L, 1, LUA_TTABLE);
    url = opt_string(L, "url", NULL);
    client_id = opt_string(L, "client_id", NULL);
    username = opt_string(L, "username", NULL);
    password = opt_string(L, "password", &password_len);
    ca_file = opt_string(L, "ca_file", NULL);
    if (url == NULL || client_id == NULL)
        return luaL_error(L, "mqtt.url and mqtt.client_id are required");
    if (*client_id == '\0' || strlen(client_id) > 65535)
        return luaL_error(L, "mqtt.client_id must be 1 to 65535 bytes");
    luaL_argcheck(L, password_len <= 65535, 1, "mqtt.password is longer than 65535 bytes");
    keepalive = opt_number(L, "keepalive", 40, 0, 65535);
    luaL_argcheck(L, keepalive == (double)(int)keepalive, 1, "mqtt.keepalive must be whole seconds");
    timeout = opt_number(L, "timeout", 10, 0.001, 3600);
    max_message = opt_number(L, "max_message", (double)DEFAULT_MAX_MESSAGE, 0, (double)MAX_MESSAGE);
    lua_getfield(L, 1, "verify");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_isboolean(L, -1), 1, "mqtt.verify must be a boolean");
        verify = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);

    c = (conn_t *)lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->max_message = (size_t)max_message;
    c->slice_ms = keepalive == 1 ? 250 : 500; /* well inside one keepalive */
    luaL_setmetatable(L, MQTT_MT);
    /* From here on only a memory error can raise, and it finds the Paho client
     * owned by the userdata, whose __gc destroys it. */

    if (!paho_ready) {
        MQTTClient_init_options init = MQTTClient_init_options_initializer;
        init.do_openssl_init = 0;
        MQTTClient_global_init(&init);
        paho_ready = 1;
    }
    create.MQTTVersion = MQTTVERSION_3_1_1;
    rc = MQTTClient_createWithOptions(&c->client, url, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &create);
    if (rc != MQTTCLIENT_SUCCESS) {
        c->client = NULL;
        return fail(L,
                    rc == MQTTCLIENT_BAD_PROTOCOL ? "unsupported URL scheme (wss:// or ws://)"
                                                  : "cannot create the MQTT client (bad URL?)",
                    "usage");
    }
    timeout_s = (int)timeout + ((double)(int)timeout < timeout ? 1 : 0);
    /* SUBACK and UNSUBACK are waited for this long too. */
    MQTTClient_setCommandTimeout(c->client, (unsigned long)timeout_s * 1000);

    opts.MQTTVersion = MQTTVERSION_3_1_1; /* never the fallback to 3.1 */
    opts.keepAliveInterval = (int)keepalive;
    opts.cleansession = 1;
    opts.reliable = 0;
    opts.maxInflightMessages = 20;
    opts.connectTimeout = timeout_s;
    /* The platform wants the user name flag set with an empty name when a password goes. */
    opts.username = username;
    if (password != NULL) {
        opts.binarypwd.data = password;
        opts.binarypwd.len = (int)password_len;
    }
    if (is_tls_url(url)) {
        ssl.trustStore = ca_file;
        ssl.enableServerCertAuth = verify;
        ssl.verify = verify;
        ssl.ssl_error_cb = on_tls_error;
        ssl.ssl_error_context = c;
        opts.ssl = &ssl;
    }
    started = monotonic_ms();
    rc = MQTTClient_connect(c->client, &opts);
    if (rc != MQTTCLIENT_SUCCESS)
        return connect_failed(L, c, rc, started, timeout_s);
    return 1;
}

/*
 * The topics of list argument 2, checked, into an array that lives in a
 * userdata left on the stack (the collector frees it whatever raises later);
 * NULL after pushing nil, err, kind. The strings stay in the table at argument 2
 * for the whole call.
 */
static char **topic_list(lua_State *L, conn_t *c, int *count)
{
    int n, i;
    char **topics;
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    luaL_argcheck(L, n >= 1 && n <= MAX_TOPICS, 2, "between 1 and 1000 topics");
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *t;
        lua_rawgeti(L, 2, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "topic %d is not a string", i);
        t = lua_tolstring(L, -1, &len);
        if (len == 0 || len > 65535 || strlen(t) != len)
            luaL_error(L, "topic %d must be 1 to 65535 bytes without NUL", i);
        lua_pop(L, 1);
    }
    if (c->client == NULL) {
        fail(L, "the connection is closed", "closed");
        return NULL;
    }
    topics = (char **)lua_newuserdata(L, sizeof *topics * (size_t)n);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        topics[i - 1] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    *count = n;
    return topics;
}

static int lost_or(lua_State *L, conn_t *c, const char *msg)
{
    if (!MQTTClient_isConnected(c->client))
        return fail(L, "the connection was lost", "closed");
    return fail(L, msg, "network");
}

/*
 * conn:subscribe({ topic, ... }, qos): one SUBSCRIBE, waits for its SUBACK.
 * -> true when every topic was granted; true, { refused topic, ... } when the
 * broker refused some (0x80); nil, err, kind when no SUBACK came.
 */
static int conn_subscribe(lua_State *L)
{
    conn_t *c = check_conn(L);
    int qos = (int)luaL_optinteger(L, 3, 0), n = 0, i, rc, refused = 0, *granted;
    char **topics;
    luaL_argcheck(L, qos >= 0 && qos <= 2, 3, "qos must be 0, 1 or 2");
    if ((topics = topic_list(L, c, &n)) == NULL)
        return 3;
    granted = (int *)lua_newuserdata(L, sizeof *granted * (size_t)n);
    for (i = 0; i < n; i++)
        granted[i] = qos;
    rc = MQTTClient_subscribeMany(c->client, n, topics, granted);
    if (rc != MQTTCLIENT_SUCCESS)
        return lost_or(L, c, "no SUBACK from the broker in time");
    lua_pushboolean(L, 1);
    for (i = 0; i < n; i++) {
        if (granted[i] != 0x80)
            continue;
        if (refused++ == 0)
            lua_newtable(L);
        lua_rawgeti(L, 2, i + 1);
        lua_rawseti(L, -2, refused);
    }
    return refused ? 2 : 1;
}

/* conn:unsubscribe{ topic, ... }: one UNSUBSCRIBE, waits for its UNSUBACK. */
static int conn_unsubscribe(lua_State *L)
{
    conn_t *c = check_conn(L);
    int n = 0, rc;
    char **topics;
    if ((topics = topic_list(L, c, &n)) == NULL)
        return 3;
    rc = MQTTClient_unsubscribeMany(c->client, n, topics);
    if (rc != MQTTCLIENT_SUCCESS)
        return lost_or(L, c, "no UNSUBACK from the broker in time");
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:publish(topic, payload, qos): queued or written, not waited for (PUBACK comes in receive). */
static int conn_publish(lua_State *L)
{
    conn_t *c = check_conn(L);
    size_t tlen, plen;
    const char *topic = luaL_checklstring(L, 2, &tlen);
    const char *payload = luaL_checklstring(L, 3, &plen);
    int qos = (int)luaL_optinteger(L, 4, 1), rc;
    MQTTClient_deliveryToken token = 0;
    luaL_argcheck(L, tlen > 0 && tlen <= 65535 && strlen(topic) == tlen, 2,
                  "topic must be 1 to 65535 bytes without NUL");
    luaL_argcheck(L, plen <= MAX_MESSAGE, 3, "payload larger than 256 MiB");
    luaL_argcheck(L, qos >= 0 && qos <= 2, 4, "qos must be 0, 1 or 2");
    if (c->client == NULL)
        return fail(L, "the connection is closed", "closed");
    if (!MQTTClient_isConnected(c->client))
        return fail(L, "the connection was lost", "closed");
    rc = MQTTClient_publish(c->client, topic, (int)plen, payload, qos, 0, &token);
    if (rc != MQTTCLIENT_SUCCESS)
        return lost_or(L, c, "the broker did not take the message (too many unacknowledged)");
    lua_pushboolean(L, 1);
    return 1;
}

/* Room for n bytes in the userdata's buffer; 0 when out of memory. */
static int reserve(conn_t *c, size_t n)
{
    char *p;
    if (n <= c->cap && (c->cap <= KEEP_BUFFER || n > c->cap / 4))
        return 1;
    if ((p = (char *)realloc(c->buf, n ? n : 1)) == NULL)
        return 0;
    c->buf = p;
    c->cap = n ? n : 1;
    return 1;
}

/* conn:receive(seconds): the next message, waiting at most that long. */
static int conn_receive(lua_State *L)
{
    conn_t *c = check_conn(L);
    lua_Number seconds = luaL_optnumber(L, 2, 0);
    char *topic = NULL;
    int topic_len = 0, rc;
    MQTTClient_message *msg = NULL;
    size_t tlen, plen;
    int too_large, ok;
    double deadline;

    luaL_argcheck(L, seconds >= 0 && seconds <= 86400, 2, "seconds must be between 0 and 86400");
    if (c->client == NULL)
        return fail(L, "the connection is closed", "closed");
    deadline = monotonic_ms() + seconds * 1000;
    do {
        /* In slices: MQTTClient_receive sits in one select() for all of its time
         * and sends the PINGREQ that fell due only after it, so one long wait on
         * a quiet connection would let the broker time the session out. */
        double left = deadline - monotonic_ms();
        unsigned long ms = left <= 0 ? 0 : left < (double)c->slice_ms ? (unsigned long)left : c->slice_ms;
        rc = MQTTClient_receive(c->client, &topic, &topic_len, &msg, ms);
    } while (msg == NULL && rc == MQTTCLIENT_SUCCESS && MQTTClient_isConnected(c->client) &&
             monotonic_ms() < deadline);
    if (msg == NULL) {
        if (topic != NULL)
            MQTTClient_free(topic);
        if (rc == MQTTCLIENT_SUCCESS && MQTTClient_isConnected(c->client))
            return fail(L, "timeout", "timeout");
        return fail(L, "the connection was lost", "closed");
    }
    /* A topic with a NUL byte comes with its length (MQTTCLIENT_TOPICNAME_TRUNCATED). */
    tlen = topic == NULL ? 0 : topic_len > 0 ? (size_t)topic_len : strlen(topic);
    plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    too_large = plen > c->max_message;
    ok = reserve(c, tlen + (too_large ? 0 : plen));
    if (ok) {
        if (tlen > 0)
            memcpy(c->buf, topic, tlen);
        if (!too_large && plen > 0)
            memcpy(c->buf + tlen, msg->payload, plen);
    }
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    if (!ok)
        return fail(L, "out of memory", "network");
    lua_pushlstring(L, c->buf, tlen);
    if (too_large) {
        lua_pushboolean(L, 0);
        lua_pushinteger(L, (lua_Integer)plen);
        return 3;
    }
    lua_pushlstring(L, c->buf + tlen, plen);
    return 2;
}

static int conn_connected(lua_State *L)
{
    conn_t *c = check_conn(L);
    lua_pushboolean(L, c->client != NULL && MQTTClient_isConnected(c->client));
    return 1;
}

static int conn_close(lua_State *L)
{
    conn_release(check_conn(L));
    return 0;
}

static int conn_tostring(lua_State *L)
{
    conn_t *c = check_conn(L);
    lua_pushfstring(L, "quecapi.core.mqtt (%s)",
                    c->client == NULL                   ? "closed"
                    : MQTTClient_isConnected(c->client) ? "connected"
                                                        : "lost");
    return 1;
}

int qc_mqtt_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"subscribe", conn_subscribe},
        {"unsubscribe", conn_unsubscribe},
        {"publish", conn_publish},
        {"receive", conn_receive},
        {"connected", conn_connected},
        {"close", conn_close},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, MQTT_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, conn_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, conn_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, conn_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    return 0;
}
