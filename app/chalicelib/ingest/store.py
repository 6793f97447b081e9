"""DynamoDB adapter for ingest: resolves accounts to tenants, records events exactly once, and
keeps unreadable events in quarantine. PynamoDB and botocore errors stop here and leave as the
exceptions of `errors.py`.

Exactly once. An event's identity is a digest of its SES record (see `ses_events.event_key`), so
a redelivery a day later is still recognised. Recording an event:
1. if its entry already exists in its message partition, it is a duplicate: nothing is written;
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
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.core import keys
from chalicelib.core.errors import ConcurrentUpdate, MalformedEvent, TransientStorageError
from chalicelib.core.settings import Settings
from chalicelib.core.tables import (
    AGGREGATE_SK,
    AccountModel,
    CounterModel,
    EventModel,
    MessageEventModel,
    MessageModel,
    QuarantineModel,
    SuppressionModel,
    TenantModel,
)
from chalicelib.events.engagement import log_from_doc, log_to_doc, signal_of
from chalicelib.events.ses import (
    Bounce,
    Click,
    Complaint,
    Delivery,
    DeliveryDelay,
    Open,
    Reject,
    RenderingFailure,
    SesEvent,
    Subscription,
)
from chalicelib.events.state import MessageState, RecipientState, apply, suppression_targets
from chalicelib.events.status import Status
from chalicelib.ingest.engagement_writes import Judged, counter_updates, judge

_M = TypeVar("_M", bound=Model)

MAX_QUARANTINE_RAW = 300_000  # characters of the raw event kept; a DynamoDB item holds 400 KB
MAX_AGGREGATE_ATTEMPTS = 8
_THROTTLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingError",
    "InternalServerError",
    "ServiceUnavailable",
}


class Recorded(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class TenantRef:
    tenant_id: str
    write_shards: int = 1


class TenantDirectory:
    """AWS account ID -> tenant, from the `accounts` binding. Hits are cached in process for a
    short time; misses are not cached, so a newly connected account is seen at once."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, TenantRef]] = {}

    def tenant_for_account(self, account_id: str) -> TenantRef | None:
        now = self._clock()
        cached = self._cache.get(account_id)
        if cached and cached[0] > now:
            return cached[1]
        try:
            binding = AccountModel.get(account_id)
            tenant = TenantModel.get(binding.tenant_id)
        except DoesNotExist:
            self._cache.pop(account_id, None)
            return None
        except PynamoDBException as exc:
            raise TransientStorageError(f"tenant lookup failed: {exc}") from exc
        ref = TenantRef(tenant.tenant_id, max(1, int(tenant.write_shards or 1)))
        self._cache[account_id] = (now + self._ttl, ref)
        return ref


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

    def record(self, tenant: TenantRef, event: SesEvent) -> Recorded:
        """Store `event` for `tenant` exactly once. Returns STORED or DUPLICATE."""
        for _attempt in range(MAX_AGGREGATE_ATTEMPTS):
            try:
                return self._record_once(tenant, event)
            except ConcurrentUpdate:
                continue
        raise TransientStorageError(
            f"message {event.mail.message_id} kept changing under {MAX_AGGREGATE_ATTEMPTS} attempts"
        )

    def _record_once(self, tenant: TenantRef, event: SesEvent) -> Recorded:
        tid = tenant.tenant_id
        message_pk = keys.message_pk(tid, event.mail.message_id)
        entry_sk = keys.message_event_sk(event.timestamp, event.key)
        if self._exists(MessageEventModel, message_pk, entry_sk):
            return Recorded.DUPLICATE
        current = self._load(MessageModel, message_pk, AGGREGATE_SK)
        live = current is not None and (
            current.expires_at is None or current.expires_at > self._clock()
        )
        # An expired aggregate (TTL deletion lags) starts afresh but keeps its version.
        before = _state_of(current) if live else None
        signal = signal_of(event)
        state = apply(before, event, signal=signal)
        judged = judge(before, state, event, signal)
        shard = keys.shard_of(event.key, tenant.write_shards)

        # 1. The time/status/recipient rows: idempotent projections, written first so that a
        #    crash before step 2 leaves nothing a retry would not rewrite identically.
        self._put_rows(self._event_rows(tid, shard, event, judged))

        # 2. One transaction: the event's entry in its message partition (the dedup record),
        #    the aggregate under its version, the counters, the suppression entries.
        txn = TransactWrite(connection=self._txn_connection())
        txn.save(
            MessageEventModel(
                message_pk,
                entry_sk,
                event_key=event.key,
                event_type=event.event_type.value,
                status=event.status.value,
                occurred_at=keys.iso_ms(event.timestamp),
                recipients=set(event.recipients) or None,
                shard=shard,
                detail={**event_detail(event, None), **judged.entry_fields} or None,
                expires_at=self._expiry(event.timestamp),
            ),
            condition=MessageEventModel.sk.does_not_exist(),
        )
        expires = self._expiry(state.sent_at)
        txn.save(message_item(message_pk, state, current, expires))
        own_counter = self._counter_actions(event, max(1, len(event.recipients)))
        for item, actions in counter_updates(
            tid, shard, event, own_counter, judged.deltas, self._expiry
        ):
            txn.update(item, actions=actions, add_version_condition=False)
        for address in suppression_targets(event):
            txn.update(
                SuppressionModel(keys.tenant_pk(tid), address),
                actions=self._suppression_actions(event, address),
            )
        try:
            with txn:
                pass
        except TransactWriteError as exc:
            return self._cancelled(exc, message=event.mail.message_id)
        except PynamoDBException as exc:
            raise TransientStorageError(f"event write failed: {exc}") from exc
        return Recorded.STORED

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
    def _load(model: type[_M], hash_key: str, range_key: str) -> _M | None:
        try:
            return model.get(hash_key, range_key, consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise TransientStorageError(f"{model.Meta.table_name} read failed: {exc}") from exc

    def _exists(self, model: type[Model], hash_key: str, range_key: str) -> bool:
        return self._load(model, hash_key, range_key) is not None

    @staticmethod
    def _put_rows(rows: list[EventModel]) -> None:
        try:
            if len(rows) == 1:
                rows[0].save()
            else:
                with EventModel.batch_write() as batch:
                    for row in rows:
                        batch.save(row)
        except PynamoDBException as exc:
            raise TransientStorageError(f"event rows write failed: {exc}") from exc

    def _event_rows(
        self, tid: str, shard: int, event: SesEvent, judged: Judged
    ) -> list[EventModel]:
        mail = event.mail
        user_tags = {k: list(v) for k, v in mail.tags.items() if not k.startswith("ses:")}
        expires = self._expiry(event.timestamp)
        rows = []
        for index, address in enumerate(event.recipients or (None,)):
            rows.append(
                EventModel(
                    keys.events_pk(tid, shard),
                    keys.event_sk(event.timestamp, event.key, index),
                    status_pk=keys.status_pk(tid, event.status, shard),
                    recipient_pk=keys.recipient_pk(tid, address) if address else None,
                    event_key=event.key,
                    event_type=event.event_type.value,
                    status=event.status.value,
                    occurred_at=keys.iso_ms(event.timestamp),
                    message_id=mail.message_id,
                    recipient=address,
                    source=mail.source,
                    subject=(mail.subject or "")[:256] or None,
                    tags=user_tags or None,
                    tag_pairs={f"{k}={v}" for k, vs in user_tags.items() for v in vs} or None,
                    detail={**event_detail(event, address), **judged.row_fields} or None,
                    engagement=judged.engagement,
                    expires_at=expires,
                )
            )
        # The tag view: a copy of each row per user tag, in that tag's partition, without the
        # index keys (so it appears in no other view). Filtering by tag then reads only matches.
        views = []
        for row in rows:
            for pair in sorted(row.tag_pairs or ()):
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

    def _suppression_actions(self, event: SesEvent, address: str) -> list[Action]:
        detail = event.detail
        reason = "COMPLAINT" if isinstance(detail, Complaint) else "BOUNCE"
        first: dict[str, Any] = {
            "reason": reason,
            "source_message_id": event.mail.message_id,
            "event_at": keys.iso_ms(event.timestamp),
            "created_at": keys.iso_ms(self._clock()),
            "created_by": "ses-event",
        }
        if isinstance(detail, Bounce):
            bounced = next(b for b in detail.bounced if b.address == address)
            first.update(
                bounce_type=detail.bounce_type,
                bounce_subtype=detail.bounce_subtype,
                diagnostic_code=bounced.diagnostic_code,
            )
        elif isinstance(detail, Complaint):
            first["feedback_type"] = detail.feedback_type
        actions: list[Action] = []
        for name, value in first.items():
            if value is not None:
                attr = getattr(SuppressionModel, name)
                # The first event to suppress an address describes the entry; later ones count.
                actions.append(attr.set(attr | value))
        actions.append(SuppressionModel.reasons.add({reason}))
        actions.append(SuppressionModel.occurrences.add(1))
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
            f"Q#{keys.day_of(now)}",
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
        try:
            item.save()
        except PynamoDBException as exc:
            raise TransientStorageError(f"quarantine write failed: {exc}") from exc


# -------------------------------------------------------------------------------- mapping


def event_detail(event: SesEvent, address: str | None) -> dict[str, Any]:
    """The type-specific facts of one event row, compact, for lists and timelines."""
    d = event.detail
    out: dict[str, Any]
    if isinstance(d, Bounce):
        out = {"bounce_type": d.bounce_type, "bounce_subtype": d.bounce_subtype}
        for b in d.bounced:
            if address is None or b.address == address:
                facts = {
                    "status": b.status,
                    "diagnostic_code": b.diagnostic_code,
                    "action": b.action,
                }
                if address is None:  # the message timeline keeps every recipient's facts
                    out.setdefault("recipients", {})[b.address] = facts
                else:
                    out.update(facts)
    elif isinstance(d, Complaint):
        out = {"feedback_type": d.feedback_type, "subtype": d.subtype, "user_agent": d.user_agent}
    elif isinstance(d, Open):
        out = {"user_agent": d.user_agent, "ip_address": d.ip_address}
    elif isinstance(d, Click):
        out = {
            "link": d.link,
            "link_tags": {k: list(v) for k, v in d.link_tags.items()},
            "user_agent": d.user_agent,
            "ip_address": d.ip_address,
        }
    elif isinstance(d, Delivery):
        out = {"smtp_response": d.smtp_response, "processing_time_ms": d.processing_time_ms}
    elif isinstance(d, DeliveryDelay):
        mine_delay = next((r for r in d.delayed if r.address == address), None)
        out = {
            "delay_type": d.delay_type,
            "expiration_time": keys.iso_ms(d.expiration_time) if d.expiration_time else None,
            "diagnostic_code": mine_delay.diagnostic_code if mine_delay else None,
        }
    elif isinstance(d, Reject):
        out = {"reason": d.reason}
    elif isinstance(d, RenderingFailure):
        out = {"error_message": d.error_message, "template_name": d.template_name}
    elif isinstance(d, Subscription):
        out = {
            "contact_list": d.contact_list,
            "unsubscribed_all": d.unsubscribed_all,
            "topics": dict(d.topics),
        }
    else:
        out = {}
    return {k: v for k, v in out.items() if v not in (None, {}, [])}


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


def _copy_fields(row: EventModel) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _VIEW_FIELDS}


def _iso(ts: datetime | None) -> str | None:
    return keys.iso_ms(ts) if ts else None


def _dt(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def message_item(
    pk: str,
    state: MessageState,
    current: MessageModel | None,
    expires: datetime,
) -> MessageModel:
    item = MessageModel(
        pk,
        AGGREGATE_SK,
        message_id=state.message_id,
        source=state.source,
        subject=state.subject,
        sent_at=keys.iso_ms(state.sent_at),
        status=state.status.value,
        status_rank=state.rank,
        status_at=keys.iso_ms(state.status_at),
        events=state.events,
        opens=state.opens,
        clicks=state.clicks,
        body={
            "destination": list(state.destination),
            "tags": {k: list(v) for k, v in state.tags.items()},
            "first_open_at": _iso(state.first_open_at),
            "last_open_at": _iso(state.last_open_at),
            "last_click_at": _iso(state.last_click_at),
            "links": state.links,
            "links_other": state.links_other,
            **_engagement_doc(state),
            "recipients": {a: _recipient_doc(r) for a, r in state.recipients.items()},
        },
        expires_at=expires,
    )
    if current is not None:
        item.version = current.version
    return item


def _engagement_doc(state: MessageState) -> dict[str, Any]:
    """The facts every verdict is derived from (engagement.log_to_doc's compact form). The counts
    by class are not stored: readers derive them from these (`engagement.assess`), since every
    byte is written again with each event and an aggregate past 1 KB costs twice as much."""
    log = state.engagement
    delivered = state.reference_ms if state.delivered_at is not None else None
    if not (log.facts or log.overflow or delivered is not None):
        return {}
    return {"engagement": log_to_doc(log, state.links, delivered)}


def _recipient_doc(r: RecipientState) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": r.status.value,
        "rank": r.rank,
        "status_at": keys.iso_ms(r.status_at),
    }
    if r.opens:
        doc.update(
            opens=r.opens, first_open_at=_iso(r.first_open_at), last_open_at=_iso(r.last_open_at)
        )
    if r.clicks:
        doc["clicks"] = r.clicks
    if r.bounce_type:
        doc["bounce_type"] = r.bounce_type
    if r.unsubscribed:
        doc["unsubscribed"] = True
    return doc


def _state_of(item: MessageModel | None) -> MessageState | None:
    if item is None:
        return None
    body: Mapping[str, Any] = item.body or {}
    links = dict(body.get("links", {}))
    log, delivered = log_from_doc(body.get("engagement"), links)
    sent_at = datetime.fromisoformat(item.sent_at)
    recipients = {
        address: RecipientState(
            status=Status(doc["status"]),
            rank=int(doc["rank"]),
            status_at=datetime.fromisoformat(doc["status_at"]),
            opens=int(doc.get("opens", 0)),
            clicks=int(doc.get("clicks", 0)),
            first_open_at=_dt(doc.get("first_open_at")),
            last_open_at=_dt(doc.get("last_open_at")),
            bounce_type=doc.get("bounce_type"),
            unsubscribed=bool(doc.get("unsubscribed", False)),
        )
        for address, doc in body.get("recipients", {}).items()
    }
    return MessageState(
        message_id=item.message_id,
        source=item.source or "",
        subject=item.subject,
        sent_at=sent_at,
        destination=tuple(body.get("destination", ())),
        tags={k: tuple(v) for k, v in body.get("tags", {}).items()},
        status=Status(item.status),
        rank=int(item.status_rank),
        status_at=datetime.fromisoformat(item.status_at),
        recipients=recipients,
        events=int(item.events),
        opens=int(item.opens),
        clicks=int(item.clicks),
        first_open_at=_dt(body.get("first_open_at")),
        last_open_at=_dt(body.get("last_open_at")),
        last_click_at=_dt(body.get("last_click_at")),
        links=links,
        links_other=int(body.get("links_other", 0)),
        delivered_at=sent_at + timedelta(milliseconds=delivered) if delivered is not None else None,
        engagement=log,
    )
