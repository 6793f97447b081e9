"""The local stack's demo webhook receiver: what a customer's endpoint does, on loopback.

`make dev` points a webhook endpoint of the demo tenant at POST /hooks here and hands this
receiver the endpoint's secret. Every delivery is verified with the `standardwebhooks` library
(signature and timestamp, as any receiver should) and kept, newest first; GET / shows them as a
page (refreshing itself), GET /deliveries.json as JSON. Send to bounce@simulator.amazonses.com
from the dashboard and watch email.sent, email.bounced and suppression.added arrive, signed.
"""

from __future__ import annotations

import html
import json
import threading
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

KEEP = 100


class DemoReceiver:
    def __init__(self, port: int = 0) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.received: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._secret: str | None = None
        self._lock = threading.Lock()
        self._started = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def use_secret(self, secret: str) -> None:
        self._secret = secret

    def start(self) -> str:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._started = True
        return self.url

    def stop(self) -> None:
        if self._started:
            self._server.shutdown()
        self._server.server_close()

    def _verify(self, body: bytes, headers: dict[str, str]) -> tuple[bool, str, Any]:
        if not self._secret:
            return False, "no secret yet", None
        try:
            payload = Webhook(self._secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            return False, str(exc), None
        return True, "verified", payload

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 1 << 20))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok, why, payload = receiver._verify(body, headers)
                entry = {
                    "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "webhook_id": headers.get("webhook-id"),
                    "verified": ok,
                    "why": why,
                    "type": (payload or {}).get("type"),
                    "payload": payload if ok else body.decode("utf-8", "replace")[:2000],
                }
                with receiver._lock:
                    receiver.received.appendleft(entry)
                self._answer(200 if ok else 400, "application/json", json.dumps({"ok": ok}))

            def do_GET(self) -> None:
                with receiver._lock:
                    items = list(receiver.received)
                if self.path.startswith("/deliveries.json"):
                    self._answer(200, "application/json", json.dumps(items))
                    return
                self._answer(200, "text/html; charset=utf-8", _page(items))

            def _answer(self, status: int, kind: str, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _page(items: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<tr><td>{at}</td><td>{mark}</td><td>{type}</td><td><code>{wid}</code></td>"
        "<td><pre>{payload}</pre></td></tr>".format(
            at=html.escape(str(i["received_at"])),
            mark="&#10003; signed" if i["verified"] else "&#10007; " + html.escape(str(i["why"])),
            type=html.escape(str(i["type"] or "")),
            wid=html.escape(str(i["webhook_id"])),
            payload=html.escape(json.dumps(i["payload"], indent=1)[:1500]),
        )
        for i in items
    )
    return (
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=3>"
        "<title>SESami demo webhook receiver</title>"
        "<style>body{font:14px system-ui;margin:2em}"
        "td{vertical-align:top;border-top:1px solid #ddd;padding:4px 8px}"
        "pre{margin:0;white-space:pre-wrap;max-width:60em}</style>"
        "<h1>Webhooks received</h1><p>Each one verified with the <code>standardwebhooks</code> "
        "library. Send to <code>bounce@simulator.amazonses.com</code> from the dashboard.</p>"
        f"<table><tr><th>received</th><th>signature</th><th>type</th><th>webhook-id</th>"
        f"<th>payload</th></tr>{rows or '<tr><td colspan=5>nothing yet</td></tr>'}</table>"
    )
