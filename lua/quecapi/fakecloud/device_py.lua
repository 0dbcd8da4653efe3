-- The fake cloud's device side, as Python source (python3 with paho-mqtt):
-- quecapi.fakecloud.broker writes it into the run directory and starts it.
--
-- Why a process of its own, in Python: the fake's devices must speak MQTT with
-- a real client that owes nothing to quecapi's own MQTT code, and nginx must
-- never block on it. One long-running paho client keeps one connection to the
-- broker, so what the fake publishes reaches subscribers in the order it was
-- sent (a report before its acknowledgement, a burst of 1,000 in sequence), it
-- reconnects by itself after the broker restarts, and it subscribes to the
-- commands Apps publish. nginx talks to it over a loopback socket with
-- cosockets (one JSON line each way); it posts each App command to nginx over
-- plain HTTP. It is also the broker's supervisor: mosquitto runs as its child
-- (started, restarted, frozen with SIGSTOP and thawed on request) and dies
-- with it.
return [==[
"""The fake cloud's device side and the supervisor of its mosquitto broker.

Written out and started by quecapi.fakecloud.broker: python3 device.py CONFIG,
CONFIG a JSON file (dir, mosquitto, broker_conf, mqtt_port, http_port, user,
password). When ready it writes DIR/device.ready ({"port": p, "pid": n,
"start_ms": t}), or DIR/device.failed with the reason, and serves one JSON
line per request on 127.0.0.1:p (ops: publish, direct, drop, restart, freeze,
thaw, status).
"""
import ctypes
import http.client
import json
import os
import queue
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

CONF = json.load(open(sys.argv[1]))
DIR = CONF["dir"]


def log(*words):
    stamp = time.strftime("%H:%M:%S") + ".%03d" % (time.time() % 1 * 1000)
    sys.stderr.write(stamp + " " + " ".join(str(w) for w in words) + "\n")
    sys.stderr.flush()


def write_file(name, text):
    tmp = os.path.join(DIR, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(DIR, name))


def remove_file(name):
    try:
        os.remove(os.path.join(DIR, name))
    except OSError:
        pass


def die_with_parent():
    # mosquitto gets SIGTERM when this process ends, however it ends
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Device:
    """The paho client of the device side: one connection, reconnected by paho."""

    def __init__(self):
        self.ready = threading.Event()   # connected and subscribed to commands
        self.commands = queue.Queue()
        c = mqtt.Client(client_id="fakecloud-device", clean_session=True, protocol=mqtt.MQTTv311)
        c.username_pw_set(CONF["user"], CONF["password"])
        # back soon after a restart of the broker
        c.reconnect_delay_set(min_delay=0.02, max_delay=0.25)
        c.max_queued_messages_set(0)
        c.on_connect = self.on_connect
        c.on_disconnect = self.on_disconnect
        c.on_subscribe = self.on_subscribe
        c.on_message = self.on_message
        self.client = c

    def start(self):
        # the broker may be frozen for minutes on purpose: a long keepalive, so
        # this side does not give up on it meanwhile
        self.client.connect_async("127.0.0.1", CONF["mqtt_port"], keepalive=3600)
        self.client.loop_start()

    def on_connect(self, client, userdata, flags, rc):
        if rc == 0:
            client.subscribe("fakecloud/cmd", qos=1)
        else:
            log("device side refused by the broker:", mqtt.connack_string(rc))

    def on_subscribe(self, client, userdata, mid, granted):
        self.ready.set()

    def on_disconnect(self, client, userdata, rc):
        self.ready.clear()

    def on_message(self, client, userdata, msg):
        # "<n>:<client id><n>:<token><n>:<topic><payload>" (the plugin's forward_command)
        data, fields, pos = msg.payload, [], 0
        try:
            for _ in range(3):
                colon = data.index(b":", pos)
                n = int(data[pos:colon])
                fields.append(data[colon + 1:colon + 1 + n].decode("utf-8", "replace"))
                pos = colon + 1 + n
        except ValueError:
            log("malformed command forward dropped")
            return
        self.commands.put({"clientId": fields[0], "token": fields[1], "topic": fields[2],
                           "payload": data[pos:].decode("utf-8", "replace")})

    def publish(self, messages, wait=True):
        published, dropped, last = 0, 0, None
        for m in messages:
            info = self.client.publish(m["topic"], m.get("payload", "").encode("utf-8"),
                                       qos=int(m.get("qos", 0)), retain=False)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                published, last = published + 1, info
            else:
                dropped += 1
        if wait and last is not None:
            try:
                last.wait_for_publish(timeout=5)
            except (RuntimeError, ValueError):
                pass
        return {"ok": True, "published": published, "dropped": dropped}


class Broker:
    """mosquitto as a child of this process (started on the main thread only)."""

    def __init__(self, device):
        self.device = device
        self.proc = None
        self.frozen_until = None   # when a freeze of so many seconds ends (monotonic clock)
        self.frozen = False
        self.restarts = 0
        self.start_ms = None

    def start(self):
        t0 = time.monotonic()
        out = open(os.path.join(DIR, "mosquitto.log"), "ab")
        self.proc = subprocess.Popen([CONF["mosquitto"], "-c", CONF["broker_conf"]],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     close_fds=True, preexec_fn=die_with_parent)
        out.close()
        write_file("mosquitto.pid", "%d\n" % self.proc.pid)
        deadline = t0 + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "mosquitto exited (status %s):\n%s" % (self.proc.returncode, self.log_tail())
            if self.device.ready.wait(0.01):
                self.start_ms = round((time.monotonic() - t0) * 1000, 1)
                return None
        return "mosquitto did not accept the device side within 15 s:\n" + self.log_tail()

    def log_tail(self):
        try:
            with open(os.path.join(DIR, "mosquitto.log"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 2000))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        self.thaw()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        remove_file("mosquitto.pid")

    def restart(self):
        self.stop()
        self.device.ready.clear()
        err = self.start()
        self.restarts += 1
        return {"ok": err is None, "error": err, "start_ms": self.start_ms}

    def freeze(self, seconds):
        if self.proc is None or self.proc.poll() is not None:
            return {"ok": False, "error": "the broker is not running"}
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True
        self.frozen_until = time.monotonic() + seconds if seconds else None
        return {"ok": True, "frozen": True, "seconds": seconds}

    def thaw(self):
        if self.frozen and self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen, self.frozen_until = False, None
        return {"ok": True, "frozen": False}

    def status(self):
        if self.proc is None or self.proc.poll() is not None:
            state = "stopped"
        else:
            state = "frozen" if self.frozen else "running"
        left = None
        if self.frozen_until is not None:
            left = max(0, round(self.frozen_until - time.monotonic(), 3))
        return {"ok": True, "broker": state, "pid": self.proc and self.proc.pid, "restarts": self.restarts,
                "start_ms": self.start_ms, "device": self.device.ready.is_set(), "frozen_for": left}


DEVICE = Device()
BROKER = Broker(DEVICE)
JOBS = queue.Queue()   # broker operations, run on the main thread
STOP = threading.Event()


def on_main_thread(fn, *args):
    done, box = threading.Event(), {}

    def job():
        try:
            box["answer"] = fn(*args)
        except Exception as e:  # an answer, not a dead supervisor
            box["answer"] = {"ok": False, "error": repr(e)}
        done.set()
    JOBS.put(job)
    done.wait()
    return box["answer"]


def direct(req):
    cid = req["clientId"].encode("utf-8")
    payload = b"%d:%s%s" % (len(cid), cid, req.get("payload", "").encode("utf-8"))
    info = DEVICE.client.publish("fakecloud/direct", payload, qos=1)
    try:
        info.wait_for_publish(timeout=5)
    except (RuntimeError, ValueError) as e:
        return {"ok": False, "error": str(e)}
    return {"ok": info.is_published()}


def drop(_):
    # the plugin disconnects every App when it handles this message; its
    # PUBACK comes after that
    info = DEVICE.client.publish("fakecloud/ctl/drop", b"", qos=1)
    try:
        info.wait_for_publish(timeout=5)
    except (RuntimeError, ValueError) as e:
        return {"ok": False, "error": str(e)}
    return {"ok": info.is_published()}


OPS = {
    "publish": lambda req: DEVICE.publish(req.get("messages") or [], req.get("wait", True)),
    "direct": direct,
    "drop": drop,
    "restart": lambda req: on_main_thread(BROKER.restart),
    "freeze": lambda req: on_main_thread(BROKER.freeze, float(req.get("seconds") or 0)),
    "thaw": lambda req: on_main_thread(BROKER.thaw),
    "status": lambda req: on_main_thread(BROKER.status),
}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            try:
                req = json.loads(line)
                op = OPS.get(req.get("op"))
                answer = op(req) if op else {"ok": False, "error": "unknown op"}
            except Exception as e:
                answer = {"ok": False, "error": repr(e)}
            self.wfile.write(json.dumps(answer).encode("utf-8") + b"\n")
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def forward_commands():
    """Each App command to nginx, in order: POST /_fake/broker/command."""
    conn = None
    while not STOP.is_set():
        try:
            cmd = DEVICE.commands.get(timeout=0.5)
        except queue.Empty:
            continue
        body = json.dumps(cmd).encode("utf-8")
        for attempt in range(3):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", CONF["http_port"], timeout=30)
                conn.request("POST", "/_fake/broker/command", body, {"Content-Type": "application/json"})
                conn.getresponse().read()
                break
            except (OSError, http.client.HTTPException) as e:
                conn = None
                if attempt == 2:
                    log("command not delivered to the fake cloud:", e)
                time.sleep(0.05)


def main():
    try:
        os.setsid()   # out of the starting shell's process group: its Ctrl-C is not ours
    except OSError:
        pass
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    write_file("device.pid", "%d\n" % os.getpid())
    DEVICE.start()
    err = BROKER.start()
    if err:
        write_file("device.failed", err)
        BROKER.stop()
        remove_file("device.pid")
        sys.exit(1)
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    threading.Thread(target=forward_commands, daemon=True).start()
    write_file("device.ready", json.dumps({"port": server.server_address[1], "pid": os.getpid(),
                                           "start_ms": BROKER.start_ms}))
    log("ready: broker started in", BROKER.start_ms, "ms; device side on port", server.server_address[1])
    while not STOP.is_set():
        try:
            JOBS.get(timeout=0.05)()
        except queue.Empty:
            pass
        if BROKER.frozen_until is not None and time.monotonic() >= BROKER.frozen_until:
            BROKER.thaw()
    server.shutdown()
    BROKER.stop()
    DEVICE.client.loop_stop()
    remove_file("device.ready")
    remove_file("device.pid")
    log("stopped")
    # nothing left worth waiting for at the interpreter's shutdown
    os._exit(0)


if __name__ == "__main__":
    main()
]==]
