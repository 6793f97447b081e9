"""The stored-content bucket of the operator stack (infra/content.py) and who may use it, under
Pulumi's mocks: encrypted, no public access, ACLs disabled, the app's lifecycle rules; the API may
write, read, erase and list it, the bulk worker only write, ingest nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    ACCOUNT,
    REGION,
    Deployment,
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import BUCKET, plain  # noqa: E402

from tests import iam_reference as ref  # noqa: E402

NAME = f"sesami-prod-content-{ACCOUNT}-{REGION}"
ARN = f"arn:aws:s3:::{NAME}"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    package = write_package(tmp_path_factory.mktemp("package"), package_template())
    return run_program(stack_config(package))


def test_the_bucket_is_encrypted_private_and_expires_content_by_its_retention(
    deployed: Deployment,
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))
    from chalicelib.content.retention import ALLOWED_DAYS, TAG

    assert deployed.state(BUCKET, "content")["bucket"] == NAME
    assert deployed.outputs["content_bucket"] == NAME
    assert deployed.state(BUCKET, "content").get("forceDestroy") is False
    (rule,) = deployed.state(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "content",
    )["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    block = deployed.state("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "content")
    for flag in (
        "blockPublicAcls",
        "ignorePublicAcls",
        "blockPublicPolicy",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag
    ownership = deployed.state("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "content")
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    rules = deployed.state(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "content"
    )["rules"]
    expiring = {
        int(r["filter"]["tag"]["value"]): r["expiration"]["days"]
        for r in rules
        if r.get("expiration")
    }
    assert expiring == {d: d for d in ALLOWED_DAYS if d}
    assert all(r["filter"]["tag"]["key"] == TAG for r in rules if r.get("expiration"))
    assert all(r["status"] == "Enabled" for r in rules)


def _s3_statements(policy: dict[str, Any]) -> dict[str, set[str]]:
    """The S3 grants on the content bucket (the relay ranges' object is another test's)."""
    out: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        resources = {r for r in ref._as_list(statement["Resource"]) if r.startswith(ARN)}
        for action in ref._as_list(statement["Action"]):
            if action.startswith("s3:") and resources:
                out.setdefault(action, set()).update(resources)
    return out


def test_only_the_api_and_the_bulk_worker_reach_the_bucket_each_as_it_needs(
    deployed: Deployment,
) -> None:
    objects = {f"{ARN}/*"}
    assert _s3_statements(deployed.role_policy("api")) == {
        "s3:PutObject": objects,
        "s3:PutObjectTagging": objects,
        "s3:GetObject": objects,
        "s3:DeleteObject": objects,
        "s3:ListBucket": {ARN},
    }
    # The bulk worker sends (writes) and runs erasures and tenant deletions (deletes, by prefix).
    assert _s3_statements(deployed.role_policy("bulk_worker")) == {
        "s3:PutObject": objects,
        "s3:PutObjectTagging": objects,
        "s3:DeleteObject": objects,
        "s3:ListBucket": {ARN},
    }
    assert _s3_statements(deployed.role_policy("ingest")) == {}
    for function in ("api", "bulk_worker"):
        assert deployed.environment(function)["SESAMI_CONTENT_BUCKET"] == NAME
        ref.assert_valid(deployed.role_policy(function), kind="identity", where=function)
    assert "SESAMI_CONTENT_BUCKET" not in deployed.environment("ingest")


def test_the_bucket_refuses_plain_http_and_its_policy_grants_nothing(deployed: Deployment) -> None:
    """Access is by the roles' IAM policies alone; the bucket's own policy only denies every
    request not made over TLS, for every action and principal."""
    (policy,) = deployed.mocks.of_type("aws:s3/bucketPolicy:BucketPolicy")
    document = json.loads(plain(policy.state["policy"]))
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert sorted(statement["Resource"]) == [ARN, f"{ARN}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert not [s for s in document["Statement"] if s["Effect"] == "Allow"]
    ref.assert_valid(document, kind="resource", where="content bucket policy")
    assert json.dumps(deployed.state(BUCKET, "content")).find("Statement") == -1
