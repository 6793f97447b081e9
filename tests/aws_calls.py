"""Every AWS API call the process makes, recorded at botocore's level, whoever built the client.

    with recording() as aws:
        aws.answer("sesv2", "GetAccount", {...})   # stands in for an API the emulator lacks
        ... run SESami ...
    aws.in_customer_accounts()  -> the calls made with credentials an AssumeRole issued

How: while recording, `botocore.session.Session.create_client` is wrapped, so every client built
in that time (through boto3.client, a boto3 Session, PynamoDB or any factory SESami moves its
client code to) gets three handlers on its own event emitter:
- `provide-client-params.*.*` records the call: IAM service prefix (the operation model's signing
  name: `ses` for SESv2, `events`, `sts`), operation, parameters, region and the access key ID
  the client signs with (what it was created with, or its session's credentials);
- `after-call.sts.AssumeRole` remembers which access key ID STS issued for which role, which is
  how a call is known to run in a customer's account;
- `before-call.*.*` answers, for the operations given to `answer`, what the emulator does not
  implement (moto has no SESv2 GetAccount, suppression list or event destinations), so the code
  path after the call runs too; the call is recorded all the same.

A client built before recording started is not seen: the caller asserts on what it expected to
record (a recording that saw nothing proves nothing), and `unattributed()` lists clients built with
explicit credentials that no recorded AssumeRole issued (credentials cached from before).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse


@dataclass(frozen=True)
class Call:
    service: str  # IAM service prefix
    operation: str
    params: Mapping[str, Any]
    region: str
    access_key: str | None

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class AwsCalls:
    calls: list[Call] = field(default_factory=list)
    issued: dict[str, str] = field(default_factory=dict)  # access key ID -> assumed-role ARN
    explicit_keys: set[str] = field(default_factory=set)  # keys clients were built with
    answers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    active: bool = True

    def answer(self, service_name: str, operation: str, response: dict[str, Any]) -> None:
        """Answer `operation` of the botocore service `service_name` (e.g. "sesv2") with
        `response` instead of sending it."""
        self.answers[(service_name, operation)] = response

    def account_of(self, call: Call) -> str | None:
        """The account a call runs in when its credentials came from AssumeRole."""
        role = self.issued.get(call.access_key or "")
        return role.split(":")[4] if role else None

    def in_customer_accounts(self, own_account: str | None = None) -> list[Call]:
        """Calls signed with assumed-role credentials (of a role outside `own_account`)."""
        return [
            c
            for c in self.calls
            if (account := self.account_of(c)) is not None and account != own_account
        ]

    def unattributed(self) -> set[str]:
        return self.explicit_keys - set(self.issued)


def _access_key(session: Any, kwargs: Mapping[str, Any]) -> tuple[str | None, bool]:
    explicit = kwargs.get("aws_access_key_id")
    if explicit:
        return str(explicit), True
    credentials = session.get_credentials()
    return (credentials.access_key if credentials else None), False


@contextlib.contextmanager
def recording() -> Iterator[AwsCalls]:
    aws = AwsCalls()
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        if not aws.active:
            return client
        key, explicit = _access_key(self, kwargs)
        if explicit and key:
            aws.explicit_keys.add(key)
        service_name = client.meta.service_model.service_name
        region = client.meta.region_name

        def record(params: Mapping[str, Any], model: Any, **_: Any) -> None:
            if aws.active:
                prefix = model.service_model.signing_name
                aws.calls.append(Call(prefix, model.name, dict(params), region, key))

        def issued(parsed: Mapping[str, Any], **_: Any) -> None:
            credentials = parsed.get("Credentials") or {}
            if aws.active and credentials.get("AccessKeyId"):
                aws.issued[credentials["AccessKeyId"]] = parsed["AssumedRoleUser"]["Arn"]

        def answer(model: Any, **_: Any) -> Any:
            response = aws.answers.get((service_name, model.name)) if aws.active else None
            if response is None:
                return None
            return AWSResponse("https://recorded.invalid/", 200, {}, None), dict(response)

        events = client.meta.events
        events.register("provide-client-params.*.*", record)
        events.register("after-call.sts.AssumeRole", issued)
        events.register_first("before-call.*.*", answer)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield aws
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        aws.active = False
