"""The objects a Lambda instance builds once and reuses across invocations.

Nothing here runs at import time, and each path imports only what it needs on first use: the
API function never loads the ingest stack and the ingest function never loads the API's (nor
grpc/momento). Importing `app.py` therefore costs little more than importing Chalice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from chalicelib.core.settings import Settings
    from chalicelib.ingest.pipeline import IngestReport
    from chalicelib.ingest.store import EventStore, TenantDirectory


_CACHED: list[Any] = []
_F = TypeVar("_F", bound=Callable[..., Any])


def _cached(fn: _F) -> _F:
    """functools.cache, remembered so that `reset()` can clear it."""
    wrapped = functools.cache(fn)
    _CACHED.append(wrapped)
    return wrapped  # type: ignore[return-value]


_explicit: list[Settings] = []


def use(value: Settings | None) -> None:
    """Run with these settings instead of the environment's (tests, the local stack); None goes
    back to the environment. Every cached object is rebuilt."""
    _explicit[:] = [value] if value is not None else []
    reset()


@_cached
def settings() -> Settings:
    from chalicelib.core import tables
    from chalicelib.core.settings import Settings

    value = _explicit[0] if _explicit else Settings.from_env()
    tables.configure(value)
    return value


@_cached
def tenant_directory() -> TenantDirectory:
    from chalicelib.ingest.store import TenantDirectory

    return TenantDirectory(ttl_seconds=settings().tenant_cache_seconds)


@_cached
def event_store() -> EventStore:
    from chalicelib.ingest.store import EventStore

    return EventStore(settings())


def ingest(envelopes: list[Any]) -> IngestReport:
    from chalicelib.ingest.pipeline import ingest_envelopes

    return ingest_envelopes(envelopes, tenants=tenant_directory(), store=event_store())


# ---------------------------------------------------------------------------- API side

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.tenant_aws.credentials import AwsCredentials, TenantCredentials
    from chalicelib.tenants.accounts import AccountService, Verifier
    from chalicelib.tenants.auth import TokenVerifier
    from chalicelib.tenants.membership import Membership, TenantService
    from chalicelib.tenants.signin import UserPoolSignIn


def aws_client(
    service: str, credentials: AwsCredentials | None = None, region: str | None = None
) -> Any:
    """A boto3 client for SESami's own account (credentials None) or a tenant's (assumed role).
    On the local stack every AWS API but DynamoDB is moto's server."""
    import boto3
    from botocore.config import Config

    s = settings()
    kwargs: dict[str, Any] = dict(credentials.boto3_kwargs()) if credentials else {}
    return boto3.client(
        service,
        region_name=region or s.region,
        endpoint_url=s.aws_endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 4}),
        **kwargs,
    )


@_cached
def token_verifier() -> TokenVerifier:
    from chalicelib.tenants.auth import AuthConfig, TokenVerifier

    s = settings()
    return TokenVerifier(
        AuthConfig(
            region=s.region,
            user_pool_id=s.user_pool_id,
            client_ids=frozenset(s.user_pool_client_ids),
            jwks_url=s.jwks_url or "",
        )
    )


@_cached
def tenant_service() -> TenantService:
    from chalicelib.tenants.membership import CognitoUserDirectory, TenantService

    return TenantService(CognitoUserDirectory(aws_client("cognito-idp"), settings().user_pool_id))


def authenticate(request: Request) -> Membership:
    """The caller's tenant membership, from a token this app verified itself."""
    from chalicelib.tenants.membership import Caller

    claims = token_verifier().verify(request.headers.get("authorization"))
    caller = Caller(
        sub=claims.sub,
        email=claims.email,
        username=claims.username,
        tenant_id=claims.tenant_id,
        tenant_role=claims.tenant_role,
    )
    return tenant_service().membership(caller)


@_cached
def signin() -> UserPoolSignIn:
    from chalicelib.core.errors import ConfigurationError
    from chalicelib.tenants.signin import UserPoolSignIn

    s = settings()
    if not s.user_pool_client_ids:
        raise ConfigurationError("SESAMI_USER_POOL_CLIENT_IDS is required to sign users in")
    # The first client is the dashboard's (the one the operator stack creates).
    return UserPoolSignIn(aws_client("cognito-idp"), s.user_pool_client_ids[0])


@_cached
def credentials() -> TenantCredentials:
    from datetime import timedelta

    from chalicelib.core.errors import ConfigurationError
    from chalicelib.tenant_aws.credentials import (
        TenantCredentials,
        make_sts_client,
        momento_cache_from_settings,
    )

    s = settings()
    if not s.credentials_key:
        raise ConfigurationError("SESAMI_CREDENTIALS_KEY is required to act in tenant accounts")
    second_level = momento_cache_from_settings(
        s.momento_api_key,
        s.momento_local,
        s.momento_cache,
        timedelta(milliseconds=500),
        api_endpoint=s.momento_endpoint,
    )
    return TenantCredentials(
        lambda: make_sts_client(s.region, s.aws_endpoint),
        second_level=second_level,
        encryption_key=s.credentials_key,
    )


def platform() -> Any:
    from chalicelib.tenants.accounts import PlatformInfo

    s = settings()
    return PlatformInfo(
        account_id=s.account_id,
        event_bus_arn=s.event_bus_arn,
        region=s.region,
        role_arns=s.role_arns,
        skip_external_id_refusal_check=s.skip_external_id_check,
    )


@_cached
def account_service() -> AccountService:
    from chalicelib.tenants.accounts import AccountService, EventBridgeBusPolicy

    s = settings()
    bus = EventBridgeBusPolicy(aws_client("events"), s.event_bus_name)
    return AccountService(platform(), credentials(), bus)


@_cached
def verifier() -> Verifier:
    from chalicelib.tenants.accounts import Verifier

    return Verifier(platform(), credentials(), aws_client)


@_cached
def signer() -> Any:
    from chalicelib.core.errors import ConfigurationError
    from chalicelib.core.signing import Signer

    key = settings().signing_key
    if not key:
        raise ConfigurationError("SESAMI_SIGNING_KEY is required (cursors, unsubscribe links)")
    return Signer(key)


def reset() -> None:
    """Forget every cached object (tests change settings between cases)."""
    for cached in _CACHED:
        cached.cache_clear()
