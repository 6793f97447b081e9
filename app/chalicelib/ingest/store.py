"""DynamoDB adapter for ingest: resolves accounts to tenants, records events exactly once, and
keeps unreadable events in quarantine. PynamoDB and botocore errors stop here and leave as the
exceptions of `errors.py`.

Exactly once. An event's identity is a digest of its SES record (see `ses_events.event_key`), so
a redelivery a day later is still recognised. Recording an event:
0. ONE consistent BatchGetItem reads the event's entry, the message aggregate and the account's
   binding. A binding that is not the ref's (replaced since the ref was cached) raises
   BindingChanged before anything is written: the caller looks the account up again;
1. it is a duplicate, and nothing is written, when the aggregate's applied list holds its mark
   (72 bits of its key, for a message's first MAX_APPLIED events) or when its entry exists and
   is not a projection (the entry was the dedup record: past the list, or before it existed);
   if the aggregate is marked erased (a recipient erasure touched the message), nothing is;
2. its rows for the time, status and recipient views, and its timeline entry (carrying the
   counter changes the event makes: the messages table's stream adds them up, see
   `counting.py`), are put. They are projections of the event: writing them twice writes the
   same thing, and a projected entry proves nothing about the event being applied;
3. the aggregate is written under its version (optimistic locking), with its mark added: that
   write is what applies the event. Alone it is one conditional write; an event deduplicated by
   its entry, or that changes the suppression list, writes entry (conditional: absent or a
   projection), aggregate and suppression entries in ONE transaction.
A lost race on the aggregate re-reads and retries; throttling raises TransientStorageError for
the caller to retry; a crash between 2 and 3 is repaired by the retry (the entry's counter
changes are counted once: rewriting an entry identically makes no stream record). Opens and
clicks are judged by class (human, apple_privacy, ...); folding an event can change the class of
its message's earlier ones, and those corrections ride on its entry (`engagement_writes.py`).

Nothing is transactional that need not be: a transactional write costs twice the capacity, for
the item and for each of its index entries; see BENCHMARKS.md for the figures.

Batches (`record_batch`, the ingest queue's): the same steps in rounds (one event per message a
round), with step 0's reads in BatchGetItems, step 2's items in BatchWriteItems, and step 3's
aggregates in BatchExecuteStatements (PartiQL INSERT, or UPDATE WHERE the version read: 25
conditional writes a request, each billed as one). What one event may store is capped
(ingest/caps.py).

Long by design: the exactly-once writer is one unit (reads, plan, rows, aggregate writes, and
the refusals that decide duplicate / retry / malformed), best read in one place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.core import dynamo, keys, logs
from chalicelib.core.errors import ConcurrentUpdate, MalformedEvent, TransientStorageError
from chalicelib.core.lean_client import lean
from chalicelib.core.settings import Settings
from chalicelib.core.tables import (
    AGGREGATE_SK,
    INDEXED_STATUSES,
    AccountModel,
    EventModel,
    MessageEventModel,
    MessageModel,
    QuarantineModel,
    SuppressionModel,
)
from chalicelib.events.engagement import signal_of
from chalicelib.events.messages import message_item, row_detail, state_of, timeline_entry
from chalicelib.events.ses import (
    Bounce,
    SesEvent,
)
from chalicelib.events.state import apply
from chalicelib.ingest.caps import Capped, cap
from chalicelib.ingest.counting import entry_changes
from chalicelib.ingest.directory import TenantRef
from chalicelib.ingest.engagement_writes import (
    Judged,
    counter_updates,
    judge,
    judged_again,
)
from chalicelib.suppression.from_events import (
    suppression_actions,
    suppression_targets,
    version_bump,
)

_M = TypeVar("_M", bound=Model)

MAX_QUARANTINE_RAW = 300_000  # characters of the raw event kept; a DynamoDB item holds 400 KB
MAX_AGGREGATE_ATTEMPTS = 8
READS_PER_BATCH_GET = 49  # events per BatchGetItem: 2 keys each and the binding, 100 at most
# The aggregate's applied list: a 72-bit digest of each event folded into it (12 characters), for
# a message's first MAX_APPLIED events; later ones deduplicate by their timeline entry.
MAX_APPLIED = 24
DIGEST_CHARS = 12


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
    engagement: dict[str, str] | None  # its class (Opens and Clicks), for its webhooks
    suppresses: tuple[str, ...]  # the addresses it puts on the suppression list
    entry_in_txn: bool  # its entry is its dedup record (else: the aggregate's applied list)
    aggregate_existed: bool  # an aggregate was read (the write is an update of it)
    read_version: int | None  # its version as read
    read_attributes: tuple[str, ...]  # its attributes as read (those the write leaves go)

    @property
    def projections(self) -> list[Model]:
        """What is written before the transaction: the rows, and the entry when it is not the
        event's deduplication record."""
        return [*self.rows, *(() if self.entry_in_txn else (self.entry,))]

    @property
    def event(self) -> SesEvent:
        return self.capped.event


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
            self._connection = lean(
                Connection(region=self._settings.region, host=self._settings.dynamodb_endpoint)
            )
        return self._connection

    # ---------------------------------------------------------------------------- events

    def record(self, tenant: TenantRef, event: SesEvent) -> Recording:
        """Store `event` for `tenant` exactly once. Returns STORED or DUPLICATE."""
        for attempt in range(MAX_AGGREGATE_ATTEMPTS):
            try:
                return self._record_once(tenant, event)
            except ConcurrentUpdate:
                # Another event of the message won: wait a little, jittered, so that the
                # instances racing on one message do not all read and lose again together.
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
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
            self._put_rows([item for plan in plans.values() for item in plan.projections])
        except TransientStorageError as exc:
            for i in plans:
                results[i] = exc
            plans = {}
        self._commit_many(plans, results)

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
        self._put_rows(plan.projections)
        return self._commit(plan)

    def _plan(
        self,
        tenant: TenantRef,
        capped: Capped,
        entry: MessageEventModel | None,
        current: MessageModel | None,
    ) -> Recording | _Plan:
        tid, event = tenant.tenant_id, capped.event
        live = current is not None and (
            current.expires_at is None or current.expires_at > self._clock()
        )
        # An expired aggregate's list still says which events it applied.
        held, by_list = _applied(current)
        if (entry is not None and not entry.projected) or _holds(held, _digest(event.key)):
            again = judged_again(lambda: state_of(current) if current is not None else None, event)
            return Recording(Recorded.DUPLICATE, again)
        if current is not None and (current.body or {}).get("erased"):
            return Recording(Recorded.ERASED)
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
        entry_item.projected = True if by_list else None
        own = self._own_counts(event, max(1, len(event.recipients)))
        counters = counter_updates(tid, shard, event, own, judged.deltas, self._expiry)
        entry_item.counted = entry_changes(
            counters, (keys.hour_of(event.timestamp), event.status.value)
        )
        aggregate = message_item(message_pk, state, current, self._expiry(state.sent_at))
        if by_list or held:  # a full list is kept: the events it holds are still recognised
            applied = _with(held, _digest(event.key)) if by_list else held
            aggregate.body = {**aggregate.body, "applied": applied}
        return _Plan(
            tenant_id=tid,
            capped=capped,
            rows=self._event_rows(tenant, shard, capped, judged),
            entry=entry_item,
            aggregate=aggregate,
            engagement=judged.row_fields,
            suppresses=suppression_targets(event),
            entry_in_txn=not by_list,
            aggregate_existed=current is not None,
            read_version=_version(current),
            read_attributes=_attribute_names(current),
        )

    def _commit(self, plan: _Plan) -> Recording:
        """3. The aggregate under its version, alone or in the event's transaction."""
        if not plan.entry_in_txn and not plan.suppresses:
            return self._put_aggregate(plan)
        try:
            self._transact(plan)
        except TransactWriteError as exc:
            return Recording(self._cancelled(exc, plan), plan.engagement)
        except PynamoDBException as exc:
            raise TransientStorageError(f"event write failed: {exc}") from exc
        return self._stored(plan)

    def _commit_many(
        self, plans: dict[int, _Plan], results: list[Recording | Exception | None]
    ) -> None:
        """Step 3 for a round's events (one per message), side by side: an event deduplicated
        by its aggregate's applied list writes its aggregate with one conditional put (its
        version: a lost race is read again alone, after the rounds); one deduplicated by its
        entry, or that changes the suppression list, commits its transaction."""
        plain = {i: p for i, p in plans.items() if not p.entry_in_txn and not p.suppresses}
        if len(plain) > 1:
            self._put_aggregates(plain, results)
        for i, plan in plans.items():
            if i not in plain or len(plain) == 1:
                self._commit_alone(i, plan, results)

    def _put_aggregates(
        self, plans: dict[int, _Plan], results: list[Recording | Exception | None]
    ) -> None:
        """Many aggregates, each under its own version, in BatchExecuteStatements of 25 (PartiQL:
        an INSERT for a new aggregate, an UPDATE of every attribute WHERE the version is the one
        read): each is its own conditional write, billed as one, with one request for 25. A
        refused condition leaves that event's result None (read again alone, after the rounds)."""
        order = list(plans.items())
        try:
            codes = dynamo.execute_many(
                "aggregates write", [_aggregate_statement(p) for _, p in order], MessageModel
            )
        except TransientStorageError as exc:
            for i, _ in order:
                results[i] = exc
            return
        for (i, plan), code in zip(order, codes, strict=True):
            if code is None:
                results[i] = self._stored(plan)
            elif code in ("ConditionalCheckFailed", "DuplicateItem"):
                continue  # its message moved since it was read
            elif code == "ValidationError":
                results[i] = MalformedEvent(f"DynamoDB refused the event's aggregate ({code})")
            else:
                results[i] = TransientStorageError(f"aggregate write failed ({code})")

    def _commit_alone(
        self, i: int, plan: _Plan, results: list[Recording | Exception | None]
    ) -> None:
        try:
            results[i] = self._commit(plan)
        except ConcurrentUpdate:
            pass  # read again, alone, after the rounds
        except Exception as exc:
            results[i] = exc

    def _put_aggregate(self, plan: _Plan) -> Recording:
        """The aggregate alone, under its version (PynamoDB adds the condition)."""
        dynamo.lean_model(MessageModel)
        try:
            plan.aggregate.save()
        except PynamoDBException as exc:
            if dynamo.condition_failed(exc):
                raise ConcurrentUpdate(
                    f"message {plan.event.mail.message_id} changed since it was read"
                ) from exc
            if exc.cause_response_code == "ValidationException":
                refused = exc.cause_response_message
                raise MalformedEvent(f"DynamoDB refused the event: {refused}") from exc
            raise TransientStorageError(f"aggregate write failed: {exc}") from exc
        return self._stored(plan)

    def _transact(self, plan: _Plan) -> None:
        """The transaction of an event whose entry is its dedup record or that changes the
        suppression list: its entry (puts come first: entry, then aggregate), its aggregate
        under its version, the suppression entries and the list's version."""
        txn = TransactWrite(connection=self._txn_connection())
        if plan.entry_in_txn:  # a projected entry (a crashed attempt's) may be replaced
            exists = MessageEventModel.sk.does_not_exist() | MessageEventModel.projected.exists()
            txn.save(plan.entry, condition=exists)
        txn.save(plan.aggregate)
        tid, event = plan.tenant_id, plan.event
        for address in plan.suppresses:
            txn.update(
                SuppressionModel(keys.tenant_pk(tid), address),
                actions=suppression_actions(event, address, self._clock()),
            )
        if plan.suppresses:  # the send-time suppression cache's key moves on
            counter, bump = version_bump(tid, event.key)
            txn.update(counter, actions=bump)
        with txn:
            pass

    @staticmethod
    def _stored(plan: _Plan) -> Recording:
        for kind, n in plan.capped.dropped.items():
            logs.metric(
                "CappedEvents", n, {"Cap": kind}, tenant_id=plan.tenant_id, event_key=plan.event.key
            )
        return Recording(Recorded.STORED, plan.engagement)

    def _cancelled(self, exc: TransactWriteError, plan: _Plan) -> Recorded:
        codes = [_code(r) for r in exc.cancellation_reasons]
        message = plan.event.mail.message_id
        entry_code = codes[0] if plan.entry_in_txn and codes else None
        aggregate_at = 1 if plan.entry_in_txn else 0
        if entry_code == "ConditionalCheckFailed":
            return Recorded.DUPLICATE  # a concurrent delivery of the same event won
        if codes[aggregate_at : aggregate_at + 1] == ["ConditionalCheckFailed"] or (
            "TransactionConflict" in codes
        ):
            raise ConcurrentUpdate(f"message {message} changed since it was read")
        if exc.cause_response_code == "ValidationException" or "ValidationError" in codes:
            raise MalformedEvent(f"DynamoDB refused the event: {exc.cause_response_message}")
        raise TransientStorageError(f"event write failed ({exc.cause_response_code}): {codes}")

    @staticmethod
    def _put_rows(items: list[Model]) -> None:
        dynamo.write_many("event rows write", items)

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
                    # The key, the time and the type are the sort key's and the status's
                    # (EventModel.key(), at(), kind()); the recipient the recipient_pk's
                    # (address(): the parser keeps recipients as their canonical keys).
                    status=event.status.value,
                    message_id=mail.message_id,
                    source=mail.source,
                    subject=(mail.subject or "")[:256] or None,
                    tag_pairs=pairs or None,
                    detail={
                        **row_detail(event, address),
                        # the class itself is the row's `engagement`: its reason only
                        **{k: v for k, v in judged.row_fields.items() if k != "engagement"},
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

    @staticmethod
    def _own_counts(event: SesEvent, n: int) -> Counter[str]:
        counts = Counter({event.status.value: n})
        if isinstance(event.detail, Bounce) and event.detail.permanent:
            counts["BOUNCED_PERMANENT"] = n
        return counts

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


# -------------------------------------------------------------------------------- groups


def _code(reason: Any) -> str | None:
    code = getattr(reason, "code", None) if reason is not None else None
    return None if code in (None, "None") else str(code)


def _version(item: MessageModel | None) -> int | None:
    return None if item is None or item.version is None else int(item.version)


def _attribute_names(item: MessageModel | None) -> tuple[str, ...]:
    if item is None:
        return ()
    attributes = MessageModel.get_attributes()
    return tuple(attributes[name].attr_name for name in item.attribute_values if name in attributes)


def _aggregate_statement(plan: _Plan) -> dict[str, Any]:
    """The PartiQL write of a plan's aggregate: INSERT when none was read (refused if one exists
    since), else UPDATE of every attribute, and REMOVE of those it no longer has, WHERE the
    version is the one read."""
    item = dynamo.item_of(plan.aggregate)
    read = plan.read_version
    item["version"] = {"N": str((read or 0) + 1)}
    table = MessageModel.Meta.table_name
    if not plan.aggregate_existed:
        names = ", ".join(f"'{name}': ?" for name in item)
        return {
            "Statement": f'INSERT INTO "{table}" VALUE {{{names}}}',
            "Parameters": list(item.values()),
        }
    keys_ = ("pk", "sk")
    sets = [name for name in item if name not in keys_]
    gone = sorted(set(plan.read_attributes) - set(item) - set(keys_))
    statement = f'UPDATE "{table}" ' + " ".join(f'SET "{name}"=?' for name in sets)
    statement += "".join(f' REMOVE "{name}"' for name in gone)
    statement += ' WHERE "pk"=? AND "sk"=?'
    parameters = [item[name] for name in sets] + [item["pk"], item["sk"]]
    if read is None:
        statement += ' AND "version" IS MISSING'
    else:
        statement += ' AND "version"=?'
        parameters.append({"N": str(read)})
    return {"Statement": statement, "Parameters": parameters}


def _digest(event_key: str) -> str:
    """The event's mark in its aggregate's applied list: 72 bits of its key, 12 characters (two
    of a message's first MAX_APPLIED events colliding: about 1 in 10^19)."""
    return base64.urlsafe_b64encode(bytes.fromhex(event_key)[:9]).decode()


def _applied(current: MessageModel | None) -> tuple[str, bool]:
    """The live aggregate's applied list, and whether the next event is deduplicated by it
    (True) or by its timeline entry (False: the list is full, or the aggregate is older than
    the list and its events' entries are their dedup records)."""
    if current is None:
        return "", True
    held = (current.body or {}).get("applied")
    if held is None:
        return "", not current.events  # POST /mail's aggregate has no event yet
    return str(held), len(held) < MAX_APPLIED * DIGEST_CHARS


def _marks(held: str) -> list[str]:
    return [held[at : at + DIGEST_CHARS] for at in range(0, len(held), DIGEST_CHARS)]


def _holds(held: str, digest: str) -> bool:
    return digest in _marks(held)


def _with(held: str, digest: str) -> str:
    """The list with `digest`, sorted: the aggregate is the same whatever order its events
    arrived in."""
    return "".join(sorted([*_marks(held), digest]))


# -------------------------------------------------------------------------------- rows

_VIEW_FIELDS = (
    "event_key",  # rows written before the sort key was read for these three
    "event_type",
    "occurred_at",
    "status",
    "message_id",
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
    """A tag-view copy's attributes: it has no recipient_pk, so it names its recipient."""
    return {**{name: getattr(row, name) for name in _VIEW_FIELDS}, "recipient": row.address()}
