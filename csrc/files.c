/*
 * Files for secrets: create a file that never exists with a mode wider than 0600.
 * Plain Lua's io.open creates files 0666 & ~umask and cannot change that, so the
 * token file store (and its lock files) create them here.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

/*
 * create_private(path, data) -> true, or nil, err, "exists" | "error"
 * Creates `path` exclusively (it must not exist) with mode 0600, writes `data`
 * and flushes it to disk; on failure nothing is left behind.
 */
int qc_create_private(lua_State *L)
{
    size_t len, off = 0;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    int fd, saved;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        saved = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create %s: %s", path, strerror(saved));
        lua_pushstring(L, saved == EEXIST ? "exists" : "error");
        return 3;
    }
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    lua_pushboolean(L, 1);
    return 1;

fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(path);
    lua_pushnil(L);
    lua_pushfstring(L, "cannot write %s: %s", path, strerror(saved));
    lua_pushliteral(L, "error");
    return 3;
}
