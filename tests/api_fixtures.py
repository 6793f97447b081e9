"""Fixtures for API tests: moto's Cognito (a real user pool issuing real tokens), an event bus,
and the Chalice app through `chalice.test.Client`, on the session's DynamoDB Local tables.

    def test_something(api, pool, moto):
        token = sign_in(moto, pool)
        response = call(api, "GET", "/account", token)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from chalice.test import Client

SESAMI_ACCOUNT = "444455556666"  # the platform; moto's resources live in 123456789012
MOTO_ACCOUNT = "123456789012"
PASSWORD = "Correct-Horse-9-battery"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that goes through the app's routes (the `api` fixture: real tokens from moto's
    Cognito, storage on DynamoDB Local) is marked `routes`: about four fifths of the time of the
    tests without the live stack, so `make check` leaves them to `make test`."""
    for item in items:
        if "api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.routes)


@pytest.fixture(scope="module")
def moto(moto_endpoint: str) -> str:
    return moto_endpoint


def client(moto: str, service: str) -> Any:
    import boto3  # here: the Pulumi environment also loads this plugin, and has no boto3

    return boto3.client(service, endpoint_url=moto, region_name="us-east-1")


def make_role(moto: str, name: str | None = None) -> str:
    """A customer's role in moto's account that SESami's account may assume (moto ignores the
    trust policy and ExternalId: the refusals are tested with fakes and botocore's Stubber)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{SESAMI_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = client(moto, "iam").create_role(
        RoleName=name or f"SESamiAccess{uuid.uuid4().hex[:6]}",
        Path="/sesami/",
        AssumeRolePolicyDocument=json.dumps(trust),
    )
    return str(role["Role"]["Arn"])


@pytest.fixture(scope="module")
def pool(moto: str) -> dict[str, str]:
    idp = client(moto, "cognito-idp")
    pool_id = idp.create_user_pool(
        PoolName="sesami-test",
        Schema=[
            {"Name": "tenant_id", "AttributeDataType": "String", "Mutable": True},
            {"Name": "tenant_role", "AttributeDataType": "String", "Mutable": True},
        ],
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="dashboard",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    bus_arn = client(moto, "events").create_event_bus(Name="sesami")["EventBusArn"]
    return {"pool_id": pool_id, "client_id": client_id, "bus_arn": bus_arn}


@pytest.fixture
def webhook_queue() -> Any:
    """The webhook queue the API and ingest use in API tests: in memory, on a fake clock."""
    from chalicelib.webhooks.queue import MemoryQueue

    from tests.fakes import FakeEpochClock

    return MemoryQueue(FakeEpochClock.starting_now())


@pytest.fixture
def api(app_settings: Any, moto: str, pool: dict[str, str], webhook_queue: Any) -> Iterator[Client]:
    from chalicelib.core import wiring

    import app

    wiring.use(
        replace(
            app_settings,
            account_id=SESAMI_ACCOUNT,
            event_bus_arn=pool["bus_arn"],
            user_pool_id=pool["pool_id"],
            user_pool_client_ids=(pool["client_id"],),
            jwks_url=f"{moto}/{pool['pool_id']}/.well-known/jwks.json",
            aws_endpoint=moto,
            skip_external_id_check=True,
        ),
        webhook_queue=webhook_queue,
    )
    with Client(app.app) as test_client:
        yield test_client


def sign_in(moto: str, pool: dict[str, str], email: str | None = None) -> str:
    """A confirmed user's id token, from moto's Cognito (made as `make dev` makes its user)."""
    from devstack import provision  # here: the Pulumi environment also loads this plugin

    identity = provision.Identity(pool["pool_id"], pool["client_id"], jwks_url="")
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    provision.user(moto, identity, email, PASSWORD)
    return provision.id_token(moto, identity, email, PASSWORD)


def call(api: Client, method: str, path: str, token: str | None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = json.dumps(body) if body is not None else None
    return getattr(api.http, method.lower())(path, headers=headers, body=raw)


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """(attempt number, delay) of every backoff botocore's standard retry mode computes; each is
    recorded and not slept, so retry tests take no real time."""
    from botocore.retries.standard import ExponentialBackoff

    computed: list[tuple[int, float]] = []
    original = ExponentialBackoff.delay_amount

    def record(self: ExponentialBackoff, context: Any) -> float:
        computed.append((context.attempt_number, original(self, context)))
        return 0.0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", record)
    return computed
