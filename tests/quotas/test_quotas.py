"""Quotas (invariant 11) on the service: windows, the one counter per request, per-key and
per-address limits, the fallback while the store is down, and two instances sharing the real
local Momento server through the real SDK. The API's side is tests/quotas/test_quotas_api.py."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from chalicelib.core.errors import CacheUnavailable
from chalicelib.core.settings import Settings
from chalicelib.quotas.limiter import Quotas
from chalicelib.quotas.limits import (
    WINDOW_SECONDS,
    Limits,
    QuotaExceeded,
    anonymous_counter,
    key_counter,
    pack,
    parse_overrides,
    source,
    store_key,
    tenant_counter,
    unpack,
    window,
)
from chalicelib.quotas.momento import MomentoCounters, momento_counters_from_settings

from devstack.momento_local.server import MomentoLocalServer

LIMITS = Limits(
    requests_per_minute=10,
    key_requests_per_minute=0,
    sends_per_minute=20,
    bulk_batches=2,
    auth_per_ip_per_minute=3,
    unsubscribe_per_ip_per_minute=4,
)
START = 1_750_000_000.0


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCounters:
    """`CounterStore` in a dict: every call recorded; `down` makes every call fail."""

    def __init__(self) -> None:
        self.values: Counter[str] = Counter()
        self.calls: list[tuple[str, int, timedelta]] = []
        self.down = False

    def increment(self, key: str, amount: int, ttl: timedelta) -> int:
        self.calls.append((key, amount, ttl))
        if self.down:
            raise CacheUnavailable("Momento increment failed: TIMEOUT_ERROR (test)")
        self.values[key] += amount
        return self.values[key]


@dataclass
class FakeTenant:
    tenant_id: str
    quotas: dict[str, int] | None = None


@dataclass
class Member:
    tenant: FakeTenant
    key_name: str | None = None
    role: str = "sender"
    calls: list[str] = field(default_factory=list)


def quotas(store: Any = None, limits: Limits = LIMITS, **kw: Any) -> tuple[Quotas, Clock]:
    clock = Clock()
    return Quotas(limits, store, clock=clock, **kw), clock


def at_window_start(clock: Clock, counter: str) -> None:
    """Move the clock to the first second of the counter's next window."""
    clock.now = window(counter, clock.now).ends_at


def refused(call: Any) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------------- windows, layout


def test_a_window_is_60_seconds_with_the_counter_s_own_phase() -> None:
    a, b = tenant_counter("tenant-a"), tenant_counter("tenant-b")
    for counter in (a, b):
        win = window(counter, START)
        assert win.ends_at - WINDOW_SECONDS <= START < win.ends_at
        assert window(counter, win.ends_at - 0.001).index == win.index
        assert window(counter, win.ends_at).index == win.index + 1  # the next one starts there
        assert win.retry_after(win.ends_at - 12.5) == 13  # whole seconds, rounded up
        assert win.retry_after(win.ends_at - 0.01) == 1  # never 0
    phases = {window(tenant_counter(f"t{i}"), START).ends_at % 60 for i in range(50)}
    assert len(phases) > 20  # tenants' windows do not all end at the same second


def test_requests_and_sends_share_one_value_without_touching() -> None:
    assert unpack(pack(1, 0)) == (1, 0)
    assert unpack(pack(1, 50) + pack(1, 0) + pack(0, 1_000)) == (2, 1_050)
    assert unpack(pack(2**24 - 1, 2**38)) == (2**24 - 1, 2**38)
    assert pack(0, 10_000_000) < 2**63  # the largest sends limit fits Momento's int64


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # the same line: the same counter
        ("::ffff:198.51.100.9", "198.51.100.9"),
        ("not-an-address", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_a_source_address_is_bounded_to_an_address_or_an_ipv6_slash_64(
    raw: str | None, expected: str
) -> None:
    assert source(raw) == expected


def test_counters_of_tenants_keys_and_addresses_never_share_a_key() -> None:
    t = tenant_counter("abc")
    k = key_counter("abc", "deploy-bot")
    a = anonymous_counter("auth", "203.0.113.7")
    assert len({t, k, a}) == 3
    assert t.startswith("t:") and k.startswith("k:abc:") and a.startswith("a:auth:")
    assert "deploy-bot" not in k  # the key's name is hashed
    assert anonymous_counter("unsubscribe", "203.0.113.7") != a  # groups are apart
    assert store_key(t, window(t, START)).startswith("sesami:q:v1:t:abc:")


def test_overrides_are_checked() -> None:
    assert parse_overrides({"requests_per_minute": 5, "key_requests_per_minute": 0}) == {
        "requests_per_minute": 5,
        "key_requests_per_minute": 0,
    }
    for bad in (
        {"requests_per_minute": 0},
        {"requests_per_minute": "5"},
        {"requests_per_minute": True},
        {"sends_per_minute": 10**9},
        {"auth_per_ip_per_minute": 5},  # not a tenant's to have
        {"no_such_limit": 1},
    ):
        with pytest.raises(ValueError):
            parse_overrides(bad)


def test_the_defaults_come_from_the_settings() -> None:
    limits = Limits.from_settings(Settings(quota_requests_per_minute=7, quota_bulk_batches=3))
    assert (limits.requests_per_minute, limits.bulk_batches) == (7, 3)
    assert Limits.from_settings(Settings()).view() == {
        "requests_per_minute": 1_200,
        "key_requests_per_minute": 0,
        "sends_per_minute": 3_000,
        "bulk_batches": 2,
        "auth_per_ip_per_minute": 60,
        "unsubscribe_per_ip_per_minute": 300,
    }


# ---------------------------------------------------------------------------- requests


def test_one_increment_per_request_then_429_naming_the_limit_with_retry_after() -> None:
    store = FakeCounters()
    q, clock = quotas(store)
    member = Member(FakeTenant("t1"))
    counter = tenant_counter("t1")
    at_window_start(clock, counter)
    for _ in range(10):
        q.admit(member)
    assert len(store.calls) == 10  # one store call per request
    key, amount, ttl = store.calls[0]
    assert key == store_key(counter, window(counter, clock.now)) and amount == 1
    assert ttl == timedelta(seconds=60 + 5)  # the window's rest, and a little slack

    clock.now += 17.2
    error = refused(lambda: q.admit(member))
    assert error.status == 429 and error.retry_after == 43
    assert error.details == {
        "limit": "requests_per_minute",
        "scope": "tenant",
        "allowed": 10,
        "window_seconds": 60,
        "retry_after": 43,
        "degraded": False,
    }
    assert "requests_per_minute" in error.message
    # The 10th request reached the limit: the window is known spent, and the store is not asked
    # again this window (the refusal above came from memory too).
    for _ in range(50):
        refused(lambda: q.admit(member))
    assert len(store.calls) == 10
    assert q.memory_refusals == 51

    at_window_start(clock, counter)  # the next window
    q.admit(member)
    assert len(store.calls) == 11


def test_the_request_reaching_the_limit_marks_the_window_spent_without_another_call() -> None:
    store = FakeCounters()
    q, _ = quotas(store)
    member = Member(FakeTenant("t1"))
    for _ in range(10):
        q.admit(member)
    refused(lambda: q.admit(member))
    assert len(store.calls) == 10  # the 10th answered 10 = the limit: the 11th never asks


def test_a_tenant_at_its_limit_does_not_touch_another_tenant() -> None:
    store = FakeCounters()
    q, _ = quotas(store)
    busy, quiet = Member(FakeTenant("busy")), Member(FakeTenant("quiet"))
    for _ in range(10):
        q.admit(busy)
    refused(lambda: q.admit(busy))
    for _ in range(10):
        q.admit(quiet)  # its own ten, in full
    refused(lambda: q.admit(quiet))


def test_an_operator_override_applies_to_that_tenant_only() -> None:
    q, _ = quotas(FakeCounters())
    small = Member(FakeTenant("small", quotas={"requests_per_minute": 2}))
    other = Member(FakeTenant("other"))
    q.admit(small)
    q.admit(small)
    assert refused(lambda: q.admit(small)).details["allowed"] == 2  # type: ignore[index]
    for _ in range(10):
        q.admit(other)
    broken = Member(FakeTenant("broken", quotas={"requests_per_minute": "lots"}))  # type: ignore[dict-item]
    for _ in range(10):
        q.admit(broken)  # an unreadable override: the defaults
    refused(lambda: q.admit(broken))


# ---------------------------------------------------------------------------- sends


def test_a_send_counts_its_request_and_recipients_in_one_increment() -> None:
    store = FakeCounters()
    q, _ = quotas(store)
    member = Member(FakeTenant("t1"))
    charge = q.admit(member, sends_later=True)
    assert store.calls == []  # nothing yet
    charge.sends(3)
    charge.settle()  # already counted: nothing more
    assert [amount for _, amount, _ in store.calls] == [pack(1, 3)]
    not_sent = q.admit(member, sends_later=True)
    not_sent.settle()  # a 400 or a replay: the request alone, after the answer
    assert [amount for _, amount, _ in store.calls] == [pack(1, 3), pack(1, 0)]


def test_recipients_over_the_sends_limit_are_refused_whole() -> None:
    store = FakeCounters()
    q, _ = quotas(store)
    member = Member(FakeTenant("t1"))
    q.admit(member, sends_later=True).sends(15)
    error = refused(lambda: q.admit(member, sends_later=True).sends(10))  # 25 > 20
    assert error.details["limit"] == "sends_per_minute"  # type: ignore[index]
    assert "recipients" in error.message
    # The window's sends are spent (what was asked counts), requests are not.
    refused(lambda: q.admit(member, sends_later=True).sends(1))
    q.admit(member)  # a read is still served


def test_a_route_that_sends_is_refused_from_memory_once_requests_are_spent() -> None:
    store = FakeCounters()
    q, _ = quotas(store)
    member = Member(FakeTenant("t1"))
    for _ in range(10):
        q.admit(member)
    calls = len(store.calls)
    refused(lambda: q.admit(member, sends_later=True))  # before the body: from memory
    assert len(store.calls) == calls


def test_bulk_sends_are_reserved_as_far_as_the_window_goes() -> None:
    store = FakeCounters()
    q, clock = quotas(store)
    tenant = FakeTenant("t1")
    at_window_start(clock, tenant_counter("t1"))
    first = q.reserve_sends(tenant, 12)
    second = q.reserve_sends(tenant, 12)
    third = q.reserve_sends(tenant, 5)
    assert (first.granted, second.granted, third.granted) == (12, 8, 0)
    assert third.retry_after == 60
    assert len(store.calls) == 2  # the third was refused from memory
    refused(lambda: q.admit(Member(tenant), sends_later=True).sends(1))  # POST /mail too
    at_window_start(clock, tenant_counter("t1"))
    assert q.reserve_sends(tenant, 30).granted == 20


# ---------------------------------------------------------------------------- API keys


def test_a_key_bounded_by_its_tenant_costs_no_second_call() -> None:
    store = FakeCounters()
    q, _ = quotas(store)
    q.admit(Member(FakeTenant("t1"), key_name="deploy"))
    assert len(store.calls) == 1


def test_a_tighter_key_limit_has_its_own_counter_and_spares_the_others() -> None:
    store = FakeCounters()
    q, _ = quotas(store, replace(LIMITS, key_requests_per_minute=3))
    tenant = FakeTenant("t1")
    runaway, person = Member(tenant, key_name="cron"), Member(tenant)
    for _ in range(3):
        q.admit(runaway)
    assert len(store.calls) == 6  # tenant + key, each request of the key
    error = refused(lambda: q.admit(runaway))
    assert error.details["limit"] == "key_requests_per_minute"  # type: ignore[index]
    assert error.details["scope"] == "API key"  # type: ignore[index]
    for _ in range(5):
        q.admit(person)  # the team still works: 4 + 5 <= 10
    q.admit(Member(tenant, key_name="other-key"))


# ---------------------------------------------------------------------------- anonymous


def test_anonymous_routes_are_limited_per_address_and_group() -> None:
    store = FakeCounters()
    q, _ = quotas(store)
    for _ in range(3):
        q.admit_anonymous("auth", "203.0.113.7")
    error = refused(lambda: q.admit_anonymous("auth", "203.0.113.7"))
    assert error.details["limit"] == "auth_per_ip_per_minute"  # type: ignore[index]
    assert error.details["scope"] == "source address"  # type: ignore[index]
    q.admit_anonymous("auth", "203.0.113.8")  # another address
    q.admit_anonymous("unsubscribe", "203.0.113.7")  # another group
    for _ in range(10):
        q.admit(Member(FakeTenant("t1")))  # a tenant's budget is its own
    assert len(store.calls) == 3 + 1 + 1 + 10  # the refusal came from memory
    for suffix in ("1", "2", "3"):
        q.admit_anonymous("auth", f"2001:db8::{suffix}")
    refused(lambda: q.admit_anonymous("auth", "2001:db8::ffff"))  # the same /64


# ---------------------------------------------------------------------------- the store down


def test_the_store_down_counts_in_memory_at_this_instance_s_share_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeCounters()
    store.down = True
    q, clock = quotas(store, expected_instances=4)
    member = Member(FakeTenant("t1"))
    at_window_start(clock, tenant_counter("t1"))
    with caplog.at_level(logging.WARNING, logger="sesami.quotas"):
        for _ in range(3):  # ceil(10 / 4): never failed because Momento is down
            q.admit(member)
    error = refused(lambda: q.admit(member))
    assert error.details["allowed"] == 3 and error.details["degraded"] is True  # type: ignore[index]
    assert "unavailable" in error.message
    assert len(store.calls) == 1  # one attempt, then the store is left alone for 30 s
    assert q.store_failures == 1 and q.fallback_counts == 3
    assert any("quota store unavailable" in r.message for r in caplog.records)

    store.down = False
    clock.now += 30  # the pause is over (and this is still the same window)
    for _ in range(10):
        q.admit(Member(FakeTenant("t2")))
    assert len(store.calls) == 11  # back to the shared store


def test_with_no_store_configured_the_limits_apply_whole_in_memory() -> None:
    q, _ = quotas(None)
    member = Member(FakeTenant("t1"))
    for _ in range(10):
        q.admit(member)
    error = refused(lambda: q.admit(member))
    assert error.details["allowed"] == 10 and error.details["degraded"] is False  # type: ignore[index]


def test_memory_is_bounded_under_a_flood_of_distinct_callers() -> None:
    store = FakeCounters()
    store.down = True
    q, _ = quotas(store, max_local=100)
    for i in range(500):
        with contextlib.suppress(QuotaExceeded):
            q.admit_anonymous("auth", f"198.51.{i // 256}.{i % 256}")
    assert len(q._counts) <= 101 and len(q._spent) <= 100
    # Past the bound, new callers share one count: they are limited together, not let through.
    refused(lambda: q.admit_anonymous("auth", "192.0.2.200"))


# ---------------------------------------------------------------------------- real Momento


CACHE = "sesami-quota-test"


@pytest.fixture
def server() -> Iterator[MomentoLocalServer]:
    with MomentoLocalServer() as srv:
        srv.store.create_cache(CACHE)
        yield srv


def momento(server: MomentoLocalServer) -> MomentoCounters:
    counters = momento_counters_from_settings(None, server.endpoint, CACHE)
    assert counters is not None
    return counters


def test_the_local_server_s_missing_cache_is_created_on_first_use() -> None:
    with MomentoLocalServer() as srv:
        counters = momento(srv)
        assert counters.increment("sesami:q:v1:n", 2, timedelta(seconds=60)) == 2
        assert srv.calls == {"Increment": 2, "CreateCache": 1}  # NOT_FOUND, created, again
        assert srv.store.get(CACHE, b"sesami:q:v1:n") == b"2"


def test_two_instances_sharing_momento_enforce_one_limit(server: MomentoLocalServer) -> None:
    clock = Clock()
    one = Quotas(LIMITS, momento(server), clock=clock)
    two = Quotas(LIMITS, momento(server), clock=clock)  # its own client, its own memory
    member = Member(FakeTenant("shared"))
    at_window_start(clock, tenant_counter("shared"))
    for i in range(10):
        (one if i % 2 else two).admit(member)
    refused(lambda: one.admit(member))  # it counted the 10th: it knows, from memory
    refused(lambda: two.admit(member))  # it learns it from the store, once
    refused(lambda: two.admit(member))
    assert server.calls["Increment"] == 11
    key = store_key(tenant_counter("shared"), window(tenant_counter("shared"), clock.now))
    assert server.store.get(CACHE, key.encode()) == b"11"


def test_momento_stopped_then_back(server: MomentoLocalServer) -> None:
    clock = Clock()
    q = Quotas(LIMITS, momento(server), clock=clock, expected_instances=2)
    member = Member(FakeTenant("t1"))
    at_window_start(clock, tenant_counter("t1"))
    q.admit(member)
    server.stop(0)
    for _ in range(5):  # ceil(10 / 2), counted here
        q.admit(member)
    assert refused(lambda: q.admit(member)).details["degraded"] is True  # type: ignore[index]
    assert q.store_failures == 1 and server.calls["Increment"] == 1
    server.start()
    # gRPC reconnects with a backoff of its own: once per pause, an increment tries the store,
    # until one is answered (bounded: at most 50 pauses).
    for attempt in range(50):
        clock.now += 31
        q.admit(Member(FakeTenant(f"t-{attempt}")))
        if server.calls["Increment"] > 1:
            break
        time.sleep(0.2)
    assert server.calls["Increment"] == 2
    assert q.store_calls - q.store_failures == 2  # answered by the store again
    assert q.store_failures == 1 + attempt  # one try per pause while it was reconnecting


def test_a_value_that_is_not_a_counter_is_the_store_failing(server: MomentoLocalServer) -> None:
    counters = momento(server)
    counters.increment("sesami:q:v1:x", 1, timedelta(seconds=60))
    server.store.set("sesami-quota-test", b"sesami:q:v1:x", b"garbage", 60_000)
    with pytest.raises(CacheUnavailable, match="FAILED_PRECONDITION"):
        counters.increment("sesami:q:v1:x", 1, timedelta(seconds=60))
