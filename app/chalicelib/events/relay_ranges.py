"""Apple's iCloud Private Relay egress ranges: data with a date, loaded once, looked up fast.

Apple publishes every address its relays use at https://mask-api.icloud.com/egress-ip-ranges.csv
(one `prefix,country,region,city,` row each, IPv4 and IPv6), and Mail Privacy Protection fetches
remote images through those relays. The project ships a file of them
(`data/apple_relay_egress.csv`, a sample until the operator refreshes it with
`python -m ops.refresh_relay_ranges`); its header says when the list was published and whether
it is the whole list or a sample:

    # published: 2026-07-02
    # coverage: sample            (or: full)

Loading never fails. A missing file, an unreadable one, one without a date or one older than
`MAX_AGE_DAYS` gives ranges that are not `usable`: the classifier then decides on the other
signals alone. A stale list is dropped rather than trusted because the relays egress through
CDN partners' address space (Akamai, Cloudflare, Fastly), which is reassigned: an old list would
call other people's traffic Apple's. A malformed line is skipped and counted, never fatal.

Lookups: prefixes become (first, last) integer pairs per address family, merged and sorted, and
a lookup is one `bisect` per address (IPv4-mapped IPv6 addresses are looked up as IPv4).
"""

from __future__ import annotations

import logging
import socket
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

log = logging.getLogger("sesami.engagement")

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "apple_relay_egress.csv"
SOURCE_URL = "https://mask-api.icloud.com/egress-ip-ranges.csv"
MAX_AGE_DAYS = 180
MAX_LINE = 200  # Apple's rows are ~50 characters; anything longer is not one
COVERAGES = ("full", "sample")

_V4_MAPPED = (0xFFFF << 32, 0xFFFF_FFFF_FFFF)  # ::ffff:0:0/96, first and last


def _address(text: str) -> tuple[int, int] | None:
    """(family bits, integer) of an address, or None if it is not one."""
    try:
        if ":" in text:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
            if _V4_MAPPED[0] <= value <= _V4_MAPPED[1]:
                return 32, value & 0xFFFF_FFFF
            return 128, value
        return 32, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        return None


def parse_prefix(text: str) -> tuple[int, int, int] | None:
    """`a.b.c.d/n` or `x:y::/n` -> (family bits, first, last); None if malformed. Host bits set
    in the prefix are cleared (Apple's rows are aligned, but a hand-edited file may not be)."""
    addr, slash, length = text.strip().partition("/")
    parsed = _address(addr)
    if parsed is None or not slash or not length.isdigit():
        return None
    bits, value = parsed
    if ":" in addr and bits == 32:  # an IPv4-mapped prefix: keep it as written, in IPv6
        return None
    n = int(length)
    if not 0 < n <= bits:
        return None
    host = (1 << (bits - n)) - 1
    first = value & ~host
    return bits, first, first | host


def _merged(pairs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    firsts: list[int] = []
    lasts: list[int] = []
    for first, last in sorted(pairs):
        if lasts and first <= lasts[-1] + 1:
            lasts[-1] = max(lasts[-1], last)
        else:
            firsts.append(first)
            lasts.append(last)
    return firsts, lasts


@dataclass(frozen=True)
class RelayRanges:
    """The egress ranges and what is known about them. `contains()` is None when the ranges are
    not usable (no evidence either way), else whether the address is a relay address."""

    v4: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))
    v6: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))
    published: date | None = None
    coverage: str = "sample"
    usable: bool = False
    malformed: int = 0
    problems: tuple[str, ...] = ()
    source: str = ""

    @property
    def prefixes(self) -> int:
        return len(self.v4[0]) + len(self.v6[0])

    @property
    def complete(self) -> bool:
        """The whole list, fresh: an address outside it is evidence too (not only one inside)."""
        return self.usable and self.coverage == "full"

    def contains(self, ip: str | None) -> bool | None:
        if not self.usable:
            return None
        parsed = _address(ip.strip()) if ip else None
        if parsed is None:
            return False
        bits, value = parsed
        firsts, lasts = self.v4 if bits == 32 else self.v6
        i = bisect_right(firsts, value) - 1
        return i >= 0 and value <= lasts[i]


def parse(lines: Iterable[str]) -> tuple[dict[str, str], list[tuple[int, int, int]], int]:
    """(header fields, prefixes, malformed line count) of a ranges file. Header lines are
    `# name: value`; a data line's first comma-separated field is its prefix (Apple's rows carry
    geography after it; the refreshed file has the prefix alone)."""
    header: dict[str, str] = {}
    prefixes: list[tuple[int, int, int]] = []
    malformed = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            name, colon, value = line[1:].partition(":")
            if colon and name.strip().isidentifier():
                header.setdefault(name.strip().lower(), value.strip())
            continue
        prefix = parse_prefix(line.split(",", 1)[0]) if len(line) <= MAX_LINE else None
        if prefix is None:
            malformed += 1
        else:
            prefixes.append(prefix)
    return header, prefixes, malformed


def load(
    path: Path | str = DEFAULT_PATH,
    *,
    today: date | None = None,
    max_age_days: int = MAX_AGE_DAYS,
) -> RelayRanges:
    """The ranges in `path`, judged on `today` (default: the current UTC date). Never raises."""
    today = today or datetime.now(UTC).date()
    source = str(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            header, prefixes, malformed = parse(handle)
    except OSError as exc:
        return _degraded(RelayRanges(source=source, problems=(f"cannot read: {exc}",)))
    v4 = _merged([(a, b) for bits, a, b in prefixes if bits == 32])
    v6 = _merged([(a, b) for bits, a, b in prefixes if bits == 128])
    problems = [f"{malformed} malformed line(s) skipped"] if malformed else []
    published = None
    try:
        published = date.fromisoformat(header.get("published", ""))
    except ValueError:
        problems.append("no `# published: YYYY-MM-DD` line: freshness unknown")
    coverage = header.get("coverage", "sample")
    if coverage not in COVERAGES:
        problems.append(f"coverage {coverage[:20]!r} is not full or sample: taken as sample")
        coverage = "sample"
    stale = published is not None and (today - published).days > max_age_days
    if stale:
        problems.append(f"published {published}, over {max_age_days} days ago: not used")
    if not prefixes:
        problems.append("no prefixes")
    ranges = RelayRanges(
        v4=v4,
        v6=v6,
        published=published,
        coverage=coverage,
        usable=bool(prefixes) and published is not None and not stale,
        malformed=malformed,
        problems=tuple(problems),
        source=source,
    )
    return ranges if ranges.usable and not malformed else _degraded(ranges)


def _degraded(ranges: RelayRanges) -> RelayRanges:
    level = logging.INFO if ranges.usable else logging.WARNING
    log.log(
        level,
        "Apple relay ranges %s: %s%s",
        ranges.source,
        "; ".join(ranges.problems),
        "" if ranges.usable else " (classifying on user agent and timing alone)",
    )
    return ranges


@cache
def default_ranges() -> RelayRanges:
    """The shipped file, loaded on first use (one ingest instance reads it once)."""
    return load(DEFAULT_PATH)
