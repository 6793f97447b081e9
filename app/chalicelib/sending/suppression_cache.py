"""The send-time suppression check served from a cache (Momento, with the instance's memory in
front), DynamoDB the source of truth.

Safe by versioning. Every change to a tenant's suppression list (ingest's bounce or complaint,
the API's add, remove, unsubscribe, SES import) raises the list's version in the same DynamoDB
transaction as the change (suppression/from_events.py `version_bump`). A check first reads the
version (one strongly consistent BatchGet of its counters), and looks answers up only under that
version; what it has to read from the list it stores under the version it read *before* reading.
So a change that has completed (its transaction committed) is seen by every check that starts
after it: that check reads the new version, under which nothing older was ever stored. A check
that raced the change may store an old answer, but under the old version, which no later check
reads. No TTL or invalidation message is needed for safety; entries expire (`ENTRY_TTL`) only to
free space. Ingest makes no cache call at all (it never imports grpc or momento).

Momento down (an error, a timeout, a refused write): the check reads DynamoDB for everything it
did not find, never answers "not suppressed" from a failure, and leaves Momento alone for
`RETRY_AFTER` before trying it again, so a dead cache costs one timeout per instance per 30 s.

Layout in Momento: one dictionary per (tenant, version, bucket), field = the address's salted
hash (`keys.address_hash`, the form erasure keeps), value = the entry's reason, reasons and date
(JSON) or "-" (not suppressed): no address is stored in Momento in plain text, since the check
knows which address it asked about. A check of 1,000 addresses is one DictionaryGet per bucket
present (at most `BUCKETS`) instead of 1,000 Gets. A dictionary's TTL is set when it is created
and never refreshed by later writes, so every dictionary, however busy, is gone `ENTRY_TTL` after
its creation: Momento holds nothing of an erased address (not even its hash) past that.

Cost: one DynamoDB request per check (the version) when every address is cached, instead of one
BatchGet per 100 addresses; see bench/suppression_bench.py for the figures.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from chalicelib.core import keys
from chalicelib.core.addresses import key as canonical_key
from chalicelib.core.errors import CacheUnavailable
from chalicelib.sending.store import SendingStore, Suppressed

log = logging.getLogger("sesami.sending")

BUCKETS = 8
ENTRY_TTL = timedelta(hours=1)
RETRY_AFTER = 30.0  # seconds Momento is left alone after a failure
LOCAL_ENTRIES = 50_000  # the instance's own LRU in front of Momento
NOT_SUPPRESSED = b"-"


class Dictionaries(Protocol):
    """Momento's dictionaries as the check uses them (sending/momento_cache.py). Both raise
    CacheUnavailable for anything but an answer."""

    def get_fields(self, name: str, fields: list[str]) -> dict[str, bytes]: ...

    def set_fields(self, name: str, items: dict[str, bytes], ttl: timedelta) -> None: ...


@dataclass
class Stats:
    checks: int = 0
    version_reads: int = 0  # DynamoDB requests for the version
    list_reads: int = 0  # addresses read from the suppression list in DynamoDB
    local_hits: int = 0
    cache_hits: int = 0
    cache_errors: int = 0


def _bucket(field: str) -> int:
    return int(field[:8], 16) % BUCKETS


def _encode(entry: Suppressed | None) -> bytes:
    if entry is None:
        return NOT_SUPPRESSED
    doc = {"reason": entry.reason, "reasons": list(entry.reasons), "since": entry.since}
    return json.dumps(doc, separators=(",", ":")).encode()


def _decode(address: str, raw: bytes) -> Suppressed | None:
    if raw == NOT_SUPPRESSED:
        return None
    doc = json.loads(raw)
    return Suppressed(address, doc["reason"], tuple(doc["reasons"]), doc.get("since"))


class CachedSuppressionCheck:
    def __init__(
        self,
        store: SendingStore,
        cache: Dictionaries | None,
        *,
        local_entries: int = LOCAL_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._cache, self._clock = store, cache, clock
        self._local: OrderedDict[tuple[str, int, str], Suppressed | None] = OrderedDict()
        self._local_max = local_entries
        self._down_until = 0.0
        self.stats = Stats()

    def suppressed(self, tenant_id: str, addresses: Iterable[str]) -> dict[str, Suppressed]:
        """The suppressed ones among `addresses`, by canonical key (core/addresses.py), as
        SendingStore.suppressed answers: the key the list is stored under (invariant 12)."""
        wanted = sorted({canonical_key(a) for a in addresses})
        self.stats.checks += 1
        if not wanted:
            return {}
        version = self._store.suppression_version(tenant_id)
        self.stats.version_reads += 1
        answers: dict[str, Suppressed | None] = {}
        for address in wanted:
            key = (tenant_id, version, address)
            if key in self._local:
                self._local.move_to_end(key)
                answers[address] = self._local[key]
        self.stats.local_hits += len(answers)
        unknown = [a for a in wanted if a not in answers]
        if unknown:
            from_cache = self._from_cache(tenant_id, version, unknown)
            self.stats.cache_hits += len(from_cache)
            self._remember(tenant_id, version, from_cache)
            answers.update(from_cache)
            unknown = [a for a in unknown if a not in from_cache]
        if unknown:
            # Strongly consistent: the answer is stored under `version`, which was read so.
            listed = self._store.suppressed(tenant_id, unknown, consistent=True)
            self.stats.list_reads += len(unknown)
            read = {a: listed.get(a) for a in unknown}
            self._remember(tenant_id, version, read)
            self._to_cache(tenant_id, version, read)
            answers.update(read)
        return {a: entry for a, entry in answers.items() if entry is not None}

    # ------------------------------------------------------------------ the two levels

    def _remember(
        self, tenant_id: str, version: int, answers: dict[str, Suppressed | None]
    ) -> None:
        for address, entry in answers.items():
            self._local[(tenant_id, version, address)] = entry
        while len(self._local) > self._local_max:
            self._local.popitem(last=False)

    def _usable(self) -> bool:
        return self._cache is not None and self._clock() >= self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        self.stats.cache_errors += 1
        self._down_until = self._clock() + RETRY_AFTER
        log.warning("suppression cache: %s failed, reading DynamoDB (%s)", what, exc)

    def _from_cache(
        self, tenant_id: str, version: int, addresses: list[str]
    ) -> dict[str, Suppressed | None]:
        if not self._usable():
            return {}
        assert self._cache is not None
        found: dict[str, Suppressed | None] = {}
        try:
            for bucket, group in _by_bucket(tenant_id, addresses).items():
                got = self._cache.get_fields(_name(tenant_id, version, bucket), list(group))
                found.update((group[f], _decode(group[f], raw)) for f, raw in got.items())
        except (CacheUnavailable, ValueError, KeyError) as exc:
            self._failed("reading", exc)
            return {}
        return found

    def _to_cache(
        self, tenant_id: str, version: int, answers: dict[str, Suppressed | None]
    ) -> None:
        if not self._usable():
            return
        assert self._cache is not None
        try:
            for bucket, group in _by_bucket(tenant_id, list(answers)).items():
                items = {f: _encode(answers[a]) for f, a in group.items()}
                self._cache.set_fields(_name(tenant_id, version, bucket), items, ENTRY_TTL)
        except CacheUnavailable as exc:
            self._failed("writing", exc)


def _by_bucket(tenant_id: str, addresses: list[str]) -> dict[int, dict[str, str]]:
    """bucket -> {field: address}"""
    groups: dict[int, dict[str, str]] = {}
    for address in addresses:
        field = keys.address_hash(tenant_id, address)
        groups.setdefault(_bucket(field), {})[field] = address
    return groups


def _name(tenant_id: str, version: int, bucket: int) -> str:
    return f"suppression:{tenant_id}:{version}:{bucket}"
