"""Ingest settles its process's heap once (ingest/heap.py): after the first batch or envelope,
and never again."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from chalicelib.ingest import heap
from chalicelib.ingest.pipeline import ingest_envelopes, ingest_queue_records


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(heap, "_settled", False)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "collect", lambda generation=2: calls.append(f"collect {generation}"))
    return calls


def test_the_first_batch_settles_the_heap_and_later_ones_do_not(freezes: list[str]) -> None:
    unused: Any = None
    for _ in range(3):
        ingest_queue_records([], tenants=unused, store=unused)
    assert freezes == ["collect 1", "freeze"]  # the young generations first, then frozen once


def test_one_envelope_at_a_time_settles_it_once_too(freezes: list[str]) -> None:
    unused: Any = None
    ingest_envelopes([], tenants=unused, store=unused)
    ingest_envelopes([], tenants=unused, store=unused)
    assert freezes.count("freeze") == 1
