"""The one module that builds SESami's services: every object a Lambda instance builds once and
reuses across invocations, and every service a request uses, is made here and nowhere else.
Long by design: it is the one composition root, so every feature's construction is here.

Nothing here runs at import time, and each path imports only what it needs on first use: the
API function never loads the ingest stack and the ingest function never loads the API's (nor
grpc/momento). Importing `app.py` therefore costs little more than importing Chalice.

Tests and the local stack change what is built only through `use(...)`: the settings, and two
seams the local stack needs (a bulk runner that is not Lambda; the SES simulator around every
tenant's sender). `use` forgets every cached object, so the next call builds afresh.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.content.service import ContentService
    from chalicelib.core.settings import Settings
    from chalicelib.core.signing import Signer
    from chalicelib.core.tables import TenantModel
    from chalicelib.identities.service import IdentityService
    from chalicelib.ingest.directory import TenantDirectory
    from chalicelib.ingest.pipeline import IngestReport
    from chalicelib.ingest.store import EventStore
    from chalicelib.sending.hooks import Hooks
    from chalicelib.sending.service import MailService
    from chalicelib.sending.suppression_cache import CachedSuppressionCheck
    from chalicelib.sending.worker import BulkRunner, BulkWorker
    from chalicelib.suppression.store import SuppressionService
    from chalicelib.templates.service import TemplateService
    from chalicelib.tenant_aws.credentials import TenantCredentials
    from chalicelib.tenant_aws.gateway import Gateway, SesWrapper
    from chalicelib.tenant_aws.ses import Ses
    from chalicelib.tenants.accounts import AccountService, PlatformInfo
    from chalicelib.tenants.auth import TokenVerifier
    from chalicelib.tenants.membership import Membership, TenantService
    from chalicelib.tenants.setup_check import Verifier
    from chalicelib.tenants.signin import UserPoolSignIn


_CACHED: list[Any] = []
_F = TypeVar("_F", bound=Callable[..., Any])


def _cached(fn: _F) -> _F:
    """functools.cache, remembered so that `reset()` can clear it."""
    wrapped = functools.cache(fn)
    _CACHED.append(wrapped)
    return wrapped  # type: ignore[return-value]


@dataclass(frozen=True)
class _Choices:
    settings: Settings | None = None
    bulk_runner: BulkRunner | None = None
    ses_wrapper: SesWrapper | None = None


_choices = [_Choices()]
_UNSET: Any = object()


def use(
    value: Settings | None = _UNSET,
    *,
    bulk_runner: BulkRunner | None = _UNSET,
    ses_wrapper: SesWrapper | None = _UNSET,
) -> None:
    """Build with these instead of the environment's (tests, the local stack). Arguments left
    out keep their current choice; None goes back to the default. Every cached object is
    rebuilt."""
    current = _choices[0]
    _choices[0] = _Choices(
        settings=current.settings if value is _UNSET else value,
        bulk_runner=current.bulk_runner if bulk_runner is _UNSET else bulk_runner,
        ses_wrapper=current.ses_wrapper if ses_wrapper is _UNSET else ses_wrapper,
    )
    reset()


def reset() -> None:
    """Forget every cached object (tests change settings between cases)."""
    for cached in _CACHED:
        cached.cache_clear()


@_cached
def settings() -> Settings:
    from chalicelib.core import tables
    from chalicelib.core.settings import Settings

    value = _choices[0].settings or Settings.from_env()
    tables.configure(value)
    return value


def aws_client(service: str) -> Any:
    """A boto3 client for SESami's own account (core/aws.py: one factory, one retry policy).
    On the local stack every AWS API but DynamoDB is moto's server."""
    from chalicelib.core import aws

    s = settings()
    return aws.client(service, region=s.region, endpoint=s.aws_endpoint)


@_cached
def signer() -> Signer:
    from chalicelib.core.errors import ConfigurationError
    from chalicelib.core.signing import Signer

    key = settings().signing_key
    if not key:
        raise ConfigurationError("SESAMI_SIGNING_KEY is required (cursors, unsubscribe links)")
    return Signer(key)


# ---------------------------------------------------------------------------- ingest


@_cached
def tenant_directory() -> TenantDirectory:
    from chalicelib.ingest.directory import TenantDirectory

    return TenantDirectory(ttl_seconds=settings().tenant_cache_seconds)


@_cached
def event_store() -> EventStore:
    from chalicelib.ingest.store import EventStore

    return EventStore(settings())


def ingest(envelopes: list[Any]) -> IngestReport:
    from chalicelib.ingest.pipeline import ingest_envelopes

    return ingest_envelopes(envelopes, tenants=tenant_directory(), store=event_store())


# ---------------------------------------------------------------------------- tenants


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
    from chalicelib.tenants.cognito import CognitoUserDirectory
    from chalicelib.tenants.membership import TenantService

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


def platform() -> PlatformInfo:
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

    bus = EventBridgeBusPolicy(aws_client("events"), settings().event_bus_name)
    return AccountService(platform(), credentials(), bus)


@_cached
def verifier() -> Verifier:
    from chalicelib.tenants.setup_check import Verifier

    return Verifier(platform(), credentials(), gateway())


# ---------------------------------------------------------------------------- tenant accounts


@_cached
def credentials() -> TenantCredentials:
    from datetime import timedelta

    from chalicelib.core.errors import ConfigurationError
    from chalicelib.tenant_aws.credentials import TenantCredentials, make_sts_client

    s = settings()
    if not s.credentials_key:
        raise ConfigurationError("SESAMI_CREDENTIALS_KEY is required to act in tenant accounts")
    second_level = None
    if s.momento_api_key or s.momento_local:
        from chalicelib.tenant_aws.momento import momento_cache_from_settings

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


@_cached
def gateway() -> Gateway:
    from chalicelib.tenant_aws.gateway import Gateway

    s = settings()
    return Gateway(
        credentials(),
        default_region=s.region,
        endpoint=s.aws_endpoint,
        ses_wrapper=_choices[0].ses_wrapper,
    )


# ---------------------------------------------------------------------------- suppression


def suppression_service() -> SuppressionService:
    from chalicelib.suppression.store import SuppressionService

    return SuppressionService(signer())


# ---------------------------------------------------------------------------- sending


@_cached
def bulk_runner() -> BulkRunner:
    """Lambda when the settings name the worker function, else a thread of this process."""
    from chalicelib.sending.worker import LambdaRunner, ThreadRunner

    chosen = _choices[0].bulk_runner
    if chosen is not None:
        return chosen
    function = settings().bulk_worker_function
    if function:
        return LambdaRunner(aws_client("lambda"), function)
    return ThreadRunner(run_bulk_slice)


def _ses_for(tenant: TenantModel) -> Ses:
    return gateway().for_tenant(tenant).ses()


def _tenant(tenant_id: str) -> TenantModel:
    from chalicelib.core.tables import TenantModel

    return TenantModel.get(tenant_id, consistent_read=True)


@_cached
def suppression_check() -> CachedSuppressionCheck | None:
    """The send-time suppression check through Momento (sending/suppression_cache.py) when
    Momento is configured; None: straight from DynamoDB."""
    from datetime import timedelta

    s = settings()
    if not (s.momento_api_key or s.momento_local):
        return None
    from chalicelib.sending.momento_cache import momento_dictionaries
    from chalicelib.sending.store import SendingStore
    from chalicelib.sending.suppression_cache import CachedSuppressionCheck

    cache = momento_dictionaries(
        s.momento_api_key,
        s.momento_local,
        s.momento_cache,
        timedelta(milliseconds=500),
        api_endpoint=s.momento_endpoint,
    )
    return CachedSuppressionCheck(SendingStore(s), cache)


def sending_hooks() -> Hooks:
    from chalicelib.sending.hooks import Hooks
    from chalicelib.sending.store import SendingStore

    cached = suppression_check()
    return Hooks(
        suppressed=cached.suppressed if cached else SendingStore(settings()).suppressed,
        template=template_service().resolve,
        check_sender=identity_service().check_sender,
        keep_content=content_service().keep,
    )


def mail_service() -> MailService:
    from chalicelib.sending.service import MailService
    from chalicelib.sending.store import SendingStore

    s = settings()
    return MailService(
        s, SendingStore(s), _ses_for, signer(), runner=bulk_runner(), hooks=sending_hooks()
    )


def bulk_worker(max_per_invocation: int | None = None) -> BulkWorker:
    from chalicelib.sending.store import SendingStore
    from chalicelib.sending.worker import BulkWorker

    s = settings()
    return BulkWorker(
        SendingStore(s),
        _ses_for,
        signer(),
        bulk_runner(),
        s.public_url,
        tenant_for=_tenant,
        max_per_invocation=max_per_invocation,
        hooks=sending_hooks(),
    )


def run_bulk_slice(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The bulk_worker function (and ThreadRunner): one slice of one batch."""
    import logging

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    outcome = bulk_worker().run(event, float(remaining()) if callable(remaining) else None)
    logging.getLogger("sesami.sending").info("bulk worker %s: %s", event.get("batch_id"), outcome)
    return outcome


# ---------------------------------------------------------------------------- templates


@_cached
def template_service() -> TemplateService:
    from chalicelib.templates.service import MAX_TEMPLATES, TemplateService
    from chalicelib.templates.store import TemplateStore

    def preview_url(tenant_id: str, template_id: str, which: str) -> str:
        from chalicelib.content.display import frame_token

        ref = {"id": template_id, "v": which}
        token = frame_token(signer(), tenant_id, "template", ref, remote=False)
        return f"{settings().public_url}/frames/{token}"

    return TemplateService(TemplateStore(MAX_TEMPLATES), preview_url)


# ---------------------------------------------------------------------------- identities


@_cached
def identity_service() -> IdentityService:
    """Cached: it keeps each tenant's verified identities for a minute (the sender check)."""
    from chalicelib.identities.service import IdentityService

    return IdentityService(lambda t: gateway().for_tenant(t).identities(), signer())


# ---------------------------------------------------------------------------- content


@_cached
def content_service() -> ContentService:
    from chalicelib.content.service import ContentService

    s = settings()
    store = None
    if s.content_bucket:
        from chalicelib.content.store import S3ContentStore

        store = S3ContentStore(aws_client("s3"), s.content_bucket)
    return ContentService(store, signer(), frame_base=f"{s.public_url}/frames")


def set_content_retention(tenant: TenantModel, body: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.content.service import parse_retention
    from chalicelib.content.store import set_retention

    days = parse_retention(body)
    set_retention(tenant.tenant_id, days)
    tenant.content_retention_days = days
    return content_service().settings(tenant)


def frame(token: str) -> tuple[str, bool]:
    """GET /frames/{token}: (document, remote) of a stored message or a template preview."""
    from chalicelib.content.display import frame_document, read_frame_token
    from chalicelib.core.errors import InvalidRequest

    data = read_frame_token(signer(), token)
    if data["kind"] == "content":
        return content_service().frame(token)
    ref = data["ref"]
    if data["kind"] != "template" or not isinstance(ref.get("id"), str):
        raise InvalidRequest("token is not a valid token", details={"field": "token"})
    html_body = template_service().frame_html(data["tenant_id"], ref["id"], str(ref.get("v")))
    return frame_document(html_body), False
