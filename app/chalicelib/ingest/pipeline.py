"""Ingest: EventBridge envelopes in, per-tenant history out.

For each envelope, in this order:
1. an envelope that cannot be read at all -> quarantined;
2. not one of the ten SES event detail-types (advisor, sending status, ...) -> ignored;
3. the tenant is the one bound to the envelope's `account` — set by EventBridge, never by the
   sender — and nothing else; an unregistered account -> nothing stored, counted in a log line;
4. a record that cannot be parsed -> quarantined with the reason, nothing else written;
5. mail sent before the account was bound to this tenant (`mail.timestamp` < `bound_at`) ->
   before_binding, nothing stored: it was the previous owner's mail, or mail from before the
   account was connected. The send time decides, not the event's time nor the envelope's: an
   open or a bounce days later belongs to whoever sent the message, and a replay or a retry
   keeps its record's send time, so old events replayed after a rebind never reach the new
   tenant;
6. otherwise recorded exactly once (stored, or a duplicate of an event already stored; erased:
   the message was touched by a recipient erasure, so nothing more is applied to it). The store
   checks the ref's binding against the live one in the same read; a replaced binding (the
   instance's cache is up to 60 s old) is forgotten, looked up again, and step 5 re-applied.
Transient storage failures propagate, so that Lambda and EventBridge retry and the DLQ keeps what
never succeeds. Behind the ingest queue (EventBridge -> SQS -> ingest, batches of up to 100:
`ingest_queue_records`), a failing event is reported back alone (ReportBatchItemFailures) and
the rest of its batch is done.

After its first call a process's heap is settled (ingest/heap.py: what is alive then is frozen
out of the cycle collector's full collections).

`notify` (webhooks: chalicelib/webhooks/enqueue.py) hears of each event recorded or recognised
as a duplicate, after the store's writes, with the class the store gave an Open or Click: nothing
it does can keep an event from being stored.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.core import logs
from chalicelib.core.errors import MalformedEvent, TransientStorageError
from chalicelib.events.ses import (
    Envelope,
    SesEvent,
    is_ses_event_record,
    parse_envelope,
    parse_event,
)
from chalicelib.ingest import heap
from chalicelib.ingest.directory import TenantRef
from chalicelib.ingest.store import BindingChanged, Recorded, Recording


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    IGNORED = "ignored"
    UNKNOWN_ACCOUNT = "unknown_account"
    BEFORE_BINDING = "before_binding"
    ERASED = "erased"


_RECORDED = {
    Recorded.STORED: Outcome.STORED,
    Recorded.DUPLICATE: Outcome.DUPLICATE,
    Recorded.ERASED: Outcome.ERASED,
}
BINDING_ATTEMPTS = 3
_log = logging.getLogger("sesami.ingest")


class Tenants(Protocol):
    def tenant_for_account(self, account_id: str) -> TenantRef | None: ...

    def forget(self, account_id: str) -> None: ...


class Store(Protocol):
    def record(self, tenant: TenantRef, event: SesEvent) -> Recording: ...

    def record_batch(
        self, tenant: TenantRef, events: Sequence[SesEvent]
    ) -> list[Recording | Exception]: ...

    def quarantine(
        self,
        raw: Any,
        reason: str,
        *,
        account: str | None = None,
        tenant_id: str | None = None,
        envelope_id: str | None = None,
        detail_type: str | None = None,
    ) -> None: ...


@dataclass
class IngestReport:
    outcomes: list[Outcome] = field(default_factory=list)
    unknown_accounts: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        return dict(Counter(o.value for o in self.outcomes))


# (tenant, event, its class: {"engagement", "engagement_reason"} for an Open or Click, or None)
Notify = Callable[[TenantRef, SesEvent, Mapping[str, str] | None], None]


def ingest_envelopes(
    raws: Iterable[Any], *, tenants: Tenants, store: Store, notify: Notify | None = None
) -> IngestReport:
    report = IngestReport()
    for raw in raws:
        result = _ingest_one(raw, tenants=tenants, store=store, report=report, notify=notify)
        report.outcomes.append(result)
    _emit(report)
    heap.settle()
    return report


def ingest_queue_records(
    records: Iterable[Mapping[str, Any]],
    *,
    tenants: Tenants,
    store: Store,
    notify: Notify | None = None,
) -> tuple[IngestReport, list[str]]:
    """A batch from the ingest queue (SQS records, each body one EventBridge envelope). Returns
    the report and the ids of the records to retry: one that failed (storage unavailable, or
    anything unexpected) is retried alone, and reaches the queue's DLQ after its receives; the
    rest of the batch is done. A body that is not JSON is quarantined, not retried. Each
    tenant's events are stored together (`Store.record_batch`: a few requests for the reads and
    the rows of the whole batch, then one transaction per event)."""
    report = IngestReport()
    failed: list[str] = []
    ready: dict[str, list[tuple[str, Any, Envelope, TenantRef, SesEvent]]] = {}
    for record in records:
        record_id = str(record.get("messageId"))
        try:
            raw = json.loads(record["body"])
        except (KeyError, TypeError, ValueError):
            store.quarantine(dict(record), "ingest queue message is not a JSON envelope")
            report.outcomes.append(Outcome.QUARANTINED)
            continue
        try:
            prepared = _prepare(raw, tenants=tenants, store=store, report=report)
        except Exception as exc:  # one event's failure must not fail the batch
            _failed(failed, record_id, exc)
            continue
        if isinstance(prepared, Outcome):
            report.outcomes.append(prepared)
        else:
            envelope, tenant, event = prepared
            ready.setdefault(tenant.tenant_id, []).append((record_id, raw, envelope, tenant, event))
    for batch in ready.values():
        tenant = batch[0][3]
        try:
            results: list[Recording | Exception] = store.record_batch(
                tenant, [event for *_, event in batch]
            )
        except BindingChanged:
            results = [BindingChanged("")] * len(batch)
        except Exception as exc:
            results = [exc] * len(batch)
        for (record_id, raw, envelope, tenant_, event), result in zip(batch, results, strict=True):
            try:
                if isinstance(result, BindingChanged):  # look the account up again, alone
                    outcome = _ingest_one(
                        raw, tenants=tenants, store=store, report=report, notify=notify
                    )
                elif isinstance(result, MalformedEvent):
                    _quarantine(store, raw, result.reason, envelope, tenant_)
                    outcome = Outcome.QUARANTINED
                elif isinstance(result, Exception):
                    raise result
                else:
                    recorded, engagement = result
                    if notify is not None and recorded is not Recorded.ERASED:
                        notify(tenant_, event, engagement)
                    outcome = _RECORDED[recorded]
            except Exception as exc:
                _failed(failed, record_id, exc)
                continue
            report.outcomes.append(outcome)
    _emit(report)
    if failed:
        logs.metric("IngestRetried", len(failed), {"Outcome": "retried"})
    heap.settle()
    return report, failed


def _failed(failed: list[str], record_id: str, exc: BaseException) -> None:
    _log.warning("ingest of queue message %s failed: %r", record_id, exc)
    failed.append(record_id)


def _emit(report: IngestReport) -> None:
    for account, count in report.unknown_accounts.items():
        logs.metric("UnknownAccountEvents", count, {"Outcome": "unknown_account"}, account=account)
    for outcome, count in report.counts().items():
        logs.metric("IngestedEvents", count, {"Outcome": outcome})


def _prepare(
    raw: Any, *, tenants: Tenants, store: Store, report: IngestReport
) -> Outcome | tuple[Envelope, TenantRef, SesEvent]:
    """Steps 1-5: an outcome already, or the event to record and its tenant."""
    try:
        envelope = parse_envelope(raw)
    except MalformedEvent as exc:
        account = raw.get("account") if isinstance(raw, Mapping) else None
        store.quarantine(raw, exc.reason, account=account if isinstance(account, str) else None)
        return Outcome.QUARANTINED
    if not is_ses_event_record(envelope):
        return Outcome.IGNORED
    tenant = tenants.tenant_for_account(envelope.account)
    if tenant is None:
        report.unknown_accounts[envelope.account] += 1
        return Outcome.UNKNOWN_ACCOUNT
    try:
        event = parse_event(envelope)
    except MalformedEvent as exc:
        _quarantine(store, raw, exc.reason, envelope, tenant)
        return Outcome.QUARANTINED
    if event.mail.timestamp < tenant.bound_at:
        return Outcome.BEFORE_BINDING
    return envelope, tenant, event


def _ingest_one(
    raw: Any, *, tenants: Tenants, store: Store, report: IngestReport, notify: Notify | None
) -> Outcome:
    prepared = _prepare(raw, tenants=tenants, store=store, report=report)
    if isinstance(prepared, Outcome):
        return prepared
    envelope, tenant, event = prepared
    for _attempt in range(BINDING_ATTEMPTS):
        if event.mail.timestamp < tenant.bound_at:
            return Outcome.BEFORE_BINDING
        try:
            recorded, engagement = store.record(tenant, event)
        except MalformedEvent as exc:
            _quarantine(store, raw, exc.reason, envelope, tenant)
            return Outcome.QUARANTINED
        except BindingChanged:
            tenants.forget(envelope.account)
            fresh = tenants.tenant_for_account(envelope.account)
            if fresh is None:
                report.unknown_accounts[envelope.account] += 1
                return Outcome.UNKNOWN_ACCOUNT
            tenant = fresh
            continue
        if notify is not None and recorded is not Recorded.ERASED:
            notify(tenant, event, engagement)
        return _RECORDED[recorded]
    raise TransientStorageError(f"the binding of account {envelope.account} keeps changing")


def _quarantine(store: Store, raw: Any, reason: str, envelope: Envelope, tenant: TenantRef) -> None:
    store.quarantine(
        raw,
        reason,
        account=envelope.account,
        tenant_id=tenant.tenant_id,
        envelope_id=envelope.id,
        detail_type=envelope.detail_type,
    )
