"""W&B's GraphQL API on loopback: the operations dist-spk's online paths send through W&B's own clients
(``wandb.Api``, ``wandb.sweep``, wandb-workspaces), answered as W&B's server answers them. Every request is kept,
so a test asserts on what W&B would have received."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VIEWER = {"id": "VXNlcjox", "entity": "speech-team", "username": "ana", "email": "ana@example.org", "flags": "{}",
          "admin": False, "teams": {"edges": []}}
SWEEP_ID = "sw33p1d8"


def answer(query: str) -> dict:
    if "UpsertSweep" in query:
        return {"upsertSweep": {"sweep": {"name": SWEEP_ID, "id": "U3dlZXA6MQ=="}, "configValidationWarnings": []}}
    if "UpsertView2" in query:
        return {"upsertView": {"view": {"id": "Vmlldzox", "name": "nw-dist-spk"}, "inserted": True}}
    if "viewer" in query:  # Viewer (the client checks its key), GetDefaultEntity
        return {"viewer": VIEWER}
    return {}


class GraphQL(BaseHTTPRequestHandler):
    seen: list[dict]

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = json.loads(body) if self.path == "/graphql" else {}  # /sdk/otel/...: the client's telemetry
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **request})
        payload = json.dumps({"data": answer(request.get("query", ""))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def start() -> tuple[ThreadingHTTPServer, list[dict]]:
    seen: list[dict] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (GraphQL,), {"seen": seen}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen
