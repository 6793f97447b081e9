"""Least privilege for SESami's functions: every statement of every role, on the program's
output (Pulumi's mocks) and on the policy builders called directly."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    Deployment,
    import_infra,
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import (  # noqa: E402
    PARAMETER,
    QUEUE,
    ROLE,
    TABLE,
    USER_POOL,
    as_list,
    import_from,
    plain,
)

roles = import_infra("roles")
accounts = pytest.importorskip("chalicelib.tenants.accounts")
ONBOARDING_DIR = Path(__file__).resolve().parents[2] / "customer-onboarding"
CHALICE_NAMES = (
    "api",
    "ingest",
    "bulk_worker",
    "webhooks",
    "authorizer",
    "relay_ranges",
    "count_events",
)
LIST_STREAMS = {"dynamodb:ListStreams"}
# Spelled out: the only resource wildcard SESami's own roles may hold beyond log streams.
CUSTOMER_ROLES = "arn:aws:iam::*:role/sesami/*"
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("package"), package_template())


@pytest.fixture(scope="module")
def deployed(package: Path) -> Deployment:
    return run_program(stack_config(package))


@pytest.fixture(scope="module")
def traced(package: Path) -> Deployment:
    return run_program(stack_config(package, tracing="true"))


def _statements(deployment: Deployment, name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = deployment.role_policy(name)["Statement"]
    return statements


def _granting(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in statements if any(a.startswith(prefix) for a in as_list(s["Action"]))]


def test_no_statement_of_any_role_has_a_wildcard_action(
    deployed: Deployment, traced: Deployment
) -> None:
    for deployment in (deployed, traced):
        for name in CHALICE_NAMES:
            for statement in _statements(deployment, name):
                assert statement["Effect"] == "Allow"
                for action in as_list(statement["Action"]):
                    assert "*" not in action, (name, statement)


def _starred(deployment: Deployment, name: str) -> list[dict[str, Any]]:
    return [s for s in _statements(deployment, name) if "*" in as_list(s["Resource"])]


def test_resource_star_only_for_actions_aws_accepts_on_star_alone(
    deployed: Deployment, traced: Deployment
) -> None:
    """X-Ray's two actions (with tracing) and the API's bus-policy edits: the Service
    Authorization Reference gives them no resource type (tests/api/test_iam_reference.py checks
    roles.STAR_ONLY against it), and each has a statement of its own on "*" alone."""
    for deployment, traces in ((deployed, set()), (traced, XRAY)):
        for name in CHALICE_NAMES:
            expected = traces | (LIST_STREAMS if name == "count_events" else set())
            starred = _starred(deployment, name)
            assert {a for s in starred for a in as_list(s["Action"])} == expected, name
            assert all(as_list(s["Resource"]) == ["*"] for s in starred), name
            assert expected <= roles.STAR_ONLY


def test_table_actions_are_scoped_to_sesamis_tables_and_their_indexes(
    deployed: Deployment,
) -> None:
    tables = {t.state["arn"] for t in deployed.mocks.of_type(TABLE)}
    assert len(tables) == len(deployed.outputs["table_names"])
    for name in CHALICE_NAMES:
        for statement in _granting(_statements(deployed, name), "dynamodb:"):
            for resource in as_list(statement["Resource"]):
                if resource == "*":  # count_events' ListStreams: test_operator_counting
                    assert as_list(statement["Action"]) == ["dynamodb:ListStreams"]
                    continue
                table = re.split("/index/|/stream/", resource)[0]
                assert table in tables, (name, resource)
                if "/stream/" in resource:
                    assert name == "count_events", (name, resource)
                if "/index/" in resource:
                    assert as_list(statement["Action"]) == ["dynamodb:Query"]
        on_tables = {
            r
            for s in _granting(_statements(deployed, name), "dynamodb:")
            for r in as_list(s["Resource"])
            if "/index/" not in r and "/stream/" not in r and r != "*"
        }
        mine = {
            "authorizer": {deployed.state(TABLE, "api_keys")["arn"]},
            "relay_ranges": set(),  # it touches no table
            "count_events": {deployed.state(TABLE, "counters")["arn"]},
        }.get(name, tables)
        assert on_tables == mine, name


def test_the_authorizer_may_only_read_one_api_key_and_write_its_logs(
    deployed: Deployment, traced: Deployment
) -> None:
    keys_table = deployed.state(TABLE, "api_keys")["arn"]
    group = f"/aws/lambda/{deployed.function('authorizer')['name']}"
    logs = f"arn:aws:logs:eu-west-1:444455556666:log-group:{group}:*"
    granted = {
        (a, r)
        for s in _statements(deployed, "authorizer")
        for a in as_list(s["Action"])
        for r in as_list(s["Resource"])
    }
    assert granted == {
        ("dynamodb:GetItem", keys_table),
        ("logs:CreateLogStream", logs),
        ("logs:PutLogEvents", logs),
    }
    traced_actions = {a for s in _statements(traced, "authorizer") for a in as_list(s["Action"])}
    assert traced_actions == {a for a, _ in granted} | XRAY


def test_ingest_never_deletes_items(deployed: Deployment) -> None:
    actions = {a for s in _statements(deployed, "ingest") for a in as_list(s["Action"])}
    assert "dynamodb:DeleteItem" not in actions
    assert not {a for a in actions if a.startswith(("sts:", "ssm:", "lambda:", "cognito-idp:"))}


def test_only_ingest_writes_with_partiql_and_only_the_messages_table(
    deployed: Deployment,
) -> None:
    """A round's aggregates go in BatchExecuteStatements (chalicelib.ingest.store), which IAM
    governs as PartiQLInsert / PartiQLUpdate on the table: ingest's role grants exactly those,
    on the messages table alone; no other function may write with PartiQL."""
    messages = deployed.state(TABLE, "messages")["arn"]
    (statement,) = _granting(_statements(deployed, "ingest"), "dynamodb:PartiQL")
    assert sorted(as_list(statement["Action"])) == [
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
    ]
    assert as_list(statement["Resource"]) == [messages]
    for name in CHALICE_NAMES:
        if name != "ingest":
            assert not _granting(_statements(deployed, name), "dynamodb:PartiQL")


def test_assume_role_is_exactly_the_customer_onboarding_path(deployed: Deployment) -> None:
    for name in ("api", "bulk_worker"):
        (statement,) = _granting(_statements(deployed, name), "sts:")
        assert as_list(statement["Action"]) == ["sts:AssumeRole"]
        assert as_list(statement["Resource"]) == [CUSTOMER_ROLES]


def test_the_role_the_onboarding_stack_creates_is_assumable_and_accepted_by_the_app() -> None:
    onboarding = import_from(ONBOARDING_DIR, "onboarding")
    arn = f"arn:aws:iam::111122223333:role{onboarding.ROLE_PATH}{accounts.DEFAULT_ROLE_NAME}"
    assert fnmatch.fnmatchcase(arn, CUSTOMER_ROLES)
    assert accounts.RoleArn.parse(arn).path == onboarding.ROLE_PATH == accounts.ROLE_PATH
    # A role elsewhere in the customer's account is neither assumable nor accepted.
    elsewhere = "arn:aws:iam::111122223333:role/Admin"
    assert not fnmatch.fnmatchcase(elsewhere, CUSTOMER_ROLES)
    with pytest.raises(Exception, match="path"):
        accounts.RoleArn.parse(elsewhere)


def test_sesamis_own_roles_trust_only_lambda_and_stay_off_the_customer_path(
    deployed: Deployment,
) -> None:
    own = deployed.mocks.of_type(ROLE)
    assert len(own) == len(CHALICE_NAMES)
    for role in own:
        assert not fnmatch.fnmatchcase(role.state["arn"], CUSTOMER_ROLES), role.name
        trust = json.loads(plain(role.state["assumeRolePolicy"]))
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRole"


def test_api_administers_only_this_user_pool_with_the_calls_it_makes(
    deployed: Deployment,
) -> None:
    (statement,) = _granting(_statements(deployed, "api"), "cognito-idp:")
    assert set(as_list(statement["Action"])) == {
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminUpdateUserAttributes",
        "cognito-idp:AdminDeleteUser",
        "cognito-idp:AdminUserGlobalSignOut",
        "cognito-idp:AdminGetUser",
    }
    assert as_list(statement["Resource"]) == [deployed.state(USER_POOL)["arn"]]


def test_no_function_may_change_who_puts_events_on_the_bus(deployed: Deployment) -> None:
    # The bus policy is the program's, the same for every tenant (chalicelib.ingest.bus).
    for name in CHALICE_NAMES:
        assert not _granting(_statements(deployed, name), "events:"), name


def test_the_bulk_worker_deletes_users_of_this_pool_and_nothing_else_of_it(
    deployed: Deployment,
) -> None:
    (statement,) = _granting(_statements(deployed, "bulk_worker"), "cognito-idp:")
    assert as_list(statement["Action"]) == ["cognito-idp:AdminDeleteUser"]
    assert as_list(statement["Resource"]) == [deployed.state(USER_POOL)["arn"]]
    for name in ("ingest", "webhooks"):
        granted = {a for st in _statements(deployed, name) for a in as_list(st["Action"])}
        assert "cognito-idp:AdminDeleteUser" not in granted, name


def test_the_roles_customers_trust_are_exactly_those_that_assume_their_roles(
    deployed: Deployment,
) -> None:
    exported = deployed.outputs["sesami_role_arns"]
    assuming = {
        deployed.state(ROLE, f"sesami-{name}-role")["arn"]
        for name in CHALICE_NAMES
        if _granting(_statements(deployed, name), "sts:")
    }
    assert sorted(exported) == sorted(assuming) and len(exported) == 2
    # ...and the API hands the same ARNs to customers (GET /account/onboarding).
    assert deployed.environment("api")["SESAMI_ROLE_ARNS"].split(",") == exported


def test_only_the_bulk_worker_may_be_invoked(deployed: Deployment) -> None:
    worker = deployed.function("bulk_worker")["arn"]
    for name in ("api", "bulk_worker"):
        (statement,) = _granting(_statements(deployed, name), "lambda:")
        assert as_list(statement["Action"]) == ["lambda:InvokeFunction"]
        assert as_list(statement["Resource"]) == [worker]


def test_each_function_reads_only_the_secrets_it_needs(deployed: Deployment) -> None:
    parameters = {
        p.state["name"].rsplit("/", 1)[-1]: p.state["arn"]
        for p in deployed.mocks.of_type(PARAMETER)
    }
    reads = {
        "api": set(parameters),
        "bulk_worker": set(parameters) - {"webhook-key"},
        "webhooks": {"webhook-key"},
    }
    for name, wanted in reads.items():
        (statement,) = _granting(_statements(deployed, name), "ssm:")
        assert as_list(statement["Action"]) == ["ssm:GetParameters"]
        assert set(as_list(statement["Resource"])) == {parameters[w] for w in wanted}, name
    assert not _granting(_statements(deployed, "ingest"), "ssm:")


def test_ingest_may_send_only_to_its_failure_queue_and_the_webhook_queue(
    deployed: Deployment,
) -> None:
    statements = _granting(_statements(deployed, "ingest"), "sqs:")
    sends = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
    assert {a for s in sends for a in as_list(s["Action"])} == {"sqs:SendMessage"}
    assert {r for s in sends for r in as_list(s["Resource"])} == {
        deployed.state(QUEUE, "ingest-failures")["arn"],
        _queue(deployed, "webhooks"),
    }
    # ... and consumes only the ingest queue (its event source mapping reads with its role).
    (consume,) = [s for s in statements if s not in sends]
    assert set(as_list(consume["Action"])) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    assert as_list(consume["Resource"]) == [_queue(deployed, "ingest-queue")]


def _queue(deployed: Deployment, name: str) -> str:
    (queue,) = [q for q in deployed.mocks.of_type(QUEUE) if q.state["name"].endswith(f"-{name}")]
    arn: str = queue.state["arn"]
    return arn


def test_the_webhooks_function_consumes_its_queue_and_never_acts_in_customer_accounts(
    deployed: Deployment,
) -> None:
    statements = _statements(deployed, "webhooks")
    (queue,) = _granting(statements, "sqs:")
    assert set(as_list(queue["Action"])) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    }
    assert as_list(queue["Resource"]) == [_queue(deployed, "webhooks")]
    assert not _granting(statements, "sts:") and not _granting(statements, "lambda:")
    assert not _granting(statements, "ses:")  # no alertsFrom: no email
    assert not [a for s in statements for a in as_list(s["Action"]) if a == "dynamodb:DeleteItem"]
    (api_queue,) = _granting(_statements(deployed, "api"), "sqs:")
    assert as_list(api_queue["Action"]) == ["sqs:SendMessage"]


def test_alert_emails_may_be_sent_only_as_the_configured_identity(package: Path) -> None:
    mailing = run_program(stack_config(package, alertsFrom="alerts@sesami.example"))
    (statement,) = _granting(_statements(mailing, "webhooks"), "ses:")
    assert as_list(statement["Action"]) == ["ses:SendEmail"]
    assert as_list(statement["Resource"]) == [
        "arn:aws:ses:eu-west-1:444455556666:identity/alerts@sesami.example",
        "arn:aws:ses:eu-west-1:444455556666:identity/sesami.example",
    ]


def test_logs_go_to_the_functions_own_group(deployed: Deployment) -> None:
    for name in CHALICE_NAMES:
        (statement,) = _granting(_statements(deployed, name), "logs:")
        group = f"/aws/lambda/{deployed.function(name)['name']}"
        assert as_list(statement["Resource"]) == [
            f"arn:aws:logs:eu-west-1:444455556666:log-group:{group}:*"
        ]


def test_policy_builders_refuse_a_scope_without_its_resources() -> None:
    scope = roles.Scope(partition="aws", tables=["t"], indexes=["t/index/i"], log_group="g")
    with pytest.raises(ValueError, match="user pool"):
        roles.api_policy(scope)
    with pytest.raises(ValueError, match="queue"):
        roles.ingest_policy(scope)
    with pytest.raises(ValueError, match="API-keys table"):
        roles.authorizer_policy(roles.Scope(partition="aws", tables=[], indexes=[], log_group="g"))
    with pytest.raises(ValueError, match="user pool"):
        roles.bulk_worker_policy(scope)
    assert roles.customer_roles_arn("aws-us-gov") == "arn:aws-us-gov:iam::*:role/sesami/*"
