"""Tenant credentials: in-process, then Momento (the real SDK against the local server), then STS.

Emulator gaps, written down where they matter: moto's STS ignores ExternalId and trust policies
(any role is assumable with any external ID, or none), so the parameters SESami sends and the
AccessDenied path are pinned with botocore's Stubber instead.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from chalicelib.core.errors import (
    CacheUnavailable,
    ConfigurationError,
    RoleAccessDenied,
    ServiceUnavailable,
)
from chalicelib.tenant_aws.credentials import (
    AwsCredentials,
    TenantCredentials,
    cache_key,
    make_sts_client,
    session_name,
)
from chalicelib.tenant_aws.momento import MomentoCredentialCache, momento_cache_from_settings
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from devstack.momento_local.server import CacheStore, MomentoLocalServer
from tests.conftest import ROOT
from tests.fakes import T0, FakeClock, FakeCredentialCache, FakeSts

ROLE = "arn:aws:iam::111122223333:role/sesami/SESamiAccess"
EXTERNAL_ID = "sesami-7f3c9a1e0b2d4c6e8f1a3b5c7d9e0f21"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
CACHE = "sesami-credentials-test"
LOGGER = "sesami.credentials"


def provider(
    sts: Any,
    cache: Any = None,
    clock: FakeClock | None = None,
    key: bytes = KEY,
) -> TenantCredentials:
    return TenantCredentials(
        lambda: sts, second_level=cache, encryption_key=key, clock=clock or FakeClock()
    )


def stubbed_sts() -> tuple[Any, Stubber]:
    client = boto3.client("sts", region_name="us-east-1")
    return client, Stubber(client)


def sts_reply(expires: datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": "ASIASTUBBED000000001",
            "SecretAccessKey": "stubbed-secret",
            "SessionToken": "stubbed-token",
            "Expiration": expires,
        }
    }


# Module shape.


def test_importing_the_module_loads_neither_grpc_nor_momento() -> None:
    code = (
        "import sys, chalicelib.tenant_aws.credentials\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('grpc', 'momento', 'momento_wire_types'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT / "app")},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == ""


def test_credentials_repr_hides_secrets_and_boto3_kwargs_carry_them() -> None:
    creds = AwsCredentials("ASIAXYZ", "the-secret", "the-token", T0)
    assert "the-secret" not in repr(creds)
    assert "the-token" not in repr(creds)
    assert creds.boto3_kwargs() == {
        "aws_access_key_id": "ASIAXYZ",
        "aws_secret_access_key": "the-secret",
        "aws_session_token": "the-token",
    }
    with pytest.raises(ValueError, match="timezone"):
        AwsCredentials("a", "b", "c", datetime(2025, 1, 1))


def test_encryption_key_must_be_32_bytes() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        provider(FakeSts(FakeClock()), key=b"short")


@given(st.text(), st.text(), st.text(), st.text())
def test_cache_keys_of_distinct_tenant_role_pairs_never_collide(
    tenant_a: str, role_a: str, tenant_b: str, role_b: str
) -> None:
    key_a, key_b = cache_key(tenant_a, role_a), cache_key(tenant_b, role_b)
    assert (key_a == key_b) == ((tenant_a, role_a) == (tenant_b, role_b))
    assert key_a.startswith(f"sesami:creds:v1:{tenant_a}:")


def test_session_name_fits_sts_limits() -> None:
    assert session_name("0f1e2d3c") == "sesami-0f1e2d3c"
    name = session_name("tenant with spaces/and~odd*chars" + "x" * 100)
    assert len(name) == 64
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", name, re.ASCII)


# STS.


def test_moto_assume_role_happy_path_gives_working_credentials() -> None:
    # moto ignores ExternalId and the trust policy: this pins the plumbing, not the security.
    with mock_aws():
        creds = TenantCredentials(
            lambda: make_sts_client("us-east-1"), second_level=None, encryption_key=KEY
        ).get("tenant-1", ROLE, EXTERNAL_ID)
        assert creds.access_key_id.startswith("ASIA")
        remaining = creds.expiration - datetime.now(UTC)
        assert timedelta(minutes=55) < remaining <= timedelta(hours=1)
        who = boto3.client("sts", region_name="us-east-1", **creds.boto3_kwargs())
        arn = who.get_caller_identity()["Arn"]
    assert arn.endswith("/sesami-tenant-1")
    assert ":111122223333:assumed-role/SESamiAccess/" in arn


def test_assume_role_parameters_are_exact() -> None:
    client, stub = stubbed_sts()
    expected = {
        "RoleArn": ROLE,
        "RoleSessionName": "sesami-tenant-1",
        "ExternalId": EXTERNAL_ID,
        "DurationSeconds": 3600,
    }
    stub.add_response("assume_role", sts_reply(T0 + timedelta(hours=1)), expected)
    with stub:
        creds = provider(client).get("tenant-1", ROLE, EXTERNAL_ID)
    stub.assert_no_pending_responses()
    assert creds.secret_access_key == "stubbed-secret"
    assert creds.expiration == T0 + timedelta(hours=1)


def test_external_id_is_passed_through_exactly() -> None:
    odd = "Ab+=,.@:/-_09" * 4
    client, stub = stubbed_sts()
    stub.add_response(
        "assume_role",
        sts_reply(T0 + timedelta(hours=1)),
        {
            "RoleArn": ROLE,
            "RoleSessionName": "sesami-t",
            "ExternalId": odd,
            "DurationSeconds": 3600,
        },
    )
    with stub:
        provider(client).get("t", ROLE, odd)
    stub.assert_no_pending_responses()


def test_access_denied_raises_role_access_denied_naming_the_role() -> None:
    client, stub = stubbed_sts()
    stub.add_client_error(
        "assume_role",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:sts::999:assumed-role/x is not authorized",
        http_status_code=403,
    )
    with stub, pytest.raises(RoleAccessDenied) as denied:
        provider(client).get("tenant-1", ROLE, EXTERNAL_ID)
    message = str(denied.value)
    assert ROLE in message
    assert "trust policy" in message
    assert "external ID" in message
    assert denied.value.status == 422
    assert isinstance(denied.value.__cause__, ClientError)


def test_other_sts_errors_are_reraised_as_is() -> None:
    client, stub = stubbed_sts()
    stub.add_client_error("assume_role", service_error_code="RegionDisabledException")
    with stub, pytest.raises(ClientError) as error:
        provider(client).get("tenant-1", ROLE, EXTERNAL_ID)
    assert error.value.response["Error"]["Code"] == "RegionDisabledException"


@pytest.mark.parametrize(("code", "status"), [("Throttling", 400), ("InternalFailure", 500)])
def test_sts_throttling_or_5xx_after_retries_is_a_503_naming_sts(code: str, status: int) -> None:
    client, stub = stubbed_sts()
    stub.add_client_error("assume_role", service_error_code=code, http_status_code=status)
    with stub, pytest.raises(ServiceUnavailable) as unavailable:
        provider(client).get("tenant-1", ROLE, EXTERNAL_ID)
    assert "STS" in unavailable.value.message and "retry later" in unavailable.value.message
    assert unavailable.value.details == {"sts_error": code, "retryable": True}


def test_sts_client_retries_in_standard_mode() -> None:
    client = make_sts_client("us-east-1")
    assert client.meta.config.retries["mode"] == "standard"


def test_sts_client_is_built_lazily_and_once() -> None:
    clock = FakeClock()
    sts = FakeSts(clock)
    built: list[int] = []

    def factory() -> FakeSts:
        built.append(1)
        return sts

    creds = TenantCredentials(factory, second_level=None, encryption_key=KEY, clock=clock)
    assert built == []
    creds.get("a", ROLE, EXTERNAL_ID)
    creds.get("b", ROLE, EXTERNAL_ID)
    assert built == [1]
    assert len(sts.calls) == 2


def test_role_assumable_without_external_id_is_reported_unsafe() -> None:
    client, stub = stubbed_sts()
    stub.add_response(
        "assume_role",
        sts_reply(T0 + timedelta(minutes=15)),
        {"RoleArn": ROLE, "RoleSessionName": "sesami-onboarding-probe", "DurationSeconds": 900},
    )
    stub.add_client_error("assume_role", service_error_code="AccessDenied", http_status_code=403)
    creds = provider(client)
    with stub:
        assert creds.assume_without_external_id(ROLE) is True  # no ExternalId sent, it worked
        assert creds.assume_without_external_id(ROLE) is False  # AccessDenied: the safe answer
    stub.assert_no_pending_responses()


# The in-process level.


def test_in_process_hit_makes_no_sts_and_no_cache_call() -> None:
    clock = FakeClock()
    sts, cache = FakeSts(clock), FakeCredentialCache()
    creds = provider(sts, cache, clock)
    first = creds.get("tenant-1", ROLE, EXTERNAL_ID)
    assert (len(sts.calls), cache.calls) == (1, ["get", "set"])
    clock.advance(timedelta(minutes=54))
    assert creds.get("tenant-1", ROLE, EXTERNAL_ID) is first
    assert (len(sts.calls), cache.calls) == (1, ["get", "set"])
    assert (creds.sts_calls, creds.cache_gets, creds.cache_sets) == (1, 1, 1)


def test_refresh_margin_triggers_a_new_assume_role() -> None:
    clock = FakeClock()
    sts = FakeSts(clock)
    creds = provider(sts, None, clock)
    first = creds.get("tenant-1", ROLE, EXTERNAL_ID)
    clock.now = first.expiration - timedelta(minutes=5, seconds=1)
    assert creds.get("tenant-1", ROLE, EXTERNAL_ID) is first
    clock.now = first.expiration - timedelta(minutes=5)
    second = creds.get("tenant-1", ROLE, EXTERNAL_ID)
    assert len(sts.calls) == 2
    assert second.access_key_id != first.access_key_id
    assert second.expiration == clock.now + timedelta(hours=1)


def test_second_level_failure_of_any_kind_falls_back_to_sts_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    for error in (CacheUnavailable("down"), RuntimeError("adapter bug")):
        sts = FakeSts(clock)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            creds = provider(sts, FakeCredentialCache(failing=error), clock).get(
                "tenant-1", ROLE, EXTERNAL_ID
            )
        assert creds.access_key_id == "ASIAFAKE000000000001"
        assert len(sts.calls) == 1
        assert any(str(error) in r.getMessage() for r in caplog.records)


def test_after_a_second_level_failure_the_instance_leaves_it_alone_for_the_pause() -> None:
    """While the cache is down, one request per pause waits on it; the rest go to STS."""
    clock = FakeClock()
    sts, cache = FakeSts(clock), FakeCredentialCache(failing=CacheUnavailable("down"))
    creds = provider(sts, cache, clock)
    for n in range(3):
        creds.get(f"tenant-{n}", ROLE, EXTERNAL_ID)
        clock.advance(timedelta(seconds=9))
    assert (len(sts.calls), cache.calls) == (3, ["get"])
    clock.advance(timedelta(seconds=3))  # 30 s after the failure: try the cache again
    cache.failing = None
    creds.get("tenant-3", ROLE, EXTERNAL_ID)
    assert (len(sts.calls), cache.calls) == (4, ["get", "get", "set"])
    creds.get("tenant-4", ROLE, EXTERNAL_ID)  # it answered: no pause any more
    assert cache.calls == ["get", "get", "set", "get", "set"]


# The Momento level, through the real SDK and the local server.


@pytest.fixture
def server() -> Iterator[MomentoLocalServer]:
    with MomentoLocalServer() as srv:
        yield srv


def momento(server: MomentoLocalServer, timeout: float = 2.0) -> MomentoCredentialCache:
    cache = momento_cache_from_settings(None, server.endpoint, CACHE, timedelta(seconds=timeout))
    assert cache is not None
    return cache


@pytest.fixture
def instances(server: MomentoLocalServer) -> Iterator[Any]:
    """make(sts, clock, key=KEY) -> a new "Lambda instance": its own Momento client."""
    opened: list[MomentoCredentialCache] = []

    def make(sts: Any, clock: FakeClock, key: bytes = KEY, timeout: float = 2.0) -> Any:
        cache = momento(server, timeout)
        opened.append(cache)
        return provider(sts, cache, clock, key)

    yield make
    for cache in opened:
        cache.close()


def stored(server: MomentoLocalServer, tenant_id: str) -> bytes:
    value = server.store.get(CACHE, cache_key(tenant_id, ROLE).encode())
    assert value is not None
    return value


def test_second_instance_gets_credentials_from_momento_without_sts(
    server: MomentoLocalServer, instances: Any
) -> None:
    clock = FakeClock()
    sts = FakeSts(clock)
    first = instances(sts, clock).get("tenant-1", ROLE, EXTERNAL_ID)
    assert server.calls["CreateCache"] == 1  # the local cache is created on first use
    cold = instances(sts, clock)
    clock.advance(timedelta(minutes=10))
    again = cold.get("tenant-1", ROLE, EXTERNAL_ID)
    assert again == first
    assert cold.sts_calls == 0
    assert len(sts.calls) == 1
    assert (server.calls["Get"], server.calls["Set"]) == (2, 1)


def test_momento_never_holds_the_secret_in_plaintext(
    server: MomentoLocalServer, instances: Any
) -> None:
    clock = FakeClock()
    creds = instances(FakeSts(clock), clock).get("tenant-1", ROLE, EXTERNAL_ID)
    value = stored(server, "tenant-1")
    for secret in (creds.secret_access_key, creds.session_token, creds.access_key_id):
        assert secret.encode() not in value
        assert base64.b64encode(secret.encode())[:16] not in value
    assert len(value) == 12 + len(creds.to_json()) + 16  # nonce || ciphertext || tag


def test_momento_ttl_is_expiration_minus_margin_minus_now(
    server: MomentoLocalServer, instances: Any
) -> None:
    monotonic = [1000.0]
    server.store = CacheStore(clock=lambda: monotonic[0])
    server.store.create_cache(CACHE)
    clock = FakeClock()
    sts = FakeSts(clock, latency=timedelta(seconds=7))  # TTL is measured after the STS call
    creds = instances(sts, clock).get("tenant-1", ROLE, EXTERNAL_ID)
    expected = (creds.expiration - timedelta(minutes=5) - clock()).total_seconds()
    assert expected == 55 * 60
    key = cache_key("tenant-1", ROLE).encode()
    monotonic[0] = 1000.0 + expected - 1
    assert server.store.get(CACHE, key) is not None
    monotonic[0] = 1000.0 + expected + 1
    assert server.store.get(CACHE, key) is None


def test_two_tenants_with_the_same_role_get_different_keys(
    server: MomentoLocalServer, instances: Any
) -> None:
    clock = FakeClock()
    creds = instances(FakeSts(clock), clock)
    a = creds.get("tenant-a", ROLE, EXTERNAL_ID)
    b = creds.get("tenant-b", ROLE, "another-external-id")
    assert a.access_key_id != b.access_key_id
    assert cache_key("tenant-a", ROLE) != cache_key("tenant-b", ROLE)
    assert server.store.item_count(CACHE) == 2
    assert stored(server, "tenant-a") != stored(server, "tenant-b")


def test_value_copied_under_another_tenants_key_fails_and_falls_back_to_sts(
    server: MomentoLocalServer, instances: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    sts = FakeSts(clock)
    a = instances(sts, clock).get("tenant-a", ROLE, EXTERNAL_ID)
    key_b = cache_key("tenant-b", ROLE).encode()
    server.store.set(CACHE, key_b, stored(server, "tenant-a"), 3_600_000)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        b = instances(sts, clock).get("tenant-b", ROLE, EXTERNAL_ID)
    assert b.access_key_id != a.access_key_id
    assert len(sts.calls) == 2
    assert sts.calls[1]["RoleSessionName"] == "sesami-tenant-b"
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert server.store.get(CACHE, key_b) != stored(server, "tenant-a")  # overwritten with b's


def test_wrong_encryption_key_reads_as_a_miss(
    server: MomentoLocalServer, instances: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    sts = FakeSts(clock)
    instances(sts, clock, KEY).get("tenant-1", ROLE, EXTERNAL_ID)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rotated = instances(sts, clock, OTHER_KEY)
        rotated.get("tenant-1", ROLE, EXTERNAL_ID)
    assert rotated.sts_calls == 1
    assert len(sts.calls) == 2
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_entry_too_close_to_expiry_is_not_used(server: MomentoLocalServer, instances: Any) -> None:
    clock = FakeClock()
    sts = FakeSts(clock)
    instances(sts, clock).get("tenant-1", ROLE, EXTERNAL_ID)
    clock.advance(timedelta(minutes=55))  # the local server's own TTL runs on real time
    later = instances(sts, clock)
    later.get("tenant-1", ROLE, EXTERNAL_ID)
    assert later.sts_calls == 1


def test_server_stopped_mid_run_still_returns_credentials_from_sts(
    server: MomentoLocalServer, instances: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    sts = FakeSts(clock)
    creds = instances(sts, clock, timeout=0.5)
    warm = creds.get("tenant-1", ROLE, EXTERNAL_ID)
    server.stop(0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        fresh = creds.get("tenant-2", ROLE, EXTERNAL_ID)
    assert fresh.access_key_id == "ASIAFAKE000000000002"
    assert creds.get("tenant-1", ROLE, EXTERNAL_ID) is warm
    # How long a dead server can hold a request is the client's timeout (0.5 s here), not
    # measured: the figures are the calls made.
    assert len(sts.calls) == 2  # tenant-1 before the stop, tenant-2 after it
    assert any("cache get failed" in r.getMessage() for r in caplog.records)
    assert creds.cache_sets == 1  # no set attempted on a cache that just failed


def test_adapter_maps_momento_errors_to_cache_unavailable(server: MomentoLocalServer) -> None:
    cache = momento(server, timeout=0.5)
    try:
        cache.set("k", b"v", timedelta(minutes=1))
        assert cache.get("k") == b"v"
        assert cache.get("absent") is None
        server.stop(0)
        with pytest.raises(CacheUnavailable, match="get"):
            cache.get("k")
        with pytest.raises(CacheUnavailable, match="set"):
            cache.set("k", b"v", timedelta(minutes=1))
    finally:
        cache.close()


def test_missing_cache_is_created_on_first_use_tolerating_a_concurrent_creator(
    server: MomentoLocalServer,
) -> None:
    cache = momento(server)

    class RacingClient:
        """The real client; another instance creates the cache just before this one does."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def create_cache(self, name: str) -> Any:
            server.store.create_cache(name)
            return self.real.create_cache(name)

    racing = MomentoCredentialCache(
        RacingClient(cache._client),  # type: ignore[arg-type]
        CACHE,
        create_missing_cache=True,
    )
    try:
        racing.set("k", b"v", timedelta(minutes=1))  # NOT_FOUND, AlreadyExists, set again
        assert racing.get("k") == b"v"
        assert server.calls["CreateCache"] == 1
        assert server.calls["Set"] == 2
    finally:
        cache.close()


def test_missing_cache_in_aws_is_unavailable_not_created(server: MomentoLocalServer) -> None:
    local = momento(server)
    aws_like = MomentoCredentialCache(local._client, CACHE, create_missing_cache=False)
    try:
        with pytest.raises(CacheUnavailable, match="NOT_FOUND"):
            aws_like.get("k")
        assert server.calls["CreateCache"] == 0
    finally:
        local.close()


def test_factory_returns_none_when_momento_is_not_configured() -> None:
    assert momento_cache_from_settings(None, None, CACHE, timedelta(seconds=1)) is None
    assert momento_cache_from_settings("", "", CACHE, timedelta(seconds=1)) is None
    with pytest.raises(ConfigurationError, match="host:port"):
        momento_cache_from_settings(None, "localhost", CACHE, timedelta(seconds=1))


def test_factory_builds_from_a_legacy_api_key_without_connecting() -> None:
    legacy = base64.b64encode(
        json.dumps({"endpoint": "cell.example.invalid", "api_key": "not-a-real-key"}).encode()
    ).decode()
    started = time.monotonic()
    cache = momento_cache_from_settings(legacy, None, CACHE, timedelta(seconds=1))
    assert isinstance(cache, MomentoCredentialCache)
    cache.close()
    assert time.monotonic() - started < 2.0
