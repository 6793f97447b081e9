"""Ingest's heap, settled once per process: after its first batch, everything then alive (the
botocore clients and their loaded service models, endpoint rules, PynamoDB's models, the
modules) is moved out of the garbage collector's reach (`gc.freeze`).

Why: CPython's full collection walks every tracked object, and a warm ingest process holds
~200,000 of them, nearly all of them the SDK's and the modules' that live as long as the
process. Ingest allocates enough per batch (parsed records, items, requests) to set off about
one full collection per 1,000 events, ~120 ms of CPU each on the bench machine (~120 µs an
event). Frozen, the same collection walks only what was allocated since: ~3 ms
(bench/profile_ingest.py --gc prints the collections and their CPU).

What it costs: an object frozen is never collected by the cycle collector, even if it becomes
cyclic garbage later; reference counting still frees everything else. What is alive after the
first batch is the process's own state, so at most that much could be kept too long. The young
generations are collected first, so the first batch's short-lived cycles are not frozen.
"""

from __future__ import annotations

import gc

_settled = False


def settle() -> None:
    """Freeze the heap, the first time it is called in this process; later calls do nothing."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect(1)  # the young generations: the first batch's short-lived cycles go first
    gc.freeze()
