"""The functions' IAM policies, as pure functions of plain ARNs (tests call them directly).

Least privilege, and no wildcard action anywhere. Resource wildcards only where the resource
cannot be named in advance, each said where it is used:
- `sts:AssumeRole` on `arn:<partition>:iam::*:role/sesami/*`: the customer roles, in accounts
  SESami learns at onboarding, under the path the customer-onboarding stack creates them at
  (`chalicelib.tenants.accounts.ROLE_PATH`, which the app also requires of every role ARN);
- `logs:` on `<log group ARN>:*`: the log streams Lambda creates inside the function's group;
- X-Ray (only with `tracing`): `xray:PutTraceSegments`/`PutTelemetryRecords` support no
  resource-level permissions, AWS requires `Resource: "*"`;
- `dynamodb:ListStreams` (count_events only): Lambda's stream poller calls it, and the Service
  Authorization Reference gives it no resource type (a stream ARN there would match nothing); it
  lists stream ARNs, never a record. The records (`GetRecords`...) only on the messages table's
  streams (`<table ARN>/stream/*`: whichever stream label the table has);
`STAR_ONLY` lists these actions; tests/iam_reference.py checks every other action names a
resource of a type the action supports.
SESami's own roles stay on the default path, outside `/sesami/`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.tenants.accounts import ROLE_PATH

LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
TABLE_READS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
# PynamoDB's transactions need the item actions of what they contain (no Transact* actions).
TABLE_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem")
TABLE_DELETES = ("dynamodb:DeleteItem",)  # the API and the worker; ingest never deletes
INDEX_READS = ("dynamodb:Query",)
KEY_LOOKUP = ("dynamodb:GetItem",)  # the authorizer: one API key's item
# What chalicelib.tenants.cognito.CognitoUserDirectory calls (invitations, their resending and
# cancelling, removing a user); the dashboard's sign-in calls are the pool's public API (client
# ID only), which IAM does not govern.
USER_POOL_ADMIN = (
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminUpdateUserAttributes",
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminUserGlobalSignOut",
    "cognito-idp:AdminGetUser",  # an admin's MFA setting, where admins must use MFA
)
# chalicelib.lifecycle.deletion: a deleted tenant's users leave the pool (the bulk worker runs it).
USER_POOL_DELETE = ("cognito-idp:AdminDeleteUser",)
# No events:PutPermission/RemovePermission: the bus policy is Pulumi's, the same for every tenant
# (chalicelib.ingest.bus), so no function can change who may put events on the bus.
ASSUME_CUSTOMER_ROLE = ("sts:AssumeRole",)
INVOKE = ("lambda:InvokeFunction",)
READ_PARAMETERS = ("ssm:GetParameters",)  # SecureStrings under the AWS managed key aws/ssm
SEND_TO_QUEUE = ("sqs:SendMessage",)  # SendMessageBatch is authorised as SendMessage
# The webhooks function: its event source mapping reads the queue with the function's role.
CONSUME_QUEUE = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
SEND_EMAIL = ("ses:SendEmail",)
# SESami's copy of Apple's relay ranges (infra/relay_ranges.py): one object, put by the refresh
# function, got by ingest; no s3:ListBucket for either (a missing object reads as AccessDenied).
PUT_RELAY_RANGES = ("s3:PutObject",)
GET_RELAY_RANGES = ("s3:GetObject",)  # SESv2 SendEmail, in SESami's own account (alert emails)
WRITE_LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
TRACING = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
# chalicelib.content.store.S3ContentStore: the objects (PutObject with a Tagging header needs
# PutObjectTagging too) and, for deleting a tenant's content by prefix, the listing.
# The bulk worker runs erasures and tenant deletions too (chalicelib.lifecycle): it deletes.
WRITE_CONTENT = ("s3:PutObject", "s3:PutObjectTagging")
READ_CONTENT = ("s3:GetObject",)
DELETE_CONTENT = ("s3:DeleteObject",)
LIST_CONTENT = ("s3:ListBucket",)
# count_events: its event source mapping reads the messages table's stream with the function's
# role (what Lambda's DynamoDB poller calls), and the function adds each batch's changes to the
# counters in one TransactWriteItems of UpdateItem (counter items) and one conditional PutItem
# (the batch's marker). A transaction's Put/Update are authorised as PutItem/UpdateItem, their
# conditions included; ConditionCheckItem is only for a ConditionCheck entry, which it has none of.
READ_STREAM = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
LIST_STREAMS = ("dynamodb:ListStreams",)
ADD_TO_COUNTERS = ("dynamodb:UpdateItem", "dynamodb:PutItem")
# chalicelib.ingest.store: a round's aggregates, INSERT (a new one) or UPDATE WHERE version.
WRITE_AGGREGATES = ("dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate")
# Actions granted on "*" because the Service Authorization Reference gives them no resource type.
STAR_ONLY = frozenset((*TRACING, *LIST_STREAMS))


@dataclass(frozen=True)
class Scope:
    """The resources one function's role may touch (plain ARNs)."""

    partition: str
    tables: Sequence[str]
    indexes: Sequence[str]
    log_group: str
    tracing: bool = False
    # The API and the bulk worker only:
    parameters: Sequence[str] = field(default_factory=tuple)
    invokable: Sequence[str] = field(default_factory=tuple)  # functions it may invoke
    # The API and the bulk worker:
    user_pool: str | None = None
    # Ingest only: its on-failure destination (Lambda sends with the function's role).
    failure_queue: str | None = None
    # Ingest only: the ingest queue its event source mapping reads with the function's role.
    ingest_queue: str | None = None
    # Ingest and the API send to it, the webhooks function consumes it.
    webhook_queue: str | None = None
    # The webhooks function: the SES identities alert emails are sent as (none: no email).
    alert_identities: Sequence[str] = field(default_factory=tuple)
    # The API and the bulk worker: the bucket of stored content (its ARN).
    content_bucket: str | None = None
    # Ingest reads it, the relay_ranges function writes it: the one object of the relay ranges.
    relay_object: str | None = None
    # count_events: the messages table's streams (`<table ARN>/stream/*`) and the counters table.
    stream: str | None = None
    counters_table: str | None = None
    # Ingest: the messages table, whose aggregates it writes with PartiQL (BatchExecuteStatement:
    # 25 conditional writes a request, each billed as one, not as a transaction).
    messages_table: str | None = None


def lambda_trust_policy() -> dict[str, Any]:
    """Pure: only the Lambda service may assume a function's role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": LAMBDA_PRINCIPAL},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def customer_roles_arn(partition: str) -> str:
    """Every role the onboarding stack creates, in any customer account (see module docstring)."""
    return f"arn:{partition}:iam::*:role{ROLE_PATH}*"


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}


def _customer_roles(scope: Scope) -> dict[str, Any]:
    return _statement("CustomerRoles", ASSUME_CUSTOMER_ROLE, [customer_roles_arn(scope.partition)])


def _common(scope: Scope, table_actions: Sequence[str]) -> list[dict[str, Any]]:
    statements = [
        _statement("Tables", table_actions, scope.tables),
        _statement("TableIndexes", INDEX_READS, scope.indexes),
        _statement("Logs", WRITE_LOGS, [f"{scope.log_group}:*"]),
    ]
    if scope.tracing:
        statements.append(_statement("Tracing", TRACING, ["*"]))
    return statements


def _content(scope: Scope, *, read: bool) -> list[dict[str, Any]]:
    """Stored content: both functions write it (sends) and delete it (erasures and tenant
    deletions, listed by the tenant's prefix); only the API reads it back (the message page)."""
    if scope.content_bucket is None:
        raise ValueError("the scope names the content bucket")
    objects = f"{scope.content_bucket}/*"
    object_actions = (*WRITE_CONTENT, *DELETE_CONTENT, *(READ_CONTENT if read else ()))
    return [
        _statement("ContentObjects", object_actions, [objects]),
        _statement("ContentList", LIST_CONTENT, [scope.content_bucket]),
    ]


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def authorizer_policy(scope: Scope) -> dict[str, Any]:
    """Pure: API Gateway's authorizer. It verifies JWTs against the pool's public JWKS (no IAM)
    and API keys by reading their item: GetItem on the API-keys table, nothing else, and no
    write of any kind (when a key was last used is the API's to record)."""
    if not scope.tables:
        raise ValueError("the authorizer's scope names the API-keys table")
    statements = [
        _statement("ApiKeys", KEY_LOOKUP, scope.tables),
        _statement("Logs", WRITE_LOGS, [f"{scope.log_group}:*"]),
    ]
    if scope.tracing:
        statements.append(_statement("Tracing", TRACING, ["*"]))
    return _document(statements)


def api_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the REST API function."""
    if scope.user_pool is None:
        raise ValueError("the API's scope names the user pool")
    return _document(
        [
            *_common(scope, (*TABLE_READS, *TABLE_WRITES, *TABLE_DELETES)),
            _customer_roles(scope),
            _statement("UserPoolAdmin", USER_POOL_ADMIN, [scope.user_pool]),
            _statement("BulkWorker", INVOKE, scope.invokable),
            _statement("Secrets", READ_PARAMETERS, scope.parameters),
            _statement("WebhookQueue", SEND_TO_QUEUE, [_webhook_queue(scope)]),
            *_content(scope, read=True),
        ]
    )


def ingest_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the ingest function. Tables (no deletes), logs, its on-failure queue, the ingest
    queue it consumes, the webhook queue, and the refreshed relay ranges (one object, read once
    per instance)."""
    if scope.failure_queue is None:
        raise ValueError("the ingest scope names its on-failure queue")
    if scope.messages_table is None:
        raise ValueError("the ingest scope names the messages table")
    statements = [
        *_common(scope, (*TABLE_READS, *TABLE_WRITES)),
        _statement("Aggregates", WRITE_AGGREGATES, [scope.messages_table]),
        _statement("FailureDestination", SEND_TO_QUEUE, [scope.failure_queue]),
        _statement("WebhookQueue", SEND_TO_QUEUE, [_webhook_queue(scope)]),
    ]
    if scope.ingest_queue is not None:
        statements.append(_statement("IngestQueue", CONSUME_QUEUE, [scope.ingest_queue]))
    if scope.relay_object:
        statements.append(_statement("RelayRanges", GET_RELAY_RANGES, [scope.relay_object]))
    return _document(statements)


def relay_ranges_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the scheduled relay_ranges function. It fetches Apple's public list (no IAM) and
    puts the one object ingest reads; no table, no queue, no secret, no customer role."""
    if not scope.relay_object:
        raise ValueError("the relay_ranges scope names its object")
    statements = [
        _statement("RelayRanges", PUT_RELAY_RANGES, [scope.relay_object]),
        _statement("Logs", WRITE_LOGS, [f"{scope.log_group}:*"]),
    ]
    if scope.tracing:
        statements.append(_statement("Tracing", TRACING, ["*"]))
    return _document(statements)


def count_events_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the count_events function (the messages table's stream consumer). It reads the
    stream (through its event source mapping) and adds to the counters table, nothing else: no
    other table, no read of a counter, no delete, no queue, no secret."""
    if not scope.stream or not scope.counters_table:
        raise ValueError("the count_events scope names the messages stream and the counters table")
    statements = [
        _statement("MessagesStream", READ_STREAM, [scope.stream]),
        _statement("ListStreams", LIST_STREAMS, ["*"]),
        _statement("Counters", ADD_TO_COUNTERS, [scope.counters_table]),
        _statement("Logs", WRITE_LOGS, [f"{scope.log_group}:*"]),
    ]
    if scope.tracing:
        statements.append(_statement("Tracing", TRACING, ["*"]))
    return _document(statements)


def bulk_worker_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the bulk worker. It sends as the customer (assumed role), and invokes itself for
    the next slice of a batch; it also runs tenant deletions, which remove the tenant's users
    from the pool."""
    if scope.user_pool is None:
        raise ValueError("the bulk worker's scope names the user pool")
    return _document(
        [
            *_common(scope, (*TABLE_READS, *TABLE_WRITES, *TABLE_DELETES)),
            _customer_roles(scope),
            _statement("NextSlice", INVOKE, scope.invokable),
            _statement("Secrets", READ_PARAMETERS, scope.parameters),
            _statement("DeletedTenantsUsers", USER_POOL_DELETE, [scope.user_pool]),
            *_content(scope, read=False),
        ]
    )


def webhooks_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the webhooks function. Tables (deliveries, endpoints, alerts, the tenant's pause; no
    deletes), its queue (consumed, and retries sent back), the webhook key, and SES only as the
    alert sender in SESami's own account. It never assumes a customer's role."""
    statements = [
        *_common(scope, (*TABLE_READS, *TABLE_WRITES)),
        _statement("WebhookQueue", (*CONSUME_QUEUE, *SEND_TO_QUEUE), [_webhook_queue(scope)]),
        _statement("Secrets", READ_PARAMETERS, scope.parameters),
    ]
    if scope.alert_identities:
        statements.append(_statement("AlertEmail", SEND_EMAIL, scope.alert_identities))
    return _document(statements)


def _webhook_queue(scope: Scope) -> str:
    if scope.webhook_queue is None:
        raise ValueError("the scope names the webhook queue")
    return scope.webhook_queue


POLICIES = {
    "api": api_policy,
    "ingest": ingest_policy,
    "bulk_worker": bulk_worker_policy,
    "webhooks": webhooks_policy,
    "authorizer": authorizer_policy,
    "relay_ranges": relay_ranges_policy,
    "count_events": count_events_policy,
}
