/*
 * session:request{...} with untrusted method, URL, body and headers: the checks
 * the C core keeps (a NUL in the method, the URL, a header name or value is
 * refused before libcurl sees a string cut at it; see csrc/http.c), the header
 * list built for curl, and the error paths. The request rules themselves are
 * quecapi.transport.contract's, in Lua.
 *
 * The URL always has a scheme curl does not speak, so nothing reaches the network
 * and every request ends in nil, err, "url" (or "closed"): for a NUL, the core's
 * refusal ("... contains NUL"), otherwise libcurl's.
 *
 * Input: [flags][method][url][body][max_body] then (name, value) pairs to the end;
 * each string field is one length byte and its bytes.
 *   flags bit 0: send the method;  bit 1: send the body;  bit 3: send headers;
 *         bit 2: pass the request through a proxy table whose __index returns fresh
 *                strings and runs a full garbage collection on every lookup;
 *         bit 4: close the session first.
 */
#include "fuzz.h"

/* The proxy of bit 2: values come from a metamethod, with no reference kept. */
static const char proxy_src[] = "local t = ...\n"
                                "return setmetatable({}, { __index = function(_, k)\n"
                                "  collectgarbage()\n"
                                "  local v = t[k]\n"
                                "  if type(v) == 'string' then return (v .. '.'):sub(1, -2) end\n"
                                "  return v\n"
                                "end })\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    unsigned flags = take_byte(&in);
    size_t n;
    const char *s;
    const char *kind, *err;
    int nul = 0;
    lua_State *L = fuzz_state(1);

    push_core_fn(L, "session");
    call_ok(L, 0, 1); /* the session, index 2 */
    CHECK(lua_type(L, 2) == LUA_TUSERDATA);
    if (flags & 16) {
        lua_getfield(L, 2, "close");
        lua_pushvalue(L, 2);
        call_ok(L, 1, 0);
    }

    lua_newtable(L); /* the request, index 3 */
    s = take_field(&in, &n);
    if (flags & 1) {
        nul |= memchr(s, '\0', n) != NULL;
        lua_pushlstring(L, s, n);
        lua_setfield(L, 3, "method");
    }
    s = take_field(&in, &n);
    nul |= memchr(s, '\0', n) != NULL;
    lua_pushliteral(L, "fuzz://");
    lua_pushlstring(L, s, n);
    lua_concat(L, 2);
    lua_setfield(L, 3, "url");
    s = take_field(&in, &n);
    if (flags & 2) {
        lua_pushlstring(L, s, n);
        lua_setfield(L, 3, "body");
    }
    lua_pushinteger(L, (lua_Integer)take_byte(&in) * 4099);
    lua_setfield(L, 3, "max_body");
    lua_pushnumber(L, 2);
    lua_setfield(L, 3, "timeout");
    if (flags & 8) {
        lua_newtable(L);
        while (in.n > 0) {
            s = take_field(&in, &n);
            lua_pushlstring(L, s, n);
            s = take_field(&in, &n);
            lua_pushlstring(L, s, n);
            lua_rawset(L, -3);
        }
        /* what is in the table: a later pair may have replaced an earlier one */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            size_t kl, vl;
            const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
            nul |= memchr(k, '\0', kl) != NULL || memchr(v, '\0', vl) != NULL;
            lua_pop(L, 1);
        }
        lua_setfield(L, 3, "headers");
    }
    if (flags & 4) {
        CHECK(luaL_loadstring(L, proxy_src) == 0);
        lua_pushvalue(L, 3);
        call_ok(L, 1, 1);
        lua_replace(L, 3);
    }

    lua_getfield(L, 2, "request");
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    call_ok(L, 2, 3);
    CHECK(lua_isnil(L, -3) && lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING);
    kind = lua_tostring(L, -1);
    err = lua_tostring(L, -2);
    CHECK(strcmp(kind, (flags & 16) ? "closed" : "url") == 0);
    if (!(flags & 16))
        CHECK((strstr(err, "contains NUL") != NULL) == nul);
    lua_close(L);
    return 0;
}
