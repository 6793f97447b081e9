"""The webhook queue: one SQS standard queue, used as a *fair queue* (MessageGroupId = the tenant).

What travels on it (JSON bodies; the delivery function handles each, see delivery.py):

    {"k": "deliver", "m": "new",    "t", "e", "d", "w", "ty", "b"}   a message to attempt now
    {"k": "deliver", "m": "retry",  "t", "e", "d", "s", "due"}       a retry, due at `due`
    {"k": "deliver", "m": "replay", "t", "e", "d"}                    one more attempt, by hand
    {"k": "evaluate", "t"}                                            counters moved: check alerts

(t tenant, e endpoint, d delivery ID, w webhook-id, ty type, b the body, s the retry's number.)

Fairness: SQS fair queues watch each message group's share of in-flight messages and of consumer
processing time, and when one tenant takes more than its share (a backlog, or a slow endpoint
holding the consumers) they hand out the other tenants' messages first. SQS delays a message at
most 15 minutes: a later retry travels in hops of up to 15 minutes until it is due.

`MemoryQueue` is the in-process stand-in with an injected clock: tests see every delay a retry is
given and run what is due without sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.core import aws
from chalicelib.core.errors import SesamiError

MAX_DELAY_SECONDS = 900  # SQS's longest message timer
BATCH = 10  # SQS SendMessageBatch's most entries


class QueueUnavailable(SesamiError):
    """SQS refused or failed a send (after botocore's retries). Ingest lets it propagate: the
    event is stored, and the retried invocation (a duplicate by then) queues its webhooks."""


@dataclass(frozen=True)
class Task:
    tenant_id: str
    body: dict[str, Any]
    delay: int = 0


class Queue(Protocol):
    def send(self, tasks: Sequence[Task]) -> None: ...


class SqsQueue:
    def __init__(self, client: Any, url: str) -> None:
        self._client, self._url = client, url

    def send(self, tasks: Sequence[Task]) -> None:
        for start in range(0, len(tasks), BATCH):
            chunk = tasks[start : start + BATCH]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(task.body, separators=(",", ":")),
                    "MessageGroupId": task.tenant_id,
                    "DelaySeconds": max(0, min(MAX_DELAY_SECONDS, int(task.delay))),
                }
                for i, task in enumerate(chunk)
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except aws.errors() as exc:
                failure = aws.failure(exc)
                raise QueueUnavailable(f"webhook queue: {failure or exc}") from exc
            if answer.get("Failed"):
                raise QueueUnavailable(f"webhook queue refused {len(answer['Failed'])} message(s)")


@dataclass
class MemoryQueue:
    """Tasks kept in memory, each due at `clock() + delay`."""

    clock: Callable[[], float]
    pending: list[tuple[float, Task]] = field(default_factory=list)
    sent: list[Task] = field(default_factory=list)

    def send(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            self.pending.append((self.clock() + task.delay, task))
            self.sent.append(task)

    def due(self) -> list[Task]:
        now = self.clock()
        ready = [task for at, task in self.pending if at <= now]
        self.pending = [(at, task) for at, task in self.pending if at > now]
        return ready

    def next_due(self) -> float | None:
        return min((at for at, _ in self.pending), default=None)

    def records(self) -> list[dict[str, Any]]:
        """What is due, shaped as Lambda's SQS event records."""
        return [
            {"messageId": f"m{i}", "body": json.dumps(task.body)}
            for i, task in enumerate(self.due())
        ]
