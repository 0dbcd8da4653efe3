#!/usr/bin/env python3
"""A page in headless Chromium, driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: no port, no WebSocket library), for the realtime
browser spec:

  cdp_page.py CHROMIUM URL READY_FILE SELECTOR TEXT SCREENSHOT [TIMEOUT]

Opens URL, waits until document.body.dataset.state is "live" (the page's
EventSource is open), writes READY_FILE, waits until the element SELECTOR shows
TEXT, takes a screenshot into SCREENSHOT (PNG) and prints one JSON line:
{"ok": true|false, "text": ..., "state": ..., "error": ...}.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    chromium, url, ready, selector, text, shot = sys.argv[1:7]
    timeout = float(sys.argv[7]) if len(sys.argv) > 7 else 60
    deadline = time.monotonic() + timeout
    profile = tempfile.mkdtemp(prefix="quecapi-cdp-")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child_fds():
        # the browser reads commands on fd 3 and writes answers on fd 4
        os.dup2(to_chrome_r, 3)
        os.dup2(from_chrome_w, 4)

    proc = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"],
        # 3 and 4 kept open too: the child closes what pass_fds does not name after preexec_fn
        preexec_fn=child_fds, pass_fds=(3, 4, to_chrome_r, from_chrome_w),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    out = os.fdopen(to_chrome_w, "wb", buffering=0)
    inp = os.fdopen(from_chrome_r, "rb", buffering=0)
    buf = b""
    ids = [0]

    def call(method, params=None, session=None):
        nonlocal buf
        ids[0] += 1
        msg = {"id": ids[0], "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        out.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in buf:
                chunk = inp.read(65536)
                if not chunk:
                    raise RuntimeError("the browser went away")
                buf += chunk
            raw, buf = buf.split(b"\0", 1)
            m = json.loads(raw)
            if m.get("id") == ids[0]:
                if "error" in m:
                    raise RuntimeError(method + ": " + json.dumps(m["error"]))
                return m.get("result", {})

    result = {"ok": False}
    try:
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        call("Emulation.setDeviceMetricsOverride",
             {"width": 900, "height": 640, "deviceScaleFactor": 1, "mobile": False}, session)
        call("Page.navigate", {"url": url}, session)

        def evaluate(expr):
            r = call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
            return r.get("result", {}).get("value")

        state = None
        while time.monotonic() < deadline:
            state = evaluate("document.body ? document.body.dataset.state : null")
            if state == "live":
                break
            time.sleep(0.05)
        result["state"] = state
        if state != "live":
            raise RuntimeError("the page did not go live (state %r)" % state)
        with open(ready, "w") as f:
            f.write("live\n")
        expr = "(function(){var e=document.querySelector(%s);return e?e.textContent:null})()" % json.dumps(selector)
        shown = None
        while time.monotonic() < deadline:
            shown = evaluate(expr)
            if shown == text:
                break
            time.sleep(0.05)
        result["text"] = shown
        if shown != text:
            raise RuntimeError("the page shows %r, not %r" % (shown, text))
        result["log"] = evaluate("document.getElementById('log').textContent")
        result["online"] = evaluate("document.getElementById('online').textContent")
        time.sleep(0.3)
        png = call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png))
        result["ok"] = True
    except Exception as e:  # noqa: BLE001 - reported to the spec as JSON
        result["error"] = str(e)
    finally:
        try:
            call("Browser.close")
        except Exception:  # noqa: BLE001
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(result))


main()
