"""Putting webhooks on the queue: what ingest (and the suppression list, and alerts) call.

Ingest calls `Notifier.recorded(tenant, event, engagement)` once per event it recorded (or
recognised as a duplicate), after its own writes, with the class it gave an Open or Click (the
payload carries it): the event is stored whatever happens here. It costs a tenant
without endpoints no write and no request: the tenant's routes (its enabled endpoints, their
types and tag filters) come from a per-instance cache refreshed at most once per
`ttl_seconds` (one Query of the endpoints' partition), and an empty list ends it. For a tenant
with endpoints, each message a matching endpoint wants becomes one SQS message (SendMessageBatch,
10 per request); nothing is written to DynamoDB on the ingest path: the delivery function writes
the delivery record when it attempts it.

Duplicates are queued too. If SQS fails, ingest's invocation fails after the event was stored;
Lambda's retry finds a duplicate and queues its webhooks then. The same event always gives the
same webhook-id and delivery ID, and the delivery function drops a delivery it has already made.

Alerts: an event that moves the reputation counters (a send, a bounce, a complaint) also asks for
the tenant's alerts to be evaluated, at most once per `evaluate_every` seconds per tenant and
instance, a few seconds later (so that a burst's counters are in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from chalicelib.core import keys
from chalicelib.events.ses import SesEvent
from chalicelib.events.status import Status
from chalicelib.suppression.from_events import suppression_targets
from chalicelib.webhooks import payloads
from chalicelib.webhooks.payloads import Outgoing
from chalicelib.webhooks.queue import Queue, Task

REPUTATION = frozenset({Status.SENT, Status.BOUNCED, Status.COMPLAINED})
EVALUATE_DELAY_SECONDS = 5


class HasTenantId(Protocol):
    @property
    def tenant_id(self) -> str: ...


@dataclass(frozen=True)
class Route:
    """Where one enabled endpoint wants messages."""

    endpoint_id: str
    patterns: tuple[str, ...]
    tags: frozenset[str] = frozenset()  # name=value; empty: every email event

    def wants(self, message: Outgoing) -> bool:
        if not payloads.matches(self.patterns, message.type):
            return False
        if self.tags and message.type.startswith("email."):
            return bool(self.tags & message.tag_pairs)
        return True


def delivery_id(at: datetime, webhook_id: str) -> str:
    """Sorts by the time of what is delivered; unique per message (per endpoint partition)."""
    return f"{keys.delivery_stamp(at)}-{webhook_id.removeprefix('msg_')}"


def deliver_task(tenant_id: str, endpoint_id: str, message: Outgoing) -> Task:
    body = {
        "k": "deliver",
        "m": "new",
        "t": tenant_id,
        "e": endpoint_id,
        "d": delivery_id(message.at, message.webhook_id),
        "w": message.webhook_id,
        "ty": message.type,
        "b": message.body,
    }
    return Task(tenant_id, body)


class Routes:
    """tenant -> its routes, cached in this instance for `ttl_seconds` (invalidated at once by
    the API's own changes, which reach other instances within the TTL)."""

    def __init__(
        self,
        load: Callable[[str], list[Route]],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._ttl, self._clock = load, ttl_seconds, clock
        self._cache: dict[str, tuple[float, list[Route]]] = {}
        self._lock = threading.Lock()

    def of(self, tenant_id: str) -> list[Route]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(tenant_id)
        if cached and cached[0] > now:
            return cached[1]
        routes = self._load(tenant_id)
        with self._lock:
            self._cache[tenant_id] = (now + self._ttl, routes)
        return routes

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._cache.pop(tenant_id, None)


class Notifier:
    def __init__(
        self,
        routes: Routes,
        queue: Queue,
        *,
        evaluate_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes, self._queue = routes, queue
        self._every, self._clock = evaluate_every, clock
        self._evaluated: dict[str, float] = {}

    def recorded(
        self, tenant: HasTenantId, event: SesEvent, engagement: Mapping[str, str] | None = None
    ) -> None:
        """Ingest's one call: the webhooks of a recorded SES event (an Open's or Click's with the
        class ingest gave it), and the alerts' cue."""
        tid = tenant.tenant_id
        tasks: list[Task] = []
        routes = self.routes.of(tid)
        if routes:
            messages = payloads.from_ses_event(tid, event, engagement)
            reason = "COMPLAINT" if event.status is Status.COMPLAINED else "BOUNCE"
            messages += [
                payloads.suppression(
                    tid,
                    payloads.SUPPRESSION_ADDED,
                    address,
                    reason=reason,
                    at=event.timestamp,
                    by="ses-event",
                    source_message_id=event.mail.message_id,
                    cause=event.key,
                )
                for address in suppression_targets(event)
            ]
            tasks += self._tasks(tid, routes, messages)
        if event.status in REPUTATION and self._cue(tid):
            tasks.append(
                Task(tid, {"k": "evaluate", "t": tid}, delay=EVALUATE_DELAY_SECONDS),
            )
        if tasks:
            self._queue.send(tasks)

    def publish(self, tenant_id: str, messages: Iterable[Outgoing]) -> int:
        """Queue messages for every endpoint that wants them; how many deliveries were queued."""
        tasks = self._tasks(tenant_id, self.routes.of(tenant_id), list(messages))
        if tasks:
            self._queue.send(tasks)
        return len(tasks)

    def send(self, tasks: list[Task]) -> None:
        self._queue.send(tasks)

    def to_endpoint(self, tenant_id: str, endpoint_id: str, message: Outgoing) -> str:
        """One message to one endpoint, whatever its types (the test event). Its delivery ID."""
        task = deliver_task(tenant_id, endpoint_id, message)
        self._queue.send([task])
        return str(task.body["d"])

    def suppression_changed(
        self, tenant_id: str, kind: str, address: str, *, reason: str | None, by: str | None
    ) -> None:
        """suppression.added / suppression.removed for a change made through the API."""
        now = datetime.now(UTC)
        message = payloads.suppression(tenant_id, kind, address, reason=reason, at=now, by=by)
        self.publish(tenant_id, [message])

    def _tasks(self, tid: str, routes: list[Route], messages: list[Outgoing]) -> list[Task]:
        return [
            deliver_task(tid, route.endpoint_id, message)
            for message in messages
            for route in routes
            if route.wants(message)
        ]

    def _cue(self, tenant_id: str) -> bool:
        now = self._clock()
        last = self._evaluated.get(tenant_id)
        if last is not None and now - last < self._every:
            return False
        self._evaluated[tenant_id] = now
        return True
