"""Cold import cost: `import app` (app/app.py) against a bare `import boto3`, each in fresh
processes (median of several), measured inside the process so interpreter start-up is excluded.
Also checks that running ingest never loads grpc or momento."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 9

_TIMER = """
import sys, time
sys.path[:0] = [{app!r}, {root!r}]
t = time.perf_counter()
import {module}
print((time.perf_counter() - t) * 1000)
"""

_INGEST_MODULES = """
import sys
sys.path[:0] = [{app!r}, {root!r}]
import app
from chalicelib.ingest import pipeline, store  # everything the ingest path loads
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "momento"))))
"""


def _import_ms(module: str) -> float:
    code = _TIMER.format(app=str(ROOT / "app"), root=str(ROOT), module=module)
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        samples.append(float(out.strip()))
    return round(statistics.median(samples), 2)


def run() -> dict[str, object]:
    app_ms = _import_ms("app")
    boto3_ms = _import_ms("boto3")
    ingest_stack_ms = _import_ms("chalicelib.ingest.store, chalicelib.ingest.pipeline")
    loaded = subprocess.run(
        [sys.executable, "-c", _INGEST_MODULES.format(app=str(ROOT / "app"), root=str(ROOT))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {
        "import_ms_app": app_ms,
        "import_ms_boto3": boto3_ms,
        "import_ratio_app_to_boto3": round(app_ms / boto3_ms, 3),
        # What the ingest function loads on its first event (PynamoDB -> botocore, our modules).
        "import_ms_ingest_stack": ingest_stack_ms,
        "ingest_loads_grpc_or_momento": bool(loaded),
    }
