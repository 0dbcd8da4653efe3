/* Entry points shared between the core's files; luaopen_quecapi_core is the only exported symbol. */
#ifndef QUECAPI_CORE_H
#define QUECAPI_CORE_H

#include "compat.h"

#define QUECAPI_CORE_VERSION "0.2.0"

/* Internal linkage across the core's files: hidden, so the shared object exports
 * luaopen_quecapi_core alone whatever flags the build uses. */
#if defined(__GNUC__)
#define QC_INTERNAL __attribute__((visibility("hidden")))
#define QC_EXPORT __attribute__((visibility("default")))
#else
#define QC_INTERNAL
#define QC_EXPORT
#endif

/* crypto.c */
/* pushes the algorithms looked up once, the upvalue every core function gets */
QC_INTERNAL void qc_crypto_push_algorithms(lua_State *L);
QC_INTERNAL int qc_sha256_hex(lua_State *L);
QC_INTERNAL int qc_md5_hex(lua_State *L);
QC_INTERNAL int qc_encrypt_password(lua_State *L);
QC_INTERNAL int qc_decrypt_password(lua_State *L);
QC_INTERNAL int qc_random_string(lua_State *L);

/* clock.c */
QC_INTERNAL int qc_now_ms(lua_State *L);
QC_INTERNAL int qc_monotonic(lua_State *L);
QC_INTERNAL int qc_sleep(lua_State *L);

/* files.c */
QC_INTERNAL void qc_files_open(lua_State *L); /* registers the lock metatable */
QC_INTERNAL int qc_create_private(lua_State *L);
QC_INTERNAL int qc_file_info(lua_State *L);
QC_INTERNAL int qc_read_file(lua_State *L);
QC_INTERNAL int qc_getuid(lua_State *L);
QC_INTERNAL int qc_make_dirs(lua_State *L);
QC_INTERNAL int qc_open_lock(lua_State *L);

/* term.c */
QC_INTERNAL int qc_isatty(lua_State *L);
QC_INTERNAL int qc_read_secret(lua_State *L);

/* json.c */
QC_INTERNAL int qc_json_decode(lua_State *L);

/* http.c */
QC_INTERNAL int qc_http_open(lua_State *L); /* registers the session metatable */
QC_INTERNAL int qc_session_new(lua_State *L);

/* mqtt.c */
QC_INTERNAL int qc_mqtt_open(lua_State *L); /* registers the connection metatable */
QC_INTERNAL int qc_mqtt_connect(lua_State *L);

#endif
