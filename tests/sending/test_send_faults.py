"""Sending under faults, through the API (`POST /mail`, `PUT /account`): SES throttling and 5xx,
STS refusing or throttling, the Momento server stopped mid-run.

Faults are injected at botocore's `before-send` hook on boto3's default session (the one
`wiring.aws_client` builds clients from; `AwsWire` in tests/fakes.py): the chosen call gets the
chosen HTTP answer, attempt by attempt, and every attempt is counted, so the retries of
botocore's standard mode are exercised as they are configured. The backoff botocore computes
between attempts is recorded and not slept (the `backoff` fixture of tests/api_fixtures.py).
Everything else goes to moto's server, DynamoDB Local and a real local Momento server (the real
SDK).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from chalice.test import Client
from chalicelib.core import aws, keys, wiring
from chalicelib.core.tables import AGGREGATE_SK, AccountModel, MessageModel

from devstack.momento_local.server import MomentoLocalServer
from tests.api_fixtures import MOTO_ACCOUNT, client, make_role
from tests.fakes import AwsWire
from tests.sending.test_mail import DOMAIN, Tenant, mail, moto_messages

# Every client has SESami's one retry policy (core/aws.py): 1 attempt + MAX_ATTEMPTS retries
# (botocore counts retries in `max_attempts` of the legacy-named config key).
SES_ATTEMPTS = STS_ATTEMPTS = 1 + aws.MAX_ATTEMPTS


@pytest.fixture
def faults() -> Iterator[AwsWire]:
    with AwsWire("sesv2.SendEmail", "sts.AssumeRole").installed() as wire:
        wiring.reset()  # clients copy the session's handlers when they are built
        yield wire
    wiring.reset()


@pytest.fixture(scope="module", autouse=True)
def sender_identity(moto: str) -> Iterator[None]:
    """The sender's verified domain in moto's SES; afterwards, moto's one account is unbound
    again (each Tenant here binds it, and DynamoDB Local outlives this module)."""
    client(moto, "sesv2").create_email_identity(EmailIdentity=DOMAIN)
    yield
    AccountModel(MOTO_ACCOUNT).delete()


@pytest.fixture
def tenant(api: Client, moto: str, pool: dict[str, str]) -> Tenant:
    return Tenant(api, moto, pool)


def recorded_messages(tenant: Tenant) -> list[str]:
    """Message IDs SESami recorded as sent for the tenant (aggregates under its keys)."""
    prefix = keys.message_pk(tenant.id, "")
    return [
        m.pk[len(prefix) :]
        for m in MessageModel.scan(
            MessageModel.pk.startswith(prefix) & (MessageModel.sk == AGGREGATE_SK)
        )
    ]


# ---------------------------------------------------------------------------- SES
# (`tenant` comes before `faults` in each signature: connecting its account is not counted.)


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "TooManyRequestsException"), (400, "Throttling"), (503, "ServiceUnavailable")],
)
def test_a_transient_ses_error_is_retried_with_backoff_and_the_mail_sent_once(
    tenant: Tenant,
    faults: AwsWire,
    backoff: list[tuple[int, float]],
    moto: str,
    status: int,
    code: str,
) -> None:
    before = set(moto_messages(moto))
    faults.inject("sesv2.SendEmail", status, code, times=2)
    response = tenant.mail(mail())
    assert response.status_code == 200, response.json_body
    assert faults.attempts["sesv2.SendEmail"] == 3
    assert [attempt for attempt, _ in backoff] == [1, 2]  # one backoff before each retry
    sent = set(moto_messages(moto)) - before
    assert sent == {response.json_body["message_id"]}
    assert recorded_messages(tenant) == [response.json_body["message_id"]]


def test_a_persistent_ses_outage_is_a_503_naming_ses_records_nothing_and_the_key_sends_once_later(
    tenant: Tenant, faults: AwsWire, backoff: list[tuple[int, float]], moto: str
) -> None:
    before = set(moto_messages(moto))
    faults.inject("sesv2.SendEmail", 503, "ServiceUnavailable")
    response = tenant.mail(mail(), key="receipt-4711")
    assert response.status_code == 503
    error = response.json_body["error"]
    assert error["code"] == "service_unavailable"
    assert "SES" in error["message"] and "retry later" in error["message"]
    assert error["details"] == {"ses_code": "ServiceUnavailable", "retryable": True}
    assert faults.attempts["sesv2.SendEmail"] == SES_ATTEMPTS
    assert [attempt for attempt, _ in backoff] == [1, 2, 3, 4]
    assert set(moto_messages(moto)) == before
    assert recorded_messages(tenant) == []

    faults.clear()  # the outage is over: the same request with the same key sends, once
    again = tenant.mail(mail(), key="receipt-4711")
    assert again.status_code == 200
    assert "Idempotent-Replayed" not in again.headers
    replayed = tenant.mail(mail(), key="receipt-4711")
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.json_body == again.json_body
    assert set(moto_messages(moto)) - before == {again.json_body["message_id"]}
    assert faults.attempts["sesv2.SendEmail"] == SES_ATTEMPTS + 1


# ---------------------------------------------------------------------------- STS


def test_sts_access_denied_is_a_422_naming_the_role_and_nothing_is_sent(
    tenant: Tenant, faults: AwsWire, moto: str
) -> None:
    role_arn = tenant.post_get("GET", "/account").json_body["role_arn"]
    wiring.reset()  # a new instance: no credentials in memory
    faults.inject("sts.AssumeRole", 403, "AccessDenied")
    response = tenant.mail(mail())
    assert response.status_code == 422
    error = response.json_body["error"]
    assert error["code"] == "role_access_denied"
    assert role_arn in error["message"] and "trust policy" in error["message"]
    assert error["details"] == {"role_arn": role_arn}
    assert faults.attempts["sts.AssumeRole"] == 1  # a refusal is not retried
    assert faults.attempts["sesv2.SendEmail"] == 0

    other = make_role(moto, f"Denied{uuid.uuid4().hex[:6]}")
    connect = tenant.post_get("PUT", "/account", {"role_arn": other})
    assert connect.status_code == 422
    assert other in connect.json_body["error"]["message"]


def test_sts_throttled_beyond_its_retries_is_a_503_naming_sts(
    tenant: Tenant, faults: AwsWire, backoff: list[tuple[int, float]]
) -> None:
    wiring.reset()
    faults.inject("sts.AssumeRole", 400, "Throttling")
    response = tenant.mail(mail())
    assert response.status_code == 503
    error = response.json_body["error"]
    assert error["code"] == "service_unavailable" and "STS" in error["message"]
    assert error["details"] == {"sts_error": "Throttling", "retryable": True}
    assert faults.attempts["sts.AssumeRole"] == STS_ATTEMPTS
    assert faults.attempts["sesv2.SendEmail"] == 0


# ---------------------------------------------------------------------------- Momento


def test_momento_stopped_mid_run_sends_go_on_through_sts_and_nobody_waits_on_it(
    api: Client, moto: str, pool: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = (Tenant(api, moto, pool) for _ in range(3))
    with MomentoLocalServer() as server:
        wiring.use(replace(wiring.settings(), momento_local=server.endpoint))
        first = wiring.credentials()
        assert a.mail(mail()).status_code == 200
        assert (first.sts_calls, server.calls["Get"], server.calls["Set"]) == (1, 1, 1)

        wiring.reset()  # another instance finds the credentials in Momento
        second = wiring.credentials()
        assert a.mail(mail()).status_code == 200
        assert (second.sts_calls, server.calls["Get"]) == (0, 2)

        server.stop(0)
        wiring.reset()  # a cold instance while Momento is down
        cold = wiring.credentials()
        with caplog.at_level(logging.WARNING, logger="sesami.credentials"):
            for tenant in (a, b, c, a):
                assert tenant.mail(mail()).status_code == 200
        assert cold.sts_calls == 3  # each tenant once; a's second send is served from memory
        # Only the first send tried the dead server; the others went straight to STS, and
        # nothing was written to a cache that had just failed.
        assert (cold.cache_gets, cold.cache_sets) == (1, 0)
        assert server.calls["Get"] == 2
    failures = [r for r in caplog.records if "credential cache get failed" in r.getMessage()]
    assert len(failures) == 1
