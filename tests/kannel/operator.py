#!/usr/bin/env python3
"""Fake SMS operator for Kannel's generic HTTP SMSC (see kannel.conf.in).

    python3 operator.py --port P --kannel-dlr-url http://127.0.0.1:HTTP_SMSC_PORT/ [--log FILE]

For every GET /send?to=..&from=..&text=..&coding=.. from Kannel it
  * answers "OK <message-id>" (matched by generic-foreign-id-regex),
  * appends one JSON line to --log: receiver, sender, text bytes as hex, coding, id,
  * about 200 ms later calls --kannel-dlr-url with dlr-mask=1 (delivered) and
    dlr-mid=<message-id>, so Kannel calls the message's dlr-url.
Prints "ready" on stdout once it listens on 127.0.0.1.
"""
import os
import sys

# This file's name shadows the stdlib module "operator" (imported by re, enum,
# json, ...) because Python puts the script's directory first on sys.path.
# Drop that entry before importing anything else.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import argparse  # noqa: E402  (this and the imports below must follow the fix)
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DLR_DELAY = 0.2
log_lock = threading.Lock()


def send_dlr(dlr_url, msg_id, receiver, sender):
    time.sleep(DLR_DELAY)
    query = urllib.parse.urlencode({
        "dlr-mask": 1,  # 1 = delivered to phone
        "dlr-mid": msg_id,
        "to": receiver,
        "from": sender,
        "text": f"id:{msg_id} stat:DELIVRD",
    })
    sep = "&" if "?" in dlr_url else "?"
    try:
        with urllib.request.urlopen(dlr_url + sep + query, timeout=5) as resp:
            answer = f"{resp.status} {resp.read().decode(errors='replace')}"
    except Exception as exc:  # HTTPError (e.g. 400 "Unknown DLR") included
        answer = f"failed: {exc}"
    print(f"dlr {msg_id} -> {answer}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/send":
            self.send_error(404)
            return
        # latin-1 maps %XX escapes 1:1 to code points, so .encode("latin-1")
        # gives back the exact bytes Kannel sent (UCS-2 for coding=2).
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True,
                                        encoding="latin-1"))
        msg_id = uuid.uuid4().hex  # unique even across operator restarts
        record = {
            "id": msg_id,
            "receiver": q.get("to", ""),
            "sender": q.get("from", ""),
            "text_hex": q.get("text", "").encode("latin-1").hex(),
            "coding": q.get("coding", ""),
            "charset": q.get("charset", ""),
            "dlr_mask": q.get("dlr-mask", ""),
        }
        if self.server.log_path:
            with log_lock, open(self.server.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        body = f"OK {msg_id}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        threading.Thread(target=send_dlr, daemon=True,
                         args=(self.server.dlr_url, msg_id,
                               record["receiver"], record["sender"])).start()

    def log_message(self, fmt, *args):
        print("operator: " + fmt % args, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--kannel-dlr-url", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.dlr_url = args.kannel_dlr_url
    server.log_path = args.log
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
