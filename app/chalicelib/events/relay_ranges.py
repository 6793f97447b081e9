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

Deployed, a scheduled function (chalicelib/relays/) fetches Apple's list every day and keeps the
merged copy in SESami's own bucket, in the same format; ingest registers it with
`use_published()`, and `default_ranges()` then reads it once per instance, on the first open or
click, beside the shipped file, and keeps whichever usable list was published last. A missing,
unreadable or stale copy leaves the shipped file; nothing is fetched per event.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable
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
MAX_MALFORMED_SHARE = 0.01  # of a fetched list's rows: more, and it is not a ranges list

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
    if parsed is None or not slash or not (length.isascii() and length.isdigit()):
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


def utc_today() -> date:
    """The current UTC date, which a list's age is judged against (tests pin it)."""
    return datetime.now(UTC).date()


def load(
    path: Path | str = DEFAULT_PATH,
    *,
    today: date | None = None,
    max_age_days: int = MAX_AGE_DAYS,
) -> RelayRanges:
    """The ranges in `path`, judged on `today` (default: the current UTC date). Never raises."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return from_lines(handle, source=str(path), today=today, max_age_days=max_age_days)
    except OSError as exc:
        return _degraded(RelayRanges(source=str(path), problems=(f"cannot read: {exc}",)))


def from_lines(
    lines: Iterable[str],
    *,
    source: str,
    today: date | None = None,
    max_age_days: int = MAX_AGE_DAYS,
) -> RelayRanges:
    """The ranges in the lines of a ranges file (`load`'s format), judged on `today`."""
    today = today or utc_today()
    header, prefixes, malformed = parse(lines)
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


# ------------------------------------------------------- refreshing, and the published copy


class NotARangesList(ValueError):
    """What was fetched has no valid prefix, or too many malformed rows: nothing is written."""


def merged(lines: Iterable[str]) -> tuple[list[str], int, int]:
    """(merged prefixes, IPv4 first, as text; rows read; malformed rows)."""
    _, prefixes, malformed = parse(lines)
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for bits, first, last in prefixes:
        length = bits - ((last - first + 1).bit_length() - 1)  # parse() gives aligned prefixes
        if bits == 32:
            v4.append(ipaddress.IPv4Network((first, length)))
        else:
            v6.append(ipaddress.IPv6Network((first, length)))
    out = [str(n) for n in ipaddress.collapse_addresses(v4)]
    out += [str(n) for n in ipaddress.collapse_addresses(v6)]
    return out, len(prefixes) + malformed, malformed


def compact(
    lines: Iterable[str], *, source: str, published: date, refreshed_with: str
) -> tuple[str, list[str], int, int]:
    """Apple's rows as the file `load` reads: (text, merged prefixes, rows, malformed rows).
    Raises NotARangesList rather than give an empty or broken list."""
    prefixes, rows, malformed = merged(lines)
    if not prefixes:
        raise NotARangesList(f"{source}: no valid prefix in {rows} rows; nothing written")
    if malformed > MAX_MALFORMED_SHARE * rows:
        raise NotARangesList(
            f"{source}: {malformed} of {rows} rows are malformed; not a ranges list, "
            "nothing written"
        )
    header = [
        "# iCloud Private Relay egress ranges (Apple), merged, one prefix per line.",
        f"# source: {source}",
        f"# refreshed with: {refreshed_with}",
        f"# rows read: {rows}; malformed rows skipped: {malformed}",
        f"# published: {published.isoformat()}",
        "# coverage: full",
    ]
    return "\n".join([*header, *prefixes]) + "\n", prefixes, rows, malformed


# Reads the published copy's lines (None: there is none); registered by ingest's wiring.
Published = Callable[[], Iterable[str] | None]
_published: list[Published] = []


def use_published(read: Published | None) -> None:
    """Where the refreshed copy is (None: nowhere, the shipped file only); read on next use."""
    _published[:] = [read] if read is not None else []
    default_ranges.cache_clear()


def newest(*candidates: RelayRanges) -> RelayRanges:
    """The usable list published last (the first of equals); the first if none is usable."""
    usable = [r for r in candidates if r.usable]
    if not usable:
        return candidates[0]
    return max(usable, key=lambda r: r.published or date.min)  # max keeps the first of equals


@cache
def default_ranges() -> RelayRanges:
    """The ranges ingest uses, loaded on first use (one ingest instance reads them once): the
    published copy if there is one, usable and no older than the shipped file, else the
    shipped file (usable or not). Never raises: an unreadable copy is logged and left out."""
    shipped = load(DEFAULT_PATH)
    if not _published:
        return shipped
    try:
        lines = _published[0]()
    except Exception as exc:  # any failure of the copy: degrade to the shipped file, loudly
        log.warning("Apple relay ranges: the published copy is unreadable (%s): shipped file", exc)
        return shipped
    if lines is None:
        log.warning("Apple relay ranges: no published copy yet: the shipped file")
        return shipped
    copy = from_lines(lines, source="published copy")
    # An unusable copy leaves the shipped file, even a stale one (which is then not used
    # either: classification falls back to the user agent and timing, never to an error).
    chosen = newest(copy, shipped) if copy.usable else shipped
    if chosen is not copy:
        log.warning("Apple relay ranges: the published copy is not used (%s)", copy.problems)
    return chosen
