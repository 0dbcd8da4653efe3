/*
 * Files for secrets and the kernel locks that guard them. Plain Lua cannot
 * create a file with a chosen mode (io.open gives 0666 & ~umask), look at a
 * file's type and owner without following a symlink, create a directory, or
 * lock anything, so the token file store does these here.
 *
 * Every function that takes a path refuses one holding a NUL byte: the system
 * calls would stop at it and act on another file than the one the caller named.
 * Runtime failures come back as nil, err, kind; only a wrong argument type raises.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core.h"

#define LOCK_MT "quecapi.lock"

/*
 * A descriptor owned by a userdata, so a memory error raised while it is open
 * cannot leak it: the collector closes it. Lock objects are these; read_file
 * keeps its descriptor in one on the stack while reading. -1 once closed.
 */
typedef struct {
    int fd;
} qc_lock;

/* A new descriptor owner (fd -1) on the stack; made before the open it guards. */
static qc_lock *new_owner(lua_State *L)
{
    qc_lock *lock = (qc_lock *)lua_newuserdata(L, sizeof *lock);
    lock->fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    return lock;
}

/* Closes the descriptor `owner` holds, if any. */
static void close_owned(qc_lock *owner)
{
    if (owner->fd >= 0) {
        close(owner->fd);
        owner->fd = -1;
    }
}

/* The path argument at `idx`, or NULL when it holds a NUL byte. */
static const char *path_arg(lua_State *L, int idx)
{
    size_t len;
    const char *path = luaL_checklstring(L, idx, &len);
    return strlen(path) == len ? path : NULL;
}

/* nil, err, "error" for a path with a NUL byte: the part before it is shown. */
static int refuse_nul(lua_State *L, int idx, const char *what)
{
    lua_pushnil(L);
    lua_pushfstring(L, "cannot %s %s\\0...: the path contains a NUL byte", what, lua_tostring(L, idx));
    lua_pushliteral(L, "error");
    return 3;
}

/* nil, "<what> <path>: <strerror>", kind */
static int fail_errno(lua_State *L, const char *what, const char *path, int err, const char *kind)
{
    lua_pushnil(L);
    lua_pushfstring(L, "cannot %s %s: %s", what, path, strerror(err));
    lua_pushstring(L, kind);
    return 3;
}

/* nil, "cannot <what> <path>: <reason>", "error" */
static int fail_reason(lua_State *L, const char *what, const char *path, const char *reason)
{
    lua_pushnil(L);
    lua_pushfstring(L, "cannot %s %s: %s", what, path, reason);
    lua_pushliteral(L, "error");
    return 3;
}

/*
 * create_private(path, data) -> true, or nil, err, "exists" | "error"
 * Creates `path` exclusively (it must not exist) with mode 0600, writes `data`
 * and flushes it to disk; on failure nothing is left behind.
 */
int qc_create_private(lua_State *L)
{
    size_t len, off = 0;
    const char *path = path_arg(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    int fd, saved;

    if (path == NULL)
        return refuse_nul(L, 1, "create");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        saved = errno;
        return fail_errno(L, "create", path, saved, saved == EEXIST ? "exists" : "error");
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
    return fail_errno(L, "write", path, saved, "error");
}

/* Pushes the description file_info and read_file give of `st`. */
static void push_info(lua_State *L, const struct stat *st)
{
    const char *type;
    if (S_ISREG(st->st_mode))
        type = "file";
    else if (S_ISDIR(st->st_mode))
        type = "dir";
    else if (S_ISLNK(st->st_mode))
        type = "link";
    else
        type = "other";
    lua_createtable(L, 0, 5);
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st->st_uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)st->st_gid);
    lua_setfield(L, -2, "gid");
    lua_pushinteger(L, (lua_Integer)st->st_size);
    lua_setfield(L, -2, "size");
}

/*
 * file_info(path [, follow]) -> { type = "file" | "dir" | "link" | "other",
 *   mode = permission bits (07777: setuid, setgid and sticky included), uid, gid, size },
 *   or nil, err, "missing" | "error"
 * A symlink is described as itself ("link") unless `follow` is true. "missing"
 * means the path or one of its directories does not exist; "error" is anything
 * else (e.g. no permission to look).
 */
int qc_file_info(lua_State *L)
{
    const char *path = path_arg(L, 1);
    int follow = lua_toboolean(L, 2);
    struct stat st;

    if (path == NULL)
        return refuse_nul(L, 1, "inspect");
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) {
        int saved = errno;
        return fail_errno(L, "inspect", path, saved, saved == ENOENT ? "missing" : "error");
    }
    push_info(L, &st);
    return 1;
}

/*
 * read_file(path) -> data, info (as file_info gives it, of the file read), or
 * nil, err, "missing" | "error"
 * Reads a regular file whole without following a symlink at `path`. The info
 * comes from the open file itself, so checking its owner and mode afterwards
 * judges exactly what was read, even if the path was swapped after a file_info.
 * Anything but a regular file is refused unread (O_NONBLOCK: a FIFO cannot hang
 * the open).
 */
int qc_read_file(lua_State *L)
{
    const char *path = path_arg(L, 1);
    qc_lock *owner;
    luaL_Buffer b;
    struct stat st;

    if (path == NULL)
        return refuse_nul(L, 1, "read");
    owner = new_owner(L);
    owner->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (owner->fd < 0) {
        int saved = errno;
        if (saved == ELOOP)
            return fail_reason(L, "read", path, "it is a symbolic link");
        return fail_errno(L, "read", path, saved, saved == ENOENT ? "missing" : "error");
    }
    if (fstat(owner->fd, &st) != 0) {
        int saved = errno;
        close_owned(owner);
        return fail_errno(L, "read", path, saved, "error");
    }
    if (!S_ISREG(st.st_mode)) {
        close_owned(owner);
        return fail_reason(L, "read", path, "it is not a regular file");
    }
    luaL_buffinit(L, &b);
    for (;;) {
        char chunk[4096];
        ssize_t n = read(owner->fd, chunk, sizeof chunk);
        if (n < 0) {
            int saved = errno;
            if (saved == EINTR)
                continue;
            close_owned(owner);
            return fail_errno(L, "read", path, saved, "error");
        }
        if (n == 0)
            break;
        luaL_addlstring(&b, chunk, (size_t)n);
    }
    close_owned(owner);
    luaL_pushresult(&b);
    push_info(L, &st);
    return 2;
}

/*
 * getuid() -> the real user id of the process, the user whose files are trusted:
 * ssh checks its key files against the same id
 */
int qc_getuid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getuid());
    return 1;
}

/* 0 when `path` is a directory (symlinks followed), else -1 with errno set. */
static int is_dir(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* mkdir of one prefix unless it is a directory already; 0, or -1 with errno set */
static int make_one(const char *path)
{
    if (is_dir(path) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    if (mkdir(path, 0700) == 0)
        return 0;
    /* someone else made it in between: fine if it is a directory */
    return errno == EEXIST ? is_dir(path) : -1;
}

/*
 * make_dirs(path) -> true, or nil, err, "error"
 * Creates the directory `path` and whichever of its parents are missing, each
 * with mode 0700 (less what the umask takes away). Existing directories are
 * left as they are: their modes are their owners' business.
 */
int qc_make_dirs(lua_State *L)
{
    size_t len;
    const char *path = path_arg(L, 1);
    char *buf;
    size_t i;

    if (path == NULL)
        return refuse_nul(L, 1, "create directory");
    len = strlen(path);
    if (len == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "cannot create directory: the path is empty");
        lua_pushliteral(L, "error");
        return 3;
    }
    /* a copy to cut at each '/' in turn; a userdata, so an error cannot leak it */
    buf = (char *)lua_newuserdata(L, len + 1);
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (i < len && buf[i] != '/')
            continue;
        if (buf[i - 1] == '/') /* "a//b" or a trailing '/': nothing new here */
            continue;
        buf[i] = '\0';
        if (make_one(buf) != 0) {
            int saved = errno;
            return fail_errno(L, "create directory", buf, saved, "error");
        }
        if (i < len)
            buf[i] = '/';
    }
    lua_pushboolean(L, 1);
    return 1;
}

/*
 * open_lock(path) -> lock, or nil, err, "error"
 * Opens (creating it with mode 0600 when missing) the lock file `path` for
 * flock(2). The lock is not taken yet: see lock:try(). A symlink or anything
 * but a regular file is refused; O_NONBLOCK keeps a FIFO put there from hanging
 * the open. O_CLOEXEC keeps programs this process starts from inheriting the
 * descriptor, and with it the lock, past this process's death.
 */
int qc_open_lock(lua_State *L)
{
    const char *path = path_arg(L, 1);
    qc_lock *lock;
    struct stat st;

    if (path == NULL)
        return refuse_nul(L, 1, "open lock file");
    lock = new_owner(L);
    /* read-write: flock emulated over NFS wants a writable descriptor */
    lock->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (lock->fd < 0) {
        int saved = errno;
        if (saved == ELOOP)
            return fail_reason(L, "open lock file", path, "it is a symbolic link");
        return fail_errno(L, "open lock file", path, saved, "error");
    }
    if (fstat(lock->fd, &st) != 0) {
        int saved = errno;
        close_owned(lock);
        return fail_errno(L, "open lock file", path, saved, "error");
    }
    if (!S_ISREG(st.st_mode)) {
        close_owned(lock);
        return fail_reason(L, "open lock file", path, "it is not a regular file");
    }
    return 1;
}

/*
 * lock:try() -> true when this lock now holds the file, false when another open
 * of it (in this process or any other) holds it, or nil, err
 * Never waits. flock belongs to the open file description, so two lock objects
 * on one file exclude each other even within one process, and the kernel drops
 * the lock when the holder's process dies however it dies.
 */
static int lock_try(lua_State *L)
{
    qc_lock *lock = (qc_lock *)luaL_checkudata(L, 1, LOCK_MT);
    if (lock->fd < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "the lock was released");
        return 2;
    }
    for (;;) {
        if (flock(lock->fd, LOCK_EX | LOCK_NB) == 0) {
            lua_pushboolean(L, 1);
            return 1;
        }
        if (errno == EWOULDBLOCK) {
            lua_pushboolean(L, 0);
            return 1;
        }
        if (errno != EINTR) {
            lua_pushnil(L);
            lua_pushfstring(L, "cannot lock: %s", strerror(errno));
            return 2;
        }
    }
}

/*
 * lock:release() -> true, or false when it was released already
 * Unlocks and closes. The explicit unlock also frees the lock when a forked
 * child still shares the descriptor, which a close alone would not.
 */
static int lock_release(lua_State *L)
{
    qc_lock *lock = (qc_lock *)luaL_checkudata(L, 1, LOCK_MT);
    if (lock->fd < 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    flock(lock->fd, LOCK_UN);
    close_owned(lock);
    lua_pushboolean(L, 1);
    return 1;
}

/*
 * __gc: close only. A collector running in a forked child must not unlock the
 * parent's lock; in the process that took it the close is the last reference,
 * so the lock goes with it.
 */
static int lock_gc(lua_State *L)
{
    close_owned((qc_lock *)luaL_checkudata(L, 1, LOCK_MT));
    return 0;
}

/* __close (a to-be-closed variable on Lua 5.4): a release at the end of the scope */
static int lock_close(lua_State *L)
{
    lock_release(L);
    return 0;
}

/* Registers the lock objects' metatable. */
void qc_files_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"try", lock_try},
        {"release", lock_release},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, LOCK_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, lock_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, lock_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}
