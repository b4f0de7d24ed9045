"""Example Alertmanager webhook receiver for the compose stack: logs every notification.

POST /<receiver> with Alertmanager's webhook JSON -> one line per alert on stdout
(receiver, status, alertname, severity, provider, summary). GET /healthz -> 200.
Standard library only, so it runs on the plain python image.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AlertSink(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self.send_response(400)
            self.end_headers()
            return
        receiver = self.path.strip("/") or body.get("receiver", "?")
        for alert in body.get("alerts", []):
            labels, notes = alert.get("labels", {}), alert.get("annotations", {})
            print(
                f"{receiver} {alert.get('status')} {labels.get('alertname')}"
                f" severity={labels.get('severity')} provider={labels.get('provider', '-')}"
                f" :: {notes.get('summary', '')}",
                flush=True,
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the alert lines above are the log


if __name__ == "__main__":
    port = int(os.environ.get("ALERT_SINK_PORT", "8080"))
    print(f"alert-sink listening on :{port}", file=sys.stderr, flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), AlertSink).serve_forever()
