-- The fake cloud's nginx configuration, rendered by quecapi.fakecloud.ctl: every
-- @NAME@ is replaced (DIR the run directory, LUA where quecapi/fakecloud/*.lua
-- live, the ports, MODULES the load_module lines a packaged nginx needs, USER the
-- user directive when started as root, DEVICE_PORT the device side's loopback
-- port or nil without a broker, MQTT_URL the broker's URL for Apps). Paths are in
-- double quotes: a directory may have spaces in its name (ctl refuses one with a
-- quote or a backslash, so they are plain Lua strings too).
return [[
# The fake Quectel cloud: nginx + Lua on loopback, rendered by quecapi.fakecloud.ctl.
@MODULES@
# As root, the workers run as the invoking user, not nobody (who may not read
# a checkout in a private directory); empty otherwise.
@USER@
worker_processes 1;
daemon on;
pid "@DIR@/nginx.pid";
error_log "@DIR@/error.log" warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_max_body_size 4m;
    # Bodies over the in-memory buffer go to a file: keep it in this run's
    # directory, where the worker may write, not in the system's nginx paths.
    client_body_temp_path "@DIR@/client_body_temp";
    lua_package_path "@LUA@/?.lua;;";

    init_by_lua_block {
        math.randomseed(ngx.time() + ngx.worker.pid())
        require "quecapi.fakecloud.main"
        require("quecapi.fakecloud.realtime").configure {
            dir = "@DIR@", device_port = @DEVICE_PORT@, url = "@MQTT_URL@",
        }
    }

    server {
        listen 127.0.0.1:@HTTPS_PORT@ ssl;
        listen 127.0.0.1:@HTTP_PORT@;
        ssl_certificate "@DIR@/server.pem";
        ssl_certificate_key "@DIR@/server.key";

        location /_fake/ {
            content_by_lua_block { require("quecapi.fakecloud.main").control() }
        }

        location / {
            access_by_lua_block { require("quecapi.fakecloud.main").enter() }
            content_by_lua_block { require("quecapi.fakecloud.main").handle() }
            log_by_lua_block { require("quecapi.fakecloud.main").leave() }
        }
    }

    # The same API behind certificates a client must refuse.
    server {
        listen 127.0.0.1:@WRONGHOST_PORT@ ssl;
        ssl_certificate "@DIR@/wronghost.pem";
        ssl_certificate_key "@DIR@/wronghost.key";
        location / { content_by_lua_block { require("quecapi.fakecloud.main").handle() } }
    }

    server {
        listen 127.0.0.1:@UNKNOWNCA_PORT@ ssl;
        ssl_certificate "@DIR@/unknownca.pem";
        ssl_certificate_key "@DIR@/unknownca.key";
        location / { content_by_lua_block { require("quecapi.fakecloud.main").handle() } }
    }
}
]]
