/*
 * The terminal, for the command-line tool: whether a descriptor is a terminal,
 * and one line typed without echo (a password, an SMS code) on the controlling
 * terminal. Plain Lua can do neither without starting `test -t` or `stty`.
 *
 * read_secret switches echo, canonical input and signals off while the line is
 * typed and reads it a byte at a time, doing the little line editing a prompt
 * needs (erase, kill). The interrupt and quit characters (Ctrl-C, Ctrl-\) end
 * the read as "interrupted" instead of killing the process with echo still off.
 * The saved settings are put back on every path, and before anything that could
 * raise a Lua error; the line's bytes are wiped from the C stack afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core.h"

/* The longest line read_secret takes: passwords and codes are far shorter. */
#define SECRET_MAX 1024

enum outcome { LINE, INTERRUPTED, END, TOO_LONG, FAILED };

/* isatty(fd) -> true when the descriptor is open on a terminal */
int qc_isatty(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    lua_pushboolean(L, fd >= 0 && fd <= INT_MAX && isatty((int)fd));
    return 1;
}

/* Zeroes n bytes in a way the compiler may not drop as a dead store. */
static void wipe(char *buf, size_t n)
{
    volatile char *p = buf;
    while (n-- > 0)
        *p++ = 0;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Is `c` the special character `cc[which]` (and that character not disabled)? */
static int is_char(const struct termios *t, int which, unsigned char c)
{
    return t->c_cc[which] != _POSIX_VDISABLE && t->c_cc[which] == c;
}

/*
 * Reads bytes up to the end of the line into buf (*len bytes kept); `keys` are
 * the terminal's own settings, whose erase, kill, interrupt and end-of-file
 * characters it honours. Errors leave errno set.
 */
static enum outcome read_line(int fd, const struct termios *keys, char *buf, size_t *len)
{
    int overflow = 0;
    for (;;) {
        unsigned char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FAILED;
        if (n == 0)
            return END;
        if (c == '\n' || c == '\r')
            return overflow ? TOO_LONG : LINE;
        if (is_char(keys, VINTR, c) || is_char(keys, VQUIT, c))
            return INTERRUPTED;
        if (is_char(keys, VEOF, c)) {
            if (*len == 0 && !overflow)
                return END;
            continue;
        }
        if (is_char(keys, VERASE, c) || c == 0x7f || c == '\b') {
            /* one character: its UTF-8 continuation bytes, then its first byte */
            while (*len > 0 && ((unsigned char)buf[*len - 1] & 0xC0) == 0x80)
                (*len)--;
            if (*len > 0)
                (*len)--;
            continue;
        }
        if (is_char(keys, VKILL, c)) {
            *len = 0;
            overflow = 0;
            continue;
        }
        if (*len < SECRET_MAX)
            buf[(*len)++] = (char)c;
        else
            overflow = 1;
    }
}

static int fail(lua_State *L, const char *msg, const char *kind)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, kind);
    return 3;
}

/*
 * read_secret([prompt]) -> line, or nil, err, kind
 * Writes `prompt` to the controlling terminal, reads one line from it without
 * echo, and ends it with a newline on the terminal. kind: "interrupted" (Ctrl-C
 * or Ctrl-\), "eof" (Ctrl-D on an empty line, or the terminal went away),
 * "notty" (no controlling terminal) or "error".
 */
int qc_read_secret(lua_State *L)
{
    size_t prompt_len, len = 0;
    const char *prompt = luaL_optlstring(L, 1, "", &prompt_len);
    char buf[SECRET_MAX];
    struct termios saved, quiet;
    enum outcome outcome;
    int fd, saved_errno;

    fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return fail(L, "no terminal to read from", "notty");
    if (tcgetattr(fd, &saved) != 0) {
        close(fd);
        return fail(L, "no terminal to read from", "notty");
    }
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ICANON | ISIG | IEXTEN);
    quiet.c_cc[VMIN] = 1;
    quiet.c_cc[VTIME] = 0;
    write_all(fd, prompt, prompt_len);
    if (tcsetattr(fd, TCSANOW, &quiet) != 0) {
        saved_errno = errno;
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot turn the terminal's echo off: %s", strerror(saved_errno));
        lua_pushliteral(L, "error");
        return 3;
    }
    outcome = read_line(fd, &saved, buf, &len);
    saved_errno = errno;
    tcsetattr(fd, TCSANOW, &saved);
    write_all(fd, "\n", 1);
    close(fd);

    switch (outcome) {
    case LINE:
        lua_pushlstring(L, buf, len);
        wipe(buf, sizeof buf);
        return 1;
    case INTERRUPTED:
        wipe(buf, sizeof buf);
        return fail(L, "interrupted", "interrupted");
    case END:
        wipe(buf, sizeof buf);
        return fail(L, "end of input", "eof");
    case TOO_LONG:
        wipe(buf, sizeof buf);
        return fail(L, "the line is too long", "error");
    default:
        wipe(buf, sizeof buf);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read from the terminal: %s", strerror(saved_errno));
        lua_pushliteral(L, "error");
        return 3;
    }
}
