"""Credential figures, on simulated time, with the real Momento SDK and the local Momento server:

- sts_calls_per_tenant_hour: 10 tenants each send every 10 simulated seconds for 3 simulated
  hours, spread round-robin over 3 "Lambda instances" (TenantCredentials, each with its own
  Momento client) that are recycled every 45 minutes, staggered, to model cold starts. STS is
  the tests' FakeSts (tests/fakes.py), which hands out 1-hour credentials relative to the
  simulated clock, and the local server's TTLs run on the same clock. The figure is the
  steady-state refresh rate: per tenant, (AssumeRole calls - 1) / hours between its first and
  last call, averaged (60 / 55 = 1.09 is the floor with a 5-minute margin on 1-hour sessions;
  target <= 1.1). The raw ratio over the whole run, which also counts each tenant's unavoidable
  first call, is reported beside it.
- momento_calls_per_warm_send: on a warm instance, Momento calls per send, from the server's
  own call counters (target 0).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from chalicelib.tenant_aws.credentials import TenantCredentials
from chalicelib.tenant_aws.momento import MomentoCredentialCache, momento_cache_from_settings

from devstack.momento_local.server import CacheStore, MomentoLocalServer
from tests.fakes import FakeClock, FakeSts

TENANTS = 10
HOURS = 3
SEND_EVERY = timedelta(seconds=10)
INSTANCES = 3
RECYCLE_EVERY = timedelta(minutes=45)
WARM_SENDS_PER_TENANT = 100
CACHE = "sesami-credentials-bench"
KEY = bytes(range(32))
ROLE = "arn:aws:iam::{account}:role/sesami/SESamiAccess"
START = datetime(2025, 3, 1, tzinfo=UTC)


class _Instance:
    """One Lambda instance: its own Momento client and its own in-process credentials."""

    def __init__(self, endpoint: str, sts: FakeSts, clock: FakeClock, born: datetime) -> None:
        cache = momento_cache_from_settings(None, endpoint, CACHE, timedelta(seconds=1))
        assert cache is not None
        self.cache: MomentoCredentialCache = cache
        self.creds = TenantCredentials(
            lambda: sts, second_level=cache, encryption_key=KEY, clock=clock
        )
        self.recycle_at = born + RECYCLE_EVERY


def _tenant(i: int) -> tuple[str, str, str]:
    account = f"{100000000000 + i:012d}"
    return f"tenant-{i:02d}", ROLE.format(account=account), f"external-id-{i:02d}"


def run() -> dict[str, object]:
    clock = FakeClock(START)
    sts = FakeSts(clock)
    tenants = [_tenant(i) for i in range(TENANTS)]
    retired: list[TenantCredentials] = []
    with MomentoLocalServer() as server:
        server.store = CacheStore(clock=lambda: clock().timestamp())  # TTLs on simulated time
        instances = [_Instance(server.endpoint, sts, clock, START) for _ in range(INSTANCES)]
        for i, instance in enumerate(instances):  # stagger the cold starts
            instance.recycle_at += RECYCLE_EVERY * i / INSTANCES
        cold_starts = sends = 0
        steps = int(timedelta(hours=HOURS) / SEND_EVERY)
        try:
            for step in range(steps):
                for j, (tenant_id, role_arn, external_id) in enumerate(tenants):
                    clock.now = START + step * SEND_EVERY + j * SEND_EVERY / TENANTS
                    slot = (step + j) % INSTANCES
                    if clock.now >= instances[slot].recycle_at:
                        old = instances[slot]
                        old.cache.close()
                        retired.append(old.creds)
                        instances[slot] = _Instance(server.endpoint, sts, clock, clock.now)
                        cold_starts += 1
                    instances[slot].creds.get(tenant_id, role_arn, external_id)
                    sends += 1
            run_calls = dict(server.calls)

            warm = instances[0]
            for tenant in tenants:  # make sure every tenant is in this instance's memory
                warm.creds.get(*tenant)
            server.reset_calls()
            for _ in range(WARM_SENDS_PER_TENANT):
                clock.now += SEND_EVERY
                for tenant in tenants:
                    warm.creds.get(*tenant)
            warm_calls = sum(server.calls.values())
        finally:
            for instance in instances:
                instance.cache.close()

    providers = retired + [i.creds for i in instances]
    by_session = sts.calls_by_session()
    per_tenant = [by_session.get(f"sesami-{t}", []) for t, _, _ in tenants]
    steady = [
        (len(times) - 1) / ((times[-1] - times[0]) / timedelta(hours=1))
        for times in per_tenant
        if len(times) > 1
    ]
    gaps = [b - a for times in per_tenant for a, b in pairwise(times)]
    sts_total = sum(len(times) for times in per_tenant)
    return {
        "sts_calls_per_tenant_hour": round(sum(steady) / len(steady), 3) if steady else 0.0,
        "sts_calls_per_tenant_hour_with_cold_fill": round(sts_total / (TENANTS * HOURS), 3),
        "sts_min_minutes_between_calls_per_tenant": (
            round(min(gaps) / timedelta(minutes=1), 2) if gaps else None
        ),
        "sts_calls_total": sts_total,
        "credential_sends": sends,
        "credential_cold_starts": cold_starts,
        "credential_provider_counters": {
            "sts_calls": sum(p.sts_calls for p in providers),
            "cache_gets": sum(p.cache_gets for p in providers),
            "cache_sets": sum(p.cache_sets for p in providers),
        },
        "momento_calls_during_run": run_calls,
        "momento_calls_per_warm_send": warm_calls / (WARM_SENDS_PER_TENANT * TENANTS),
    }
