"""Re-key the suppression list under the one canonical address key (core/addresses.py).

    python -m ops.canonical_addresses                       # every tenant (one Scan, keys only)
    python -m ops.canonical_addresses --tenant t1 --tenant t2
    python -m ops.canonical_addresses --dry-run             # say what would change, change nothing

Entries and tombstones stored under another spelling of their address (the Unicode form of an
internationalised domain, `user@bücher.de`, which the suppression list wrote before addresses had
one key) move to the canonical key, `user@xn--bcher-kva.de`, merged with what is already there:
earliest created_at and reason, reasons united, occurrences summed, histories kept (plus a
`rekeyed` record). Each address is one DynamoDB transaction; running the command again, or after
an interruption, is safe: what is done is not found again. The rules are in
chalicelib/suppression/rekey.py.

Settings come from the environment (SESAMI_TABLE_PREFIX, SESAMI_DYNAMODB_ENDPOINT, AWS_REGION...),
as the functions read them; the local stack's are printed by `make dev`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))


def run(tenants: list[str] | None, *, dry_run: bool, out: TextIO | None = None) -> int:
    from chalicelib.core import wiring
    from chalicelib.suppression.rekey import Rekeyed, rekey

    wiring.settings()  # points the tables at the environment's
    out = out or sys.stdout

    def show(done: Rekeyed) -> None:
        verb = ("would merge" if done.merged else "would move") if dry_run else "rekeyed"
        print(f"{verb:12} {done.pk} {', '.join(done.spellings)} -> {done.address}", file=out)

    counts = rekey(tenants, dry_run=dry_run, report=show)
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing to re-key", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.canonical_addresses", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--tenant", action="append", help="only this tenant's list (repeatable); default: all"
    )
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    return run(args.tenant, dry_run=args.dry_run)


if __name__ == "__main__":
    raise SystemExit(main())
