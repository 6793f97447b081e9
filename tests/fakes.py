"""The in-memory fakes the tests and the benchmarks share: one of each, named for the interface it
stands in for. A fake keeps what it was asked (to count calls, never to time them) and answers
as the real service would; tests set its state, not patch its methods.

    FakeClock           aware datetimes (credentials, STS expirations)
    FakeEpochClock      epoch seconds, and a `sleep` that moves them (JWT expiry, bulk pacing)
    FakeSts             STS AssumeRole: credentials relative to a FakeClock
    FakeCredentialCache the credentials' second level (`CredentialCache`), can be made to fail
    FakeSes             the `Ses` interface the sending service uses
    FakeRoleAccess      assuming a customer's role (`RoleAccess`), with the trust STS enforces
    FakeUserDirectory   the user pool's admin API (`UserDirectory`)
    AwsWire             not a fake of an interface: real clients, seen and faulted at botocore's
                        event hooks, for tests that go through the API to moto

For a whole local service rather than an interface, the tests use the real emulators (DynamoDB
Local, moto's server, the local Momento server); tests/clients/fake_api.py fakes SESami's own
HTTP API for the Python client.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace
from typing import Any

from chalicelib.core.errors import RoleAccessDenied
from chalicelib.tenant_aws.ses import DEFAULT_MAX_SEND_RATE, OutgoingEmail, SendRate

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------- clocks


class FakeClock:
    """Aware datetimes the test sets or advances."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class FakeEpochClock:
    """Epoch seconds the test sets or advances; `sleep` advances them and records each sleep
    (to the microsecond) instead of waiting."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    @classmethod
    def starting_now(cls) -> FakeEpochClock:
        """Real epoch seconds at first, for what compares them with real time (DynamoDB TTLs,
        signatures' timestamps); then they move only when the test moves them."""
        return cls(time.time())

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


# ---------------------------------------------------------------------------- credentials


class FakeSts:
    """STS's AssumeRole: credentials for `DurationSeconds` from the clock's now, each with a new
    key. Records every call's parameters and the time it came; `latency` moves the clock during
    the call, as a real round trip would."""

    def __init__(self, clock: FakeClock, latency: timedelta = timedelta(0)) -> None:
        self.clock, self.latency = clock, latency
        self.calls: list[dict[str, Any]] = []
        self.called_at: list[datetime] = []
        self._serial = count(1)

    def assume_role(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        self.called_at.append(self.clock())
        self.clock.advance(self.latency)
        n = next(self._serial)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAFAKE{n:012d}",
                "SecretAccessKey": f"secret-{n}-{os.urandom(8).hex()}",
                "SessionToken": f"token-{n}-{os.urandom(16).hex()}",
                "Expiration": self.clock() + timedelta(seconds=params["DurationSeconds"]),
            }
        }

    def calls_by_session(self) -> dict[str, list[datetime]]:
        """When each role session name called, in order."""
        out: defaultdict[str, list[datetime]] = defaultdict(list)
        for params, at in zip(self.calls, self.called_at, strict=True):
            out[params["RoleSessionName"]].append(at)
        return dict(out)


class FakeCredentialCache:
    """An in-memory `CredentialCache` that records each call ("get", "set"). While `failing` is
    set, each call is recorded and raises it."""

    def __init__(self, failing: Exception | None = None) -> None:
        self.items: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.failing = failing

    def get(self, key: str) -> bytes | None:
        self.calls.append("get")
        if self.failing is not None:
            raise self.failing
        return self.items.get(key)

    def set(self, key: str, value: bytes, ttl: timedelta) -> None:
        self.calls.append("set")
        if self.failing is not None:
            raise self.failing
        self.items[key] = value


# ---------------------------------------------------------------------------- a tenant's account


class FakeSes:
    """The `Ses` interface: keeps every email it accepts in `sent` and answers a new message ID;
    an email whose first recipient is in `refuse` raises that error instead. `send_rate` answers
    `rate` messages per second, as the account's quota."""

    def __init__(
        self, rate: float = DEFAULT_MAX_SEND_RATE, refuse: Mapping[str, Exception] | None = None
    ) -> None:
        self.rate, self.refuse = rate, dict(refuse or {})
        self.sent: list[OutgoingEmail] = []

    def send(self, email: OutgoingEmail) -> str:
        if email.to[0] in self.refuse:
            raise self.refuse[email.to[0]]
        self.sent.append(email)
        return f"fake-{uuid.uuid4().hex}"

    def send_rate(self) -> SendRate:
        return SendRate(self.rate, "ses")


@dataclass
class FakeRoleAccess:
    """Assuming customers' roles with their trust policies as STS would enforce them: `trust`
    maps a role ARN to the ExternalId it requires (None: the role trusts SESami without one)."""

    trust: dict[str, str | None] = field(default_factory=dict)
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    def get(self, tenant_id: str, role_arn: str, external_id: str) -> Any:
        self.calls.append((role_arn, external_id))
        if role_arn not in self.trust or self.trust[role_arn] not in (None, external_id):
            raise RoleAccessDenied(f"SESami cannot assume {role_arn}")
        return SimpleNamespace(access_key_id=f"ASIA{len(self.calls)}")

    def assume_without_external_id(self, role_arn: str) -> bool:
        self.calls.append((role_arn, None))
        return role_arn in self.trust and self.trust[role_arn] is None


# ---------------------------------------------------------------------------- SESami's account


@dataclass
class FakeUserDirectory:
    """The user pool: the tenant attributes set on each user (and whether they signed out or
    have an authenticator app), and the invitations sent."""

    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    invited: list[tuple[str, str, str]] = field(default_factory=list)

    def set_tenant(self, username: str, tenant_id: str, role: str) -> None:
        self.attributes[username] = {"tenant_id": tenant_id, "role": role}

    def invite(self, email: str, tenant_id: str, role: str) -> None:
        self.invited.append((email, tenant_id, role))

    def resend_invitation(self, email: str) -> None:
        self.invited.append((email, "resent", ""))

    def delete_user(self, username: str) -> bool:
        return self.attributes.pop(username, None) is not None

    def sign_out(self, username: str) -> None:
        self.attributes.setdefault(username, {})["signed_out"] = "yes"

    def has_totp(self, username: str) -> bool:
        return self.attributes.get(username, {}).get("totp") == "yes"


# ---------------------------------------------------------------------------- the AWS wire


@dataclass
class Fault:
    status: int
    code: str
    times: int  # attempts to answer with it; then the real service answers


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


class AwsWire:
    """Chosen AWS operations ("sesv2.SendEmail", "sts.AssumeRole") as botocore sends them, seen
    at the event hooks of boto3's default session (the one core/aws.py builds clients from):
    each call's parameters are kept in `calls[operation]` and every attempt is counted in
    `attempts`, so botocore's retries are exercised as configured. `inject` has the wire answer
    an operation with an HTTP error for some attempts; then the real service (moto) answers.

    Clients copy the session's handlers when they are built: install the wire before SESami
    builds its clients, or `wiring.reset()` after installing it."""

    def __init__(self, *operations: str) -> None:
        self.operations = operations
        self.calls: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.attempts: Counter[str] = Counter()
        self.planned: dict[str, Fault] = {}

    def inject(self, operation: str, status: int, code: str, times: int = 1_000) -> None:
        self.planned[operation] = Fault(status, code, times)

    def clear(self) -> None:
        """No more faults: the real service answers every attempt."""
        self.planned.clear()

    @contextmanager
    def installed(self) -> Iterator[AwsWire]:
        import boto3  # here: the Pulumi environment has no boto3 and never uses the wire

        events = boto3._get_default_session().events
        for operation in self.operations:
            events.register(f"provide-client-params.{operation}", self._capture)
            events.register(f"before-send.{operation}", self._answer)
        try:
            yield self
        finally:
            for operation in self.operations:
                events.unregister(f"provide-client-params.{operation}", self._capture)
                events.unregister(f"before-send.{operation}", self._answer)

    def _capture(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        operation = event_name.removeprefix("provide-client-params.")
        self.calls[operation].append(json.loads(json.dumps(params, default=str)))

    def _answer(self, request: Any, event_name: str, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        operation = event_name.removeprefix("before-send.")
        self.attempts[operation] += 1
        fault = self.planned.get(operation)
        if fault is None or fault.times <= 0:
            return None
        fault.times -= 1
        if operation.startswith("sts."):  # the query protocol answers in XML
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code>"
                f"<Message>injected {fault.code}</Message></Error>"
                "<RequestId>fault</RequestId></ErrorResponse>"
            ).encode()
            headers = {"Content-Type": "text/xml"}
        else:  # SESv2: REST-JSON
            body = json.dumps({"message": f"injected {fault.code}"}).encode()
            headers = {"x-amzn-ErrorType": fault.code, "Content-Type": "application/json"}
        return AWSResponse(request.url, fault.status, headers, _Body(body))
