"""A webhook receiver as a customer writes it in Python: the `standardwebhooks` library from
PyPI checks each delivery. Usage: receiver.py SECRET. Prints its port, then one JSON line per
delivery: {"ok": true, "id", "body"} or {"ok": false, "error"}; answers 204 or 401."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook

webhook = Webhook(sys.argv[1])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            webhook.verify(body, headers)
            line = {"ok": True, "id": headers.get("webhook-id"), "body": body.decode()}
            status = 204
        except Exception as error:  # the library's verification error, whatever its kind
            line = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            status = 401
        print(json.dumps(line), flush=True)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
