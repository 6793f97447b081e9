"""Security invariant 14, first half, on what the programs register: every IAM policy document
either Pulumi program creates (roles' trust and inline policies, queue policies, and any other
input that holds a policy document, found by walking every resource's inputs) is valid against
the AWS Service Authorization Reference (tests/iam_reference.py), for each configuration that
changes a policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import (  # noqa: E402
    PERMISSION,
    QUEUE_POLICY,
    ROLE,
    ROLE_POLICY,
    plain,
)
from test_customer_onboarding import _valid_args, deploy  # noqa: E402

from tests import iam_reference as ref  # noqa: E402

Found = tuple[str, str, dict[str, Any]]  # (resource and input, kind, document)


def _values(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    value = plain(value)
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _values(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _values(inner, f"{path}[{i}]")
    else:
        yield path, value


def policy_documents(resources: list[Any]) -> list[Found]:
    """Every input of every registered resource that holds an IAM policy document."""
    found: list[Found] = []
    for resource in resources:
        for path, value in _values(resource.state, f"{resource.typ} {resource.name}"):
            if not isinstance(value, str) or not value.lstrip().startswith("{"):
                continue
            try:
                document = json.loads(value)
            except ValueError:
                continue
            if not isinstance(document, dict) or "Statement" not in document:
                continue
            statements = ref._as_list(document["Statement"])
            if path.endswith(".assumeRolePolicy"):
                kind = "trust"
            elif any("Principal" in s for s in statements):
                kind = "resource"
            else:
                kind = "identity"
            found.append((path, kind, document))
    return found


def _check(resources: list[Any]) -> list[Found]:
    found = policy_documents(resources)
    for where, kind, document in found:
        ref.assert_valid(document, kind=kind, where=where)  # type: ignore[arg-type]
    # Not vacuous: each resource that holds a policy gave one up.
    holders = [r for r in resources if r.typ in (ROLE, ROLE_POLICY, QUEUE_POLICY)]
    assert holders
    for holder in holders:
        assert any(f" {holder.name}." in where for where, _, _ in found), holder.name
    return found


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("package"), package_template())


@pytest.mark.parametrize(
    "extra",
    [{}, {"tracing": "true"}, {"snapStart": "true"}, {"alertsFrom": "alerts@sesami.example"}],
    ids=["default", "tracing", "snap-start", "alert-email"],
)
def test_every_policy_document_of_the_operator_stack_is_valid(
    package: Path, extra: dict[str, str]
) -> None:
    if extra.get("snapStart"):
        package = write_package(package.parent / "py312", package_template("python3.12"))
    deployment = run_program(stack_config(package, **extra))
    found = _check(deployment.mocks.resources)
    kinds = sorted(kind for _, kind, _ in found)
    # seven functions' trust and inline policies (api, ingest, bulk worker, webhooks, authorizer,
    # relay_ranges, count_events), the ingest DLQ's and the ingest queue's queue policies,
    # SESami's one bus policy (SES events from any account) and the content bucket's TLS-only
    # policy
    assert kinds == ["identity"] * 7 + ["resource"] * 4 + ["trust"] * 7
    # Resource policies that are not documents: Lambda permissions name one action each.
    permissions = deployment.mocks.of_type(PERMISSION)
    assert permissions
    for permission in permissions:
        assert ref.action_data(permission.state["action"]), permission.state["action"]
        assert permission.state["principal"].endswith(".amazonaws.com")


@pytest.mark.parametrize(
    "changes",
    [{}, {"sending_identities": ("example.com", "news@example.net")}],
    ids=["every-identity", "named-identities"],
)
def test_every_policy_document_of_the_onboarding_stack_is_valid(changes: dict[str, Any]) -> None:
    deployment = deploy(_valid_args(**changes))
    found = _check(deployment.mocks.resources)
    kinds = sorted(kind for _, kind, _ in found)
    # access and forwarder roles: trust and inline policy each; the dead-letter queue's policy
    assert kinds == ["identity"] * 2 + ["resource"] + ["trust"] * 2
