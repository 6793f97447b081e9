"""ops/index_backfill.py on DynamoDB Local: items written before the lifecycle indexes (no
index key) are given one, once, so that erasure and deletion find them."""

from __future__ import annotations

import uuid
from typing import Any

from chalicelib.core import keys
from chalicelib.core.tables import BatchModel, IdempotencyModel, MessageModel
from chalicelib.lifecycle import items
from chalicelib.sending.store import SendingStore

from ops.index_backfill import backfill
from tests.lifecycle.support import store_batch
from tests.support import make_tenant


def test_old_items_join_the_indexes_once(settings: Any) -> None:
    t = make_tenant(settings)
    store = SendingStore(settings)
    batch, message = uuid.uuid4().hex, f"m-{uuid.uuid4().hex}"
    store_batch(store, t.tenant_id, batch, status="finished")
    store.claim(t.tenant_id, "old-key", "f" * 64)
    store.record_sent(
        t.tenant_id, message, source="a@x.net", subject="s", destination=["b@x.net"], tags={}
    )
    # As an older SESami wrote them: without their index keys.
    ik_pk, batch_pk = keys.idempotency_pk(t.tenant_id, "old-key"), keys.batch_pk(t.tenant_id, batch)
    IdempotencyModel(ik_pk, "IK").update(actions=[IdempotencyModel.tenant_key.remove()])
    BatchModel(batch_pk, "B").update(actions=[BatchModel.tenant_key.remove()])
    agg = MessageModel.get(keys.message_pk(t.tenant_id, message), "AGG")
    agg.update(actions=[MessageModel.pending_key.remove()])
    assert items.sending_partitions(t.tenant_id) == []
    assert list(items.indexed(t.tenant_id, MessageModel, MessageModel.by_pending)) == []

    first = backfill()
    assert first["idempotency_records"] >= 1 and first["batches"] >= 1
    assert first["pending_messages"] >= 1
    assert items.sending_partitions(t.tenant_id) == sorted([ik_pk, batch_pk])
    pending = items.indexed(t.tenant_id, MessageModel, MessageModel.by_pending)
    assert [e.pk for e in pending] == [keys.message_pk(t.tenant_id, message)]
    assert backfill() == {}  # nothing twice
