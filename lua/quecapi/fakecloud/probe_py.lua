-- An App-side MQTT client for tests of the fake cloud's realtime channel, as
-- Python source (python3 with paho-mqtt), written into the run directory by
-- quecapi.fakecloud.broker. quecapi.fakecloud.testing drives it (`probe`):
-- it is independent of quecapi's own MQTT code, so a test of the fake, or a
-- user's test of their own code, has a second opinion on what the broker does.
return [==[
"""An App-side MQTT 3.1.1 client over secure WebSocket, driven line by line.

usage: python3 probe.py OUT

stdin: one JSON command a line, the first one {"op": "connect", "url":
"wss://localhost:PORT/ws/v2", "ca": CA file, "client_id": ..., "password":
the access token, "username": "" (the default; null sends none),
"keepalive": 30, "insecure": false}; then {"op": "subscribe", "topics": [...],
"qos": 0}, {"op": "unsubscribe", "topics": [...]}, {"op": "publish", "topic":
..., "payload": ..., "qos": 1}, {"op": "close"}. End of input closes too.
OUT: one JSON event a line, each with "t" (epoch seconds): connack {rc},
suback {mid, granted}, published {mid}, puback {mid}, message {topic, payload,
qos}, disconnect {rc}, error {msg}, and last exit, when the session is over.
No reconnects: a test sees every disconnect. The process itself ends at the
end of its input, never before, so whoever feeds it never writes to a closed
pipe.
"""
import json
import os
import queue
import sys
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt

OUT = open(sys.argv[1], "a", buffering=1)
LOCK = threading.Lock()


def emit(ev, **fields):
    fields["ev"] = ev
    fields["t"] = time.time()
    with LOCK:
        OUT.write(json.dumps(fields) + "\n")
        OUT.flush()


COMMANDS = queue.Queue()
EOF = threading.Event()


def read_stdin():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            COMMANDS.put(json.loads(line))
        except ValueError:
            emit("error", msg="not JSON: " + line[:80])
    COMMANDS.put({"op": "close"})
    EOF.set()
    # the test is gone: end even if the broker does not answer
    threading.Timer(3, lambda: os._exit(0)).start()


def session():
    first = COMMANDS.get()
    if first.get("op") != "connect":
        emit("error", msg="the first command must be connect")
        return
    url = urllib.parse.urlsplit(first["url"])
    c = mqtt.Client(client_id=first.get("client_id", ""), clean_session=True,
                    protocol=mqtt.MQTTv311, transport="websockets")
    c.ws_set_options(path=url.path or "/")
    if url.scheme == "wss":
        c.tls_set(ca_certs=first.get("ca"))
        if first.get("insecure"):
            c.tls_insecure_set(True)
    username = first.get("username", "")
    if username is not None or first.get("password") is not None:
        c.username_pw_set(username, first.get("password"))
    c.on_connect = lambda cl, ud, flags, rc: emit("connack", rc=rc)
    c.on_subscribe = lambda cl, ud, mid, granted: emit("suback", mid=mid, granted=list(granted))
    c.on_publish = lambda cl, ud, mid: emit("puback", mid=mid)
    c.on_message = lambda cl, ud, m: emit("message", topic=m.topic, qos=m.qos,
                                          payload=m.payload.decode("utf-8", "replace"))
    gone = {"done": False}

    def on_disconnect(cl, ud, rc):
        if not gone["done"]:
            gone["done"] = True
            emit("disconnect", rc=rc)
    c.on_disconnect = on_disconnect
    try:
        c.connect(url.hostname, url.port or 443, keepalive=int(first.get("keepalive", 30)))
    except Exception as e:
        emit("error", msg="connect: %s" % e)
        return
    closing = False
    while True:
        rc = c.loop(0.01)
        while True:
            try:
                cmd = COMMANDS.get_nowait()
            except queue.Empty:
                break
            op = cmd.get("op")
            if op == "subscribe":
                c.subscribe([(t, int(cmd.get("qos", 0))) for t in cmd["topics"]])
            elif op == "unsubscribe":
                c.unsubscribe(cmd["topics"])
            elif op == "publish":
                info = c.publish(cmd["topic"], cmd.get("payload", "").encode("utf-8"), qos=int(cmd.get("qos", 0)))
                emit("published", mid=info.mid, rc=info.rc)
            elif op == "close":
                closing = True
                c.disconnect()
        if rc != mqtt.MQTT_ERR_SUCCESS or gone["done"]:
            on_disconnect(c, None, rc)
            break
        if closing and not c.is_connected():
            break


def main():
    threading.Thread(target=read_stdin, daemon=True).start()
    try:
        session()
    except Exception as e:
        emit("error", msg=repr(e))
    emit("exit")
    EOF.wait()


if __name__ == "__main__":
    main()
]==]
