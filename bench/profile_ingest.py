"""Where ingest's CPU goes, all in (bench/ingest_costs.py `cpu_all_in`: handler, parsing, item
building, botocore serialisation and signing, DynamoDB's HTTP stubbed in process).

    PYTHONPATH=app:. .venv/bin/python -m bench.profile_ingest            # cProfile, queue batches
    PYTHONPATH=app:. .venv/bin/python -m bench.profile_ingest --measure  # the two figures
    PYTHONPATH=app:. .venv/bin/python -m bench.profile_ingest --sort tottime --top 40
    PYTHONPATH=app:. .venv/bin/python -m bench.profile_ingest --gc       # collections, their CPU

`--measure` prints `ingest_cpu_us_per_event_all_in` (one envelope per invocation) and
`ingest_cpu_us_per_event_all_in_queue_batches` (the ingest queue's batches of 100) as `make
bench` computes them (the best of 3 runs over the same 300-message realistic mix, warm store and
directory), without DynamoDB Local: the tenant's items are written into the stub itself.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
from collections.abc import Callable
from typing import Any

MESSAGES = 300
RUNS = 3


def _setup() -> tuple[dict[str, list[dict[str, Any]]], str, Any, Any]:
    """(the stub's seed: the tenant's items, its account, the queue-batch and per-invocation
    handlers)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    from chalicelib.core import logs, tables
    from chalicelib.core.settings import Settings
    from chalicelib.ingest.directory import TenantDirectory
    from chalicelib.ingest.pipeline import ingest_envelopes, ingest_queue_records
    from chalicelib.ingest.store import EventStore

    from bench.ingest_costs import StubbedDynamoDB
    from tests.support import make_tenant

    logs.silence_metrics()
    settings = Settings(table_prefix="bench-", dynamodb_endpoint="http://127.0.0.1:1")
    tables.configure(settings)
    with StubbedDynamoDB({}).installed() as stub:
        tenant = make_tenant(settings)
    seed: dict[str, list[dict[str, Any]]] = {}
    for (table, _), item in stub.items.items():
        seed.setdefault(table, []).append(item)
    directory, store = TenantDirectory(ttl_seconds=60), EventStore(settings)

    def per_invocation(envelopes: list[Any]) -> None:
        for envelope in envelopes:
            ingest_envelopes([envelope], tenants=directory, store=store)

    def per_batch(envelopes: list[Any]) -> None:
        for i in range(0, len(envelopes), 100):
            records = [
                {"messageId": str(n), "body": json.dumps(e)}
                for n, e in enumerate(envelopes[i : i + 100])
            ]
            ingest_queue_records(records, tenants=directory, store=store)

    return seed, tenant.account_id, per_batch, per_invocation


def measure() -> dict[str, float]:
    from bench.ingest_costs import cpu_all_in

    seed, account, per_batch, per_invocation = _setup()

    def best(handler: Callable[[list[Any]], None]) -> tuple[float, float]:
        return min(
            (cpu_all_in(seed, account, MESSAGES, handler) for _ in range(RUNS)), key=lambda r: r[0]
        )

    cpu, requests = best(per_invocation)
    batched, batched_requests = best(per_batch)
    return {
        "ingest_cpu_us_per_event_all_in": cpu,
        "ingest_cpu_us_per_event_all_in_queue_batches": batched,
        "ingest_requests_per_event_stubbed": requests,
        "ingest_requests_per_event_stubbed_queue_batches": batched_requests,
    }


def profile(sort: str, top: int) -> None:
    from bench.ingest_costs import cpu_all_in

    seed, account, per_batch, _ = _setup()
    cpu_all_in(seed, account, MESSAGES, per_batch)  # warm: imports, clients, directory
    profiler = cProfile.Profile()
    profiler.enable()
    cpu, requests = cpu_all_in(seed, account, MESSAGES, per_batch)
    profiler.disable()
    print(f"queue batches: {cpu} µs/event (under cProfile), {requests} requests/event")
    pstats.Stats(profiler).strip_dirs().sort_stats(sort).print_stats(top)


def collections() -> None:
    """The garbage collector's collections during one warm queue-batch run, by generation, and
    the CPU they took (a full one walks every tracked object: see ingest/heap.py)."""
    import gc
    import time

    from bench.ingest_costs import cpu_all_in

    seed, account, per_batch, _ = _setup()
    cpu_all_in(seed, account, MESSAGES, per_batch)  # warm (and, once, the heap settled)
    began: list[float] = []
    runs: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began.append(time.process_time())
        else:
            runs[info["generation"]].append(time.process_time() - began.pop())

    gc.callbacks.append(watch)
    try:
        cpu, _ = cpu_all_in(seed, account, MESSAGES, per_batch)
    finally:
        gc.callbacks.remove(watch)
    tracked, frozen = len(gc.get_objects()), gc.get_freeze_count()
    print(f"queue batches: {cpu} µs/event; objects tracked {tracked}, frozen {frozen}")
    for generation, times in runs.items():
        print(f"  generation {generation}: {len(times)} collections, {sum(times) * 1e3:.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true", help="print the two all-in figures")
    parser.add_argument("--gc", action="store_true", help="the collections of one run")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (cumulative)")
    parser.add_argument("--top", type=int, default=50, help="rows printed (50)")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(), indent=2))
    elif args.gc:
        collections()
    else:
        profile(args.sort, args.top)


if __name__ == "__main__":
    main()
