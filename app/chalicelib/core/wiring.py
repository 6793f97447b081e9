"""The one module that builds SESami's services: every object a Lambda instance builds once and
reuses across invocations, and every service a request uses, is made here and nowhere else.
Long by design: it is the one composition root, one short builder per service.

Nothing here runs at import time, and each path imports only what it needs on first use: the
API function never loads the ingest stack and the ingest function never loads the API's (nor
grpc/momento). Importing `app.py` therefore costs little more than importing Chalice.

Tests and the local stack change what is built only through `use(...)`: the settings, and the
seams the local stack and tests need (a bulk runner that is not Lambda; the SES simulator around
every tenant's sender; the webhook queue and the resolver webhook URLs are looked up with). `use`
forgets every cached object, so the next call builds afresh.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from chalice.app import AuthRequest, AuthResponse, Request

    from chalicelib.content.service import ContentService
    from chalicelib.core.settings import Settings
    from chalicelib.core.signing import Signer
    from chalicelib.core.tables import TenantModel
    from chalicelib.identities.service import IdentityService
    from chalicelib.ingest.directory import TenantDirectory
    from chalicelib.ingest.pipeline import IngestReport
    from chalicelib.ingest.store import EventStore
    from chalicelib.lifecycle.audit import AuditLog
    from chalicelib.lifecycle.deletion import TenantDeletion
    from chalicelib.lifecycle.jobs import Handler, Jobs
    from chalicelib.lifecycle.service import Lifecycle
    from chalicelib.quotas.limiter import Quotas
    from chalicelib.relays.store import RelayRangesObject
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
    from chalicelib.tenants.api_keys import ApiKeyService
    from chalicelib.tenants.auth import TokenVerifier
    from chalicelib.tenants.membership import Membership, TenantService
    from chalicelib.tenants.setup_check import Verifier
    from chalicelib.tenants.signin import UserPoolSignIn
    from chalicelib.webhooks.alerts import AlertService
    from chalicelib.webhooks.delivery import DeliveryWorker
    from chalicelib.webhooks.endpoints import EndpointService
    from chalicelib.webhooks.enqueue import Notifier, Routes
    from chalicelib.webhooks.mail import AdminMailer
    from chalicelib.webhooks.outbound import Policy, Resolver
    from chalicelib.webhooks.queue import Queue
    from chalicelib.webhooks.store import WebhookStore


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
    webhook_queue: Queue | None = None
    webhook_resolver: Resolver | None = None


_choices = [_Choices()]
_UNSET: Any = object()


def use(
    value: Settings | None = _UNSET,
    *,
    bulk_runner: BulkRunner | None = _UNSET,
    ses_wrapper: SesWrapper | None = _UNSET,
    webhook_queue: Queue | None = _UNSET,
    webhook_resolver: Resolver | None = _UNSET,
) -> None:
    """Build with these instead of the environment's (tests, the local stack). Arguments left
    out keep their current choice; None goes back to the default. Every cached object is
    rebuilt."""
    current = _choices[0]
    _choices[0] = _Choices(
        settings=current.settings if value is _UNSET else value,
        bulk_runner=current.bulk_runner if bulk_runner is _UNSET else bulk_runner,
        ses_wrapper=current.ses_wrapper if ses_wrapper is _UNSET else ses_wrapper,
        webhook_queue=current.webhook_queue if webhook_queue is _UNSET else webhook_queue,
        webhook_resolver=(
            current.webhook_resolver if webhook_resolver is _UNSET else webhook_resolver
        ),
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


@_cached
def quotas() -> Quotas:
    """The quotas of this instance: counted in Momento when it is configured (shared by every
    instance), else in this process's memory (a developer's machine)."""
    from chalicelib.quotas.limiter import Quotas
    from chalicelib.quotas.limits import Limits

    s = settings()
    store = None
    if s.momento_api_key or s.momento_local:
        from chalicelib.quotas.momento import momento_counters_from_settings

        store = momento_counters_from_settings(
            s.momento_api_key, s.momento_local, s.momento_cache, api_endpoint=s.momento_endpoint
        )
    return Quotas(Limits.from_settings(s), store, expected_instances=s.quota_expected_instances)


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

    _published_relay_ranges()
    notifier = webhook_notifier()
    return ingest_envelopes(
        envelopes,
        tenants=tenant_directory(),
        store=event_store(),
        notify=notifier.recorded if notifier is not None else None,
    )


# ---------------------------------------------------------------------------- relay ranges


@_cached
def relay_ranges_copy(*, reading: bool = False) -> RelayRangesObject | None:
    """SESami's refreshed copy of Apple's relay ranges (None without a bucket: the local stack).
    Ingest reads it with short timeouts (`reading`); the refresh function writes it."""
    from chalicelib.core import aws
    from chalicelib.relays.store import READ_CONFIG, RelayRangesObject

    s = settings()
    if not s.relay_ranges_bucket:
        return None
    client = aws.client(
        "s3", region=s.region, endpoint=s.aws_endpoint, config=READ_CONFIG if reading else None
    )
    return RelayRangesObject(client, s.relay_ranges_bucket)


@_cached
def _published_relay_ranges() -> None:
    """Once per instance: the classifier reads the copy (lazily, on the first open or click)."""
    from chalicelib.events import relay_ranges

    copy = relay_ranges_copy(reading=True)
    relay_ranges.use_published(copy.lines if copy is not None else None)


def refresh_relay_ranges() -> dict[str, Any]:
    """The scheduled `relay_ranges` function: Apple's list, fetched, merged, stored."""
    from datetime import UTC, datetime

    from chalicelib.core.errors import ConfigurationError
    from chalicelib.relays.refresh import fetch_https, refresh

    copy = relay_ranges_copy()
    if copy is None:
        raise ConfigurationError("SESAMI_RELAY_RANGES_BUCKET is not set: nowhere to store")
    return refresh(fetch_https, copy, today=datetime.now(UTC).date())


def ingest_queue_batch(records: list[Any]) -> dict[str, Any]:
    """One batch of the ingest queue: {"batchItemFailures": [...]} names the records to retry."""
    from chalicelib.ingest.pipeline import ingest_queue_records

    _published_relay_ranges()
    notifier = webhook_notifier()
    _report, failed = ingest_queue_records(
        records,
        tenants=tenant_directory(),
        store=event_store(),
        notify=notifier.recorded if notifier is not None else None,
    )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


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


@_cached
def api_key_service() -> ApiKeyService:
    from chalicelib.tenants.api_keys import ApiKeyService

    settings()  # points the tables at this deployment's
    return ApiKeyService()


def authenticate(request: Request, *, deleting: bool = False) -> Membership:
    """The caller's tenant membership, from a credential this app verified itself: an API key
    (`sk_...`: its tenant and its scope's role) or a Cognito JWT (the user's binding). A tenant
    being deleted is a 410 unless `deleting`."""
    from chalicelib.tenants.api_keys import presented_key
    from chalicelib.tenants.membership import Caller

    header = request.headers.get("authorization")
    key = presented_key(header)
    if key is not None:
        return api_key_service().membership(key)
    claims = token_verifier().verify(header)
    caller = Caller(
        sub=claims.sub,
        email=claims.email,
        username=claims.username,
        tenant_id=claims.tenant_id,
        tenant_role=claims.tenant_role,
    )
    membership = tenant_service().membership(caller, deleting=deleting)
    if settings().admin_mfa_required:
        membership = tenant_service().with_mfa_rule(membership)
    return membership


def authenticate_while_deleting(request: Request) -> Membership:
    """For the deletion's own progress: the one route a tenant being deleted still answers."""
    return authenticate(request, deleting=True)


def authorize(request: AuthRequest) -> AuthResponse:
    """The gateway's authorizer (app.py): the same checks of a JWT or a key as `authenticate`,
    without the team lookups and writes (chalicelib.tenants.authorizer)."""
    from chalicelib.tenants.authorizer import authorize as check

    return check(request, verify_token=token_verifier().verify, verify_key=api_key_service().verify)


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
    from chalicelib.tenants.accounts import AccountService

    return AccountService(platform(), credentials())


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


# ---------------------------------------------------------------------------- lifecycle


def audit_log() -> AuditLog:
    from chalicelib.lifecycle.audit import AuditLog

    return AuditLog(signer())


def tenant_deletion() -> TenantDeletion:
    from chalicelib.lifecycle.deletion import TenantDeletion
    from chalicelib.tenants.cognito import CognitoUserDirectory

    s = settings()
    return TenantDeletion(
        signer(),
        audit_log(),
        lambda: CognitoUserDirectory(aws_client("cognito-idp"), s.user_pool_id),
        s.retention_days,
        delete_content=lambda tenant_id: content_service().delete_content(tenant_id, "all"),
    )


@_cached
def lifecycle_jobs() -> Jobs:
    from chalicelib.lifecycle import content_retention, deletion, erasure
    from chalicelib.lifecycle.jobs import Jobs

    handlers: dict[str, Handler] = {
        erasure.KIND: erasure.Erasure(
            audit_log(),
            delete_content=lambda tenant_id, ids: content_service().delete_content(tenant_id, ids),
        ),
        deletion.KIND: tenant_deletion(),
        content_retention.KIND: content_retention.ContentRetention(
            lambda *args: content_service().purge_past_retention(*args)
        ),
    }
    return Jobs(bulk_runner(), handlers)


def lifecycle() -> Lifecycle:
    from chalicelib.lifecycle.service import Lifecycle
    from chalicelib.suppression.entries import normalize_address

    return Lifecycle(
        account_service(), audit_log(), lifecycle_jobs(), tenant_deletion(), normalize_address
    )


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
    """The tenant's SES sender; one that refuses (423) while an alert paused its sending."""
    from chalicelib.webhooks.pause import guard

    return guard(tenant.sending_paused, lambda: gateway().for_tenant(tenant).ses())


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
    from chalicelib.sending.slots import BulkSlots
    from chalicelib.sending.store import SendingStore

    s = settings()
    return MailService(
        s,
        SendingStore(s),
        _ses_for,
        signer(),
        runner=bulk_runner(),
        slots=BulkSlots(),
        bulk_batches=lambda tenant: quotas().limits(tenant).bulk_batches,
        hooks=sending_hooks(),
    )


def bulk_worker(max_per_invocation: int | None = None) -> BulkWorker:
    from chalicelib.sending.slots import BulkSlots
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
        reserve_sends=quotas().reserve_sends,
        slots=BulkSlots(),
        hooks=sending_hooks(),
    )


def run_bulk_slice(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The bulk_worker function (and ThreadRunner): one slice of one batch, or of one lifecycle
    job (an erasure, a tenant deletion: `{"kind": "lifecycle", ...}`)."""
    import logging

    from chalicelib.lifecycle.jobs import EVENT_KIND

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    left = float(remaining()) if callable(remaining) else None
    if event.get("kind") == EVENT_KIND:
        done = lifecycle_jobs().run(event, left)
        logging.getLogger("sesami.lifecycle").info("lifecycle job: %s", done)
        return done
    outcome = bulk_worker().run(event, left)
    logging.getLogger("sesami.sending").info("bulk worker %s: %s", event.get("batch_id"), outcome)
    return outcome


# ---------------------------------------------------------------------------- webhooks, alerts


@_cached
def webhook_store() -> WebhookStore:
    from chalicelib.webhooks.store import WebhookStore

    settings()  # the tables are configured
    return WebhookStore()


@_cached
def webhook_queue() -> Queue | None:
    """SQS (SESAMI_WEBHOOK_QUEUE_URL), or the one `use` chose; None: webhooks are off."""
    chosen = _choices[0].webhook_queue
    if chosen is not None:
        return chosen
    url = settings().webhook_queue_url
    if not url:
        return None
    from chalicelib.webhooks.queue import SqsQueue

    return SqsQueue(aws_client("sqs"), url)


@_cached
def webhook_routes() -> Routes:
    from chalicelib.webhooks.endpoints import routes_of
    from chalicelib.webhooks.enqueue import Routes

    store = webhook_store()
    return Routes(lambda tid: routes_of(store.endpoints(tid)), settings().tenant_cache_seconds)


@_cached
def webhook_notifier() -> Notifier | None:
    """What ingest and the suppression list tell webhooks through; None without a queue."""
    from chalicelib.webhooks.enqueue import Notifier

    queue = webhook_queue()
    if queue is None:
        import logging

        logging.getLogger("sesami.webhooks").info("webhooks are off: no SESAMI_WEBHOOK_QUEUE_URL")
        return None
    return Notifier(webhook_routes(), queue)


def _notifier() -> Notifier:
    from chalicelib.core.errors import ConfigurationError

    notifier = webhook_notifier()
    if notifier is None:
        raise ConfigurationError("SESAMI_WEBHOOK_QUEUE_URL is required for webhooks")
    return notifier


@_cached
def webhook_policy() -> Policy:
    import logging

    from chalicelib.webhooks.outbound import Policy

    policy = Policy(allow_loopback=settings().webhooks_to_loopback)
    if policy.allow_loopback:
        logging.getLogger("sesami.webhooks").warning(
            "SESAMI_INSECURE_WEBHOOKS_TO_LOOPBACK is on: webhooks may go to loopback over http "
            "(the local stack's demo receiver). Never in production."
        )
    return policy


def _resolver() -> Resolver:
    from chalicelib.webhooks.outbound import system_resolver

    return _choices[0].webhook_resolver or system_resolver


def webhook_endpoints() -> EndpointService:
    from chalicelib.webhooks.endpoints import EndpointService
    from chalicelib.webhooks.secrets import SecretBox

    return EndpointService(
        webhook_store(),
        SecretBox(settings().webhook_key),
        _notifier(),
        signer(),
        policy=webhook_policy(),
        resolver=_resolver(),
    )


@_cached
def admin_mailer() -> AdminMailer:
    from chalicelib.webhooks.mail import AdminMailer

    s = settings()
    client = (lambda: aws_client("sesv2")) if s.alerts_from else None
    return AdminMailer(client, s.alerts_from, webhook_store().admin_addresses)


def alerts() -> AlertService:
    from chalicelib.webhooks.alerts import AlertService

    notifier = webhook_notifier()
    publish = notifier.publish if notifier is not None else (lambda tenant_id, messages: 0)
    return AlertService(webhook_store(), publish, admin_mailer().tell)


@_cached
def delivery_worker() -> DeliveryWorker:
    import functools

    from chalicelib.webhooks import outbound
    from chalicelib.webhooks.delivery import DeliveryWorker
    from chalicelib.webhooks.secrets import SecretBox

    queue = webhook_queue()
    if queue is None:
        from chalicelib.core.errors import ConfigurationError

        raise ConfigurationError("SESAMI_WEBHOOK_QUEUE_URL is required to deliver webhooks")
    send = functools.partial(outbound.post, policy=webhook_policy(), resolver=_resolver())
    return DeliveryWorker(
        webhook_store(),
        queue,
        SecretBox(settings().webhook_key),
        send,
        evaluate=lambda tenant_id: alerts().evaluate(tenant_id),
        tell_admins=admin_mailer().tell,
        forget_routes=webhook_routes().forget,
    )


def deliver_webhooks(event: Mapping[str, Any]) -> dict[str, Any]:
    """The webhooks function: a batch of the webhook queue's messages (partial batch response)."""
    return delivery_worker().handle_records(list(event.get("Records") or []))


def suppression_changed(
    tenant_id: str, kind: str, address: str, reason: str | None, by: str | None
) -> None:
    """suppression.added / .removed for a change made through the API (after it was made: a
    queue failure is logged, never undoes or fails the change)."""
    import logging

    notifier = webhook_notifier()
    if notifier is None:
        return
    try:
        notifier.suppression_changed(tenant_id, kind, address, reason=reason, by=by)
    except Exception:
        logging.getLogger("sesami.webhooks").exception("suppression webhook not queued")


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


def content_settings(tenant: TenantModel) -> dict[str, Any]:
    """GET /account/content: the setting, and the latest purge a lowered retention started
    (resumed here if its background chain was lost)."""
    from chalicelib.lifecycle import content_retention

    answer = content_service().settings(tenant)
    jobs = lifecycle_jobs()
    job = jobs.latest(tenant.tenant_id, content_retention.KIND)
    if job is not None:
        jobs.resume_if_stalled(job)
        answer["purge"] = job.view()
    return answer


def set_content_retention(tenant: TenantModel, body: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.content.service import parse_retention, retention_days
    from chalicelib.content.store import set_retention
    from chalicelib.lifecycle import content_retention

    days = parse_retention(body)
    lowered = days < retention_days(tenant)
    set_retention(tenant.tenant_id, days)
    tenant.content_retention_days = days
    answer = content_service().settings(tenant)
    if lowered and content_service().enabled:  # delete what is past the new retention
        answer["purge"] = content_retention.start(lifecycle_jobs(), tenant.tenant_id, days)
    return answer


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


def count_events(records: list[Any]) -> dict[str, Any]:
    """One batch of the messages table's stream: the counter changes it carries, added once."""
    from chalicelib.ingest.counting import count_stream_records

    return count_stream_records(records, settings()).as_dict()
