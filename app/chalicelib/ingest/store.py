"""DynamoDB adapter for ingest: resolves accounts to tenants, records events exactly once, and
keeps unreadable events in quarantine. PynamoDB and botocore errors stop here and leave as the
exceptions of `errors.py`.

Exactly once. An event's identity is a digest of its SES record (see `ses_events.event_key`), so
a redelivery a day later is still recognised. Recording an event:
0. ONE consistent BatchGetItem reads the event's entry, the message aggregate and the account's
   binding. A binding that is not the ref's (replaced since the ref was cached) raises
   BindingChanged before anything is written: the caller looks the account up again;
1. if its entry already exists in its message partition, it is a duplicate: nothing is written;
   if the aggregate is marked erased (a recipient erasure touched the message), nothing is;
2. its rows for the time, status and recipient views are put (one per recipient). They are pure
   projections of the event: writing them twice writes the same thing;
3. ONE transaction writes the event's entry in its message partition, conditional on not existing
   (the deduplication record, and the message timeline), the message aggregate under its version
   (optimistic locking), the hourly counter of its status (+ the daily counter of a clicked
   link), and the suppression entries it causes.
All of step 3 is stored or none of it: a concurrent duplicate cancels it, a lost race on the
aggregate re-reads and retries, throttling raises TransientStorageError for the caller to retry.
A crash between 2 and 3 is repaired by the retry. Counters count each event once. Opens and
clicks are also counted by class (human, apple_privacy, ...); folding an event can change the
class of its message's earlier ones, and those corrections ride in the same transaction (see
`engagement_writes.py`).

Rows stay outside the transaction because a transactional write costs twice the capacity, for
the item and for each of its index entries; see BENCHMARKS.md for the figures.

Batches (`record_batch`, the ingest queue's): the same steps, with step 0's reads of the whole
batch in BatchGetItems and step 2's rows in one batched write; each event keeps its own
transaction, so exactly-once is unchanged. What one event may store is capped (ingest/caps.py).

Long by design: the exactly-once writer is one unit (reads, plan, rows, transaction, and the
cancellation reasons that decide duplicate / retry / malformed), best read in one place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.core import dynamo, keys, logs
from chalicelib.core.errors import ConcurrentUpdate, MalformedEvent, TransientStorageError
from chalicelib.core.settings import Settings
from chalicelib.core.tables import (
    AGGREGATE_SK,
    INDEXED_STATUSES,
    AccountModel,
    CounterModel,
    EventModel,
    MessageEventModel,
    MessageModel,
    QuarantineModel,
    SuppressionModel,
)
from chalicelib.events.engagement import signal_of
from chalicelib.events.messages import event_detail, message_item, state_of, timeline_entry
from chalicelib.events.ses import (
    Bounce,
    SesEvent,
)
from chalicelib.events.state import apply
from chalicelib.ingest.caps import Capped, cap
from chalicelib.ingest.directory import TenantRef
from chalicelib.ingest.engagement_writes import Judged, counter_updates, judge, judged_again
from chalicelib.suppression.from_events import (
    suppression_actions,
    suppression_targets,
    version_bump,
)

_M = TypeVar("_M", bound=Model)

MAX_QUARANTINE_RAW = 300_000  # characters of the raw event kept; a DynamoDB item holds 400 KB
MAX_AGGREGATE_ATTEMPTS = 8
READS_PER_BATCH_GET = 49  # events per BatchGetItem: 2 keys each and the binding, 100 at most


class Recorded(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    ERASED = "erased"  # the message was erased: nothing more is applied to it


class Recording(NamedTuple):
    """What `record` did, and for an Open or Click the class it has (`engagement` and
    `engagement_reason`, as on its rows): what ingest hands its webhooks."""

    recorded: Recorded
    engagement: dict[str, str] | None = None


@dataclass
class _Plan:
    """What storing one event writes, computed from what was read before it."""

    tenant_id: str
    capped: Capped
    rows: list[EventModel]
    entry: MessageEventModel
    aggregate: MessageModel
    counters: list[tuple[Any, list[Action]]]
    engagement: dict[str, str] | None  # its class (Opens and Clicks), for its webhooks


class BindingChanged(Exception):
    """The ref's account binding is no longer the live one (the account was disconnected or
    bound again since the ref was cached): nothing was written."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EventStore:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = _utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._connection: Connection | None = None

    def _txn_connection(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(
                region=self._settings.region, host=self._settings.dynamodb_endpoint
            )
        return self._connection

    # ---------------------------------------------------------------------------- events

    def record(self, tenant: TenantRef, event: SesEvent) -> Recording:
        """Store `event` for `tenant` exactly once. Returns STORED or DUPLICATE."""
        for _attempt in range(MAX_AGGREGATE_ATTEMPTS):
            try:
                return self._record_once(tenant, event)
            except ConcurrentUpdate:
                continue
        raise TransientStorageError(
            f"message {event.mail.message_id} kept changing under {MAX_AGGREGATE_ATTEMPTS} attempts"
        )

    def record_batch(
        self, tenant: TenantRef, events: Sequence[SesEvent]
    ) -> list[Recording | Exception]:
        """Store a batch of one tenant's events, each exactly once, with fewer requests: the
        reads of every event's entry and aggregate (and the binding, once) in BatchGetItems of
        up to 100 keys, all the rows in one batched write (25 per request), then each event's
        own transaction, as `record` does. A message's events go in rounds, one per round, in
        batch order (a lost race goes through `record` after). Returns, per event, its Recorded
        or the exception `record` would have raised. BindingChanged raises before the first
        round writes anything (a later round's: after earlier rounds wrote what the binding
        then allowed; the caller retries the batch's events one by one)."""
        capped = [cap(e) for e in events]
        results: list[Recording | Exception | None] = [None] * len(events)
        waiting = list(range(len(events)))
        while waiting:
            # One round: the next event of each message (in batch order), read and written
            # together; a message's later events wait for the next round, which reads what
            # this one wrote.
            firsts: dict[str, int] = {}
            for i in waiting:
                firsts.setdefault(capped[i].event.mail.message_id, i)
            batched = sorted(firsts.values())
            waiting = [i for i in waiting if firsts[capped[i].event.mail.message_id] != i]
            self._round(tenant, capped, batched, results)
        out: list[Recording | Exception] = []
        for i, result in enumerate(results):
            if result is None:  # lost a race on its aggregate: read again, alone
                try:
                    result = self.record(tenant, events[i])
                except Exception as exc:
                    result = exc
            out.append(result)
        return out

    def _round(
        self,
        tenant: TenantRef,
        capped: list[Capped],
        batched: list[int],
        results: list[Recording | Exception | None],
    ) -> None:
        found: list[Any] = []
        for at in range(0, len(batched), READS_PER_BATCH_GET):
            chunk = batched[at : at + READS_PER_BATCH_GET]
            wanted = [k for i in chunk for k in self._wanted(tenant, capped[i].event)]
            *items, binding = dynamo.read_many(
                "event batch read", [*wanted, (AccountModel, tenant.account_id, None)]
            )
            self._check_binding(tenant, binding)
            found += items
        plans: dict[int, _Plan] = {}
        for n, i in enumerate(batched):
            try:
                plan = self._plan(tenant, capped[i], found[2 * n], found[2 * n + 1])
            except Exception as exc:  # that event's failure, not the batch's
                results[i] = exc
                continue
            if isinstance(plan, Recording):
                results[i] = plan
            else:
                plans[i] = plan
        try:
            self._put_rows([row for plan in plans.values() for row in plan.rows])
        except TransientStorageError as exc:
            for i in plans:
                results[i] = exc
            plans = {}
        for i, plan in plans.items():
            try:
                results[i] = self._commit(plan)
            except ConcurrentUpdate:
                pass  # read again, alone, after the rounds
            except Exception as exc:
                results[i] = exc

    @staticmethod
    def _wanted(tenant: TenantRef, event: SesEvent) -> list[tuple[Any, str, str | None]]:
        message_pk = keys.message_pk(tenant.tenant_id, event.mail.message_id)
        return [
            (MessageEventModel, message_pk, keys.message_event_sk(event.timestamp, event.key)),
            (MessageModel, message_pk, AGGREGATE_SK),
        ]

    @staticmethod
    def _check_binding(tenant: TenantRef, binding: AccountModel | None) -> None:
        if (
            binding is None
            or binding.tenant_id != tenant.tenant_id
            or binding.bound_at != tenant.bound_at
        ):
            raise BindingChanged(f"account {tenant.account_id} is no longer bound as cached")

    def _record_once(self, tenant: TenantRef, original: SesEvent) -> Recording:
        capped = cap(original)
        entry, current, binding = dynamo.read_many(
            "event read",
            [*self._wanted(tenant, capped.event), (AccountModel, tenant.account_id, None)],
        )
        self._check_binding(tenant, binding)
        plan = self._plan(tenant, capped, entry, current)
        if isinstance(plan, Recording):
            return plan
        # 1. The time/status/recipient rows: idempotent projections, written first so that a
        #    crash before step 2 leaves nothing a retry would not rewrite identically.
        self._put_rows(plan.rows)
        return self._commit(plan)

    def _plan(
        self,
        tenant: TenantRef,
        capped: Capped,
        entry: MessageEventModel | None,
        current: MessageModel | None,
    ) -> Recording | _Plan:
        tid, event = tenant.tenant_id, capped.event
        if entry is not None:
            again = judged_again(lambda: state_of(current) if current is not None else None, event)
            return Recording(Recorded.DUPLICATE, again)
        if current is not None and (current.body or {}).get("erased"):
            return Recording(Recorded.ERASED)
        live = current is not None and (
            current.expires_at is None or current.expires_at > self._clock()
        )
        # An expired aggregate (TTL deletion lags) starts afresh but keeps its version.
        before = state_of(current) if live else None
        signal = signal_of(event)
        state = apply(before, event, signal=signal)
        judged = judge(before, state, event, signal)
        shard = keys.shard_of(event.key, tenant.write_shards)
        message_pk = keys.message_pk(tid, event.mail.message_id)
        entry_item = timeline_entry(
            message_pk,
            event,
            state.destination,
            shard=shard,
            extra={**judged.entry_fields, **_capped(capped)},
            expires_at=self._expiry(event.timestamp),
        )
        own_counter = self._counter_actions(event, max(1, len(event.recipients)))
        return _Plan(
            tenant_id=tid,
            capped=capped,
            rows=self._event_rows(tenant, shard, capped, judged),
            entry=entry_item,
            aggregate=message_item(message_pk, state, current, self._expiry(state.sent_at)),
            counters=list(
                counter_updates(tid, shard, event, own_counter, judged.deltas, self._expiry)
            ),
            engagement=judged.row_fields,
        )

    def _commit(self, plan: _Plan) -> Recording:
        """2. One transaction: the event's entry in its message partition (the dedup record),
        the aggregate under its version, the counters, the suppression entries."""
        event, tid = plan.capped.event, plan.tenant_id
        txn = TransactWrite(connection=self._txn_connection())
        txn.save(plan.entry, condition=MessageEventModel.sk.does_not_exist())
        txn.save(plan.aggregate)
        for item, actions in plan.counters:
            txn.update(item, actions=actions, add_version_condition=False)
        targets = suppression_targets(event)
        for address in targets:
            txn.update(
                SuppressionModel(keys.tenant_pk(tid), address),
                actions=suppression_actions(event, address, self._clock()),
            )
        if targets:  # the send-time suppression cache's key moves on (suppression/from_events)
            counter, bump = version_bump(tid, event.key)
            txn.update(counter, actions=bump)
        try:
            with txn:
                pass
        except TransactWriteError as exc:
            return Recording(self._cancelled(exc, message=event.mail.message_id), plan.engagement)
        except PynamoDBException as exc:
            raise TransientStorageError(f"event write failed: {exc}") from exc
        for kind, n in plan.capped.dropped.items():
            logs.metric("CappedEvents", n, {"Cap": kind}, tenant_id=tid, event_key=event.key)
        return Recording(Recorded.STORED, plan.engagement)

    def _cancelled(self, exc: TransactWriteError, *, message: str) -> Recorded:
        codes = [r.code if r else None for r in exc.cancellation_reasons]
        if codes[:1] == ["ConditionalCheckFailed"]:
            return Recorded.DUPLICATE  # a concurrent delivery of the same event won
        if codes[1:2] == ["ConditionalCheckFailed"] or "TransactionConflict" in codes:
            raise ConcurrentUpdate(f"message {message} changed since it was read")
        if exc.cause_response_code == "ValidationException" or "ValidationError" in codes:
            raise MalformedEvent(f"DynamoDB refused the event: {exc.cause_response_message}")
        raise TransientStorageError(f"event write failed ({exc.cause_response_code}): {codes}")

    @staticmethod
    def _put_rows(rows: list[EventModel]) -> None:
        if not rows:
            return
        with dynamo.storage("event rows write"):
            if len(rows) == 1:
                rows[0].save()
            else:
                with EventModel.batch_write() as batch:
                    for row in rows:
                        batch.save(row)

    def _event_rows(
        self, tenant: TenantRef, shard: int, capped: Capped, judged: Judged
    ) -> list[EventModel]:
        tid, event = tenant.tenant_id, capped.event
        mail = event.mail
        user_tags = {k: list(v) for k, v in mail.tags.items() if not k.startswith("ses:")}
        pairs = {f"{k}={v}" for k, vs in user_tags.items() for v in vs}
        expires = self._expiry(event.timestamp)
        # The status view is sparse: only the statuses worth an index (rare ones) get an entry;
        # a filter on a common status reads the time view with a filter instead.
        status_pk = (
            keys.status_pk(tid, event.status, shard)
            if event.status.value in INDEXED_STATUSES
            else None
        )
        rows = []
        for index, address in enumerate(capped.row_recipients or (None,)):
            rows.append(
                EventModel(
                    keys.events_pk(tid, shard),
                    keys.event_sk(event.timestamp, event.key, index),
                    status_pk=status_pk,
                    recipient_pk=keys.recipient_pk(tid, address) if address else None,
                    event_key=event.key,
                    event_type=event.event_type.value,
                    status=event.status.value,
                    occurred_at=keys.iso_ms(event.timestamp),
                    message_id=mail.message_id,
                    recipient=address,
                    source=mail.source,
                    subject=(mail.subject or "")[:256] or None,
                    tag_pairs=pairs or None,
                    detail={
                        **event_detail(event, address),
                        **judged.row_fields,
                        **_capped(capped),
                    }
                    or None,
                    engagement=judged.engagement,
                    expires_at=expires,
                )
            )
        # The tag view: a copy of each row per tag the tenant designated, in that tag's
        # partition, without the index keys (so it appears in no other view). Filtering by such
        # a tag then reads only matches; other tags are a filter on the time view.
        views = []
        designated = sorted(p for p in pairs if p.split("=", 1)[0] in tenant.indexed_tags)
        for row in rows:
            for pair in designated:
                view = EventModel(keys.tag_pk(tid, pair, shard), row.sk, **_copy_fields(row))
                views.append(view)
        return rows + views

    def _counter_actions(self, event: SesEvent, n: int) -> list[Action]:
        actions: list[Action] = [
            getattr(CounterModel, event.status.value).add(n),
            CounterModel.expires_at.set(self._expiry(event.timestamp)),
        ]
        if isinstance(event.detail, Bounce) and event.detail.permanent:
            actions.append(CounterModel.BOUNCED_PERMANENT.add(n))
        return actions

    def _expiry(self, ts: datetime) -> datetime:
        return ts + timedelta(seconds=self._settings.retention_seconds)

    # ---------------------------------------------------------------------------- quarantine

    def quarantine(
        self,
        raw: Any,
        reason: str,
        *,
        account: str | None = None,
        tenant_id: str | None = None,
        envelope_id: str | None = None,
        detail_type: str | None = None,
    ) -> None:
        """Keep an unreadable event, size-bounded, with the reason. Idempotent per raw event."""
        text = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False)
        digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        now = self._clock()
        item = QuarantineModel(
            keys.quarantine_pk(now),
            digest,
            received_at=keys.iso_ms(now),
            reason=reason[:1000],
            account=account,
            tenant_id=tenant_id,
            envelope_id=envelope_id,
            detail_type=detail_type,
            raw=text[:MAX_QUARANTINE_RAW],
            raw_bytes=len(text.encode()),
            truncated=len(text) > MAX_QUARANTINE_RAW,
            expires_at=self._expiry(now),
        )
        with dynamo.storage("quarantine write"):
            item.save()


# -------------------------------------------------------------------------------- rows

_VIEW_FIELDS = (
    "event_key",
    "event_type",
    "status",
    "occurred_at",
    "message_id",
    "recipient",
    "source",
    "subject",
    "tags",
    "tag_pairs",
    "detail",
    "engagement",
    "expires_at",
)


def _capped(capped: Capped) -> dict[str, Any]:
    return {"capped": capped.dropped} if capped.dropped else {}


def _copy_fields(row: EventModel) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _VIEW_FIELDS}
