"""Give the lifecycle indexes the items written before them (run once after upgrading; idempotent).

    python -m ops.index_backfill            # settings from the environment, as ops.replay

Erasure and tenant deletion find Idempotency-Key records, bulk batches and the aggregates
POST /mail recorded (no event yet) through keys-only indexes (`sending.by_tenant`,
`messages.by_pending`), whose keys new writes carry. Items written by an older SESami have no
such key: this scans the two tables once and sets it. A Scan, reading every tenant's items, is
an operator's migration, never a request path (invariant 7 holds for the API). Each write is
conditional (only where the key is missing, and for an aggregate only while no event has
reached it), so running it twice, or while SESami runs, changes nothing twice.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))


def tenant_of(pk: str) -> str:
    """The tenant of a `T#<tenant>#...` key."""
    return pk.split("#", 2)[1]


def backfill() -> Counter[str]:
    from chalicelib.core import dynamo
    from chalicelib.core.tables import IdempotencyModel, MessageModel

    done: Counter[str] = Counter()
    missing = IdempotencyModel.tenant_key.does_not_exist()
    with dynamo.storage("sending scan"):
        records = list(IdempotencyModel.scan(IdempotencyModel.sk.is_in("IK", "B") & missing))
    for item in records:
        kind = "idempotency_records" if item.sk == "IK" else "batches"
        done[kind] += int(_index_sending(item.pk, item.sk))
    pending = (
        (MessageModel.sk == "AGG")
        & (MessageModel.events == 0)
        & MessageModel.pending_key.does_not_exist()
    )
    with dynamo.storage("messages scan"):
        aggregates = list(MessageModel.scan(pending))
    for agg in aggregates:
        done["pending_messages"] += int(_index_pending(agg))
    return done


def _index_sending(pk: str, sk: str) -> bool:
    from chalicelib.core import dynamo, keys
    from chalicelib.core.tables import BatchModel, IdempotencyModel

    key = keys.tenant_index_key(tenant_of(pk), pk)
    if sk == "IK":
        record = IdempotencyModel(pk, sk)
        condition = IdempotencyModel.pk.exists() & IdempotencyModel.tenant_key.does_not_exist()
        return dynamo.write_if(
            "index backfill",
            lambda: record.update(
                actions=[IdempotencyModel.tenant_key.set(key)], condition=condition
            ),
        )
    summary = BatchModel(pk, sk)
    missing = BatchModel.pk.exists() & BatchModel.tenant_key.does_not_exist()
    return dynamo.write_if(
        "index backfill",
        lambda: summary.update(actions=[BatchModel.tenant_key.set(key)], condition=missing),
    )


def _index_pending(agg: Any) -> bool:
    """Under its version: an ingest racing it re-reads and retries (its write drops the key)."""
    from chalicelib.core import dynamo, keys
    from chalicelib.core.tables import MessageModel

    key = keys.tenant_index_key(tenant_of(agg.pk), agg.pk)
    still = (MessageModel.events == 0) & MessageModel.pending_key.does_not_exist()
    return dynamo.write_if(
        "index backfill",
        lambda: agg.update(actions=[MessageModel.pending_key.set(key)], condition=still),
    )


def main() -> int:
    from chalicelib.core import wiring

    wiring.settings()  # points the models at the environment's tables
    done = backfill()
    print(" ".join(f"{k}={v}" for k, v in sorted(done.items())) or "nothing to backfill")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
