"""Least privilege for SESami's functions: every statement of every role, on the program's
output (Pulumi's mocks) and on the policy builders called directly."""

from __future__ import annotations

import fnmatch
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    PARAMETER,
    QUEUE,
    ROLE,
    TABLE,
    USER_POOL,
    Deployment,
    import_infra,
    package_template,
    plain,
    run_program,
    stack_config,
    write_package,
)

roles = import_infra("roles")
accounts = pytest.importorskip("chalicelib.tenants.accounts")
ONBOARDING_DIR = Path(__file__).resolve().parents[2] / "customer-onboarding"
CHALICE_NAMES = ("api", "ingest", "bulk_worker")
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


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _statements(deployment: Deployment, name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = deployment.role_policy(name)["Statement"]
    return statements


def _granting(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in statements if any(a.startswith(prefix) for a in _as_list(s["Action"]))]


def test_no_statement_of_any_role_has_a_wildcard_action(
    deployed: Deployment, traced: Deployment
) -> None:
    for deployment in (deployed, traced):
        for name in CHALICE_NAMES:
            for statement in _statements(deployment, name):
                assert statement["Effect"] == "Allow"
                for action in _as_list(statement["Action"]):
                    assert "*" not in action, (name, statement)


def test_resource_star_only_for_x_ray_which_requires_it(
    deployed: Deployment, traced: Deployment
) -> None:
    for name in CHALICE_NAMES:
        assert not [s for s in _statements(deployed, name) if "*" in _as_list(s["Resource"])]
        starred = [s for s in _statements(traced, name) if "*" in _as_list(s["Resource"])]
        assert len(starred) == 1, name
        assert set(_as_list(starred[0]["Action"])) == XRAY
        assert _as_list(starred[0]["Resource"]) == ["*"]


def test_table_actions_are_scoped_to_sesamis_tables_and_their_indexes(
    deployed: Deployment,
) -> None:
    tables = {t.state["arn"] for t in deployed.mocks.of_type(TABLE)}
    assert len(tables) == len(deployed.outputs["table_names"])
    for name in CHALICE_NAMES:
        for statement in _granting(_statements(deployed, name), "dynamodb:"):
            for resource in _as_list(statement["Resource"]):
                table = resource.split("/index/")[0]
                assert table in tables, (name, resource)
                if "/index/" in resource:
                    assert _as_list(statement["Action"]) == ["dynamodb:Query"]
        on_tables = {
            r
            for s in _granting(_statements(deployed, name), "dynamodb:")
            for r in _as_list(s["Resource"])
            if "/index/" not in r
        }
        assert on_tables == tables, name


def test_ingest_never_deletes_items(deployed: Deployment) -> None:
    actions = {a for s in _statements(deployed, "ingest") for a in _as_list(s["Action"])}
    assert "dynamodb:DeleteItem" not in actions
    assert not {a for a in actions if a.startswith(("sts:", "ssm:", "lambda:", "cognito-idp:"))}


def test_assume_role_is_exactly_the_customer_onboarding_path(deployed: Deployment) -> None:
    for name in ("api", "bulk_worker"):
        (statement,) = _granting(_statements(deployed, name), "sts:")
        assert _as_list(statement["Action"]) == ["sts:AssumeRole"]
        assert _as_list(statement["Resource"]) == [CUSTOMER_ROLES]


def test_the_role_the_onboarding_stack_creates_is_assumable_and_accepted_by_the_app() -> None:
    if str(ONBOARDING_DIR) not in sys.path:
        sys.path.insert(0, str(ONBOARDING_DIR))
    onboarding = importlib.import_module("onboarding")
    assert Path(onboarding.__file__).resolve().parent == ONBOARDING_DIR
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
    assert set(_as_list(statement["Action"])) == {
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminUpdateUserAttributes",
    }
    assert _as_list(statement["Resource"]) == [deployed.state(USER_POOL)["arn"]]


def test_no_function_may_change_who_puts_events_on_the_bus(deployed: Deployment) -> None:
    # The bus policy is the program's, the same for every tenant (chalicelib.ingest.bus).
    for name in CHALICE_NAMES:
        assert not _granting(_statements(deployed, name), "events:"), name


def test_only_the_bulk_worker_deletes_users_of_this_pool(deployed: Deployment) -> None:
    (statement,) = _granting(_statements(deployed, "bulk_worker"), "cognito-idp:")
    assert _as_list(statement["Action"]) == ["cognito-idp:AdminDeleteUser"]
    assert _as_list(statement["Resource"]) == [deployed.state(USER_POOL)["arn"]]
    for name in ("api", "ingest"):
        granted = {a for st in _statements(deployed, name) for a in _as_list(st["Action"])}
        assert "cognito-idp:AdminDeleteUser" not in granted, name


def test_only_the_bulk_worker_may_be_invoked(deployed: Deployment) -> None:
    worker = deployed.function("bulk_worker")["arn"]
    for name in ("api", "bulk_worker"):
        (statement,) = _granting(_statements(deployed, name), "lambda:")
        assert _as_list(statement["Action"]) == ["lambda:InvokeFunction"]
        assert _as_list(statement["Resource"]) == [worker]


def test_secrets_are_readable_by_the_api_and_worker_only(deployed: Deployment) -> None:
    parameters = {p.state["arn"] for p in deployed.mocks.of_type(PARAMETER)}
    for name in ("api", "bulk_worker"):
        (statement,) = _granting(_statements(deployed, name), "ssm:")
        assert _as_list(statement["Action"]) == ["ssm:GetParameters"]
        assert set(_as_list(statement["Resource"])) == parameters
    assert not _granting(_statements(deployed, "ingest"), "ssm:")


def test_ingest_may_send_only_to_its_failure_queue(deployed: Deployment) -> None:
    (statement,) = _granting(_statements(deployed, "ingest"), "sqs:")
    assert _as_list(statement["Action"]) == ["sqs:SendMessage"]
    assert _as_list(statement["Resource"]) == [deployed.state(QUEUE, "ingest-failures")["arn"]]


def test_logs_go_to_the_functions_own_group(deployed: Deployment) -> None:
    for name in CHALICE_NAMES:
        (statement,) = _granting(_statements(deployed, name), "logs:")
        group = f"/aws/lambda/{deployed.function(name)['name']}"
        assert _as_list(statement["Resource"]) == [
            f"arn:aws:logs:eu-west-1:444455556666:log-group:{group}:*"
        ]


def test_policy_builders_refuse_a_scope_without_its_resources() -> None:
    scope = roles.Scope(partition="aws", tables=["t"], indexes=["t/index/i"], log_group="g")
    with pytest.raises(ValueError, match="user pool"):
        roles.api_policy(scope)
    with pytest.raises(ValueError, match="queue"):
        roles.ingest_policy(scope)
    with pytest.raises(ValueError, match="user pool"):
        roles.bulk_worker_policy(scope)
    assert roles.customer_roles_arn("aws-us-gov") == "arn:aws-us-gov:iam::*:role/sesami/*"
