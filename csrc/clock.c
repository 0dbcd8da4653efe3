/*
 * Time for the Lua layer: wall-clock milliseconds for the signed `ts`, a monotonic
 * clock for deadlines and backoff, and a sleep for retries outside nginx (plain
 * Lua has none; inside nginx the Lua layer uses ngx.sleep instead).
 */
#include <errno.h>
#include <time.h>

#include "core.h"

/* now_ms() -> milliseconds since the epoch, as an integer */
int qc_now_ms(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + (lua_Integer)(ts.tv_nsec / 1000000));
    return 1;
}

/* monotonic() -> seconds (with fractions) on a clock that never jumps */
int qc_monotonic(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* sleep(seconds): blocks the calling thread; never use it inside an nginx worker */
int qc_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec req, rem;
    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be between 0 and 86400");
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (lua_Number)req.tv_sec) * 1e9);
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
    return 0;
}
