"""The delivery function: takes a batch of queue messages (queue.py), attempts each delivery,
records it, and schedules what must be tried again.

An attempt POSTs the stored body, signed for this attempt (a fresh `webhook-timestamp`, the same
`webhook-id` on every attempt and replay) with every secret in use (secrets.py), through
outbound.py (invariant 13: checked addresses only, no redirects, 10 s, 4 KB of answer read).

    2xx       delivered
    410       the receiver says the endpoint is gone: the endpoint is disabled, admins are told
    anything else (3xx: redirects are never followed; 4xx, 5xx, no answer, a refused address):
              retried with exponential backoff and jitter (30 s doubling to a 4 h cap, each wait
              between half and all of its step), for at least RETRY_FOR_SECONDS (24 h) after the
              first attempt; the failure after that is final: the delivery stays, with every
              attempt, as the dead-letter record (status `failed`), and can be replayed.

An endpoint whose attempts have all failed for DISABLE_AFTER_SECONDS (a day) is disabled and
its tenant's admins are told; its queued retries then end as `failed` too.

Erased recipients: a message still on the queue when its recipient is erased (SQS messages
cannot be edited) is dropped when it comes up, with no attempt and no record (`_names_erased`).

At least once: the delivery record is written after the attempt, conditional on the number of
attempts it had (a new one: on not existing), and only then is the retry queued. A message that
raises (DynamoDB or SQS unavailable) is reported as a batch item failure and SQS delivers it
again; the queue's redrive policy moves one that keeps failing to its dead-letter queue (alarmed).

Never slower for others: the messages of a batch are attempted concurrently (each attempt has
its own 10 s deadline), so one slow endpoint holds a batch for at most one timeout, and the fair
queue keeps one tenant's slow or failing endpoints from delaying the others' messages.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys, logs
from chalicelib.core.tables import WebhookDeliveryModel, WebhookEndpointModel
from chalicelib.webhooks import secrets
from chalicelib.webhooks.outbound import Exchange
from chalicelib.webhooks.queue import MAX_DELAY_SECONDS, Queue, Task
from chalicelib.webhooks.store import LOG_DAYS, WebhookStore

log = logging.getLogger("sesami.webhooks")

BASE_DELAY_SECONDS = 30.0
MAX_STEP_SECONDS = 4 * 3600.0
RETRY_FOR_SECONDS = 24 * 3600.0
DISABLE_AFTER_SECONDS = 24 * 3600.0
KEEP_DAYS = LOG_DAYS
LOG_ENTRIES = 20
ANSWER_KEPT = 512  # characters of the answer kept in the log
CONCURRENCY = 10
USER_AGENT = "SESami-Webhooks/1.0"

Send = Callable[[str, bytes, Mapping[str, str]], Exchange]
Tell = Callable[[str, str, str], object]  # (tenant, subject, text): the admins are emailed


def backoff(failures: int, rng: Callable[[], float] = random.random) -> float:
    """The wait after the `failures`-th failed attempt: 30 s doubling, capped at 4 h, with
    "equal jitter" (half the step fixed, half random) so retries of many deliveries spread."""
    step: float = min(MAX_STEP_SECONDS, BASE_DELAY_SECONDS * 2.0 ** max(0, failures - 1))
    return step / 2 + float(rng()) * step / 2


def outcome_of(exchange: Exchange) -> str:
    if exchange.status is not None and 200 <= exchange.status < 300:
        return "delivered"
    if exchange.status == 410:
        return "gone"
    return "failed"


def _iso(ts: float) -> str:
    return keys.iso_ms(datetime.fromtimestamp(ts, UTC))


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    parsed = datetime.strptime(str(iso), "%Y-%m-%dT%H:%M:%S.%fZ")
    return float(parsed.replace(tzinfo=UTC).timestamp())


class DeliveryWorker:
    def __init__(
        self,
        store: WebhookStore,
        queue: Queue,
        box: secrets.SecretBox,
        send: Send,
        *,
        evaluate: Callable[[str], object],
        tell_admins: Tell,
        forget_routes: Callable[[str], None] = lambda tenant_id: None,
        wall: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._store, self._queue, self._box, self._send = store, queue, box, send
        self._evaluate, self._tell, self._forget = evaluate, tell_admins, forget_routes
        self._wall, self._rng = wall, rng

    # ------------------------------------------------------------------ the batch

    def handle_records(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Lambda's SQS event -> its partial batch response (ReportBatchItemFailures)."""

        def one(record: Mapping[str, Any]) -> str | None:
            try:
                self.handle(json.loads(str(record["body"])))
            except Exception:
                log.exception("webhook task failed; SQS will deliver it again")
                return str(record.get("messageId"))
            return None

        if len(records) <= 1:
            failed = [one(r) for r in records]
        else:
            with ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(records))) as pool:
                failed = list(pool.map(one, records))
        return {"batchItemFailures": [{"itemIdentifier": f} for f in failed if f]}

    def handle(self, task: Mapping[str, Any]) -> str:
        """One queue message; what became of it (for logs and tests)."""
        due = task.get("due")
        now = self._wall()
        if isinstance(due, int | float) and due > now + 1:
            wait = min(MAX_DELAY_SECONDS, math.ceil(due - now))
            self._queue.send([Task(str(task["t"]), dict(task), delay=wait)])
            return "waiting"
        if task.get("k") == "evaluate":
            self._evaluate(str(task["t"]))
            return "evaluated"
        if task.get("k") == "deliver":
            return self._deliver(task)
        log.warning("unknown webhook task %s", task.get("k"))
        return "unknown"

    # ------------------------------------------------------------------ one delivery

    def _deliver(self, task: Mapping[str, Any]) -> str:
        tid, eid, did = str(task["t"]), str(task["e"]), str(task["d"])
        mode = str(task.get("m", "new"))
        endpoint = self._store.endpoint(tid, eid)
        if endpoint is None:
            return "endpoint_deleted"
        record = self._store.delivery(tid, eid, did)
        if mode == "new":
            if record is not None:
                return self._repair(tid, record) or "duplicate"
            if not endpoint.enabled:
                return "endpoint_disabled"
            if self._names_erased(tid, endpoint, did, str(task["b"])):
                return "erased"
            record = WebhookDeliveryModel(
                keys.deliveries_pk(tid, eid),
                keys.delivery_sk(did),
                webhook_id=str(task["w"]),
                event_type=str(task["ty"]),
                body=str(task["b"]),
                status="pending",
                attempts=0,
                schedule=0,
                created_at=_iso(self._wall()),
                expires_at=datetime.now(UTC) + timedelta(days=KEEP_DAYS),
            )
        elif record is None:
            return "missing"
        elif mode == "retry":
            if record.status != "retrying" or int(record.schedule) != int(task.get("s", -1)):
                return self._repair(tid, record, int(task.get("s", -1))) or "stale"
            if not endpoint.enabled:
                self._finish(record, "failed", "the endpoint is disabled")
                return "endpoint_disabled"
        elif not endpoint.enabled:
            return "endpoint_disabled"
        return self._attempt(tid, endpoint, record, mode)

    def _names_erased(self, tid: str, endpoint: WebhookEndpointModel, did: str, body: str) -> bool:
        """A message about something that happened before its recipient was erased is dropped,
        not delivered: for 30 days after an erasure (the endpoint's `erased_until`) a new
        delivery's body is checked against the erased addresses' hashes (lifecycle/erasure.py
        writes both). Mail sent to the address after its erasure is delivered as usual."""
        until = endpoint.erased_until
        if not until or until <= _iso(self._wall()):
            return False
        return self._store.names_erased(tid, did, body)

    def _attempt(
        self, tid: str, endpoint: WebhookEndpointModel, record: WebhookDeliveryModel, mode: str
    ) -> str:
        now = self._wall()
        signing = self._secrets(tid, endpoint, now)
        at = datetime.fromtimestamp(now, UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **secrets.sign(signing, record.webhook_id, at, record.body),
        }
        exchange = self._send(endpoint.url, record.body.encode(), headers)
        outcome = outcome_of(exchange)
        before = int(record.attempts or 0)
        n = before + 1
        error = exchange.error
        if exchange.status is not None and 300 <= exchange.status < 400:
            error = "a redirect; SESami does not follow redirects"
        entry = {
            "n": n,
            "at": _iso(now),
            "kind": mode,
            "code": exchange.status,
            "ms": exchange.ms,
            "body": exchange.body[:ANSWER_KEPT],
            "error": error,
        }
        status, next_at, schedule = self._next(record, outcome, mode, n, now)
        first = record.first_attempt_at or _iso(now)
        changes: dict[str, Any] = {
            "status": status,
            "attempts": n,
            "log": [*(record.log or [])[-(LOG_ENTRIES - 1) :], entry],
            "schedule": schedule,
            "first_attempt_at": first,
            "next_attempt_at": _iso(next_at) if next_at else None,
            "finished_at": None if status in ("retrying", "pending") else _iso(now),
        }
        if mode == "new":
            for name, value in changes.items():
                setattr(record, name, value)
            written = self._store.create_delivery(record)
        else:
            actions = [
                getattr(WebhookDeliveryModel, name).set(value)
                if value is not None
                else getattr(WebhookDeliveryModel, name).remove()
                for name, value in changes.items()
            ]
            written = self._store.update_delivery(record, actions, attempts=before)
        if not written:
            return "raced"  # another copy of this message recorded its attempt first
        if status == "retrying" and next_at is not None:
            self._queue_retry(tid, endpoint.endpoint_id, record, schedule, next_at)
        if status == "failed" and mode != "replay":
            logs.metric("WebhookDeadLettered", 1, {"Outcome": "failed"}, tenant=tid)
        self._health(tid, endpoint, outcome, exchange, now)
        return outcome

    def _next(
        self, record: WebhookDeliveryModel, outcome: str, mode: str, n: int, now: float
    ) -> tuple[str, float | None, int]:
        """(status, next attempt, retry number) after this attempt."""
        schedule = int(record.schedule or 0)
        if outcome == "delivered":
            return "delivered", None, schedule
        if outcome == "gone":
            return "failed", None, schedule
        if mode == "replay":
            # A replay is one attempt by hand: a delivery that is still being retried keeps its
            # schedule; a finished one stays finished.
            if record.status == "retrying":
                return "retrying", _epoch(record.next_attempt_at), schedule
            return "failed", None, schedule
        first = _epoch(record.first_attempt_at) or now
        if now - first >= RETRY_FOR_SECONDS:
            return "failed", None, schedule
        return "retrying", now + backoff(n, self._rng), schedule + 1

    def _queue_retry(
        self, tid: str, eid: str, record: WebhookDeliveryModel, schedule: int, due: float
    ) -> None:
        body = {
            "k": "deliver",
            "m": "retry",
            "t": tid,
            "e": eid,
            "d": record.sk[2:],
            "s": schedule,
            "due": due,
        }
        self._queue.send([Task(tid, body, delay=math.ceil(due - self._wall()))])

    def _repair(self, tid: str, record: WebhookDeliveryModel, schedule: int = 0) -> str | None:
        """A message already handled, delivered again by SQS: if it was the one whose follow-up
        retry may not have been queued (the send failed after the record was written), queue it
        again. Duplicate retries are harmless: only one attempt is recorded per number."""
        if record.status == "retrying" and int(record.schedule) == schedule + 1:
            due = _epoch(record.next_attempt_at) or self._wall()
            eid = record.pk.rsplit("#", 1)[-1]
            self._queue_retry(tid, eid, record, int(record.schedule), due)
            return "requeued"
        return None

    def _finish(self, record: WebhookDeliveryModel, status: str, why: str) -> None:
        entry = {"at": _iso(self._wall()), "error": why}
        self._store.update_delivery(
            record,
            [
                WebhookDeliveryModel.status.set(status),
                WebhookDeliveryModel.finished_at.set(_iso(self._wall())),
                WebhookDeliveryModel.next_attempt_at.remove(),
                WebhookDeliveryModel.log.set([*(record.log or [])[-(LOG_ENTRIES - 1) :], entry]),
            ],
            attempts=int(record.attempts or 0),
        )

    def _secrets(
        self, tid: str, endpoint: WebhookEndpointModel, now: float
    ) -> list[secrets.Secret]:
        """The current secret and any older one still in its overlap, newest first."""
        out = []
        for entry in endpoint.secrets:
            expires = _epoch(entry.get("expires_at"))
            if expires is not None and expires <= now:
                continue
            context = secrets.context(tid, endpoint.endpoint_id, str(entry["id"]))
            out.append(self._box.open(str(entry["sealed"]), context))
        return out

    # ------------------------------------------------------------------ endpoint health

    def _health(
        self,
        tid: str,
        endpoint: WebhookEndpointModel,
        outcome: str,
        exchange: Exchange,
        now: float,
    ) -> None:
        model = WebhookEndpointModel
        if outcome == "delivered":
            if endpoint.failing_since:
                self._store.update_endpoint(endpoint, [model.failing_since.remove()])
            return
        if outcome == "gone":
            self._disable(tid, endpoint, "it answered 410 Gone", now)
            return
        since = _epoch(endpoint.failing_since)
        if since is None:
            self._store.update_endpoint(
                endpoint,
                [model.failing_since.set(_iso(now))],
                condition=model.failing_since.does_not_exist(),
            )
        elif now - since >= DISABLE_AFTER_SECONDS:
            last = exchange.error or f"HTTP {exchange.status}"
            self._disable(tid, endpoint, f"every attempt failed for 24 hours (last: {last})", now)

    def _disable(self, tid: str, endpoint: WebhookEndpointModel, why: str, now: float) -> None:
        model = WebhookEndpointModel
        changed = self._store.update_endpoint(
            endpoint,
            [
                model.enabled.set(False),
                model.disabled_reason.set(why),
                model.disabled_at.set(_iso(now)),
            ],
            condition=model.enabled == True,  # noqa: E712 - a DynamoDB condition, not a test
        )
        if not changed:
            return  # disabled already (or deleted): the admins were told then
        self._forget(tid)
        log.warning("webhook endpoint %s of tenant %s disabled: %s", endpoint.endpoint_id, tid, why)
        self._tell(
            tid,
            "SESami disabled a webhook endpoint",
            f"SESami disabled your webhook endpoint {endpoint.url} ({endpoint.endpoint_id}) "
            f"because {why}.\n\nNothing more is sent to it. Once it works again, enable it on "
            "the Webhooks page (or PUT /webhooks/{id} with enabled: true) and replay what it "
            "missed from its delivery log.",
        )
