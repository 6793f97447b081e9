"""`make bench`: run every benchmark, print the figures, write bench/results.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "app"), str(ROOT)]


def main() -> None:
    from bench import (
        auth_bench,
        cost_model,
        credentials_bench,
        engagement_bench,
        imports,
        ingest_bench,
        query_bench,
        quota_bench,
        suppression_bench,
        views_bench,
        webhooks_bench,
    )

    results: dict[str, object] = {}
    results.update(imports.run())
    results.update(ingest_bench.run())
    results.update(engagement_bench.run())
    results.update(credentials_bench.run())
    results.update(query_bench.run())
    results.update(views_bench.run())
    results.update(webhooks_bench.run())
    results.update(auth_bench.run())
    results.update(quota_bench.run())
    results.update(suppression_bench.run())
    results.update(cost_model.run(results))
    out = ROOT / "bench" / "results.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update(results)
    out.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
