"""Invariants of the operator stack's program (infra/__main__.py): Cognito and the event path.

The whole program runs under `pulumi.runtime.set_mocks` with stack config (operator_program.py),
the mocks answer with realistic ARNs, and the tests assert on what would be sent to AWS.
Invariant 4 (no app client can write a tenant binding) lives here because moto does not enforce
a client's WriteAttributes."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    ACCOUNT,
    ALARM_TOPIC,
    REGION,
    STACK,
    Deployment,
    import_infra,
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import (  # noqa: E402
    ALARM,
    APP_CLIENT,
    BUS,
    EVENT_SOURCE,
    PERMISSION,
    QUEUE,
    QUEUE_POLICY,
    RULE,
    TARGET,
    USER_POOL,
    plain,
)

BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
INGEST_NAME = f"sesami-{STACK}-ingest"
INGEST_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{INGEST_NAME}"
# Spelled out here, not imported: the attributes that bind a Cognito user to a tenant.
TENANT_BINDINGS = {"custom:tenant_id", "custom:tenant_role"}

identity = import_infra("identity")
events = import_infra("events")
auth = importlib.import_module("chalicelib.tenants.auth")
bus_module = importlib.import_module("chalicelib.ingest.bus")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    package = write_package(tmp_path_factory.mktemp("package"), package_template())
    return run_program(stack_config(package))


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
    rule = deployed.state(RULE, "sesami-ses")
    assert rule["eventBusName"] == bus["name"] == f"sesami-{STACK}"
    assert json.loads(rule["eventPattern"]) == {"source": ["aws.ses"]}


def test_ingest_target_retries_for_a_day_then_dead_letters(deployed: Deployment) -> None:
    target = deployed.state(TARGET, "sesami-ingest")
    queue = deployed.state(QUEUE, "ingest-dlq")
    rule = deployed.state(RULE, "sesami-ses")
    # The rule sends to the ingest queue; the function reads it in batches.
    assert target["arn"] == ingest_queue(deployed)["arn"]
    assert target["rule"] == rule["name"]
    assert target["eventBusName"] == rule["eventBusName"]
    assert target["retryPolicy"] == {
        "maximumEventAgeInSeconds": 86_400,
        "maximumRetryAttempts": 185,
    }
    assert target["deadLetterConfig"] == {"arn": queue["arn"]}


def test_dead_letter_queue_is_encrypted_and_keeps_two_weeks(deployed: Deployment) -> None:
    queue = deployed.state(QUEUE, "ingest-dlq")
    assert queue.get("sqsManagedSseEnabled") is True or queue.get("kmsMasterKeyId")
    assert queue["messageRetentionSeconds"] == 14 * 86_400


def test_only_the_ingest_rule_can_send_to_the_dead_letter_queue(deployed: Deployment) -> None:
    queue = deployed.state(QUEUE, "ingest-dlq")
    rule = deployed.state(RULE, "sesami-ses")
    holder = deployed.state(QUEUE_POLICY, "ingest-dlq")
    assert holder["queueUrl"] == queue["url"]
    statements = json.loads(holder["policy"])["Statement"]
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] in ("sqs:SendMessage", ["sqs:SendMessage"])
    assert statement["Resource"] == queue["arn"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["arn"]}}


def ingest_queue(deployed: Deployment) -> dict[str, Any]:
    (queue,) = [q.state for q in deployed.mocks.of_type(QUEUE) if q.name == "sesami-ingest-queue"]
    return queue


def test_only_the_ingest_rule_can_send_to_the_ingest_queue(deployed: Deployment) -> None:
    queue = ingest_queue(deployed)
    holder = deployed.state(QUEUE_POLICY, "ingest-queue-policy")
    assert holder["queueUrl"] == queue["url"]
    (statement,) = json.loads(holder["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] in ("sqs:SendMessage", ["sqs:SendMessage"])
    assert statement["Resource"] == queue["arn"]
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": deployed.state(RULE, "sesami-ses")["arn"]}
    }
    # EventBridge no longer invokes ingest: the queue's mapping is its only trigger.
    assert not [p for p in deployed.mocks.of_type(PERMISSION) if "ingest" in p.name]


def test_ingest_reads_its_queue_in_batches_of_100_with_partial_failures(
    deployed: Deployment,
) -> None:
    queue = ingest_queue(deployed)
    dead = deployed.state(QUEUE, "ingest-queue-dead-letters")
    (mapping,) = [m.state for m in deployed.mocks.of_type(EVENT_SOURCE) if "ingest" in m.name]
    assert mapping["eventSourceArn"] == queue["arn"]
    assert mapping["functionName"] == INGEST_NAME
    assert mapping["batchSize"] == 100 and mapping["maximumBatchingWindowInSeconds"] >= 1
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert json.loads(queue["redrivePolicy"]) == {
        "deadLetterTargetArn": dead["arn"],
        "maxReceiveCount": 5,
    }
    assert queue.get("sqsManagedSseEnabled") is True and dead.get("sqsManagedSseEnabled") is True
    timeout = deployed.function("ingest")["timeout"]
    assert queue["visibilityTimeoutSeconds"] == 6 * timeout
    consume = [
        st for st in deployed.role_policy("ingest")["Statement"] if st.get("Sid") == "IngestQueue"
    ]
    assert consume and consume[0]["Resource"] == [queue["arn"]]
    assert set(consume[0]["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }


def test_alarms_fire_on_one_dead_letter_and_one_ingest_error(deployed: Deployment) -> None:
    queue = deployed.state(QUEUE, "ingest-dlq")
    alarms = {
        (a.state["namespace"], a.state["metricName"], *a.state["dimensions"].values()): a.state
        for a in deployed.mocks.of_type(ALARM)
    }
    dlq = alarms[("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue["name"])]
    errors = alarms[("AWS/Lambda", "Errors", INGEST_NAME)]
    assert dlq["dimensions"] == {"QueueName": queue["name"]}
    assert errors["dimensions"] == {"FunctionName": INGEST_NAME}
    for alarm in (dlq, errors):
        assert alarm["threshold"] == 1
        assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["alarmActions"] == [ALARM_TOPIC]


def test_bus_policy_is_one_statement_for_any_number_of_tenants(deployed: Deployment) -> None:
    # Owned here, whole: the API never edits it, connecting a tenant adds nothing to it.
    (resource,) = deployed.mocks.of_type(BUS_POLICY)
    bus = deployed.state(BUS)
    assert resource.state["eventBusName"] == bus["name"]
    policy = json.loads(resource.state["policy"])
    assert policy == bus_module.bus_policy(bus["arn"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Principal"] == "*"
    assert statement["Action"] == "events:PutEvents" and statement["Resource"] == bus["arn"]
    # Only SES's own events, which nobody but SES can put (sources beginning aws. are AWS's).
    assert statement["Condition"] == {
        "ForAllValues:StringEquals": {"events:source": ["aws.ses"]},
        "Null": {"events:source": "false"},
    }


def test_blocked_accounts_are_denied_on_the_bus(tmp_path_factory: pytest.TempPathFactory) -> None:
    package = write_package(tmp_path_factory.mktemp("package"), package_template())
    blocked = run_program(stack_config(package, blockedAccounts="222233334444, 111122223333"))
    (resource,) = blocked.mocks.of_type(BUS_POLICY)
    allow, deny = json.loads(resource.state["policy"])["Statement"]
    assert allow["Effect"] == "Allow"
    assert deny["Effect"] == "Deny" and deny["Action"] == "events:PutEvents"
    assert deny["Principal"] == {
        "AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::222233334444:root"]
    }


def test_unknown_account_events_alarm_past_a_trickle(deployed: Deployment) -> None:
    (alarm,) = [
        a.state
        for a in deployed.mocks.of_type(ALARM)
        if a.state["metricName"] == "UnknownAccountEvents"
    ]
    assert alarm["namespace"] == "SESami"
    assert alarm["dimensions"] == {"Outcome": "unknown_account"}
    assert alarm["statistic"] == "Sum" and alarm["threshold"] == events.UNKNOWN_ACCOUNT_EVENTS_ALARM
    assert alarm["alarmActions"] == [ALARM_TOPIC]


# --- Every policy document ---------------------------------------------------------------------


def _actions(document: dict[str, Any]) -> list[str]:
    """The actions a document grants: a Deny grants none (the content bucket's TLS-only policy
    denies `s3:*`, the form AWS recommends); a NotAction would grant all the others."""
    out: list[str] = []
    statements = document.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        for key in ("Action", "NotAction"):
            if key == "Action" and statement.get("Effect") == "Deny":
                continue
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
        json.loads(plain(r.state[key]))
        for r in deployed.mocks.resources
        for key in ("policy", "assumeRolePolicy")
        if isinstance(plain(r.state.get(key)), str)
    ]
    documents.append(events.dlq_policy("arn:aws:sqs:x:1:q", "arn:aws:events:x:1:rule/b/r"))
    assert documents
    allowed_everything = {"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
    assert _actions(allowed_everything) == ["s3:*"]  # only a Deny is passed over
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
