/*
 * quecapi.core: registration only. The work lives in crypto.c (hashes, the
 * password cipher, random strings), http.c (libcurl sessions), json.c (the JSON
 * decoder), clock.c, files.c (secret files, file checks, directories, locks),
 * term.c (the terminal: isatty, reading a secret without echo) and mqtt.c (the
 * realtime channel's MQTT connection, through Eclipse Paho).
 */
#include "core.h"

QC_EXPORT int luaopen_quecapi_core(lua_State *L);

int luaopen_quecapi_core(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"sha256_hex", qc_sha256_hex},
        {"md5_hex", qc_md5_hex},
        {"encrypt_password", qc_encrypt_password},
        {"decrypt_password", qc_decrypt_password},
        {"random_string", qc_random_string},
        {"session", qc_session_new},
        {"now_ms", qc_now_ms},
        {"monotonic", qc_monotonic},
        {"sleep", qc_sleep},
        {"create_private", qc_create_private},
        {"file_info", qc_file_info},
        {"read_file", qc_read_file},
        {"getuid", qc_getuid},
        {"make_dirs", qc_make_dirs},
        {"open_lock", qc_open_lock},
        {"json_decode", qc_json_decode},
        {"isatty", qc_isatty},
        {"read_secret", qc_read_secret},
        {"mqtt", qc_mqtt_connect},
        {NULL, NULL},
    };
    qc_http_open(L);
    qc_files_open(L);
    qc_mqtt_open(L);
    lua_newtable(L);
    qc_crypto_push_algorithms(L);
    luaL_setfuncs(L, functions, 1);
    lua_pushliteral(L, QUECAPI_CORE_VERSION);
    lua_setfield(L, -2, "VERSION");
    return 1;
}
