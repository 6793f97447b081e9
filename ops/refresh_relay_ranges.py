"""Refresh the Apple iCloud Private Relay egress ranges that ingest uses to recognise Apple Mail
Privacy Protection (see app/chalicelib/events/relay_ranges.py).

    curl -sSfo egress.csv https://mask-api.icloud.com/egress-ip-ranges.csv
    python -m ops.refresh_relay_ranges egress.csv                # or the https URL itself
    python -m ops.refresh_relay_ranges egress.csv --published 2026-12-01 --out other.csv

SOURCE is Apple's file (`prefix,country,region,city,` rows, IPv4 and IPv6), or any file with a
prefix first on each line: a local path, or an https URL fetched as given (the command makes no
other connection). Malformed lines are skipped and counted; the prefixes are merged (about
287,000 rows become about 13,600) and written, one per line, under a header that records the
source, the date it was published (default: today, UTC) and `coverage: full`, to the file the
Lambda package ships (default), atomically. Nothing is written if no prefix is valid or too
many lines are not, so a failed download can never replace a good list with an empty one.

Then rebuild and deploy: `make package && pulumi up`. A list older than 180 days is not used.
Deployed, the `relay_ranges` function does the same every day into SESami's bucket (ingest reads
that copy when it is newer than the shipped file; see app/chalicelib/relays/), so this command
only keeps the shipped fallback (and the local stack) current.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))

from chalicelib.events.relay_ranges import (  # noqa: E402
    DEFAULT_PATH,
    SOURCE_URL,
    NotARangesList,
    compact,
)

MAX_BYTES = 64 * 1024 * 1024  # Apple's file is ~10 MB
RefreshError = NotARangesList  # what the command refuses


def read_source(source: str, timeout: float = 60.0) -> list[str]:
    """The lines of a local file or of an https URL (nothing else is fetched)."""
    if source.startswith("https://"):
        # Only https, checked above; the operator names the URL.
        request = urllib.request.Request(source, headers={"User-Agent": "sesami-refresh/1"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read(MAX_BYTES + 1)
    elif "://" in source:
        raise RefreshError(f"only a file path or an https:// URL, not {source.split(':')[0]}")
    else:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    raw = bytes(raw)
    if len(raw) > MAX_BYTES:
        raise RefreshError(f"{source} is over {MAX_BYTES // 1024 // 1024} MB: not a ranges list")
    return raw.decode("utf-8", errors="replace").splitlines()


def refresh(
    source: str,
    out_path: Path = DEFAULT_PATH,
    *,
    published: date | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Write the merged ranges of `source` to `out_path`; returns the number of prefixes."""
    published = published or datetime.now(UTC).date()
    shown = SOURCE_URL if source == SOURCE_URL or not source.startswith("https://") else source
    if not source.startswith("https://"):
        shown += f" (from {source})"
    text, prefixes, rows, malformed = compact(
        read_source(source),
        source=shown,
        published=published,
        refreshed_with="python -m ops.refresh_relay_ranges",
    )
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out_path)
    v4 = sum(1 for p in prefixes if ":" not in p)
    print(
        f"{out_path}: {len(prefixes)} prefixes ({v4} IPv4, {len(prefixes) - v4} IPv6) from "
        f"{rows} rows, {malformed} malformed; published {published}",
        file=out,
    )
    return len(prefixes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help=f"Apple's file, or an https URL such as {SOURCE_URL}")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="default: the shipped file")
    parser.add_argument(
        "--published", type=date.fromisoformat, help="when the list was fetched (default today)"
    )
    args = parser.parse_args(argv)
    try:
        refresh(args.source, args.out, published=args.published)
    except (RefreshError, OSError) as exc:
        print(f"refresh_relay_ranges: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
