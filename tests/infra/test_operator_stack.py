"""Invariants of the operator stack's program (infra/__main__.py): Cognito and the event path.

The whole program runs under `pulumi.runtime.set_mocks` with stack config, the mocks answer with
realistic ARNs, and the tests assert on what would be sent to AWS. Invariant 4 (no app client can
write a tenant binding) lives here because moto does not enforce a client's WriteAttributes."""

from __future__ import annotations

import importlib
import json
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

INFRA = Path(__file__).resolve().parents[2] / "infra"
PROJECT = "sesami"
STACK = "prod"
ACCOUNT = "444455556666"
REGION = "eu-west-1"
INGEST_NAME = "sesami-prod-ingest"
INGEST_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{INGEST_NAME}"
ALARM_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:sesami-ops"

USER_POOL = "aws:cognito/userPool:UserPool"
APP_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
BUS = "aws:cloudwatch/eventBus:EventBus"
BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
PERMISSION = "aws:lambda/permission:Permission"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# Spelled out here, not imported: the attributes that bind a Cognito user to a tenant.
TENANT_BINDINGS = {"custom:tenant_id", "custom:tenant_role"}


def _import_infra(name: str) -> Any:
    # Refuse a same-named module from elsewhere on sys.path (tests/events is a data folder).
    if str(INFRA) not in sys.path:
        sys.path.insert(0, str(INFRA))
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == INFRA, module.__file__
    return module


identity = _import_infra("identity")
events = _import_infra("events")
auth = importlib.import_module("chalicelib.auth")


@dataclass
class Registered:
    typ: str
    name: str
    state: dict[str, Any]


class AwsMocks(pulumi.runtime.Mocks):
    """Answers like AWS would: ARNs, queue URLs and generated IDs in SESami's account."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        name = state.get("name") or f"{args.name}-5d2a9c1"
        resource_id = name
        if args.typ == USER_POOL:
            resource_id = f"{REGION}_Ab12Cd34E"
            state["arn"] = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{resource_id}"
        elif args.typ == APP_CLIENT:
            resource_id = "4q2hv1e6ks0jg3c9o7n5r8t1ab"
        elif args.typ == BUS:
            state["arn"] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
        elif args.typ == RULE:
            state["arn"] = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{state['eventBusName']}/{name}"
            resource_id = f"{state['eventBusName']}/{name}"
        elif args.typ == QUEUE:
            state["arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            state["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
            resource_id = state["url"]
        elif args.typ == "aws:dynamodb/table:Table":
            state["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        state.setdefault("name", name)
        self.resources.append(Registered(args.typ, args.name, state))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        raise NotImplementedError(f"unexpected invoke {args.token}")

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name_contains: str = "") -> Registered:
        matches = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(matches) == 1, f"expected one {typ} named *{name_contains}*, got {matches}"
        return matches[0]


@dataclass
class Deployment:
    mocks: AwsMocks
    outputs: dict[str, Any]

    def state(self, typ: str, name_contains: str = "") -> dict[str, Any]:
        return self.mocks.one(typ, name_contains).state


@pytest.fixture(scope="module")
def deployed() -> Any:
    saved = dict(pulumi.runtime.config.CONFIG.get())
    saved_secret = set(pulumi.runtime.config._SECRET_KEYS.get())
    pulumi.runtime.set_all_config(
        {
            f"{PROJECT}:ingestFunctionArn": INGEST_ARN,
            f"{PROJECT}:ingestFunctionName": INGEST_NAME,
            f"{PROJECT}:alarmTopicArn": ALARM_TOPIC,
        },
        [],
    )
    mocks = AwsMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=STACK, preview=False)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> Any:
        runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")
        exported = pulumi.runtime.get_root_resource().outputs

        async def collect() -> None:
            for key, output in exported.items():
                outputs[key] = await pulumi.Output.from_input(output).future()

        return collect()

    try:
        run()
        yield Deployment(mocks, outputs)
    finally:
        pulumi.runtime.set_all_config(saved, list(saved_secret))


def _forbidden_attribute_spellings() -> set[str]:
    names = set(auth.CUSTOM_ATTRIBUTES)
    return (
        TENANT_BINDINGS
        | names
        | {f"custom:{n}" for n in names}
        | {"dev:custom:" + n for n in names}
    )


# --- Cognito -----------------------------------------------------------------------------------


def test_no_app_client_can_write_a_tenant_binding(deployed: Deployment) -> None:
    clients = deployed.mocks.of_type(APP_CLIENT)
    assert clients, "the program declares no app client"
    assert {auth.TENANT_ATTRIBUTE, auth.TENANT_ROLE_ATTRIBUTE} == TENANT_BINDINGS
    for client in clients:
        writable = client.state.get("writeAttributes")
        # An absent list means "all writable attributes" to Cognito: it must be explicit.
        assert writable, f"{client.name} leaves write_attributes to Cognito's default (all)"
        assert not {a.lower() for a in writable} & _forbidden_attribute_spellings()
        assert not [a for a in writable if a.lower().startswith(("custom:", "dev:"))]


def test_write_attribute_builder_excludes_every_custom_attribute() -> None:
    writable = set(identity.client_write_attributes())
    assert writable
    assert not writable & _forbidden_attribute_spellings()


def test_user_pool_declares_the_tenant_attributes_as_mutable_strings(deployed: Deployment) -> None:
    pool = deployed.state(USER_POOL)
    schemas = {s["name"]: s for s in pool["schemas"]}
    assert set(auth.CUSTOM_ATTRIBUTES) <= set(schemas)
    assert {f"custom:{n}" for n in auth.CUSTOM_ATTRIBUTES} == TENANT_BINDINGS
    for name in auth.CUSTOM_ATTRIBUTES:
        assert schemas[name]["attributeDataType"] == "String"
        assert schemas[name]["mutable"] is True
    client = deployed.state(APP_CLIENT)
    assert set(client["readAttributes"]) >= TENANT_BINDINGS


def test_user_pool_signs_in_by_verified_email_with_a_strong_password(
    deployed: Deployment,
) -> None:
    pool = deployed.state(USER_POOL)
    assert pool["usernameAttributes"] == ["email"]
    assert pool["autoVerifiedAttributes"] == ["email"]
    policy = pool["passwordPolicy"]
    assert policy["minimumLength"] >= 12
    for kind in ("requireUppercase", "requireLowercase", "requireNumbers", "requireSymbols"):
        assert policy[kind] is True, kind
    assert pool["deletionProtection"] == "ACTIVE"


def test_dashboard_client_is_public_with_srp_password_and_refresh(deployed: Deployment) -> None:
    client = deployed.state(APP_CLIENT)
    assert client["generateSecret"] is False
    assert set(client["explicitAuthFlows"]) == {
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert (client["idTokenValidity"], client["accessTokenValidity"]) == (1, 1)
    assert client["refreshTokenValidity"] == 30
    assert client["tokenValidityUnits"] == {
        "idToken": "hours",
        "accessToken": "hours",
        "refreshToken": "days",
    }
    assert client["userPoolId"] == f"{REGION}_Ab12Cd34E"


# --- Event path --------------------------------------------------------------------------------


def test_rule_on_sesamis_bus_matches_ses_events(deployed: Deployment) -> None:
    bus = deployed.state(BUS)
    rule = deployed.state(RULE)
    assert rule["eventBusName"] == bus["name"] == f"sesami-{STACK}"
    assert json.loads(rule["eventPattern"]) == {"source": ["aws.ses"]}


def test_ingest_target_retries_for_a_day_then_dead_letters(deployed: Deployment) -> None:
    target = deployed.state(TARGET)
    queue = deployed.state(QUEUE)
    rule = deployed.state(RULE)
    assert target["arn"] == INGEST_ARN
    assert target["rule"] == rule["name"]
    assert target["eventBusName"] == rule["eventBusName"]
    assert target["retryPolicy"] == {
        "maximumEventAgeInSeconds": 86_400,
        "maximumRetryAttempts": 185,
    }
    assert target["deadLetterConfig"] == {"arn": queue["arn"]}


def test_dead_letter_queue_is_encrypted_and_keeps_two_weeks(deployed: Deployment) -> None:
    queue = deployed.state(QUEUE)
    assert queue.get("sqsManagedSseEnabled") is True or queue.get("kmsMasterKeyId")
    assert queue["messageRetentionSeconds"] == 14 * 86_400


def test_only_the_ingest_rule_can_send_to_the_dead_letter_queue(deployed: Deployment) -> None:
    queue = deployed.state(QUEUE)
    rule = deployed.state(RULE)
    holder = deployed.state(QUEUE_POLICY)
    assert holder["queueUrl"] == queue["url"]
    statements = json.loads(holder["policy"])["Statement"]
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] in ("sqs:SendMessage", ["sqs:SendMessage"])
    assert statement["Resource"] == queue["arn"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["arn"]}}


def test_eventbridge_may_invoke_ingest_only_from_the_rule(deployed: Deployment) -> None:
    permission = deployed.state(PERMISSION)
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["function"] == INGEST_NAME
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["sourceArn"] == deployed.state(RULE)["arn"]


def test_alarms_fire_on_one_dead_letter_and_one_ingest_error(deployed: Deployment) -> None:
    queue = deployed.state(QUEUE)
    alarms = {
        (a.state["namespace"], a.state["metricName"]): a.state
        for a in deployed.mocks.of_type(ALARM)
    }
    dlq = alarms[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    errors = alarms[("AWS/Lambda", "Errors")]
    assert dlq["dimensions"] == {"QueueName": queue["name"]}
    assert errors["dimensions"] == {"FunctionName": INGEST_NAME}
    for alarm in (dlq, errors):
        assert alarm["threshold"] == 1
        assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["alarmActions"] == [ALARM_TOPIC]


def test_bus_policy_is_left_to_the_api(deployed: Deployment) -> None:
    # The API adds one events:PutEvents statement per tenant at onboarding (PutPermission). An
    # EventBusPolicy resource owns the whole document and would erase them on the next `pulumi up`.
    assert deployed.mocks.of_type(BUS_POLICY) == []
    assert [r for r in deployed.mocks.resources if "eventBusPolicy" in r.typ] == []


# --- Every policy document ---------------------------------------------------------------------


def _actions(document: dict[str, Any]) -> list[str]:
    out: list[str] = []
    statements = document.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        for key in ("Action", "NotAction"):
            value = statement.get(key, [])
            out += [value] if isinstance(value, str) else list(value)
    return out


def _is_wildcard(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def test_wildcard_detector_catches_service_and_global_wildcards() -> None:
    assert _is_wildcard("*")
    assert _is_wildcard("sqs:*")
    assert not _is_wildcard("sqs:SendMessage")


def test_no_policy_statement_grants_a_wildcard_action(deployed: Deployment) -> None:
    documents = [
        json.loads(r.state[key])
        for r in deployed.mocks.resources
        for key in ("policy", "assumeRolePolicy")
        if isinstance(r.state.get(key), str)
    ]
    documents.append(events.dlq_policy("arn:aws:sqs:x:1:q", "arn:aws:events:x:1:rule/b/r"))
    assert documents
    for document in documents:
        assert not [a for a in _actions(document) if _is_wildcard(a)], document


# --- Program outputs ---------------------------------------------------------------------------


def test_program_exports_the_ids_the_app_and_dashboard_need(deployed: Deployment) -> None:
    outputs = deployed.outputs
    assert outputs["user_pool_id"] == f"{REGION}_Ab12Cd34E"
    assert outputs["user_pool_client_id"] == "4q2hv1e6ks0jg3c9o7n5r8t1ab"
    assert outputs["event_bus_arn"] == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/sesami-{STACK}"
    assert outputs["ingest_dlq_url"] == (
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/sesami-{STACK}-ingest-dlq"
    )
    assert outputs["table_names"]["tenants"] == f"sesami-{STACK}-tenants"
