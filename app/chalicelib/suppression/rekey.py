"""Re-keying the suppression list under the canonical address key (core/addresses.py).

Before addresses had one key, the suppression-list API stored a Unicode spelling
(`user@bücher.de`) where sending and ingest use the ASCII one (`user@xn--bcher-kva.de`), so such
an entry blocked nothing. `rekey()` moves every entry and tombstone whose sort key is not the
canonical key of its address to that key, in its own partition (entries stay entries,
tombstones stay tombstones), merging with what is already there:

- reason, created_at, created_by and the descriptive fields (bounce type, feedback type, source
  message...) of the earliest entry; `reasons` the union; `occurrences` the sum;
- the note of the entry a person changed last; for tombstones, the latest removal;
- the histories of all, in time order (an ingested entry's first record made from its fields),
  plus one `rekeyed` record naming the spellings merged; the last 50 are kept.

Each address is one transaction: the merged item is written on condition that the canonical
item is as it was read (revision and occurrences, so that a concurrent ingest write or API change
makes it start again), each old spelling is deleted on the same condition, and the list's
version goes up, as with every change to the list (the send-time cache keys its answers by it).
An interrupted run leaves every address either done or untouched, and a second run finds
nothing to do.

A live entry is never turned into a tombstone, nor a tombstone into a live entry: when an
address has both after re-keying (removed under one spelling, suppressed under another), it
stays suppressed, as it would if ingest had suppressed it after the removal.

Other tables keyed by address need no re-keying: the event rows (by_recipient), message
aggregates and batch results hold addresses as SES reported them or as SESami sent them, which
are ASCII address-specs that ingest and sending already lower-cased, and for those the canonical
key is exactly the lower-cased address (tests/core/test_addresses.py proves it for any ASCII
address).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

from pynamodb.connection import Connection
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.core import addresses, dynamo, keys
from chalicelib.core.errors import TransientStorageError
from chalicelib.core.tables import SuppressionModel
from chalicelib.suppression.entries import entry_view
from chalicelib.suppression.from_events import version_bump
from chalicelib.suppression.store import HISTORY_KEPT

BY = "ops.canonical_addresses"
ATTEMPTS = 5
_DESCRIPTIVE = (
    "bounce_type",
    "bounce_subtype",
    "feedback_type",
    "diagnostic_code",
    "source_message_id",
    "event_at",
)


@dataclass(frozen=True)
class Rekeyed:
    pk: str
    address: str  # the canonical key
    spellings: tuple[str, ...]  # the sort keys moved to it
    merged: bool  # an item already existed under the canonical key
    applied: bool  # False in a dry run


def _utcnow() -> datetime:
    return datetime.now(UTC)


def misplaced(tenant_ids: Iterable[str] | None = None) -> dict[tuple[str, str], list[str]]:
    """(partition, canonical key) -> the sort keys stored under another spelling. A Query per
    partition of the given tenants, or one Scan of the table (keys only) without them."""
    found: dict[tuple[str, str], list[str]] = {}

    def rows() -> Iterator[SuppressionModel]:
        attributes = ["pk", "address"]
        if tenant_ids is None:
            yield from SuppressionModel.scan(attributes_to_get=attributes)
            return
        for tid in tenant_ids:
            for pk in (keys.tenant_pk(tid), keys.removed_pk(tid)):
                yield from SuppressionModel.query(pk, attributes_to_get=attributes)

    with dynamo.storage("suppression scan"):
        for row in rows():
            # The table holds more than the lists: the erased addresses' hashes (T#t#ERASED) and
            # the list's version counters (T#t#SV#n) are not addresses.
            if not keys.is_list_partition(row.pk):
                continue
            canonical = addresses.key(row.address)
            if canonical != row.address:
                found.setdefault((row.pk, canonical), []).append(row.address)
    return found


def _unchanged(item: SuppressionModel) -> Condition:
    """The item is as it was read: same revision (API changes) and occurrences (ingest)."""
    revision: Condition = (
        SuppressionModel.revision.does_not_exist()
        if item.revision is None
        else SuppressionModel.revision == item.revision
    )
    occurrences: Condition = (
        SuppressionModel.occurrences.does_not_exist()
        if item.occurrences is None
        else SuppressionModel.occurrences == item.occurrences
    )
    return cast(Condition, SuppressionModel.address.exists() & revision & occurrences)


def _history(item: SuppressionModel) -> list[dict[str, Any]]:
    return list(entry_view(item, full=True)["history"])


def merge(
    pk: str, canonical: str, items: list[SuppressionModel], now: datetime
) -> SuppressionModel:
    """One item under `canonical` from `items` (the canonical one, if any, among them)."""
    by_age = sorted(items, key=lambda i: (i.created_at or "", i.address))
    first = by_age[0]
    histories = [_history(i) for i in items]
    seen: set[tuple[Any, ...]] = set()
    history: list[dict[str, Any]] = []
    for record in sorted((r for h in histories for r in h), key=lambda r: str(r.get("at"))):
        identity = (record.get("at"), record.get("by"), record.get("action"), record.get("why"))
        if identity not in seen:  # a tombstone's history carried into an entry, say
            seen.add(identity)
            history.append(record)
    spellings = sorted(i.address for i in items if i.address != canonical)
    history.append(
        {
            "at": keys.iso_ms(now),
            "by": BY,
            "action": "rekeyed",
            "why": f"stored as {', '.join(spellings)} before addresses had one canonical key",
        }
    )
    last_change = {i.address: str(h[-1].get("at")) for i, h in zip(items, histories, strict=True)}
    by_change = sorted(items, key=lambda i: last_change[i.address])
    fields: dict[str, Any] = {
        name: next((getattr(i, name) for i in by_age if getattr(i, name) is not None), None)
        for name in _DESCRIPTIVE
    }
    removed = [i for i in items if i.removed_at]
    if removed:
        latest = max(removed, key=lambda i: i.removed_at or "")
        fields.update(removed_at=latest.removed_at, removed_by=latest.removed_by)
    return SuppressionModel(
        pk,
        canonical,
        reason=first.reason,
        reasons=set().union(*((i.reasons or set()) | {i.reason} for i in items)),
        created_at=first.created_at,
        created_by=first.created_by,
        occurrences=sum(int(i.occurrences or 1) for i in items),
        note=next((i.note for i in reversed(by_change) if i.note), None),
        history=history[-HISTORY_KEPT:],
        revision=max(int(i.revision or 0) for i in items) + 1,
        **fields,
    )


def _connection() -> Connection:
    meta = SuppressionModel.Meta
    return Connection(region=meta.region, host=meta.host)


def _write(
    merged: SuppressionModel, target: SuppressionModel | None, sources: list[SuppressionModel]
) -> None:
    """One transaction: the merged item replaces the canonical one, the old spellings go, and
    the list's version goes up (`version_bump`): the canonical key may now be suppressed where
    the send-time cache holds "not suppressed" for it under the old version."""
    with TransactWrite(connection=_connection()) as txn:
        new = SuppressionModel.address.does_not_exist()
        txn.save(merged, condition=_unchanged(target) if target else new)
        for source in sources:
            txn.delete(source, condition=_unchanged(source))
        txn.update(*version_bump(keys.tenant_of_list_pk(merged.pk), merged.address))


def rekey_one(
    pk: str, canonical: str, spellings: Iterable[str], now: datetime, *, dry_run: bool = False
) -> Rekeyed | None:
    """Move the `spellings` of one address to its canonical key, merged (module docstring).
    None when there was nothing left to move (another run did it)."""
    for _ in range(ATTEMPTS):
        sources = [i for s in sorted(set(spellings)) if (i := dynamo.get(SuppressionModel, pk, s))]
        if not sources:
            return None
        target = dynamo.get(SuppressionModel, pk, canonical)
        merged = merge(pk, canonical, [*([target] if target else []), *sources], now)
        result = Rekeyed(
            pk, canonical, tuple(i.address for i in sources), target is not None, not dry_run
        )
        if dry_run:
            return result
        if dynamo.write_if("suppression re-keying", partial(_write, merged, target, sources)):
            return result
    raise TransientStorageError(
        f"{canonical} in {pk} kept changing while it was re-keyed; run the command again"
    )


def rekey(
    tenant_ids: Iterable[str] | None = None,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = _utcnow,
    report: Callable[[Rekeyed], None] = lambda _: None,
) -> Counter[str]:
    """Re-key every misplaced entry and tombstone (of the given tenants, or all). Idempotent."""
    counts: Counter[str] = Counter()
    for (pk, canonical), spellings in sorted(misplaced(tenant_ids).items()):
        done = rekey_one(pk, canonical, spellings, clock(), dry_run=dry_run)
        if done is None:
            counts["already_done"] += 1
            continue
        report(done)
        counts["merged" if done.merged else "moved"] += 1
        counts["spellings"] += len(done.spellings)
    return counts
