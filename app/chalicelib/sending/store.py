"""DynamoDB for sending: the suppression check, the message recorded at send time, idempotency
records and bulk batches. PynamoDB errors stop here and leave as `errors.py` exceptions.

Recording a sent message. SESami writes the message aggregate (MessageModel, sk=AGG) as soon as
SES accepts the message, built with the one mapping of events/messages.py (`message_item`) from a
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
    T#t#B#<batch> / B                  a bulk batch: summary and progress (compare-and-swap)
    T#t#B#<batch> / D#0000, D#0001...  the job: template, sender, tags, recipients and their
                                       variables, as JSON text in chunks of 100,000 ASCII
                                       characters (under 200 KB stored, whatever the escaping)
    T#t#B#<batch> / A#0000, A#0001...  the recipients' addresses, 100 per item
    T#t#B#<batch> / R#0000, R#0001...  one result per recipient, by index (all until retention)

An Idempotency-Key record and a batch summary carry `tenant_key` (keys.tenant_index_key), and an
aggregate written here `pending_key`: their partitions cannot be derived from anything else, and
the `by_tenant` / `by_pending` indexes are how an erasure or a tenant deletion finds them.

The suppression check also looks up the address's erased form (T#t#ERASED / its salted hash):
an erased address that was suppressed stays suppressed (chalicelib.lifecycle.erasure).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib.core import addresses, dynamo, keys
from chalicelib.core.errors import Conflict, TransientStorageError
from chalicelib.core.settings import Settings
from chalicelib.core.tables import (
    JOB_CHUNK_CHARS,
    BatchModel,
    IdempotencyModel,
    MessageModel,
    SuppressionModel,
    SuppressionVersionModel,
)
from chalicelib.events.messages import message_item
from chalicelib.events.state import MessageState, RecipientState
from chalicelib.events.status import Status, rank
from chalicelib.sending.batches import BatchSummary, BulkJob, RecipientResult

log = logging.getLogger("sesami.sending")

IDEMPOTENCY_TTL = timedelta(hours=24)
# A claim older than this was left by a request that died (Lambda's limit is 15 minutes).
IDEMPOTENCY_LEASE = timedelta(minutes=15)
ADDRESSES_PER_ITEM = 100
MAX_SUBJECT_STORED = 998


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


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

    def suppressed(
        self, tenant_id: str, recipients: Iterable[str], *, consistent: bool = False
    ) -> dict[str, Suppressed]:
        """The suppressed ones among `recipients`, by canonical key (core/addresses.py), the
        key the suppression list is stored under. One BatchGet of the live entries and the
        erasure marker; a second of the addresses' salted hashes only for a tenant that has
        erased suppressed addresses (lifecycle/erasure.py writes the marker before them).

        `consistent` reads both strongly consistent: the suppression cache needs it, since it
        stores the answer under a version it read strongly consistent, and an eventually
        consistent read could miss a change that version already counts (a "not suppressed"
        pinned under the new version). A plain check costs half the read units without it."""
        wanted = sorted({addresses.key(a) for a in recipients})
        erased_pk = keys.erased_pk(tenant_id)
        found: dict[str, Suppressed] = {}
        with dynamo.storage("suppression lookup"):
            items = list(
                SuppressionModel.batch_get(
                    [(keys.tenant_pk(tenant_id), a) for a in wanted]
                    + [(erased_pk, keys.ERASED_MARKER)],
                    consistent_read=consistent,
                )
            )
            marked = any(i.pk == erased_pk for i in items)
            erased = {keys.address_hash(tenant_id, a): a for a in wanted} if marked else {}
            if erased:
                items += SuppressionModel.batch_get(
                    [(erased_pk, h) for h in erased], consistent_read=consistent
                )
            for item in items:
                if item.pk == erased_pk and item.address == keys.ERASED_MARKER:
                    continue
                address = erased.get(item.address, item.address)
                found[address] = Suppressed(
                    address,
                    item.reason,
                    tuple(sorted(item.reasons or {item.reason})),
                    item.created_at,
                )
        return found

    def suppression_version(self, tenant_id: str) -> int:
        """The version of the tenant's suppression list: the sum of its counters, read strongly
        consistent in one BatchGet (see sending/suppression_cache.py)."""
        wanted = [
            (keys.suppression_version_pk(tenant_id, shard), "SV")
            for shard in range(keys.SUPPRESSION_VERSION_SHARDS)
        ]
        with dynamo.storage("suppression list version"):
            return sum(
                int(item.version or 0)
                for item in SuppressionVersionModel.batch_get(wanted, consistent_read=True)
            )

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
        to = tuple(dict.fromkeys(addresses.key(a) for a in destination))
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
        item = message_item(pk, state, None, expires)
        item.pending_key = keys.tenant_index_key(tenant_id, pk)
        try:
            return dynamo.write_if(
                "recording a sent message",
                lambda: item.save(condition=MessageModel.pk.does_not_exist()),
            )
        except TransientStorageError as exc:
            log.warning("could not record sent message %s: %s", message_id, exc)
            return False

    # ------------------------------------------------------------------ idempotency

    def claim(self, tenant_id: str, key: str, fingerprint: str) -> Replay | None:
        """Claim `key` for a request whose body has `fingerprint`: None when this request may
        proceed (it must then `complete` or `release`), a Replay of the stored outcome when the
        same request already ran. IdempotencyKeyReused when the key came with another body;
        IdempotencyKeyInUse while the first request is still running."""
        pk = keys.idempotency_pk(tenant_id, key)
        for _attempt in range(3):
            now = self._clock()
            item = IdempotencyModel(
                pk,
                fingerprint=fingerprint,
                state="in_progress",
                claimed_at=now,
                expires_at=now + IDEMPOTENCY_TTL,
                tenant_key=keys.tenant_index_key(tenant_id, pk),
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
            if dynamo.write_if("idempotency claim", partial(item.save, condition=free)):
                return None
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
        return dynamo.get(IdempotencyModel, pk, "IK")

    def complete(
        self, tenant_id: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        item = IdempotencyModel(keys.idempotency_pk(tenant_id, key))
        actions: list[Action] = [
            IdempotencyModel.state.set("done"),
            IdempotencyModel.status_code.set(status_code),
            IdempotencyModel.response.set(response),
        ]
        try:
            with dynamo.storage("storing the idempotent response"):
                item.update(actions=actions)
        except TransientStorageError as exc:
            # The request succeeded; a retry with this key will be told it is still in progress
            # until the lease ends, never sent twice.
            log.warning("could not store the idempotent response: %s", exc)

    def release(self, tenant_id: str, key: str, fingerprint: str) -> None:
        """Give up the claim after a failure, so that the caller may retry with the same key."""
        mine = (IdempotencyModel.state == "in_progress") & (
            IdempotencyModel.fingerprint == fingerprint
        )
        try:
            dynamo.write_if(
                "releasing an idempotency claim",
                lambda: IdempotencyModel(keys.idempotency_pk(tenant_id, key)).delete(
                    condition=mine
                ),
            )
        except TransientStorageError as exc:
            log.warning("could not release an idempotency claim: %s", exc)

    # ------------------------------------------------------------------ batches

    def create_batch(
        self,
        tenant_id: str,
        batch_id: str,
        summary: BatchSummary,
        job: BulkJob,
        addresses: list[str],
        results: Mapping[int, RecipientResult],
    ) -> None:
        """Store a new batch: the job (JSON text in chunks), the addresses in pages, the results
        known at once (suppressed), then the summary, last, so that a half-written batch is
        never visible (its items expire)."""
        pk = keys.batch_pk(tenant_id, batch_id)
        expires = self._expires()
        text = job.to_json()
        items = [
            BatchModel(pk, f"D#{n:04d}", doc={"part": text[i : i + JOB_CHUNK_CHARS]})
            for n, i in enumerate(range(0, len(text), JOB_CHUNK_CHARS))
        ]
        items += [
            BatchModel(pk, f"A#{n:04d}", doc={"addresses": addresses[i : i + ADDRESSES_PER_ITEM]})
            for n, i in enumerate(range(0, len(addresses), ADDRESSES_PER_ITEM))
        ]
        items += [BatchModel(pk, keys.batch_result_sk(i), doc=r.doc()) for i, r in results.items()]
        with dynamo.storage("batch write"):
            with BatchModel.batch_write() as batch:
                for item in items:
                    item.expires_at = expires
                    batch.save(item)
            BatchModel(
                pk,
                "B",
                doc=summary.doc(),
                expires_at=expires,
                tenant_key=keys.tenant_index_key(tenant_id, pk),
            ).save()

    def batch_summary(self, tenant_id: str, batch_id: str) -> BatchSummary | None:
        item = dynamo.get(BatchModel, keys.batch_pk(tenant_id, batch_id), "B")
        return None if item is None else BatchSummary.from_doc(item.doc)

    def replace_summary(
        self, tenant_id: str, batch_id: str, old: BatchSummary, new: BatchSummary
    ) -> bool:
        """Compare-and-swap of the summary: False when it is no longer `old` (another worker
        changed it). JSONAttribute stores json.dumps(doc), which round-trips exactly, so the
        condition compares the stored text with the text of `old`."""
        item = BatchModel(keys.batch_pk(tenant_id, batch_id), "B")
        same = BatchModel.doc == old.doc()
        return dynamo.write_if(
            "batch update",
            lambda: item.update(actions=[BatchModel.doc.set(new.doc())], condition=same),
        )

    def batch_job(self, tenant_id: str, batch_id: str) -> BulkJob:
        parts = self._pages(tenant_id, batch_id, "D#")
        return BulkJob.from_json("".join(str(doc["part"]) for _, doc in parts))

    def record_result(
        self, tenant_id: str, batch_id: str, index: int, result: RecipientResult
    ) -> None:
        item = BatchModel(
            keys.batch_pk(tenant_id, batch_id),
            keys.batch_result_sk(index),
            doc=result.doc(),
            expires_at=self._expires(),
        )
        with dynamo.storage("batch result write"):
            item.save()

    def load_batch(
        self, tenant_id: str, batch_id: str
    ) -> tuple[BatchSummary, list[str], dict[int, RecipientResult]] | None:
        """(summary, addresses, results by recipient index) of the tenant's batch, or None:
        another tenant's batch is simply not in this tenant's partition."""
        summary = self.batch_summary(tenant_id, batch_id)
        if summary is None:
            return None
        addresses: list[str] = []
        for _, doc in self._pages(tenant_id, batch_id, "A#"):
            addresses.extend(doc["addresses"])
        results = {
            int(sk[2:]): RecipientResult.from_doc(doc)
            for sk, doc in self._pages(tenant_id, batch_id, "R#")
        }
        return summary, addresses, results

    def _pages(self, tenant_id: str, batch_id: str, prefix: str) -> list[tuple[str, Any]]:
        with dynamo.storage("batch read"):
            return [
                (item.sk, item.doc)
                for item in BatchModel.query(
                    keys.batch_pk(tenant_id, batch_id),
                    BatchModel.sk.startswith(prefix),
                    consistent_read=True,
                )
            ]

    def _expires(self) -> datetime:
        return self._clock() + timedelta(seconds=self._settings.retention_seconds)
