"""Quotas through the API (invariant 11): real tokens from moto's Cognito, storage on DynamoDB
Local, and the quota counters in a real local Momento server reached by the real SDK.

Each test sets its limits with `wiring.use(...)` and gives the instance's quotas a clock it
moves itself (`wiring.quotas().clock`): windows are 60 s long, and a test must neither wait for
one to end nor be cut in two by one ending. `wiring.reset()` makes a new instance: new quotas,
new Momento client, nothing in memory; the local Momento server is what they share.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from chalice.local import LambdaEventConverter
from chalice.test import Client
from chalicelib.core import wiring
from chalicelib.core.tables import AccountModel
from chalicelib.quotas.limits import tenant_counter, window

from devstack.momento_local.server import MomentoLocalServer
from tests.api_fixtures import MOTO_ACCOUNT, call, client, sign_in
from tests.sending.test_mail import DOMAIN, Runner, Tenant, bulk, mail, moto_messages

pytestmark = pytest.mark.ddb_local

START = 1_760_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module", autouse=True)
def sender_identity(moto: str) -> Iterator[None]:
    client(moto, "sesv2").create_email_identity(EmailIdentity=DOMAIN)
    yield
    AccountModel(MOTO_ACCOUNT).delete()


@pytest.fixture
def momento() -> Iterator[MomentoLocalServer]:
    with MomentoLocalServer() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


def limit(momento: MomentoLocalServer, clock: Clock, **quotas: int) -> None:
    """This instance, with these limits, counting in the local Momento server on `clock`."""
    cache = f"quotas-{uuid.uuid4().hex[:8]}"
    momento.store.create_cache(cache)  # as the operator creates it in Momento
    wiring.use(
        replace(
            wiring.settings(),
            momento_local=momento.endpoint,
            momento_cache=cache,
            **{f"quota_{name}": value for name, value in quotas.items()},  # type: ignore[arg-type]
        )
    )
    wiring.quotas().clock = clock


def new_instance(clock: Clock) -> None:
    wiring.reset()
    wiring.quotas().clock = clock


def window_start(clock: Clock, tenant_id: str) -> None:
    clock.now = window(tenant_counter(tenant_id), clock.now).ends_at


def assert_quota_429(response: Any, name: str) -> dict[str, Any]:
    assert response.status_code == 429, response.json_body
    error = response.json_body["error"]
    assert error["code"] == "too_many_requests" and name in error["message"]
    details: dict[str, Any] = error["details"]
    assert details["limit"] == name
    assert response.headers["Retry-After"] == str(details["retry_after"])
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    return details


# ---------------------------------------------------------------------------- sending


def test_a_burst_past_the_sends_limit_is_429_and_retries_with_the_same_keys_send_once(
    api: Client, moto: str, pool: dict[str, str], momento: MomentoLocalServer, clock: Clock
) -> None:
    tenant = Tenant(api, moto, pool)
    limit(momento, clock, sends_per_minute=3, requests_per_minute=100)
    window_start(clock, tenant.id)
    before = set(moto_messages(moto))
    momento.reset_calls()

    keys = [f"order-{i}" for i in range(6)]
    answers = [tenant.mail(mail(), key=k) for k in keys]
    assert [a.status_code for a in answers] == [200] * 3 + [429] * 3
    details = assert_quota_429(answers[3], "sends_per_minute")
    assert details["allowed"] == 3 and details["scope"] == "tenant"
    assert len(set(moto_messages(moto)) - before) == 3  # the refused ones never reached SES

    replay = tenant.mail(mail(), key=keys[0])  # a client retrying a request that succeeded
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"

    clock.now += int(answers[3].headers["Retry-After"])  # as the 429 said
    again = [tenant.mail(mail(), key=k) for k in keys[3:]]
    assert [a.status_code for a in again] == [200] * 3
    assert all("Idempotent-Replayed" not in a.headers for a in again)
    replays = [tenant.mail(mail(), key=k) for k in keys]
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in replays[3:])

    sent = set(moto_messages(moto)) - before
    ids = {a.json_body["message_id"] for a in answers[:3] + again}
    assert sent == ids and len(sent) == 6  # each key sent exactly once
    requests = len(keys) + 1 + len(again) + len(replays)
    assert momento.calls["Increment"] <= requests  # never more than one count per request


def test_bulk_batches_in_flight_are_limited_and_a_finished_one_frees_its_slot(
    api: Client, moto: str, pool: dict[str, str], momento: MomentoLocalServer, clock: Clock
) -> None:
    tenant = Tenant(api, moto, pool)
    runner = Runner(hold=True)  # workers are started, not run
    wiring.use(bulk_runner=runner)
    try:
        limit(momento, clock, bulk_batches=1)
        first = tenant.post_get("POST", "/mail/bulk", bulk())
        assert first.status_code == 202, first.json_body
        second = tenant.post_get("POST", "/mail/bulk", bulk())
        details = assert_quota_429(second, "bulk_batches")
        assert details["in_flight"] == [first.json_body["batch_id"]]
        assert second.headers["Retry-After"] == "30"
        wiring.run_bulk_slice(runner.events[0], None)  # the first batch is sent and finishes
        assert tenant.post_get("GET", f"/mail/bulk/{first.json_body['batch_id']}").json_body[
            "status"
        ] in ("done", "incomplete")
        third = tenant.post_get("POST", "/mail/bulk", bulk())
        assert third.status_code == 202, third.json_body
    finally:
        wiring.use(bulk_runner=None)


# ---------------------------------------------------------------------------- requests


def test_two_instances_sharing_momento_enforce_one_limit(
    api: Client, moto: str, pool: dict[str, str], momento: MomentoLocalServer, clock: Clock
) -> None:
    tenant = Tenant(api, moto, pool, connect=False)
    limit(momento, clock, requests_per_minute=6)
    window_start(clock, tenant.id)
    first = wiring.quotas()
    for _ in range(3):
        assert tenant.post_get("GET", "/account").status_code == 200
    new_instance(clock)  # another Lambda instance: its own memory, its own client
    assert wiring.quotas() is not first
    for _ in range(3):
        assert tenant.post_get("GET", "/account").status_code == 200
    assert_quota_429(tenant.post_get("GET", "/account"), "requests_per_minute")
    new_instance(clock)  # a third one learns it from the store, once
    assert_quota_429(tenant.post_get("GET", "/events"), "requests_per_minute")
    assert_quota_429(tenant.post_get("GET", "/events"), "requests_per_minute")
    assert momento.calls["Increment"] == 7  # 6 counted, 1 learnt; the rest from memory
    window_start(clock, tenant.id)
    assert tenant.post_get("GET", "/account").status_code == 200


def test_one_tenant_at_its_limit_does_not_affect_another(
    api: Client, moto: str, pool: dict[str, str], momento: MomentoLocalServer, clock: Clock
) -> None:
    busy = Tenant(api, moto, pool, connect=False)
    quiet = Tenant(api, moto, pool, connect=False)
    limit(momento, clock, requests_per_minute=4)
    window_start(clock, busy.id)
    for _ in range(4):
        assert busy.post_get("GET", "/events").status_code == 200
    for _ in range(20):
        assert_quota_429(busy.post_get("GET", "/events"), "requests_per_minute")
    for _ in range(4):
        assert quiet.post_get("GET", "/events").status_code == 200  # its own four, whole


def test_a_refused_call_is_counted_before_its_permission_is_checked(
    api: Client, moto: str, pool: dict[str, str], momento: MomentoLocalServer, clock: Clock
) -> None:
    """A 403 is still a request the credential made: a read key retrying an admin route spends
    its tenant's requests like any other, and is then refused with a 429."""
    owner = Tenant(api, moto, pool, connect=False)
    made = owner.post_get("POST", "/api-keys", {"name": "reader", "scope": "read"})
    assert made.status_code == 201, made.json_body
    key = made.json_body["key"]
    limit(momento, clock, requests_per_minute=3)
    window_start(clock, owner.id)
    for _ in range(3):
        refused = call(api, "DELETE", "/suppression-list/x%40example.org", key)
        assert refused.status_code == 403, refused.json_body
    assert_quota_429(
        call(api, "DELETE", "/suppression-list/x%40example.org", key), "requests_per_minute"
    )
    assert_quota_429(owner.post_get("GET", "/events"), "requests_per_minute")  # the tenant's


def test_the_store_down_falls_back_to_this_instance_s_share_and_logs_it(
    api: Client,
    moto: str,
    pool: dict[str, str],
    momento: MomentoLocalServer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = Tenant(api, moto, pool, connect=False)
    limit(momento, clock, requests_per_minute=8, expected_instances=4)
    window_start(clock, tenant.id)
    assert tenant.post_get("GET", "/account").status_code == 200
    momento.stop(0)
    with caplog.at_level(logging.WARNING, logger="sesami.quotas"):
        for _ in range(2):  # ceil(8 / 4): served while Momento is down
            assert tenant.post_get("GET", "/account").status_code == 200
        details = assert_quota_429(tenant.post_get("GET", "/account"), "requests_per_minute")
    assert details["degraded"] is True and details["allowed"] == 2
    assert [r for r in caplog.records if "quota store unavailable" in r.message]
    assert wiring.quotas().store_failures == 1  # tried once, then left alone for 30 s


# ---------------------------------------------------------------------------- anonymous


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the address API Gateway would report as the caller's (requestContext sourceIp)."""

    def use(address: str) -> None:
        monkeypatch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", address)

    return use


def test_sign_in_floods_are_limited_per_source_address(
    api: Client, momento: MomentoLocalServer, clock: Clock, source: Any
) -> None:
    limit(momento, clock, auth_per_ip_per_minute=3)
    wrong = {"email": "nobody@example.com", "password": "wrong-password-1"}
    source("203.0.113.7")
    answers = [call(api, "POST", "/auth/sign-in", None, wrong) for _ in range(6)]
    assert [a.status_code != 429 for a in answers] == [True] * 3 + [False] * 3
    assert_quota_429(answers[3], "auth_per_ip_per_minute")
    source("198.51.100.20")  # another address is not affected
    assert call(api, "POST", "/auth/sign-in", None, wrong).status_code != 429
    source("203.0.113.7")  # every /auth/* route shares the address's count
    forgot = call(api, "POST", "/auth/forgot-password", None, {"email": "x@example.com"})
    assert forgot.status_code == 429


def test_unsubscribe_floods_are_limited_per_address_apart_from_tenants(
    api: Client,
    moto: str,
    pool: dict[str, str],
    momento: MomentoLocalServer,
    clock: Clock,
    source: Any,
) -> None:
    token = sign_in(moto, pool)
    limit(momento, clock, unsubscribe_per_ip_per_minute=2, auth_per_ip_per_minute=100)
    source("192.0.2.44")
    for _ in range(2):
        page = api.http.get("/unsubscribe/not-a-token")
        assert page.status_code == 400  # the page for a link that does not work
    flooded = api.http.post("/unsubscribe/not-a-token", headers={"Content-Type": "text/plain"})
    assert_quota_429(flooded, "unsubscribe_per_ip_per_minute")  # the JSON error shape
    # The same address's signed-in traffic counts against its tenant, not here.
    assert call(api, "GET", "/account", token).status_code == 200
    source("192.0.2.45")
    assert api.http.get("/unsubscribe/not-a-token").status_code == 400


# ---------------------------------------------------------------------------- documentation


def test_every_counted_route_documents_its_429_and_retry_after() -> None:
    from chalicelib.core import openapi

    import app  # noqa: F401  (declares every route)

    for path, ops in openapi.document()["paths"].items():
        for method, op in ops.items():
            counted = "x-sesami-permission" in op or path.startswith(("/auth/", "/unsubscribe/"))
            documented = op["responses"].get("429")
            assert bool(documented) == counted, (method, path)
            if documented:
                assert "Retry-After" in documented["headers"], (method, path)
