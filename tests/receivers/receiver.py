"""A webhook receiver as a customer writes it in Python: the `standardwebhooks` library from
PyPI checks each delivery.

Usage: receiver.py SECRET[,SECRET...] [--fail N] [--hang] [--port P]
  SECRET...  the secrets it trusts (several during a rotation: each is checked on its own)
  --fail N   answer 500 to the first N deliveries (after checking and reporting them)
  --hang     never answer (the sender's time-out ends each try)
  --port P   listen on P rather than on a free port

Prints its port, then one JSON line per delivery: {"ok", "id", "body", "verified": [one bool
per secret], "status"} or {"ok": false, "error"}. It answers 204, 401 (no secret verifies) or
500 (--fail)."""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

args = sys.argv[1:]
webhooks = [Webhook(secret) for secret in args[0].split(",")]
fail = int(args[args.index("--fail") + 1]) if "--fail" in args else 0
hang = "--hang" in args
port = int(args[args.index("--port") + 1]) if "--port" in args else 0
lock = threading.Lock()


def verified_by(webhook, body, headers):
    try:
        webhook.verify(body, headers)
        return True, None
    except Exception as error:  # the library's verification error, whatever its kind
        return False, f"{type(error).__name__}: {error}"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global fail
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        results = [verified_by(w, body, headers) for w in webhooks]
        verified = [ok for ok, _ in results]
        if any(verified):
            with lock:
                status = 500 if fail > 0 else 204
                fail = max(fail - 1, 0)
            line = {"ok": True, "id": headers.get("webhook-id"), "body": body.decode(),
                    "verified": verified, "status": status}
        else:
            status = 401
            line = {"ok": False, "error": results[0][1], "status": status}
        print(json.dumps(line), flush=True)
        if hang:
            time.sleep(3600)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
