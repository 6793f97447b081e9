"""Test helpers for webhooks: a local receiver with scripted answers, and the delivery worker
built on it and a FakeEpochClock (backoff computed and recorded, never slept)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.webhooks import outbound
from chalicelib.webhooks.delivery import DeliveryWorker
from chalicelib.webhooks.queue import MemoryQueue
from chalicelib.webhooks.secrets import SecretBox
from chalicelib.webhooks.store import WebhookStore

from tests.fakes import FakeEpochClock

KEY = b"w" * 32  # the app_settings fixture's webhook key
LOOPBACK = outbound.Policy(allow_loopback=True)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 answering each request with the next scripted (status, body),
    the last one repeating; it keeps every request."""

    script: list[tuple[int, str]] = field(default_factory=lambda: [(200, "ok")])
    extra_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self) -> tuple[int, str]:
        index = min(len(self.requests) - 1, len(self.script) - 1)
        return self.script[index]


@contextmanager
def receiver(
    script: list[tuple[int, str]] | None = None,
    *,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Iterator[Receiver]:
    state = Receiver(script or [(200, "ok")], dict(headers or {}), delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            if state.delay:
                time.sleep(state.delay)
            status, text = state.answer()
            payload = text.encode()
            self.send_response(status)
            for name, value in state.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(OSError):  # SESami reads a few KB and hangs up
                self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Harness:
    """The delivery worker on a memory queue and a clock (jitter fixed at half its range);
    `told` collects admin emails and `evaluated` the tenants whose alerts were evaluated."""

    clock: FakeEpochClock
    queue: MemoryQueue
    worker: DeliveryWorker
    told: list[tuple[str, str, str]]
    evaluated: list[str]

    def run(self, *, max_rounds: int = 200) -> list[str]:
        """Run what is due, then jump the clock to the next due task, until none is left."""
        outcomes: list[str] = []
        for _ in range(max_rounds):
            due = self.queue.due()
            if not due:
                nxt = self.queue.next_due()
                if nxt is None:
                    return outcomes
                self.clock.advance(max(0.0, nxt - self.clock()))
                continue
            for task in due:
                outcomes.append(self.worker.handle(task.body))
        raise AssertionError("the queue never emptied")


def harness(
    *,
    policy: outbound.Policy = LOOPBACK,
    send: Callable[..., outbound.Exchange] | None = None,
    resolver: outbound.Resolver = outbound.system_resolver,
    clock: FakeEpochClock | None = None,
    queue: MemoryQueue | None = None,
) -> Harness:
    clock = clock or (queue.clock if queue is not None else FakeEpochClock.starting_now())  # type: ignore[assignment]
    assert clock is not None
    queue = queue or MemoryQueue(clock)
    told: list[tuple[str, str, str]] = []
    evaluated: list[str] = []

    def post(url: str, body: bytes, headers: Any) -> outbound.Exchange:
        return outbound.post(url, body, headers, policy=policy, resolver=resolver, timeout=5)

    worker = DeliveryWorker(
        WebhookStore(),
        queue,
        SecretBox(KEY),
        send or post,
        evaluate=evaluated.append,
        tell_admins=lambda *told_args: told.append(told_args),
        wall=clock,
        rng=lambda: 0.5,
    )
    return Harness(clock, queue, worker, told, evaluated)


def body_of(request: Received) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request.body)
    return data


@dataclass
class Hooks:
    """Everything a webhook test needs for one tenant: the endpoint service and notifier on the
    harness's queue, and the worker that delivers."""

    tenant_id: str
    service: Any
    notifier: Any
    h: Harness

    def endpoint(self, url: str, **fields: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.service.create(self.tenant_id, {"url": url, **fields}, "t")
        return created

    def ingest(self, tenant: Any, *envelopes: dict[str, Any]) -> Any:
        from chalicelib.ingest.pipeline import ingest_envelopes

        return ingest_envelopes(
            list(envelopes),
            tenants=tenant.directory,
            store=tenant.store,
            notify=self.notifier.recorded,
        )

    def delivery(self, endpoint_id: str, delivery_id: str) -> Any:
        return WebhookStore().delivery(self.tenant_id, endpoint_id, delivery_id)

    def log(self, endpoint_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.service.deliveries(
            self.tenant_id, endpoint_id, status=None, limit="100", cursor=None
        )["items"]
        return items


def hooks_for(tenant_id: str, **harness_args: Any) -> Hooks:
    from chalicelib.core.signing import Signer
    from chalicelib.webhooks.endpoints import EndpointService, routes_of
    from chalicelib.webhooks.enqueue import Notifier, Routes

    h = harness(**harness_args)
    store = WebhookStore()
    routes = Routes(lambda tid: routes_of(store.endpoints(tid)), ttl_seconds=0)
    notifier = Notifier(routes, h.queue)
    service = EndpointService(
        store,
        SecretBox(KEY),
        notifier,
        Signer(b"s" * 32),
        policy=harness_args.get("policy", LOOPBACK),
        resolver=harness_args.get("resolver", outbound.system_resolver),
        clock=lambda: _utc(h.clock()),
    )
    return Hooks(tenant_id, service, notifier, h)


def _utc(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)
