"""The deployed refresh of Apple's relay ranges: the `relay_ranges` function, run daily by a
schedule rule (infra/relay_ranges.py), fetches Apple's published list
(https://mask-api.icloud.com/egress-ip-ranges.csv, the only URL it fetches), merges it as
`python -m ops.refresh_relay_ranges` does, and writes it to SESami's bucket (store.py), dated
the day it was fetched. Ingest picks the copy up in its new instances (events/relay_ranges.py:
the newest usable of the copy and the shipped file).

A failed or implausible fetch (no valid prefix, over 1 % malformed rows, over 64 MB) writes
nothing and raises: the copy already there stays, Lambda's Errors metric says so, and the
copy only stops being used once it is 180 days old (then the shipped file is, if newer).
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

from chalicelib.core import logs
from chalicelib.events.relay_ranges import SOURCE_URL, NotARangesList, compact

log = logging.getLogger("sesami.relays")

MAX_BYTES = 64 * 1024 * 1024  # Apple's file is ~10 MB
FETCH_TIMEOUT_SECONDS = 60.0
Fetch = Callable[[str], bytes]


class Copy(Protocol):
    def put(self, text: str) -> None: ...


def fetch_https(url: str, timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """The body at an https URL, at most MAX_BYTES (the operator's fixed URL, not a tenant's)."""
    if not url.startswith("https://"):
        raise NotARangesList(f"only an https:// URL, not {url[:40]!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "sesami-relay-ranges/1"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        raw = bytes(response.read(MAX_BYTES + 1))
    if len(raw) > MAX_BYTES:
        raise NotARangesList(f"{url} is over {MAX_BYTES // 1024 // 1024} MB: not a ranges list")
    return raw


def refresh(fetch: Fetch, copy: Copy, *, today: date, url: str = SOURCE_URL) -> dict[str, Any]:
    """Fetch, merge and store Apple's list; what was written. Raises rather than store a bad one."""
    raw = fetch(url)
    text, prefixes, rows, malformed = compact(
        raw.decode("utf-8", errors="replace").splitlines(),
        source=url,
        published=today,
        refreshed_with="the relay_ranges function (scheduled)",
    )
    copy.put(text)
    v4 = sum(1 for p in prefixes if ":" not in p)
    result = {
        "prefixes": len(prefixes),
        "ipv4": v4,
        "ipv6": len(prefixes) - v4,
        "rows": rows,
        "malformed": malformed,
        "published": today.isoformat(),
        "bytes": len(text.encode()),
    }
    logs.metric("RelayRangesPrefixes", len(prefixes), {"Source": "apple"}, **result)
    log.info("Apple relay ranges refreshed: %s", result)
    return result
