"""SESami's operator stack: reads configuration, composes components, exports outputs.

`make package` first: the functions are deployed from the `chalice package` zip.

Config (`pulumi config set <key> <value>`; the README lists them with examples):
- packagePath            the deployment zip, relative to the repository root
                         (default build/package/deployment.zip, with sam.json beside it)
- momentoApiKey          secret: Momento API key (the credential cache's second level)
- signingKey             secret: 32 bytes hex, signs cursors and unsubscribe links
- credentialsKey         secret: 32 bytes hex, encrypts STS credentials cached in Momento
- webhookKey             secret: 32 bytes hex, encrypts webhook endpoints' signing secrets
- alertsFrom             optional: the address (verified in this account's SES) alert emails
                         to tenants' admins come from; without it alerts are not emailed
- webhookConcurrency     the most concurrent webhook deliveries (default 20)
- momentoEndpoint        Momento's region endpoint, for v2 API keys (default none)
- momentoCache           Momento cache name (default `sesami-<stack>`)
- tablePrefix            DynamoDB table name prefix (default `sesami-<stack>-`)
- retentionDays          days events are kept (default 365)
- deletionProtection     false to allow `pulumi destroy` of tables and the user pool (default true)
- selfSignUp             false to allow only admin-created users (default true)
- eventBusName           SESami's custom bus (default `sesami-<stack>`)
- alarmTopicArn          optional SNS topic notified by the ingest alarms
- blockedAccounts        AWS account IDs, comma-separated, denied on SESami's bus (an account
                         that floods it; the UnknownAccountEvents alarm says when)
- publicUrl              the API's public base URL if it has a custom domain (default: the
                         API Gateway stage URL); unsubscribe links point there
- apiEndpointType        REGIONAL (default) or EDGE
- snapStart              true for SnapStart on the API function (needs a python3.12+ package)
- tracing                true for X-Ray tracing of the functions and the API stage
- logRetentionDays       the functions' log retention (default 30)
- contentBucket          the bucket of stored content (default
                         `sesami-<stack>-content-<account>-<region>`: bucket names are global)
- throttleRate, throttleBurst
                         API Gateway's stage throttling, all methods together (default 500/s,
                         burst 1000); the expensive methods have lower ones (gateway.py)
- bulkWorkerConcurrency  the bulk worker's reserved concurrency (default 10)
- quotas                 object: per-tenant quota defaults, e.g. {"requestsPerMinute": 1200,
                         "sendsPerMinute": 3000, "bulkBatches": 2, "keyRequestsPerMinute": 0,
                         "authPerIpPerMinute": 60, "unsubscribePerIpPerMinute": 300,
                         "expectedInstances": 4} (functions.QUOTA_CONFIG; defaults: settings.py)
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
from chalice_package import API_FUNCTION, DEFAULT_PACKAGE, ROOT, PackageError, load
from content import ContentArgs, SesamiContent
from counting import CountingArgs, SesamiCounting
from events import EventsArgs, SesamiEvents
from functions import (
    ALIAS,
    AUTHORIZER,
    BULK_WORKER,
    BULK_WORKER_CONCURRENCY,
    COUNT_EVENTS,
    INGEST,
    RELAY_RANGES,
    WEBHOOKS,
    Environment,
    FunctionsArgs,
    SesamiFunctions,
    function_name,
    quota_environment,
    role_name,
)
from gateway import STAGE_THROTTLE, ApiArgs, SesamiApi, Throttle, load_app
from identity import IdentityArgs, SesamiIdentity
from ingest_queue import IngestQueueArgs, SesamiIngestQueue
from ingest_queue import event_source_args as ingest_source_args
from relay_ranges import (
    RelayBucketArgs,
    RelayScheduleArgs,
    SesamiRelayBucket,
    SesamiRelaySchedule,
    bucket_name,
    object_arn,
)
from secret_store import SecretsArgs, SesamiSecrets
from tables import SesamiTables, TablesArgs
from target import Target
from webhooks import DEFAULT_CONCURRENCY, SesamiWebhookQueue, WebhookQueueArgs, event_source_args

config = pulumi.Config()
stage = pulumi.get_stack()
prefix = f"sesami-{stage}-"
deletion_protection = config.get_bool("deletionProtection") is not False
snap_start = config.get_bool("snapStart") is True
tracing = config.get_bool("tracing") is True
alarm_topic = config.get("alarmTopicArn")
alarm_actions = [alarm_topic] if alarm_topic else []

app, public_routes = load_app()
package_path = Path(config.get("packagePath") or DEFAULT_PACKAGE)
try:
    package = load(package_path if package_path.is_absolute() else ROOT / package_path, app)
except PackageError as exc:
    raise pulumi.RunError(str(exc)) from None
target = Target.current()
bulk_concurrency = config.get_int("bulkWorkerConcurrency")
try:
    quota_defaults = quota_environment(config.get_object("quotas"))
except ValueError as exc:
    raise pulumi.RunError(str(exc)) from None
# The functions that act in customers' accounts: their roles are what customers' roles trust.
ASSUMING_ROLES = (API_FUNCTION, BULK_WORKER)
bus_name = config.get("eventBusName") or f"sesami-{stage}"

tables = SesamiTables(
    "sesami",
    TablesArgs(
        prefix=config.get("tablePrefix") or prefix,
        deletion_protection=deletion_protection,
    ),
)

# Bucket names are global: the account and region keep the default unique.
content_bucket = (
    config.get("contentBucket") or f"sesami-{stage}-content-{target.account_id}-{target.region}"
)
content = SesamiContent(
    "sesami",
    ContentArgs(bucket_name=content_bucket, deletion_protection=deletion_protection),
)

identity_args = IdentityArgs(
    pool_name=f"sesami-{stage}",
    deletion_protection=deletion_protection,
    self_sign_up=config.get_bool("selfSignUp") is not False,
    mfa=config.get("cognitoMfa") or "OPTIONAL",
    admin_mfa_required=config.get_bool("adminMfaRequired") is True,
    threat_protection=config.get("threatProtection") or "off",
    email_identity_arn=config.get("cognitoEmailIdentityArn"),
    email_from=config.get("cognitoEmailFrom"),
)
identity = SesamiIdentity("sesami", identity_args)

secrets = SesamiSecrets(
    "sesami",
    SecretsArgs(
        path=f"/sesami/{stage}/",
        momento_api_key=config.require_secret("momentoApiKey"),
        signing_key=config.require_secret("signingKey"),
        credentials_key=config.require_secret("credentialsKey"),
        webhook_key=config.require_secret("webhookKey"),
    ),
)

webhook_queue = SesamiWebhookQueue(
    "sesami",
    WebhookQueueArgs(
        prefix=prefix,
        function_timeout=package.functions[WEBHOOKS].timeout,
        alarm_actions=alarm_actions,
    ),
)

api = SesamiApi(
    "sesami",
    ApiArgs(
        name=f"sesami-{stage}",
        app=app,
        public_routes=public_routes,
        function_arn=target.function_arn(
            function_name(prefix, API_FUNCTION), ALIAS if snap_start else None
        ),
        authorizer_arn=target.function_arn(function_name(prefix, AUTHORIZER)),
        target=target,
        endpoint_type=config.get("apiEndpointType") or "REGIONAL",
        tracing=tracing,
        throttle=Throttle(
            rate=config.get_float("throttleRate") or STAGE_THROTTLE.rate,
            burst=config.get_int("throttleBurst") or STAGE_THROTTLE.burst,
        ),
    ),
)

# SESami's copy of Apple's relay ranges: written daily by the relay_ranges function, read by ingest.
relay_bucket_name = bucket_name(prefix, target)
relay_bucket = SesamiRelayBucket("sesami", RelayBucketArgs(bucket=relay_bucket_name))

ingest_queue = SesamiIngestQueue(
    "sesami",
    IngestQueueArgs(
        prefix=prefix,
        function_timeout=package.functions[INGEST].timeout,
        alarm_actions=alarm_actions,
    ),
)

functions = SesamiFunctions(
    "sesami",
    FunctionsArgs(
        package=package,
        target=target,
        prefix=prefix,
        environment=Environment(
            stage=stage,
            table_prefix=config.get("tablePrefix") or prefix,
            retention_days=config.get_int("retentionDays") or 365,
            region=target.region,
            account_id=target.account_id,
            event_bus_arn=target.event_bus_arn(bus_name),
            bulk_worker_function=function_name(prefix, BULK_WORKER),
            momento_cache=config.get("momentoCache") or f"sesami-{stage}",
            momento_endpoint=config.get("momentoEndpoint"),
            secret_parameters=secrets.environment,
            role_arns=[target.role_arn(role_name(prefix, f)) for f in ASSUMING_ROLES],
            content_bucket=content_bucket,
            admin_mfa_required=identity_args.admin_mfa_required,
            alerts_from=config.get("alertsFrom") or "",
            quotas=quota_defaults,
            relay_ranges_bucket=relay_bucket_name,
        ),
        table_arns=[t.arn for t in tables.tables.values()],
        index_arns=tables.index_arns,
        api_keys_table_arn=tables.tables["api_keys"].arn,
        user_pool_id=identity.user_pool.id,
        user_pool_arn=identity.user_pool.arn,
        user_pool_client_ids=[identity.dashboard_client.id],
        public_url=config.get("publicUrl") or api.base_url,
        api_execution_arn=api.rest_api.execution_arn,
        secret_arns={env: p.arn for env, p in secrets.parameters.items()},
        content_bucket_arn=content.bucket.arn,
        webhook_queue_url=webhook_queue.queue.url,
        webhook_queue_arn=webhook_queue.queue.arn,
        relay_object_arn=object_arn(target.partition, relay_bucket_name),
        ingest_queue_arn=ingest_queue.queue.arn,
        messages_table_arn=tables.tables["messages"].arn,
        counters_table_arn=tables.tables["counters"].arn,
        snap_start=snap_start,
        tracing=tracing,
        log_retention_days=config.get_int("logRetentionDays") or 30,
        alarm_actions=alarm_actions,
        bulk_worker_concurrency=(
            BULK_WORKER_CONCURRENCY if bulk_concurrency is None else bulk_concurrency
        ),
    ),
)

events = SesamiEvents(
    "sesami",
    EventsArgs(
        bus_name=bus_name,
        ingest_function_arn=functions.functions[INGEST].arn,
        ingest_function_name=functions.functions[INGEST].name,
        alarm_actions=alarm_actions,
        ingest_queue_arn=ingest_queue.queue.arn,
        ingest_queue_url=ingest_queue.queue.url,
        blocked_accounts=tuple(
            a.strip() for a in (config.get("blockedAccounts") or "").split(",") if a.strip()
        ),
    ),
)

relay_schedule = SesamiRelaySchedule(
    "sesami",
    RelayScheduleArgs(
        function_arn=functions.functions[RELAY_RANGES].arn,
        function_name=functions.functions[RELAY_RANGES].name,
        prefix=prefix,
        alarm_actions=alarm_actions,
    ),
)

webhook_source = aws.lambda_.EventSourceMapping(
    "sesami-webhooks-source",
    **event_source_args(
        webhook_queue.queue.arn,
        functions.functions[WEBHOOKS].name,
        config.get_int("webhookConcurrency") or DEFAULT_CONCURRENCY,
    ),
    opts=pulumi.ResourceOptions(depends_on=[functions.policies[WEBHOOKS]]),
)

ingest_source = aws.lambda_.EventSourceMapping(
    "sesami-ingest-source",
    **ingest_source_args(ingest_queue.queue.arn, functions.functions[INGEST].name),
    opts=pulumi.ResourceOptions(depends_on=[functions.policies[INGEST]]),
)

# The messages table's stream feeds the counters (count_events, infra/counting.py).
counting = SesamiCounting(
    "sesami",
    CountingArgs(
        prefix=prefix,
        stream_arn=tables.stream_arns["messages"],
        function_name=functions.functions[COUNT_EVENTS].name,
        depends_on=[functions.policies[COUNT_EVENTS]],
        alarm_actions=alarm_actions,
    ),
)

pulumi.export("api_url", api.stage.invoke_url)
# The API function serves the dashboard at the API's root.
pulumi.export("dashboard_url", api.stage.invoke_url.apply(lambda url: url.rstrip("/") + "/"))
pulumi.export("user_pool_id", identity.user_pool.id)
pulumi.export("user_pool_client_id", identity.dashboard_client.id)
pulumi.export("event_bus_arn", events.bus.arn)
pulumi.export("operator_account_id", target.account_id)
# The roles that act in customers' accounts (the API and the bulk worker assume the customer's
# role): the customer-onboarding stack's trust policy names exactly these (`sesamiRoleArns`).
pulumi.export("sesami_role_arns", [functions.roles[f].arn for f in ASSUMING_ROLES])
pulumi.export("ingest_dlq_url", events.dead_letters.url)
pulumi.export("ingest_queue_url", ingest_queue.queue.url)
pulumi.export("ingest_queue_dlq_url", ingest_queue.dead_letters.url)
pulumi.export("ingest_failures_url", functions.failures.url)
pulumi.export("webhook_queue_url", webhook_queue.queue.url)
pulumi.export("webhook_dlq_url", webhook_queue.dead_letters.url)
pulumi.export("relay_ranges_bucket", relay_bucket.bucket.id)
pulumi.export("messages_stream_arn", tables.stream_arns["messages"])
pulumi.export("table_names", {k: t.name for k, t in tables.tables.items()})
pulumi.export("content_bucket", content.bucket.bucket)
pulumi.export("function_names", {k: f.name for k, f in functions.functions.items()})
