"""lifecycle/items.walk: the resumable page walk that deletion's and erasure's steps share."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from chalicelib.core.tables import WebhookMarkModel
from chalicelib.lifecycle import items

pytestmark = pytest.mark.ddb_local


def _partition(settings: Any, size: int) -> str:
    pk = f"T#walk-{uuid.uuid4().hex[:8]}#W"
    with WebhookMarkModel.batch_write() as batch:
        for n in range(size):
            batch.save(WebhookMarkModel(pk, f"X#{n:04d}"))
    return pk


def test_a_walk_out_of_time_after_every_page_goes_on_where_it_stopped(settings: Any) -> None:
    parts = [
        (label, _partition(settings, size)) for label, size in (("a", 250), ("b", 0), ("c", 40))
    ]
    seen: list[tuple[str, str]] = []
    doc: dict[str, Any] = {}
    runs = 0
    while not items.walk(
        WebhookMarkModel,
        parts,
        doc,
        lambda: True,  # out of time after each page
        lambda rows: seen.extend((r.pk, r.sk) for r in rows),
        name="part",
    ):
        runs += 1
        assert doc["cursor"]["part"] == "a" and doc["cursor"]["start"]
    assert runs == 2  # a's 250 items are three pages of 100: two stops inside it
    assert len(seen) == len(set(seen)) == 290  # every item once


def test_a_walk_resumes_after_a_partition_that_is_no_longer_listed(settings: Any) -> None:
    later = _partition(settings, 3)
    seen: list[str] = []
    doc: dict[str, Any] = {"cursor": {"part": "b", "start": {"pk": {"S": "gone"}}}}
    done = items.walk(
        WebhookMarkModel,
        [("a", _partition(settings, 2)), ("c", later)],
        doc,
        lambda: False,
        lambda rows: seen.extend(r.pk for r in rows),
        name="part",
    )
    assert done and seen == [later] * 3  # a was before the cursor; c is read whole
