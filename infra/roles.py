"""The functions' IAM policies, as pure functions of plain ARNs (tests call them directly).

Least privilege, and no wildcard action anywhere. Resource wildcards only where the resource
cannot be named in advance, each said where it is used:
- `sts:AssumeRole` on `arn:<partition>:iam::*:role/sesami/*`: the customer roles, in accounts
  SESami learns at onboarding, under the path the customer-onboarding stack creates them at
  (`chalicelib.tenants.accounts.ROLE_PATH`, which the app also requires of every role ARN);
- `logs:` on `<log group ARN>:*`: the log streams Lambda creates inside the function's group;
- X-Ray (only with `tracing`): `xray:PutTraceSegments`/`PutTelemetryRecords` support no
  resource-level permissions, AWS requires `Resource: "*"`;
- the API's `events:PutPermission`/`RemovePermission` (the per-tenant statements of SESami's bus
  policy): the Service Authorization Reference lists no resource type for either (EventBridge,
  "Actions defined by Amazon EventBridge"), so IAM refuses them on a bus ARN and they get a
  statement of their own on `"*"`. What they can touch is still one bus: the function only ever
  names SESami's (`SESAMI_EVENT_BUS_ARN`), and `DescribeEventBus` stays scoped to it.
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
# What chalicelib.tenants.cognito.CognitoUserDirectory calls (invitations, their resending and
# cancelling, removing a user); the dashboard's sign-in calls are the pool's public API (client
# ID only), which IAM does not govern.
USER_POOL_ADMIN = (
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminUpdateUserAttributes",
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminUserGlobalSignOut",
)
# chalicelib.tenants.accounts.EventBridgeBusPolicy: one statement per tenant on SESami's bus.
# DescribeEventBus takes the bus ARN; PutPermission and RemovePermission take only "*" (see the
# module docstring).
READ_BUS = ("events:DescribeEventBus",)
EDIT_BUS_POLICY = ("events:PutPermission", "events:RemovePermission")
ASSUME_CUSTOMER_ROLE = ("sts:AssumeRole",)
INVOKE = ("lambda:InvokeFunction",)
READ_PARAMETERS = ("ssm:GetParameters",)  # SecureStrings under the AWS managed key aws/ssm
SEND_TO_QUEUE = ("sqs:SendMessage",)
WRITE_LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
TRACING = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
# chalicelib.content.store.S3ContentStore: the objects (PutObject with a Tagging header needs
# PutObjectTagging too) and, for deleting a tenant's content by prefix, the listing.
WRITE_CONTENT = ("s3:PutObject", "s3:PutObjectTagging")
READ_AND_DELETE_CONTENT = ("s3:GetObject", "s3:DeleteObject")
LIST_CONTENT = ("s3:ListBucket",)
# Actions granted on "*" because the Service Authorization Reference gives them no resource type.
STAR_ONLY = frozenset((*TRACING, *EDIT_BUS_POLICY))


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
    # The API only:
    user_pool: str | None = None
    event_bus: str | None = None
    # Ingest only: its on-failure destination (Lambda sends with the function's role).
    failure_queue: str | None = None
    # The API and the bulk worker: the bucket of stored content (its ARN).
    content_bucket: str | None = None


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


def _content(scope: Scope, *, read_and_delete: bool) -> list[dict[str, Any]]:
    """Stored content: the bulk worker only writes it; the API writes, shows and erases it."""
    if scope.content_bucket is None:
        raise ValueError("the scope names the content bucket")
    objects = f"{scope.content_bucket}/*"
    statements = [_statement("ContentWrite", WRITE_CONTENT, [objects])]
    if read_and_delete:
        statements += [
            _statement("ContentReadDelete", READ_AND_DELETE_CONTENT, [objects]),
            _statement("ContentList", LIST_CONTENT, [scope.content_bucket]),
        ]
    return statements


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def api_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the REST API function."""
    if scope.user_pool is None or scope.event_bus is None:
        raise ValueError("the API's scope names the user pool and the event bus")
    return _document(
        [
            *_common(scope, (*TABLE_READS, *TABLE_WRITES, *TABLE_DELETES)),
            _customer_roles(scope),
            _statement("UserPoolAdmin", USER_POOL_ADMIN, [scope.user_pool]),
            _statement("EventBus", READ_BUS, [scope.event_bus]),
            # Service Authorization Reference: events:PutPermission and events:RemovePermission
            # support no resource-level permissions; a bus ARN here is an AccessDenied.
            _statement("EventBusPolicy", EDIT_BUS_POLICY, ["*"]),
            _statement("BulkWorker", INVOKE, scope.invokable),
            _statement("Secrets", READ_PARAMETERS, scope.parameters),
            *_content(scope, read_and_delete=True),
        ]
    )


def ingest_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the ingest function. Tables (no deletes), logs, its on-failure queue."""
    if scope.failure_queue is None:
        raise ValueError("the ingest scope names its on-failure queue")
    return _document(
        [
            *_common(scope, (*TABLE_READS, *TABLE_WRITES)),
            _statement("FailureDestination", SEND_TO_QUEUE, [scope.failure_queue]),
        ]
    )


def bulk_worker_policy(scope: Scope) -> dict[str, Any]:
    """Pure: the bulk worker. It sends as the customer (assumed role), and invokes itself for
    the next slice of a batch."""
    return _document(
        [
            *_common(scope, (*TABLE_READS, *TABLE_WRITES, *TABLE_DELETES)),
            _customer_roles(scope),
            _statement("NextSlice", INVOKE, scope.invokable),
            _statement("Secrets", READ_PARAMETERS, scope.parameters),
            *_content(scope, read_and_delete=False),
        ]
    )


POLICIES = {"api": api_policy, "ingest": ingest_policy, "bulk_worker": bulk_worker_policy}
