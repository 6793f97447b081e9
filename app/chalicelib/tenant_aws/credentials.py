"""Credentials for acting inside a customer's AWS account through the role they created for SESami.

`TenantCredentials.get(tenant, role ARN, external ID)` looks in three places, cheapest first:

1. this Lambda instance's memory, keyed by (tenant, role ARN);
2. the second level shared by every instance (`CredentialCache`; Momento in production), which
   only ever holds AES-256-GCM ciphertext bound to its own key: the cache provider never holds
   usable AWS credentials, and a value copied under another tenant's key does not decrypt;
3. STS AssumeRole, with the external ID SESami issued to the tenant.

Credentials are reused until `refresh_margin` before they expire. The second level is an
optimisation only: when it fails, times out, or holds something unreadable, the provider logs a
warning and asks STS, so a send never fails because the cache is down. After a failure the
instance leaves the second level alone for `cache_pause` (30 s): while Momento is down, at most
one request per instance per pause waits on it (up to the client timeout); the others go
straight to STS. A rotated encryption key behaves like a miss: old entries are overwritten.

STS AccessDenied is `RoleAccessDenied` (422, naming the role); throttling, 5xx or no connection,
once botocore's standard-mode retries are spent, is `ServiceUnavailable` (503, naming STS).

Importing this module loads neither grpc nor momento (nor cryptography): the ingest path and
the API's cold start pay for them only when credentials are first needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.core import aws
from chalicelib.core.errors import (
    ConfigurationError,
    RoleAccessDenied,
    ServiceUnavailable,
)

logger = logging.getLogger("sesami.credentials")

KEY_PREFIX = "sesami:creds:v1:"
NONCE_BYTES = 12
_TAG_BYTES = 16
# STS RoleSessionName: 2-64 characters of [\w+=,.@-] (ASCII word characters).
SESSION_NAME_MAX = 64
_SESSION_NAME_FORBIDDEN = re.compile(r"[^\w+=,.@-]", re.ASCII)
# Used only to prove a role is unsafe; the credentials are thrown away at once.
_PROBE_SESSION_NAME = "sesami-onboarding-probe"
_PROBE_DURATION_SECONDS = 900  # STS minimum


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AwsCredentials:
    """Temporary credentials of an assumed role. Secrets stay out of repr (and so out of logs)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def __post_init__(self) -> None:
        if self.expiration.utcoffset() is None:
            raise ValueError("expiration must be timezone-aware")
        object.__setattr__(self, "expiration", self.expiration.astimezone(UTC))

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments for `boto3.client(...)` / `boto3.Session(...)`."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }

    def usable_at(self, now: datetime, margin: timedelta) -> bool:
        return self.expiration - margin > now

    def to_json(self) -> bytes:
        data = {
            "a": self.access_key_id,
            "s": self.secret_access_key,
            "t": self.session_token,
            "e": self.expiration.isoformat(),
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> AwsCredentials:
        data = json.loads(raw)
        return cls(
            access_key_id=str(data["a"]),
            secret_access_key=str(data["s"]),
            session_token=str(data["t"]),
            expiration=datetime.fromisoformat(str(data["e"])),
        )


class CredentialCache(Protocol):
    """The second level shared by Lambda instances. Both methods raise `CacheUnavailable` on any
    failure; a missing key is `None`, not an error."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl: timedelta) -> None: ...


def cache_key(tenant_id: str, role_arn: str) -> str:
    """Second-level key. The role hash has a fixed length at the end, so the tenant id is
    recoverable from the key and two (tenant, role) pairs never share a key."""
    role_hash = hashlib.sha256(role_arn.encode()).hexdigest()
    return f"{KEY_PREFIX}{tenant_id}:{role_hash}"


def session_name(tenant_id: str) -> str:
    """RoleSessionName shown in the customer's CloudTrail: `sesami-<tenant>`, made to fit STS."""
    return _SESSION_NAME_FORBIDDEN.sub("-", f"sesami-{tenant_id}")[:SESSION_NAME_MAX]


class _Unreadable(Exception):
    """A second-level value that is not ours, was sealed under another key, or is corrupt."""


class _Sealer:
    """AES-256-GCM with a random 96-bit nonce; the cache key is the associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("the credential encryption key must be 32 bytes (AES-256)")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated.encode())

    def open(self, sealed: bytes, associated: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(sealed) < NONCE_BYTES + _TAG_BYTES:
            raise _Unreadable("value too short")
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, associated.encode())
        except InvalidTag as exc:
            raise _Unreadable("authentication failed") from exc


class TenantCredentials:
    """Credentials for a tenant's role: in-process, then the second level, then STS.

    One instance lives per Lambda instance. The STS client is built on first need, once.
    `sts_calls`, `cache_gets` and `cache_sets` count the calls made (benchmarks, tests).
    """

    def __init__(
        self,
        sts_client: Callable[[], Any],
        *,
        second_level: CredentialCache | None,
        encryption_key: bytes,
        clock: Callable[[], datetime] = _utcnow,
        refresh_margin: timedelta = timedelta(minutes=5),
        session_duration: timedelta = timedelta(hours=1),
        cache_pause: timedelta = timedelta(seconds=30),
    ) -> None:
        if not timedelta(minutes=15) <= session_duration <= timedelta(hours=12):
            raise ConfigurationError("session_duration must be between 15 minutes and 12 hours")
        if not timedelta(0) <= refresh_margin < session_duration:
            raise ConfigurationError("refresh_margin must be >= 0 and shorter than the session")
        self._sts_factory = sts_client
        self._sts: Any = None
        self._second_level = second_level
        self._sealer = _Sealer(encryption_key)
        self._clock = clock
        self._margin = refresh_margin
        self._duration_seconds = int(session_duration.total_seconds())
        self._memory: dict[tuple[str, str], AwsCredentials] = {}
        self._cache_pause = cache_pause
        self._cache_paused_until: datetime | None = None
        self.sts_calls = 0
        self.cache_gets = 0
        self.cache_sets = 0

    def get(self, tenant_id: str, role_arn: str, external_id: str) -> AwsCredentials:
        """Usable credentials for the tenant's role (valid for at least `refresh_margin`).

        Raises `RoleAccessDenied` when STS refuses the role; never fails because of the cache.
        """
        memo_key = (tenant_id, role_arn)
        now = self._clock()
        held = self._memory.get(memo_key)
        if held is not None and held.usable_at(now, self._margin):
            return held

        key = cache_key(tenant_id, role_arn)
        creds, reachable = self._read_second_level(key, now)
        if creds is None:
            response = self._assume_role(
                role_arn,
                RoleArn=role_arn,
                RoleSessionName=session_name(tenant_id),
                ExternalId=external_id,
                DurationSeconds=self._duration_seconds,
            )
            creds = _credentials_from(response)
            if reachable:  # a cache that just failed is not worth a second timeout
                self._write_second_level(key, creds)
        self._memory[memo_key] = creds
        return creds

    def assume_without_external_id(self, role_arn: str) -> bool:
        """True when the role can be assumed WITHOUT an external ID, i.e. it is open to the
        confused-deputy problem and must be refused. AccessDenied (the safe answer) is False."""
        try:
            self._assume_role(
                role_arn,
                RoleArn=role_arn,
                RoleSessionName=_PROBE_SESSION_NAME,
                DurationSeconds=_PROBE_DURATION_SECONDS,
            )
        except RoleAccessDenied:
            return False
        return True

    def _sts_client(self) -> Any:
        if self._sts is None:
            self._sts = self._sts_factory()
        return self._sts

    def _assume_role(self, role_arn: str, **params: Any) -> dict[str, Any]:
        self.sts_calls += 1
        try:
            response: dict[str, Any] = self._sts_client().assume_role(**params)
        except aws.errors() as exc:
            failed = aws.failure(exc)
            assert failed is not None
            if failed.retryable:
                raise _sts_unavailable(failed.code) from exc
            if failed.kind is aws.Kind.ACCESS_DENIED:
                raise RoleAccessDenied(
                    f"SESami could not assume the role {role_arn}: STS denied AssumeRole. "
                    "Likely causes: the role's trust policy does not trust SESami's AWS "
                    "account, or its sts:ExternalId condition does not match the external ID "
                    "SESami issued for this tenant (or the role ARN is wrong).",
                    details={"role_arn": role_arn},
                ) from exc
            raise
        return response

    def _read_second_level(self, key: str, now: datetime) -> tuple[AwsCredentials | None, bool]:
        """(usable credentials or None, whether the second level answered)."""
        if self._second_level is None or self._cache_paused(now):
            return None, False
        self.cache_gets += 1
        try:
            sealed = self._second_level.get(key)
        except Exception as exc:  # CacheUnavailable, or an adapter bug: STS still works
            self._pause_cache(now)
            logger.warning(
                "credential cache get failed, asking STS (cache left alone for %ss): %s",
                int(self._cache_pause.total_seconds()),
                _describe(exc),
            )
            return None, False
        self._cache_paused_until = None
        if sealed is None:
            return None, True
        try:
            creds = AwsCredentials.from_json(self._sealer.open(sealed, key))
        except (_Unreadable, ValueError, KeyError, TypeError) as exc:
            logger.warning("unreadable credential cache entry %s, asking STS: %s", key, exc)
            return None, True
        if not creds.usable_at(now, self._margin):
            return None, True
        return creds, True

    def _write_second_level(self, key: str, creds: AwsCredentials) -> None:
        if self._second_level is None:
            return
        ttl = creds.expiration - self._margin - self._clock()
        if ttl <= timedelta(0):
            return
        self.cache_sets += 1
        try:
            self._second_level.set(key, self._sealer.seal(creds.to_json(), key), ttl)
        except Exception as exc:
            self._pause_cache(self._clock())
            logger.warning("credential cache set failed: %s", _describe(exc))

    def _cache_paused(self, now: datetime) -> bool:
        return self._cache_paused_until is not None and now < self._cache_paused_until

    def _pause_cache(self, now: datetime) -> None:
        self._cache_paused_until = now + self._cache_pause


def _credentials_from(response: dict[str, Any]) -> AwsCredentials:
    raw = response["Credentials"]
    return AwsCredentials(
        access_key_id=raw["AccessKeyId"],
        secret_access_key=raw["SecretAccessKey"],
        session_token=raw["SessionToken"],
        expiration=raw["Expiration"],
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _sts_unavailable(reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"AWS STS is throttling or unavailable ({reason}) and retries did not help; SESami "
        "could not get credentials for your account, nothing was done: retry later",
        details={"sts_error": reason, "retryable": True},
    )


def make_sts_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """An STS client with SESami's one retry policy (core/aws.py). Pass
    `functools.partial(make_sts_client, region)` to `TenantCredentials` to build it lazily."""
    return aws.client("sts", region=region or "us-east-1", endpoint=endpoint_url)
