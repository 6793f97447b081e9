"""Deployed functions get their secrets from SSM Parameter Store, never from plain environment
variables: `<NAME>_PARAMETER` names a SecureString and `Settings.from_env` reads it (moto, in
process). The local stack's plain variables keep working and cost no AWS call."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from chalicelib.core.errors import ConfigurationError
from chalicelib.core.settings import Settings
from moto import mock_aws

SIGNING = "ab" * 32
CREDENTIALS = "cd" * 32
MOMENTO = "momento-api-key-v2"
PARAMETERS = {
    "SESAMI_SIGNING_KEY": ("/sesami/prod/signing-key", SIGNING),
    "SESAMI_CREDENTIALS_KEY": ("/sesami/prod/credentials-key", CREDENTIALS),
    "SESAMI_MOMENTO_API_KEY": ("/sesami/prod/momento-api-key", MOMENTO),
}
BASE_ENV = {"SESAMI_STAGE": "prod", "AWS_REGION": "eu-west-1"}


class CountingSsm:
    """The real (moto) client, counting GetParameters calls."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, 0

    def get_parameters(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.client.get_parameters(**kwargs)


@pytest.fixture
def ssm() -> Any:
    with mock_aws():
        client = boto3.client("ssm", region_name="eu-west-1")
        for name, value in PARAMETERS.values():
            client.put_parameter(Name=name, Value=value, Type="SecureString")
        yield client


def _parameter_env() -> dict[str, str]:
    return {**BASE_ENV, **{f"{k}_PARAMETER": name for k, (name, _) in PARAMETERS.items()}}


def test_secrets_named_by_parameter_are_read_decrypted_in_one_call(ssm: Any) -> None:
    counting = CountingSsm(ssm)
    settings = Settings.from_env(_parameter_env(), ssm=counting)
    assert settings.signing_key == bytes.fromhex(SIGNING)
    assert settings.credentials_key == bytes.fromhex(CREDENTIALS)
    assert settings.momento_api_key == MOMENTO
    assert counting.calls == 1


def test_the_default_client_is_boto3s_in_the_functions_region(ssm: Any) -> None:
    settings = Settings.from_env(_parameter_env())
    assert settings.signing_key == bytes.fromhex(SIGNING)


def test_a_missing_parameter_is_a_configuration_error_naming_it(ssm: Any) -> None:
    env = {**_parameter_env(), "SESAMI_SIGNING_KEY_PARAMETER": "/sesami/prod/nope"}
    with pytest.raises(ConfigurationError, match="/sesami/prod/nope"):
        Settings.from_env(env, ssm=ssm)


def test_a_plain_value_wins_and_costs_no_call() -> None:
    class NoSsm:
        def get_parameters(self, **kwargs: Any) -> Any:
            raise AssertionError("no SSM call expected")

    env = {
        **_parameter_env(),
        "SESAMI_SIGNING_KEY": SIGNING,
        "SESAMI_CREDENTIALS_KEY": CREDENTIALS,
        "SESAMI_MOMENTO_API_KEY": MOMENTO,
    }
    settings = Settings.from_env(env, ssm=NoSsm())
    assert settings.signing_key == bytes.fromhex(SIGNING)
    assert settings.momento_api_key == MOMENTO


def test_without_parameters_no_client_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    # The local stack and the ingest function (which gets no secrets) never touch SSM.
    monkeypatch.setattr(boto3, "client", lambda *a, **k: pytest.fail("boto3 client built"))
    settings = Settings.from_env({**BASE_ENV, "SESAMI_SIGNING_KEY": SIGNING})
    assert settings.signing_key == bytes.fromhex(SIGNING)
    assert settings.credentials_key == b""
