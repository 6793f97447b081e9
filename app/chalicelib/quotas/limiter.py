"""The quota service: one increment of one shared counter per request.

    admit(membership)             every authenticated request (core/api.py's view), after the
                                  permission check: the tenant's counter, +1 request
    admit(..., sends_later=True)  a route that sends (POST /mail): nothing is counted yet; the
                                  service calls `Admission.sends(n)` just before SES, which
                                  counts the request and its n recipients in ONE increment; if
                                  the route never gets there (a 400, a replay), the view counts
                                  the request afterwards (`settle`), still one increment
    admit_anonymous(group, ip)    the public /auth/* and /unsubscribe routes, per source address
    reserve_sends(tenant, n)      the bulk worker, before each slice: as many of n as the window
                                  has left (one increment per slice, not per recipient)

An API key with a limit tighter than its tenant's (`key_requests_per_minute`) has a counter of
its own, a second increment on that key's requests only: Momento has no atomic operation over
two keys, and a tenant's total and a key's share are two numbers. By default a key is bounded
by its tenant's limit and costs nothing more.

Refused from memory. Once an instance has seen a counter spent for the current window (the count
reached the limit), it refuses that counter's callers until the window ends without asking the
store: a flood past the limit costs at most one store call per instance per window.

When the store fails (Momento down, slow or refusing), nothing fails because of it, and nothing
is let through unlimited: the instance logs a warning and a `QuotaStoreUnavailable` metric,
leaves the store alone for `pause` (30 s, like the credential cache), and meanwhile counts in
its own memory at limit / `expected_instances` of every limit (at least 1); the 429s it answers
then say `degraded: true`. When the store answers again, counting goes back to it (the counts
made in memory are not carried over: for at most one window, a caller may get up to one
share more). With no store configured at all (a developer's machine), the memory is the store
and the limits apply whole.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from chalicelib.core import logs
from chalicelib.quotas.limits import (
    ANONYMOUS_GROUPS,
    Limits,
    QuotaExceeded,
    Window,
    anonymous_counter,
    key_counter,
    pack,
    store_key,
    stored_overrides,
    tenant_counter,
    unpack,
    window,
)

log = logging.getLogger("sesami.quotas")

# A window's key outlives the window by this much (instances' clocks differ a little).
TTL_SLACK_SECONDS = 5.0
STORE_PAUSE_SECONDS = 30.0
# Entries of this instance's memory (fallback counts, windows known spent), at most.
MAX_LOCAL_ENTRIES = 50_000
_OVERFLOW = "~overflow"


class CounterStore(Protocol):
    """The shared counters (quotas/momento.py). `increment` adds `amount` to the integer at
    `key` (a missing key counts as 0), keeps it for `ttl`, and returns the new value; it raises
    on any failure (`CacheUnavailable`)."""

    def increment(self, key: str, amount: int, ttl: timedelta) -> int: ...


class Principal(Protocol):
    """Who is calling (chalicelib.tenants.membership.Membership)."""

    @property
    def tenant(self) -> Any: ...

    @property
    def key_name(self) -> str | None: ...


@dataclass(frozen=True)
class SendGrant:
    granted: int  # recipients the caller may send now
    retry_after: int  # seconds to the window's end


@dataclass(frozen=True)
class _Check:
    field: str  # "requests" | "sends"
    limit: str  # the limit's name
    scope: str  # whose limit: tenant, API key, source address
    allowed: int  # the whole limit (shared by every instance)


@dataclass(frozen=True)
class _Refusal:
    """What a counter known spent for the window refuses with."""

    limit: str
    scope: str
    allowed: int
    degraded: bool

    def error(self, retry_after: int) -> QuotaExceeded:
        return QuotaExceeded(
            self.limit, self.scope, self.allowed, retry_after, degraded=self.degraded
        )


@dataclass(frozen=True)
class _Seen:
    requests: int
    sends: int
    window: Window
    divisor: int  # 1 when counted in the shared store (or when there is none)
    degraded: bool  # counted in memory because the store failed


def share(limit: int, divisor: int) -> int:
    return max(1, math.ceil(limit / divisor))


class Quotas:
    """One per instance (core/wiring.py). `clock` is epoch seconds; `store_calls`,
    `store_failures`, `fallback_counts` and `memory_refusals` count what it did."""

    def __init__(
        self,
        defaults: Limits,
        store: CounterStore | None,
        *,
        expected_instances: int = 4,
        clock: Callable[[], float] = time.time,
        pause: float = STORE_PAUSE_SECONDS,
        max_local: int = MAX_LOCAL_ENTRIES,
    ) -> None:
        self._defaults, self._store = defaults, store
        self._instances = max(1, expected_instances)
        self.clock = clock
        self._pause, self._max_local = pause, max_local
        self._paused_until: float | None = None
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], tuple[int, float]] = {}
        self._spent: dict[tuple[str, int], tuple[dict[str, _Refusal], float]] = {}
        self.store_calls = self.store_failures = self.fallback_counts = self.memory_refusals = 0

    def limits(self, tenant: Any) -> Limits:
        overrides = stored_overrides(getattr(tenant, "quotas", None))
        return self._defaults.with_overrides(overrides) if overrides else self._defaults

    # ------------------------------------------------------------------ callers

    def admit(self, principal: Principal, *, sends_later: bool = False) -> Admission:
        """Count one request of `principal` (429 `QuotaExceeded` over a limit); with
        `sends_later`, count nothing yet (see the module docstring) but refuse at once when
        this instance already knows the tenant's requests are spent for the window."""
        admission = Admission(self, principal, self.limits(principal.tenant))
        if sends_later:
            counter = tenant_counter(principal.tenant.tenant_id)
            self._refuse_from_memory(counter, window(counter, self.clock()), ("requests",))
        else:
            admission.charge(requests=1, sends=0)
        return admission

    def admit_anonymous(self, group: str, source_ip: str | None) -> None:
        """Count one request of an anonymous route group from `source_ip` (429 over it)."""
        limit = ANONYMOUS_GROUPS[group]
        check = _Check("requests", limit, "source address", getattr(self._defaults, limit))
        self._apply(anonymous_counter(group, source_ip), 1, 0, (check,))

    def reserve_sends(self, tenant: Any, wanted: int) -> SendGrant:
        """Take up to `wanted` sends from the tenant's window (the bulk worker, per slice).
        What is asked counts whole, granted or not (so the window is never over-committed)."""
        counter = tenant_counter(tenant.tenant_id)
        now = self.clock()
        win = window(counter, now)
        if wanted <= 0 or self._known_spent(counter, win, ("sends",)):
            return SendGrant(0, win.retry_after(now))
        seen = self._count(counter, win, now, pack(0, wanted))
        allowed = share(self.limits(tenant).sends_per_minute, seen.divisor)
        if seen.sends >= allowed:
            check = _sends_check(self.limits(tenant).sends_per_minute)
            self._mark(counter, win, {"sends": _refusal(check, allowed, seen)})
        granted = max(0, min(wanted, allowed - (seen.sends - wanted)))
        return SendGrant(granted, win.retry_after(now))

    # ------------------------------------------------------------------ counting

    def _charge(self, principal: Principal, limits: Limits, requests: int, sends: int) -> None:
        tid = principal.tenant.tenant_id
        checks = (
            _Check("requests", "requests_per_minute", "tenant", limits.requests_per_minute),
            _sends_check(limits.sends_per_minute),
        )
        self._apply(tenant_counter(tid), requests, sends, checks)
        key_name, key_limit = principal.key_name, limits.key_limit
        if requests and key_name and key_limit:
            check = _Check("requests", "key_requests_per_minute", "API key", key_limit)
            self._apply(key_counter(tid, key_name), 1, 0, (check,))

    def _apply(self, counter: str, requests: int, sends: int, checks: Iterable[_Check]) -> None:
        asked = {"requests": requests, "sends": sends}
        wanted = [c for c in checks if asked[c.field] > 0]
        now = self.clock()
        win = window(counter, now)
        self._refuse_from_memory(counter, win, [c.field for c in wanted])
        seen = self._count(counter, win, now, pack(requests, sends))
        spent: dict[str, _Refusal] = {}
        refused: _Refusal | None = None
        for check in checks:
            value = seen.requests if check.field == "requests" else seen.sends
            allowed = share(check.allowed, seen.divisor)
            if value >= allowed:  # the next caller is over: refuse it from memory
                spent[check.field] = _refusal(check, allowed, seen)
            if asked[check.field] and value > allowed and refused is None:
                refused = spent[check.field]
        self._mark(counter, win, spent)
        if refused is not None:
            raise refused.error(win.retry_after(now))

    def _count(self, counter: str, win: Window, now: float, amount: int) -> _Seen:
        store = self._store
        if store is not None and not self._paused(now):
            self.store_calls += 1
            ttl = timedelta(seconds=win.ends_at - now + TTL_SLACK_SECONDS)
            try:
                value = store.increment(store_key(counter, win), amount, ttl)
            except Exception as exc:  # CacheUnavailable, or an adapter bug: still not fatal
                self._store_failed(now, exc)
            else:
                if self._paused_until is not None:
                    log.warning("quota store answering again: shared limits apply")
                    self._paused_until = None
                requests, sends = unpack(value)
                return _Seen(requests, sends, win, 1, degraded=False)
        value = self._add_in_memory(counter, win, now, amount)
        degraded = store is not None
        if degraded:
            self.fallback_counts += 1
        requests, sends = unpack(value)
        return _Seen(requests, sends, win, self._instances if degraded else 1, degraded)

    # ------------------------------------------------------------------ the store's health

    def _paused(self, now: float) -> bool:
        return self._paused_until is not None and now < self._paused_until

    def _store_failed(self, now: float, exc: Exception) -> None:
        self.store_failures += 1
        self._paused_until = now + self._pause
        log.warning(
            "quota store unavailable (%s: %s): for %ds this instance counts in its own memory, "
            "at 1/%d of every limit",
            type(exc).__name__,
            exc,
            int(self._pause),
            self._instances,
        )
        logs.metric("QuotaStoreUnavailable", 1, {"Component": "quotas"})

    # ------------------------------------------------------------------ this instance's memory

    def _refuse_from_memory(self, counter: str, win: Window, wanted: Iterable[str]) -> None:
        with self._lock:
            entry = self._spent.get((counter, win.index))
        if entry is None:
            return
        for field in wanted:
            known = entry[0].get(field)
            if known is not None:
                self.memory_refusals += 1
                raise known.error(win.retry_after(self.clock()))

    def _known_spent(self, counter: str, win: Window, wanted: Iterable[str]) -> bool:
        with self._lock:
            entry = self._spent.get((counter, win.index))
        return entry is not None and any(f in entry[0] for f in wanted)

    def _mark(self, counter: str, win: Window, spent: dict[str, _Refusal]) -> None:
        if not spent:
            return
        with self._lock:
            key = (counter, win.index)
            if key not in self._spent and not self._room(self._spent, self.clock()):
                return  # full of live windows: the store is asked instead
            known = self._spent.get(key, ({}, win.ends_at))[0]
            self._spent[key] = ({**known, **spent}, win.ends_at)

    def _add_in_memory(self, counter: str, win: Window, now: float, amount: int) -> int:
        with self._lock:
            key = (counter, win.index)
            if key not in self._counts and not self._room(self._counts, now):
                win = window(_OVERFLOW, now)  # a flood of distinct callers shares one count
                key = (_OVERFLOW, win.index)
            value = self._counts.get(key, (0, win.ends_at))[0] + amount
            self._counts[key] = (value, win.ends_at)
            return value

    def _room(self, table: dict[tuple[str, int], Any], now: float) -> bool:
        """Whether `table` may take one more entry, after forgetting ended windows."""
        if len(table) < self._max_local:
            return True
        for key in [k for k, v in table.items() if v[1] <= now]:
            del table[key]
        return len(table) < self._max_local


def _sends_check(limit: int) -> _Check:
    return _Check("sends", "sends_per_minute", "tenant", limit)


def _refusal(check: _Check, allowed: int, seen: _Seen) -> _Refusal:
    return _Refusal(check.limit, check.scope, allowed, seen.degraded)


class Admission:
    """One request's charge. Counted once: by `admit` for most routes; for a route that sends,
    by `sends(n)` (the request and its recipients together) or, if the route never sent, by
    `settle()` after the answer."""

    def __init__(self, quotas: Quotas, principal: Principal, limits: Limits) -> None:
        self._quotas, self._principal, self.limits = quotas, principal, limits
        self._charged = False

    def charge(self, *, requests: int, sends: int) -> None:
        self._charged = True
        self._quotas._charge(self._principal, self.limits, requests, sends)

    def sends(self, count: int) -> None:
        """Count `count` recipients about to be sent (429 when over; nothing must be sent)."""
        self.charge(requests=0 if self._charged else 1, sends=count)

    def settle(self) -> None:
        """After the answer: count the request if nothing did. Never raises: the answer is
        given; a spent window is remembered and refuses the next request."""
        if self._charged:
            return
        with contextlib.suppress(QuotaExceeded):
            self.charge(requests=1, sends=0)
