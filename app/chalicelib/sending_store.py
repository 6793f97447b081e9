"""DynamoDB for sending: the suppression check, the message recorded at send time, idempotency
records and bulk batches. PynamoDB errors stop here and leave as `errors.py` exceptions.

Recording a sent message. SESami writes the message aggregate (MessageModel, sk=AGG) as soon as
SES accepts the message, built with store.py's own mapping (`message_item`) from a
`MessageState` in status SENT with `events = 0`, so GET /messages/{id} shows it before SES's Send
event arrives. The write is conditional on the aggregate not existing: if the Send event won the
race, ingest's aggregate is kept as it is. Nothing else is written: no event entry in the message
partition, no event rows, no counter. So when the real Send event arrives, ingest finds no entry
for it, applies it to this aggregate under its version (events 0 -> 1, tags merged, status still
SENT) and writes its rows and counters, exactly once, as for any message. `events == 0` means
"accepted by SES, no event received yet".

Idempotency and batches live in the `sending` table (tables.IdempotencyModel, BatchModel),
keyed by the tenant like every other table (invariant 7):

    T#t#IK#<sha256(key)> / IK          an Idempotency-Key: body fingerprint, state, response (24 h)
    T#t#B#<batch> / B                  a bulk batch: summary
    T#t#B#<batch> / R#0000, R#0001...  its per-recipient results, 100 per item (retention)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, PynamoDBException

from chalicelib import keys
from chalicelib.aggregate import MessageState, RecipientState
from chalicelib.errors import Conflict, TransientStorageError
from chalicelib.settings import Settings
from chalicelib.status import Status, rank
from chalicelib.store import message_item
from chalicelib.tables import BatchModel, IdempotencyModel, MessageModel, SuppressionModel

log = logging.getLogger("sesami.sending")

IDEMPOTENCY_TTL = timedelta(hours=24)
# A claim older than this was left by a request that died (Lambda's limit is 15 minutes).
IDEMPOTENCY_LEASE = timedelta(minutes=15)
RESULTS_PER_ITEM = 100
MAX_SUBJECT_STORED = 998


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


def idempotency_pk(tenant_id: str, key: str) -> str:
    return f"{keys.tenant_pk(tenant_id)}#IK#{hashlib.sha256(key.encode()).hexdigest()}"


def batch_pk(tenant_id: str, batch_id: str) -> str:
    return f"{keys.tenant_pk(tenant_id)}#B#{batch_id}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Replay:
    """The stored outcome of an earlier request with the same key and body."""

    status_code: int
    response: dict[str, Any]


@dataclass(frozen=True)
class Suppressed:
    address: str
    reason: str
    reasons: tuple[str, ...]
    since: str | None

    def view(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "since": self.since,
        }


class SendingStore:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = _utcnow) -> None:
        self._settings = settings
        self._clock = clock

    # ------------------------------------------------------------------ suppression

    def suppressed(self, tenant_id: str, addresses: Iterable[str]) -> dict[str, Suppressed]:
        """The suppressed ones among `addresses` (lower-cased), by address. One BatchGet."""
        wanted = sorted({a.lower() for a in addresses})
        found: dict[str, Suppressed] = {}
        try:
            for item in SuppressionModel.batch_get(
                [(keys.tenant_pk(tenant_id), a) for a in wanted]
            ):
                found[item.address] = Suppressed(
                    item.address,
                    item.reason,
                    tuple(sorted(item.reasons or {item.reason})),
                    item.created_at,
                )
        except PynamoDBException as exc:
            raise TransientStorageError(f"suppression lookup failed: {exc}") from exc
        return found

    # ------------------------------------------------------------------ messages

    def record_sent(
        self,
        tenant_id: str,
        message_id: str,
        *,
        source: str,
        subject: str,
        destination: Iterable[str],
        tags: Mapping[str, str],
    ) -> bool:
        """Write the aggregate of a message SES just accepted (see the module docstring).
        False when it was not written: ingest got there first, or the write failed (the Send
        event will record the message anyway, so a send never fails for this)."""
        now = self._clock()
        to = tuple(dict.fromkeys(a.lower() for a in destination))
        sent = rank(Status.SENT)
        state = MessageState(
            message_id=message_id,
            source=source,
            subject=subject[:MAX_SUBJECT_STORED],
            sent_at=now,
            destination=to,
            tags={name: (value,) for name, value in tags.items()},
            status=Status.SENT,
            rank=sent,
            status_at=now,
            recipients={a: RecipientState(Status.SENT, sent, now) for a in to},
        )
        pk = keys.message_pk(tenant_id, message_id)
        expires = now + timedelta(seconds=self._settings.retention_seconds)
        try:
            message_item(pk, state, None, expires).save(condition=MessageModel.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                log.warning("could not record sent message %s: %s", message_id, exc)
            return False
        except PynamoDBException as exc:
            log.warning("could not record sent message %s: %s", message_id, exc)
            return False
        return True

    # ------------------------------------------------------------------ idempotency

    def claim(self, tenant_id: str, key: str, fingerprint: str) -> Replay | None:
        """Claim `key` for a request whose body has `fingerprint`: None when this request may
        proceed (it must then `complete` or `release`), a Replay of the stored outcome when the
        same request already ran. IdempotencyKeyReused when the key came with another body;
        IdempotencyKeyInUse while the first request is still running."""
        pk = idempotency_pk(tenant_id, key)
        for _attempt in range(3):
            now = self._clock()
            item = IdempotencyModel(
                pk,
                fingerprint=fingerprint,
                state="in_progress",
                claimed_at=now,
                expires_at=now + IDEMPOTENCY_TTL,
            )
            # TTL deletion lags by up to days: an expired record is free to take, and so is a
            # claim abandoned by a request that died.
            free = (
                IdempotencyModel.pk.does_not_exist()
                | (IdempotencyModel.expires_at < now)
                | (
                    (IdempotencyModel.state == "in_progress")
                    & (IdempotencyModel.claimed_at < now - IDEMPOTENCY_LEASE)
                    & (IdempotencyModel.fingerprint == fingerprint)
                )
            )
            try:
                item.save(condition=free)
                return None
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise TransientStorageError(f"idempotency claim failed: {exc}") from exc
            except PynamoDBException as exc:
                raise TransientStorageError(f"idempotency claim failed: {exc}") from exc
            held = self._get_claim(pk)
            if held is None:
                continue  # released meanwhile: try again
            if held.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request; use a new "
                    "key for a new request",
                    details={"header": "Idempotency-Key"},
                )
            if held.state == "done" and held.response is not None:
                return Replay(int(held.status_code or 200), dict(held.response))
            raise IdempotencyKeyInUse(
                "a request with this Idempotency-Key is still being processed; retry shortly",
                details={"header": "Idempotency-Key"},
            )
        raise TransientStorageError("idempotency record kept changing")

    @staticmethod
    def _get_claim(pk: str) -> IdempotencyModel | None:
        try:
            return IdempotencyModel.get(pk, "IK", consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise TransientStorageError(f"idempotency read failed: {exc}") from exc

    def complete(
        self, tenant_id: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        item = IdempotencyModel(idempotency_pk(tenant_id, key))
        try:
            item.update(
                actions=[
                    IdempotencyModel.state.set("done"),
                    IdempotencyModel.status_code.set(status_code),
                    IdempotencyModel.response.set(response),
                ]
            )
        except PynamoDBException as exc:
            # The request succeeded; a retry with this key will be told it is still in progress
            # until the lease ends, never sent twice.
            log.warning("could not store the idempotent response: %s", exc)

    def release(self, tenant_id: str, key: str, fingerprint: str) -> None:
        """Give up the claim after a failure, so that the caller may retry with the same key."""
        try:
            IdempotencyModel(idempotency_pk(tenant_id, key)).delete(
                condition=(IdempotencyModel.state == "in_progress")
                & (IdempotencyModel.fingerprint == fingerprint)
            )
        except DeleteError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                log.warning("could not release an idempotency claim: %s", exc)
        except PynamoDBException as exc:
            log.warning("could not release an idempotency claim: %s", exc)

    # ------------------------------------------------------------------ batches

    def save_batch(
        self, tenant_id: str, batch_id: str, summary: dict[str, Any], results: list[dict[str, Any]]
    ) -> None:
        pk = batch_pk(tenant_id, batch_id)
        expires = self._clock() + timedelta(seconds=self._settings.retention_seconds)
        items = [BatchModel(pk, "B", doc=summary, expires_at=expires)]
        for page in range(0, len(results), RESULTS_PER_ITEM):
            items.append(
                BatchModel(
                    pk,
                    f"R#{page // RESULTS_PER_ITEM:04d}",
                    doc={"results": results[page : page + RESULTS_PER_ITEM]},
                    expires_at=expires,
                )
            )
        try:
            with BatchModel.batch_write() as batch:
                for item in items:
                    batch.save(item)
        except PynamoDBException as exc:
            raise TransientStorageError(f"batch write failed: {exc}") from exc

    def load_batch(
        self, tenant_id: str, batch_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """(summary, results) of the tenant's batch, or None: another tenant's batch is simply
        not in this tenant's partition."""
        summary: dict[str, Any] | None = None
        results: list[dict[str, Any]] = []
        try:
            for item in BatchModel.query(batch_pk(tenant_id, batch_id), consistent_read=True):
                if item.sk == "B":
                    summary = dict(item.doc)
                else:
                    results.extend(item.doc.get("results", []))
        except PynamoDBException as exc:
            raise TransientStorageError(f"batch read failed: {exc}") from exc
        return None if summary is None else (summary, results)
