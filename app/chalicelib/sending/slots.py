"""The concurrent-bulk-batches quota: the batches a tenant has in flight, in one item of the
sending table (`T#t#BULK / SLOTS`, core/keys.py): `{"batches": {batch_id: acquired_at}}`.

- `acquire` (POST /mail/bulk, before the batch is stored): read the item; if it lists fewer
  batches than the tenant's `bulk_batches`, write it back with this one, on condition that it
  is unchanged (compare-and-swap; a lost race reads again). When it is full, each listed batch's
  summary is read, and the ones no longer in flight (finished, stalled, gone) are dropped
  (`BatchSummary.in_flight`; a listed batch not stored yet is kept for a minute: its request
  is storing it); still full is a 429 `TooManyBatches`. One read and one write in the usual
  case.
- `release` (the worker, when the batch finishes): the same compare-and-swap without it. A
  release that fails costs nothing lasting: the next acquire that finds the slots full drops it.

Why DynamoDB, not Momento: a slot must hold for the minutes or hours its batch sends and must
never vanish meanwhile (a cache may evict), and freeing it is decided by the batch's own state,
which is here. It also holds while Momento is down.

Why it matters (invariant 11): every batch in flight keeps one bulk_worker invocation running,
and the bulk worker's reserved concurrency is shared by all tenants. With R reserved and at most
c batches per tenant, at least R / c tenants' batches make progress at any time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import dynamo, keys
from chalicelib.core.errors import TooManyRequests, TransientStorageError
from chalicelib.core.tables import BatchModel
from chalicelib.sending.batches import BatchSummary

log = logging.getLogger("sesami.sending")

SLOTS_SK = "SLOTS"
RETRY_AFTER_SECONDS = 30
# A slot is taken before its batch is stored: a slot this young without a batch is a request
# still under way (API requests end within 30 s), not a failed one.
STORING_GRACE_SECONDS = 60.0
# The item is rewritten by every acquire and release; untouched this long, it goes.
SLOTS_KEPT = timedelta(days=30)


class TooManyBatches(TooManyRequests):
    code = "too_many_requests"


class BulkSlots:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall

    def acquire(self, tenant_id: str, batch_id: str, limit: int) -> None:
        """Take a slot for `batch_id`, or raise TooManyBatches (429)."""
        pruned = False
        for _attempt in range(5):
            held = self._read(tenant_id)
            batches = dict(held or {})
            if len(batches) >= limit and not pruned:
                batches = self._in_flight(tenant_id, batches)
                pruned = True
            if len(batches) >= limit:
                raise TooManyBatches(
                    f"the tenant already has {len(batches)} bulk batches in flight, its limit "
                    f"(bulk_batches: {limit}); retry when one finishes (GET /mail/bulk/{{id}})",
                    details={
                        "limit": "bulk_batches",
                        "scope": "tenant",
                        "allowed": limit,
                        "in_flight": sorted(batches),
                        "retry_after": RETRY_AFTER_SECONDS,
                    },
                    retry_after=RETRY_AFTER_SECONDS,
                )
            batches[batch_id] = self._wall()
            if self._swap(tenant_id, held, batches):
                return
        raise TransientStorageError("the bulk slots kept changing")

    def release(self, tenant_id: str, batch_id: str) -> None:
        """Give the slot back (best effort: never raises)."""
        try:
            for _attempt in range(5):
                held = self._read(tenant_id)
                if held is None or batch_id not in held:
                    return
                rest = {b: at for b, at in held.items() if b != batch_id}
                if self._swap(tenant_id, held, rest):
                    return
        except TransientStorageError as exc:
            log.warning("bulk batch %s: could not release its slot: %s", batch_id, exc)

    def held(self, tenant_id: str) -> dict[str, float]:
        return dict(self._read(tenant_id) or {})

    # ------------------------------------------------------------------ storage

    @staticmethod
    def _read(tenant_id: str) -> dict[str, float] | None:
        item = dynamo.get(BatchModel, keys.bulk_slots_pk(tenant_id), SLOTS_SK)
        if item is None:
            return None
        return {str(b): float(at) for b, at in dict(item.doc.get("batches") or {}).items()}

    def _swap(self, tenant_id: str, old: dict[str, float] | None, new: dict[str, float]) -> bool:
        """Write `new` if the item still holds `old` (None: if there is no item)."""
        pk = keys.bulk_slots_pk(tenant_id)
        expires = datetime.now(UTC) + SLOTS_KEPT
        item = BatchModel(pk, SLOTS_SK, doc={"batches": new}, expires_at=expires)
        same: Any = (
            BatchModel.pk.does_not_exist() if old is None else BatchModel.doc == {"batches": old}
        )
        return dynamo.write_if("bulk slots", lambda: item.save(condition=same))

    def _in_flight(self, tenant_id: str, batches: dict[str, float]) -> dict[str, float]:
        now = self._wall()
        out = {}
        for batch_id, acquired_at in batches.items():
            item = dynamo.get(BatchModel, keys.batch_pk(tenant_id, batch_id), "B")
            if item is None:
                if now - acquired_at < STORING_GRACE_SECONDS:
                    out[batch_id] = acquired_at  # its request is storing it
                continue  # its request failed before storing it, or it expired
            if BatchSummary.from_doc(item.doc).in_flight(now):
                out[batch_id] = acquired_at
        return out
