"""The limits, the windows they are counted in, and the layout of the counters.

Limits (defaults in core/settings.py, `SESAMI_QUOTA_*`; an operator sets a tenant's own with
`python -m ops.quotas set`, kept in `TenantModel.quotas`):

    requests_per_minute       every authenticated request of the tenant, people and keys alike
    key_requests_per_minute   each API key's own requests; 0 (the default): the tenant's limit
                              alone bounds a key, and a key's request costs no counter of its own
    sends_per_minute          recipients handed to SES: POST /mail's to + cc + bcc, and every
                              bulk recipient (reserved by the bulk worker before it sends)
    bulk_batches              bulk batches queued or sending at once (sending/slots.py)
    auth_per_ip_per_minute, unsubscribe_per_ip_per_minute
                              the anonymous routes, per source address (not per tenant)

Windows. Every counter is a fixed window of 60 seconds: one key per window, so the count is one
atomic increment and never needs resetting. Each counter has its own phase, a stable hash of
its key picks the second its windows start at, so tenants refused at once are not all told to
come back at the same second. A fixed window lets a caller spend a limit at the end of one
window and again at the start of the next (at most twice the limit within 60 s, never more
within any window); a sliding window would need the previous window's count too, a second
store call on every request. `Retry-After` is the seconds to the window's end.

One counter, two limits. The tenant's counter holds its requests in the low 24 bits and its
sends above them (`pack`), so POST /mail charges its request and its recipients in the same
increment. 24 bits hold 16.7 M requests per window, far above any limit (at most 1 M) and
above what API Gateway's stage throttling lets through; refused callers are refused from
memory once an instance has seen the window spent, so floods do not grow the count either.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from chalicelib.core.errors import TooManyRequests
from chalicelib.core.settings import Settings

WINDOW_SECONDS = 60
REQUEST_BITS = 24
REQUEST_MASK = (1 << REQUEST_BITS) - 1
KEY_PREFIX = "sesami:q:v1:"
# What an operator may set per tenant, and the largest value each may take.
TENANT_LIMITS: dict[str, int] = {
    "requests_per_minute": 1_000_000,
    "key_requests_per_minute": 1_000_000,
    "sends_per_minute": 10_000_000,
    "bulk_batches": 100,
}
# The anonymous route groups (core/api.py `Api(per_ip=...)`) and their limits' names.
ANONYMOUS_GROUPS = {
    "auth": "auth_per_ip_per_minute",
    "unsubscribe": "unsubscribe_per_ip_per_minute",
}


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    key_requests_per_minute: int  # 0: bounded by requests_per_minute only
    sends_per_minute: int
    bulk_batches: int
    auth_per_ip_per_minute: int
    unsubscribe_per_ip_per_minute: int

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(
            requests_per_minute=s.quota_requests_per_minute,
            key_requests_per_minute=s.quota_key_requests_per_minute,
            sends_per_minute=s.quota_sends_per_minute,
            bulk_batches=s.quota_bulk_batches,
            auth_per_ip_per_minute=s.quota_auth_per_ip_per_minute,
            unsubscribe_per_ip_per_minute=s.quota_unsubscribe_per_ip_per_minute,
        )

    def with_overrides(self, overrides: Mapping[str, int]) -> Limits:
        return replace(self, **{k: v for k, v in overrides.items() if k in TENANT_LIMITS})

    @property
    def key_limit(self) -> int | None:
        """The per-key limit when it is tighter than the tenant's, else None (no key counter)."""
        key = self.key_requests_per_minute
        return key if 0 < key < self.requests_per_minute else None

    def view(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_overrides(raw: Mapping[str, Any]) -> dict[str, int]:
    """Checked per-tenant limits: known names, whole numbers within their bounds (ValueError)."""
    out: dict[str, int] = {}
    for name, value in raw.items():
        if name not in TENANT_LIMITS:
            raise ValueError(f"unknown limit {name!r}: one of {', '.join(TENANT_LIMITS)}")
        floor = 0 if name == "key_requests_per_minute" else 1
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number")
        if not floor <= value <= TENANT_LIMITS[name]:
            raise ValueError(f"{name} must be between {floor} and {TENANT_LIMITS[name]:,}")
        out[name] = value
    return out


def stored_overrides(raw: object) -> dict[str, int]:
    """A tenant's stored overrides, or {} when there are none or they do not parse (ops.quotas
    checks them before writing, so that is a stored value someone edited by hand)."""
    if not isinstance(raw, Mapping):
        return {}
    try:
        return parse_overrides(raw)
    except ValueError:
        return {}


@dataclass(frozen=True)
class Window:
    index: int
    ends_at: float  # epoch seconds

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.ends_at - now))


def window(counter: str, now: float) -> Window:
    """The fixed 60-second window `now` falls in, for this counter's phase."""
    phase = zlib.crc32(counter.encode()) % WINDOW_SECONDS
    index = math.floor((now - phase) / WINDOW_SECONDS)
    return Window(index, float((index + 1) * WINDOW_SECONDS + phase))


def pack(requests: int, sends: int) -> int:
    return requests + (sends << REQUEST_BITS)


def unpack(value: int) -> tuple[int, int]:
    """(requests, sends) of a tenant counter's value."""
    return value & REQUEST_MASK, value >> REQUEST_BITS


def tenant_counter(tenant_id: str) -> str:
    return f"t:{tenant_id}"


def key_counter(tenant_id: str, key_name: str) -> str:
    """An API key's counter; the name is hashed (fixed length, nothing of it in the store)."""
    return f"k:{tenant_id}:{hashlib.sha256(key_name.encode()).hexdigest()[:32]}"


def anonymous_counter(group: str, source_ip: str | None) -> str:
    """A source address's counter for an anonymous route group. Its own key space (`a:`):
    nothing a tenant does counts here, and nothing counted here is a tenant's."""
    return f"a:{group}:{source(source_ip)}"


def source(raw: str | None) -> str:
    """The bounded identity of a source address: an IPv4 address, an IPv6 /64 (one subscriber
    line gets a whole /64), or `unknown` (API Gateway always sets sourceIp; it is never read
    from a header the client sends)."""
    try:
        address = ipaddress.ip_address((raw or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def store_key(counter: str, win: Window) -> str:
    return f"{KEY_PREFIX}{counter}:{win.index}"


_WHAT = {
    "requests_per_minute": "requests",
    "key_requests_per_minute": "requests",
    "sends_per_minute": "recipients",
    "auth_per_ip_per_minute": "requests",
    "unsubscribe_per_ip_per_minute": "requests",
}


class QuotaExceeded(TooManyRequests):
    """429: over a limit. Names the limit, whose it is, the allowance applied and when to retry;
    `degraded` when the shared store was down and this instance enforced its share alone."""

    def __init__(
        self, limit: str, scope: str, allowed: int, retry_after: int, *, degraded: bool = False
    ) -> None:
        what = _WHAT.get(limit, "requests")
        share = " (this server's share while the quota store is unavailable)" if degraded else ""
        super().__init__(
            f"over the {scope}'s limit of {allowed:,} {what} per minute{share} ({limit}); "
            f"retry in {retry_after} s",
            details={
                "limit": limit,
                "scope": scope,
                "allowed": allowed,
                "window_seconds": WINDOW_SECONDS,
                "retry_after": retry_after,
                "degraded": degraded,
            },
            retry_after=retry_after,
        )
