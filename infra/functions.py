"""SESami's Lambda functions, from the one `chalice package` zip, with their roles.

- `api`: the Chalice app behind API Gateway (REST API and dashboard). SnapStart behind a switch,
  where the runtime supports it (Python 3.12+), through a published version and the alias `live`.
- `ingest`: target of the rule on SESami's bus. EventBridge retries *delivering* an event for 24 h
  (events.py); once Lambda has accepted it, Lambda's own async retries apply: 2 retries within
  6 h, then the invocation record goes to the encrypted `<prefix>ingest-failures` queue (its own
  queue, not the bus rule's DLQ: a Lambda destination record wraps the envelope in
  `requestPayload`, while the DLQ holds bare envelopes that `ops.replay --dlq` replays).
- `bulk_worker`: invoked asynchronously by the API, then by itself, one slice of a batch a time.
- `webhooks`: the webhook queue's consumer (webhooks.py): signed deliveries, their retries, the
  reputation alerts. Ingest and the API only send to that queue.
- `count_events`: the messages table's stream consumer (counting.py): adds the counter changes
  each timeline entry carries to the hourly and link counters. Its role may read that stream and
  put and update items of the counters table, nothing else; its environment names the tables.
- `relay_ranges`: run daily (relay_ranges.py): Apple's relay ranges into SESami's bucket, for
  ingest. Its role may put that one object and write its logs.
- `authorizer`: API Gateway's Lambda authorizer of every private route (the app's
  `@app.authorizer`): verifies a JWT or an API key. Its role may read one API key's item and
  write its logs, nothing else; its environment names the user pool and the tables, no secret.
  Its reserved concurrency (`bulkWorkerConcurrency`, default 10) keeps bulk mail from taking the
  account's Lambda concurrency from the API and ingest, and bounds what bulk mail can cost; each
  tenant's batches in flight are bounded by the app (the `bulk_batches` quota), so one tenant
  cannot hold all of it.

Quota defaults (chalicelib/quotas) reach the API and the bulk worker as `SESAMI_QUOTA_*`
variables, from the stack's `quotas` config object (`quota_environment`).

The functions' environment names everything they need (`chalicelib.core.settings` spells the names);
secrets only by SSM parameter name (secret_store.py). The API's public URL comes from the REST
API's ID, which does not depend on the function: the API body names the function by its ARN,
spelled from its name (target.py), so there is no cycle.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from chalice_package import API_FUNCTION, Package
from events import queue_depth_alarm_args
from gateway import STAGE
from roles import POLICIES, Scope, lambda_trust_policy
from target import Target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.core import settings as names
from chalicelib.core.settings import ENV_BULK_WORKER_FUNCTION, ENV_WEBHOOK_KEY, SECRET_ENV
from chalicelib.tenants.auth import cognito_issuer

INGEST, BULK_WORKER, WEBHOOKS = "ingest", "bulk_worker", "webhooks"
AUTHORIZER = "authorizer"
RELAY_RANGES = "relay_ranges"
COUNT_EVENTS = "count_events"
# The secrets each function reads (least privilege): the webhooks function only the key that
# opens the endpoints' signing secrets; the bulk worker never needs that one.
SECRETS_OF: dict[str, tuple[str, ...]] = {
    API_FUNCTION: SECRET_ENV,
    BULK_WORKER: tuple(n for n in SECRET_ENV if n != ENV_WEBHOOK_KEY),
    WEBHOOKS: (ENV_WEBHOOK_KEY,),
    INGEST: (),
    AUTHORIZER: (),
    RELAY_RANGES: (),
    COUNT_EVENTS: (),
}
ALIAS = "live"
BULK_WORKER_CONCURRENCY = 10
# The stack's `quotas` config object: its keys, and the variables they set.
QUOTA_CONFIG = {
    "requestsPerMinute": names.ENV_QUOTA_REQUESTS_PER_MINUTE,
    "keyRequestsPerMinute": names.ENV_QUOTA_KEY_REQUESTS_PER_MINUTE,
    "sendsPerMinute": names.ENV_QUOTA_SENDS_PER_MINUTE,
    "bulkBatches": names.ENV_QUOTA_BULK_BATCHES,
    "authPerIpPerMinute": names.ENV_QUOTA_AUTH_PER_IP_PER_MINUTE,
    "unsubscribePerIpPerMinute": names.ENV_QUOTA_UNSUBSCRIBE_PER_IP_PER_MINUTE,
    "expectedInstances": names.ENV_QUOTA_EXPECTED_INSTANCES,
}
INGEST_ASYNC_RETRIES = 2  # Lambda's maximum
INGEST_ASYNC_MAX_AGE_SECONDS = 6 * 3600  # Lambda's maximum
FAILURES_RETENTION_SECONDS = 14 * 86_400  # SQS's maximum
APIGATEWAY_PRINCIPAL = "apigateway.amazonaws.com"


@dataclass(frozen=True)
class Environment:
    """What the functions' environment is made of (plain values)."""

    stage: str
    table_prefix: str
    retention_days: int
    region: str
    account_id: str
    event_bus_arn: str
    bulk_worker_function: str
    momento_cache: str
    secret_parameters: Mapping[str, str]  # `<NAME>_PARAMETER` -> SSM parameter name
    momento_endpoint: str | None = None
    user_pool_id: str = ""
    user_pool_client_ids: Sequence[str] = field(default_factory=tuple)
    public_url: str = ""
    # The roles that assume customers' roles (the API's and the bulk worker's): the API hands
    # them to customers for their onboarding stack's trust policy.
    role_arns: Sequence[str] = field(default_factory=tuple)
    # The bucket of stored content (infra/content.py); the API and the bulk worker use it.
    content_bucket: str = ""
    # The API refuses admin actions to admins without TOTP MFA (IdentityArgs.admin_mfa_required).
    admin_mfa_required: bool = False
    webhook_queue_url: str = ""
    alerts_from: str = ""  # the verified identity alert emails come from (optional)
    quotas: Mapping[str, str] = field(default_factory=dict)  # SESAMI_QUOTA_* -> value
    relay_ranges_bucket: str = ""  # SESami's copy of Apple's relay ranges (relay_ranges.py)


def quota_environment(config: Mapping[str, Any] | None) -> dict[str, str]:
    """Pure: the `SESAMI_QUOTA_*` variables of the stack's `quotas` config object (ValueError for
    an unknown key or a value that is not a whole number the app accepts)."""
    out: dict[str, str] = {}
    for key, value in (config or {}).items():
        if key not in QUOTA_CONFIG:
            raise ValueError(f"quotas.{key} is not a quota: one of {', '.join(QUOTA_CONFIG)}")
        floor = 0 if key == "keyRequestsPerMinute" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < floor:
            raise ValueError(f"quotas.{key} must be a whole number >= {floor}, got {value!r}")
        out[QUOTA_CONFIG[key]] = str(value)
    return out


def function_name(prefix: str, chalice_name: str) -> str:
    return prefix + chalice_name.replace("_", "-")


def role_name(prefix: str, chalice_name: str) -> str:
    """The function's role (default path), so its ARN can be spelled before it exists."""
    return f"{function_name(prefix, chalice_name)}-role"


def snap_start_supported(runtime: str) -> bool:
    """Pure: Lambda SnapStart supports Python from 3.12 (and Java/.NET, not used here)."""
    match = re.fullmatch(r"python3\.(\d+)", runtime)
    return match is not None and int(match.group(1)) >= 12


def environment(function: str, env: Environment) -> dict[str, str]:
    """Pure: one function's environment variables. Ingest gets no secret and no AWS identity
    beyond its tables; the authorizer its tables and the user pool. The bulk worker knows the
    user pool too: it runs tenant deletions, which remove the tenant's users."""
    out = {
        names.ENV_STAGE: env.stage,
        names.ENV_TABLE_PREFIX: env.table_prefix,
        names.ENV_RETENTION_DAYS: str(env.retention_days),
    }
    secrets = {
        k: v
        for k, v in env.secret_parameters.items()
        if k.removesuffix(names.PARAMETER_SUFFIX) in SECRETS_OF[function]
    }
    pool = {
        names.ENV_USER_POOL_ID: env.user_pool_id,
        names.ENV_USER_POOL_CLIENT_IDS: ",".join(env.user_pool_client_ids),
        names.ENV_JWKS_URL: (
            f"{cognito_issuer(env.region, env.user_pool_id)}/.well-known/jwks.json"
        ),
    }
    if function in (INGEST, RELAY_RANGES) and env.relay_ranges_bucket:
        out[names.ENV_RELAY_RANGES_BUCKET] = env.relay_ranges_bucket
    if function in (RELAY_RANGES, COUNT_EVENTS):
        return out
    if function in (INGEST, API_FUNCTION, WEBHOOKS):
        out[names.ENV_WEBHOOK_QUEUE_URL] = env.webhook_queue_url
    if function == INGEST:
        return out
    if function == AUTHORIZER:
        return out | pool
    if function == WEBHOOKS:
        if env.alerts_from:
            out[names.ENV_ALERTS_FROM] = env.alerts_from
        return out | secrets
    out |= {
        names.ENV_PUBLIC_URL: env.public_url,
        ENV_BULK_WORKER_FUNCTION: env.bulk_worker_function,
        names.ENV_MOMENTO_CACHE: env.momento_cache,
        names.ENV_CONTENT_BUCKET: env.content_bucket,
        **secrets,
        **env.quotas,
    }
    if env.momento_endpoint:
        out[names.ENV_MOMENTO_ENDPOINT] = env.momento_endpoint
    out[names.ENV_USER_POOL_ID] = env.user_pool_id
    if function == API_FUNCTION:
        out |= {
            names.ENV_ACCOUNT_ID: env.account_id,
            names.ENV_EVENT_BUS_ARN: env.event_bus_arn,
            names.ENV_ROLE_ARNS: ",".join(env.role_arns),
            names.ENV_ADMIN_MFA_REQUIRED: "true" if env.admin_mfa_required else "false",
            **pool,
        }
    return out


def alert_identities(target: Target, sender: str) -> list[str]:
    """Pure: the SES identities alert emails may be sent as: the address and its domain (SES
    authorises whichever of the two is verified)."""
    if not sender:
        return []
    domain = sender.rsplit("@", 1)[-1]
    return [target.arn("ses", f"identity/{name}") for name in dict.fromkeys((sender, domain))]


@dataclass(frozen=True)
class FunctionsArgs:
    package: Package
    target: Target
    prefix: str  # of function, role and queue names, e.g. "sesami-prod-"
    environment: Environment  # user pool and public URL filled in from the outputs below
    table_arns: Sequence[pulumi.Input[str]]
    index_arns: Sequence[pulumi.Input[str]]
    api_keys_table_arn: pulumi.Input[str]  # the only table the authorizer reads
    user_pool_id: pulumi.Input[str]
    user_pool_arn: pulumi.Input[str]
    user_pool_client_ids: Sequence[pulumi.Input[str]]
    public_url: pulumi.Input[str]
    api_execution_arn: pulumi.Input[str]
    secret_arns: Mapping[str, pulumi.Input[str]]  # the app's variable name -> parameter ARN
    webhook_queue_url: pulumi.Input[str]
    webhook_queue_arn: pulumi.Input[str]
    content_bucket_arn: pulumi.Input[str] = ""
    relay_object_arn: str = ""  # the one object of the relay ranges (relay_ranges.object_arn)
    ingest_queue_arn: pulumi.Input[str] = ""  # infra/ingest_queue.py; "" without the queue
    # count_events: the table whose stream it reads (its streams' ARNs are spelled from it) and
    # the only table it writes.
    messages_table_arn: pulumi.Input[str] = ""
    counters_table_arn: pulumi.Input[str] = ""
    snap_start: bool = False
    tracing: bool = False
    log_retention_days: int = 30
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    bulk_worker_concurrency: int = BULK_WORKER_CONCURRENCY


class SesamiFunctions(pulumi.ComponentResource):
    functions: dict[str, aws.lambda_.Function]
    roles: dict[str, aws.iam.Role]
    policies: dict[str, aws.iam.RolePolicy]
    failures: aws.sqs.Queue
    api_alias: aws.lambda_.Alias | None

    def __init__(
        self, name: str, args: FunctionsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:functions:Functions", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        package, target = args.package, args.target
        if args.bulk_worker_concurrency < 1:
            raise ValueError("bulkWorkerConcurrency must be at least 1 (0 would stop bulk mail)")
        if args.snap_start and not snap_start_supported(package.runtime):
            raise ValueError(
                f"snapStart: Lambda SnapStart needs Python 3.12 or later, and the package "
                f"targets {package.runtime} (chalice packages for the Python that runs it). "
                "Build the package with Python 3.12+ or set snapStart false."
            )
        fn_names = {f: function_name(args.prefix, f) for f in package.functions}
        log_groups = {f: f"/aws/lambda/{n}" for f, n in fn_names.items()}

        self.failures = aws.sqs.Queue(
            f"{name}-ingest-failures",
            name=f"{args.prefix}ingest-failures",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=FAILURES_RETENTION_SECONDS,
            opts=child,
        )
        resolved = pulumi.Output.all(
            tables=list(args.table_arns),
            indexes=list(args.index_arns),
            user_pool=args.user_pool_arn,
            parameters=dict(args.secret_arns),
            failures=self.failures.arn,
            webhook_queue=args.webhook_queue_arn,
            ingest_queue=args.ingest_queue_arn,
            api_keys=args.api_keys_table_arn,
            content=args.content_bucket_arn,
            messages=args.messages_table_arn,
            counters=args.counters_table_arn,
        )

        def policy_for(function: str) -> pulumi.Output[str]:
            def document(v: dict[str, Any]) -> str:
                authorizer = function == AUTHORIZER
                scope = Scope(
                    partition=target.partition,
                    tables=[v["api_keys"]] if authorizer else v["tables"],
                    indexes=[] if authorizer else v["indexes"],
                    log_group=target.log_group_arn(log_groups[function]),
                    tracing=args.tracing,
                    parameters=[v["parameters"][n] for n in SECRETS_OF.get(function, ())],
                    invokable=[target.function_arn(fn_names[BULK_WORKER])],
                    user_pool=v["user_pool"],
                    failure_queue=v["failures"],
                    webhook_queue=v["webhook_queue"],
                    ingest_queue=(v["ingest_queue"] or None) if function == INGEST else None,
                    alert_identities=alert_identities(target, args.environment.alerts_from),
                    content_bucket=v["content"] or None,
                    relay_object=args.relay_object_arn or None,
                    stream=f"{v['messages']}/stream/*" if v["messages"] else None,
                    counters_table=v["counters"] or None,
                    messages_table=v["messages"] or None,
                )
                return json.dumps(POLICIES[function](scope), sort_keys=True)

            return resolved.apply(document)

        env = pulumi.Output.all(
            pool=args.user_pool_id,
            clients=list(args.user_pool_client_ids),
            url=args.public_url,
            queue=args.webhook_queue_url,
        ).apply(
            lambda v: replace(
                args.environment,
                user_pool_id=v["pool"],
                user_pool_client_ids=tuple(v["clients"]),
                public_url=v["url"],
                webhook_queue_url=v["queue"],
            )
        )

        self.roles, self.policies, self.functions = {}, {}, {}
        self.api_alias = None
        for function, spec in package.functions.items():
            if function not in POLICIES:
                raise ValueError(f"the app declares a function with no role here: {function}")
            role = self.roles[function] = aws.iam.Role(
                f"{name}-{function}-role",
                name=role_name(args.prefix, function),
                description=f"SESami {function} function",
                assume_role_policy=json.dumps(lambda_trust_policy()),
                opts=child,
            )
            policy = self.policies[function] = aws.iam.RolePolicy(
                f"{name}-{function}-policy",
                role=role.id,
                policy=policy_for(function),
                opts=child,
            )
            log_group = aws.cloudwatch.LogGroup(
                f"{name}-{function}-logs",
                name=log_groups[function],
                retention_in_days=args.log_retention_days,
                opts=child,
            )
            snap = args.snap_start and function == API_FUNCTION
            self.functions[function] = aws.lambda_.Function(
                f"{name}-{function}",
                name=fn_names[function],
                role=role.arn,
                code=pulumi.FileArchive(str(package.zip_path)),
                handler=spec.handler,
                runtime=spec.runtime,
                architectures=list(spec.architectures),
                memory_size=spec.memory_size,
                timeout=spec.timeout,
                environment=aws.lambda_.FunctionEnvironmentArgs(
                    variables=env.apply(functools.partial(environment, function))
                ),
                tracing_config=aws.lambda_.FunctionTracingConfigArgs(
                    mode="Active" if args.tracing else "PassThrough"
                ),
                publish=snap,
                reserved_concurrent_executions=(
                    args.bulk_worker_concurrency if function == BULK_WORKER else None
                ),
                snap_start=(
                    aws.lambda_.FunctionSnapStartArgs(apply_on="PublishedVersions")
                    if snap
                    else None
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
            )
        api = self.functions[API_FUNCTION]
        if args.snap_start:
            self.api_alias = aws.lambda_.Alias(
                f"{name}-api-live",
                name=ALIAS,
                function_name=api.name,
                function_version=api.version,
                opts=child,
            )
        self.api_permission = aws.lambda_.Permission(
            f"{name}-api-invoke",
            action="lambda:InvokeFunction",
            function=api.name,
            qualifier=ALIAS if self.api_alias else None,
            principal=APIGATEWAY_PRINCIPAL,
            source_arn=pulumi.Output.from_input(args.api_execution_arn).apply(
                lambda arn: f"{arn}/{STAGE}/*"
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.api_alias] if self.api_alias else []
            ),
        )
        # API Gateway runs the authorizer for this API's routes (authorizers/<id>) only.
        self.authorizer_permission = aws.lambda_.Permission(
            f"{name}-authorizer-invoke",
            action="lambda:InvokeFunction",
            function=self.functions[AUTHORIZER].name,
            principal=APIGATEWAY_PRINCIPAL,
            source_arn=pulumi.Output.from_input(args.api_execution_arn).apply(
                lambda arn: f"{arn}/authorizers/*"
            ),
            opts=child,
        )
        ingest = self.functions[INGEST]
        self.ingest_async = aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-ingest-async",
            function_name=ingest.name,
            maximum_retry_attempts=INGEST_ASYNC_RETRIES,
            maximum_event_age_in_seconds=INGEST_ASYNC_MAX_AGE_SECONDS,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.failures.arn
                )
            ),
            opts=child,
        )
        self.failures_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-ingest-failures-depth",
            **queue_depth_alarm_args(
                description="Ingest failed an SES event after Lambda's retries (failures queue).",
                queue_name=self.failures.name,
                alarm_actions=args.alarm_actions,
            ),
            opts=child,
        )
        self.register_outputs(
            {
                **{f"{f}_arn": fn.arn for f, fn in self.functions.items()},
                "failures_url": self.failures.url,
            }
        )
