"""Invariants of the customer-onboarding Pulumi program (customer-onboarding/).

No Pulumi CLI or AWS account is reachable, so the program runs under `pulumi.runtime.set_mocks`
(pulumi_mocks.py, in the customer's account): the mocks record every resource's inputs and answer
with realistic ARNs, and the tests assert on what would be sent to AWS. The policy builders are
pure and are also tested directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip(
    "pulumi", reason="the Pulumi programs are tested from .venv-infra (requirements.txt)"
)
pytest.importorskip("pulumi_aws", reason="the Pulumi programs are tested from .venv-infra")

from pulumi_mocks import (  # noqa: E402
    AUTONAME,
    CONFIGURATION_SET,
    EVENT_DESTINATION,
    QUEUE,
    QUEUE_POLICY,
    ROLE,
    ROLE_POLICY,
    RULE,
    TARGET,
    AwsMocks,
    Registered,
    as_list,
    import_from,
    is_secret,
    plain,
    run,
    run_main,
    saved_config,
    set_config,
    statements,
    use_mocks,
)

# SESAMI_ONBOARDING_DIR: a generated bundle's unpacked program (test_onboarding_bundle.py
# runs this whole module against one), else the repository's own.
ONBOARDING_DIR = Path(
    os.environ.get("SESAMI_ONBOARDING_DIR")
    or Path(__file__).resolve().parents[2] / "customer-onboarding"
).resolve()
EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
PROJECT = "sesami-customer-onboarding"

policies = import_from(ONBOARDING_DIR, "policies")
onboarding = import_from(ONBOARDING_DIR, "onboarding")

CUSTOMER_ACCOUNT = "111122223333"
SESAMI_ACCOUNT = "444455556666"
REGION = "eu-west-1"
SESAMI_BUS_ARN = f"arn:aws:events:{REGION}:{SESAMI_ACCOUNT}:event-bus/sesami-ingest"
# What the operator stack exports as sesami_role_arns: its API's and bulk worker's roles.
SESAMI_ROLE_ARNS = (
    f"arn:aws:iam::{SESAMI_ACCOUNT}:role/sesami-prod-api-role",
    f"arn:aws:iam::{SESAMI_ACCOUNT}:role/sesami-prod-bulk-worker-role",
)
EXTERNAL_ID = "sx1-6f0c2b9e4d7a41c8b35e92d07af1c64e"  # the shape SESami issues: >= 128 bits
DEFAULT_BUS_ARN = f"arn:aws:events:{REGION}:{CUSTOMER_ACCOUNT}:event-bus/default"
CONFIGURATION_SET_ARN = f"arn:aws:ses:{REGION}:{CUSTOMER_ACCOUNT}:configuration-set/sesami-events"
ALL_IDENTITIES_ARN = f"arn:aws:ses:{REGION}:{CUSTOMER_ACCOUNT}:identity/*"
# Spelled out here, not imported, so that dropping one from the program fails a test.
TEN_EVENT_TYPES = {
    "SEND",
    "REJECT",
    "BOUNCE",
    "COMPLAINT",
    "DELIVERY",
    "OPEN",
    "CLICK",
    "RENDERING_FAILURE",
    "DELIVERY_DELAY",
    "SUBSCRIPTION",
}


# --- Under the mocks ----------------------------------------------------------------------------


@dataclass
class Deployment:
    mocks: AwsMocks
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def role(self, purpose: str) -> Registered:
        return self.mocks.one(ROLE, purpose)

    def role_policy(self, purpose: str) -> dict[str, Any]:
        return _document(self.mocks.one(ROLE_POLICY, purpose).state["policy"])

    def trust_policy(self, purpose: str) -> dict[str, Any]:
        return _document(plain(self.role(purpose).state["assumeRolePolicy"]))

    def queue_policy(self) -> dict[str, Any]:
        return _document(self.mocks.one(QUEUE_POLICY).state["policy"])

    def all_policy_documents(self) -> list[dict[str, Any]]:
        return (
            [json.loads(r.state["policy"]) for r in self.mocks.of_type(ROLE_POLICY)]
            + [json.loads(plain(r.state["assumeRolePolicy"])) for r in self.mocks.of_type(ROLE)]
            + [json.loads(r.state["policy"]) for r in self.mocks.of_type(QUEUE_POLICY)]
        )


def _document(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    return document


def _use_mocks() -> AwsMocks:
    return use_mocks(AwsMocks(CUSTOMER_ACCOUNT, REGION), project=PROJECT, stack="test")


def _valid_args(**overrides: Any) -> Any:
    args = onboarding.OnboardingArgs(
        sesami_account_id=SESAMI_ACCOUNT,
        sesami_event_bus_arn=SESAMI_BUS_ARN,
        external_id=EXTERNAL_ID,
        sesami_role_arns=SESAMI_ROLE_ARNS,
    )
    return replace(args, **overrides)


def deploy(args: Any) -> Deployment:
    """Run the component under mocks; return what it registered and its resolved outputs."""
    mocks = _use_mocks()

    def program() -> dict[str, Any]:
        component = onboarding.CustomerOnboarding("sesami", args)
        return {
            "roleArn": component.role_arn,
            "externalId": component.external_id,
            "configurationSetName": component.configuration_set_name,
            "ruleArn": component.rule_arn,
            "deadLetterQueueUrl": component.dead_letter_queue_url,
            "deadLetterQueueArn": component.dead_letter_queue_arn,
            "region": component.region,
            "accountId": component.account_id,
            "trustPolicy": component.access_role.assume_role_policy,
        }

    exported = run(program)
    return Deployment(mocks, exported.values, exported.secret)


@pytest.fixture(scope="module")
def deployed() -> Deployment:
    return deploy(_valid_args())


def _statement_with(document: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in statements(document) if action in as_list(s["Action"])]
    assert len(found) == 1, f"{action} should be granted by exactly one statement: {found}"
    return found[0]


# --- Access role: trust --------------------------------------------------------------------------


def test_access_role_trusts_only_sesamis_two_roles_and_requires_configured_external_id(
    deployed: Deployment,
) -> None:
    trust = deployed.trust_policy("access")

    [statement] = statements(trust)
    assert statement["Effect"] == "Allow"
    # SESami's API and bulk worker, not its account's root (any principal there).
    assert statement["Principal"] == {"AWS": sorted(SESAMI_ROLE_ARNS)}
    assert not any(p.endswith(":root") for p in statement["Principal"]["AWS"])
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}


def test_access_role_has_configured_name_path_and_one_hour_sessions(deployed: Deployment) -> None:
    role = deployed.role("access").state

    assert role["name"] == "SESamiAccess"
    assert role["path"] == "/sesami/"
    assert role["maxSessionDuration"] == 3600
    assert role["tags"] == {"managed-by": "sesami-customer-onboarding"}
    assert (
        deployed.outputs["roleArn"] == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/sesami/SESamiAccess"
    )


def test_external_id_and_the_trust_policy_holding_it_stay_secret(deployed: Deployment) -> None:
    assert deployed.outputs["externalId"] == EXTERNAL_ID
    assert {"externalId", "trustPolicy"} <= deployed.secret_outputs
    assert "roleArn" not in deployed.secret_outputs
    # ...and the engine (hence the state file) receives the trust policy as a secret.
    assert is_secret(deployed.role("access").state["assumeRolePolicy"])
    assert not is_secret(deployed.role("forwarder").state["assumeRolePolicy"])


# --- Access role: permissions ------------------------------------------------------------------


def test_no_statement_grants_a_wildcard_action(deployed: Deployment) -> None:
    documents = deployed.all_policy_documents()
    # two role policies, two trust policies, the dead-letter queue's policy
    assert len(documents) == 5

    for document in documents:
        for statement in statements(document):
            assert "NotAction" not in statement
            assert "NotPrincipal" not in statement
            assert statement["Effect"] == "Allow"
            assert statement.get("Principal") != "*"
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"wildcard action {action!r} in {statement}"
                assert action != "ses:*"


def test_send_actions_are_scoped_to_identities_and_configuration_set(deployed: Deployment) -> None:
    policy = deployed.role_policy("access")
    send = _statement_with(policy, "ses:SendEmail")

    # SESami sends one SESv2 SendEmail per message (single and bulk): nothing else is granted.
    assert send["Action"] == ["ses:SendEmail"]
    assert sorted(send["Resource"]) == sorted([ALL_IDENTITIES_ARN, CONFIGURATION_SET_ARN])


def test_send_scope_follows_configured_sending_identities() -> None:
    explicit_arn = f"arn:aws:ses:{REGION}:{CUSTOMER_ACCOUNT}:identity/news@example.net"
    deployment = deploy(_valid_args(sending_identities=("example.com", explicit_arn)))

    send = _statement_with(deployment.role_policy("access"), "ses:SendEmail")
    assert sorted(send["Resource"]) == sorted(
        [
            f"arn:aws:ses:{REGION}:{CUSTOMER_ACCOUNT}:identity/example.com",
            explicit_arn,
            CONFIGURATION_SET_ARN,
        ]
    )
    assert ALL_IDENTITIES_ARN not in send["Resource"]


def test_only_account_level_actions_get_resource_star(deployed: Deployment) -> None:
    policy = deployed.role_policy("access")
    star_actions = {
        action
        for statement in statements(policy)
        if "*" in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
    }

    assert star_actions == {
        "ses:ListSuppressedDestinations",
        "ses:PutSuppressedDestination",
        "ses:DeleteSuppressedDestination",
        "ses:GetAccount",
        "ses:ListEmailIdentities",
    }


def test_checklist_reads_are_scoped_to_configuration_set_and_forwarding_rule(
    deployed: Deployment,
) -> None:
    policy = deployed.role_policy("access")
    rule_arn = deployed.mocks.one(RULE).state["arn"]

    for action in ("ses:GetConfigurationSet", "ses:GetConfigurationSetEventDestinations"):
        assert _statement_with(policy, action)["Resource"] == [CONFIGURATION_SET_ARN]
    identities = f"arn:aws:ses:{REGION}:{CUSTOMER_ACCOUNT}:identity/*"
    assert _statement_with(policy, "ses:GetEmailIdentity")["Resource"] == [identities]
    for action in ("events:DescribeRule", "events:ListTargetsByRule"):
        assert _statement_with(policy, action)["Resource"] == [rule_arn]
    assert deployed.outputs["ruleArn"] == rule_arn
    # The rule has the fixed name SESami's checklist reads: no ListRules is needed.
    assert deployed.mocks.one(RULE).state["name"] == policies.FORWARDING_RULE_NAME
    assert rule_arn == policies.forwarding_rule_arn("aws", REGION, CUSTOMER_ACCOUNT)


# --- Configuration set and event destination ----------------------------------------------------


def test_event_destination_publishes_all_ten_event_types(deployed: Deployment) -> None:
    destination = deployed.mocks.one(EVENT_DESTINATION).state

    assert destination["configurationSetName"] == "sesami-events"
    assert destination["eventDestinationName"] == "sesami-eventbridge"
    assert destination["eventDestination"]["enabled"] is True
    types = destination["eventDestination"]["matchingEventTypes"]
    assert set(types) == TEN_EVENT_TYPES
    assert len(types) == len(TEN_EVENT_TYPES)


def test_event_destination_targets_this_accounts_default_bus(deployed: Deployment) -> None:
    destination = deployed.mocks.one(EVENT_DESTINATION).state["eventDestination"]

    assert destination["eventBridgeDestination"] == {"eventBusArn": DEFAULT_BUS_ARN}


def test_configuration_set_is_created_with_configured_name() -> None:
    deployment = deploy(_valid_args(configuration_set_name="transactional"))

    configuration_set = deployment.mocks.one(CONFIGURATION_SET).state
    assert configuration_set["configurationSetName"] == "transactional"
    assert deployment.outputs["configurationSetName"] == "transactional"
    send = _statement_with(deployment.role_policy("access"), "ses:SendEmail")
    assert (
        f"arn:aws:ses:{REGION}:{CUSTOMER_ACCOUNT}:configuration-set/transactional"
        in send["Resource"]
    )


# --- Forwarding rule and target -------------------------------------------------------------------


def test_rule_on_default_bus_matches_ses_events_of_the_configuration_set(
    deployed: Deployment,
) -> None:
    rule = deployed.mocks.one(RULE).state
    pattern = json.loads(rule["eventPattern"])

    assert rule["eventBusName"] == "default"
    assert pattern["source"] == ["aws.ses"]
    tagged = {"detail": {"mail": {"tags": {"ses:configuration-set": ["sesami-events"]}}}}
    assert tagged in pattern["$or"]


def test_target_is_sesami_bus_through_the_forwarder_role(deployed: Deployment) -> None:
    target = deployed.mocks.one(TARGET).state
    rule = deployed.mocks.one(RULE).state
    forwarder = deployed.role("forwarder").state

    assert target["arn"] == SESAMI_BUS_ARN
    assert target["rule"] == rule["name"]
    assert target["eventBusName"] == "default"
    assert target["roleArn"] == forwarder["arn"]


def test_target_retries_for_a_day_then_dead_letters_to_the_queue(deployed: Deployment) -> None:
    target = deployed.mocks.one(TARGET).state
    queue = deployed.mocks.one(QUEUE).state

    assert target["retryPolicy"] == {
        "maximumEventAgeInSeconds": 86400,
        "maximumRetryAttempts": 185,
    }
    assert target["deadLetterConfig"] == {"arn": queue["arn"]}
    assert queue["arn"].startswith(f"arn:aws:sqs:{REGION}:{CUSTOMER_ACCOUNT}:")


def test_dead_letter_queue_is_encrypted_and_keeps_messages_fourteen_days(
    deployed: Deployment,
) -> None:
    queue = deployed.mocks.one(QUEUE).state

    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 1209600
    assert not queue.get("fifoQueue")  # EventBridge dead-letter queues must be standard queues
    assert queue["tags"] == {"managed-by": "sesami-customer-onboarding"}
    assert deployed.outputs["deadLetterQueueUrl"] == queue["url"]
    assert deployed.outputs["deadLetterQueueArn"] == queue["arn"]


def test_only_eventbridge_for_the_forwarding_rule_may_send_to_the_dead_letter_queue(
    deployed: Deployment,
) -> None:
    queue = deployed.mocks.one(QUEUE).state
    rule_arn = deployed.mocks.one(RULE).state["arn"]
    queue_policy = deployed.mocks.one(QUEUE_POLICY).state

    assert queue_policy["queueUrl"] == queue["url"]
    document = deployed.queue_policy()
    assert document["Version"] == "2012-10-17"
    [statement] = statements(document)
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert as_list(statement["Action"]) == ["sqs:SendMessage"]
    assert as_list(statement["Resource"]) == [queue["arn"]]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}


def test_forwarder_role_may_only_put_events_on_the_sesami_bus(deployed: Deployment) -> None:
    [statement] = statements(deployed.role_policy("forwarder"))
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["events:PutEvents"]
    assert as_list(statement["Resource"]) == [SESAMI_BUS_ARN]

    [trust] = statements(deployed.trust_policy("forwarder"))
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"


def test_outputs_name_the_customer_account_and_region(deployed: Deployment) -> None:
    assert deployed.outputs["accountId"] == CUSTOMER_ACCOUNT
    assert deployed.outputs["region"] == REGION


# --- The event pattern against recorded SES events -------------------------------------


def _leaf_matches(rules: list[Any], present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, dict):
            if set(rule) != {"exists"}:
                raise NotImplementedError(f"matcher does not model {rule}")
            if rule["exists"] == present:
                return True
        elif present and rule in values:
            return True
    return False


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """A small model of EventBridge matching: exact values, `exists` and `$or`. The real check
    is the TestEventPattern API, which is out of reach here."""
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches(branch, event) for branch in expected):
                return False
            continue
        present = isinstance(event, dict) and key in event
        value = event[key] if present else None
        if isinstance(expected, dict):
            if not matches(expected, value if isinstance(value, dict) else {}):
                return False
        elif not _leaf_matches(expected, present, value):
            return False
    return True


def _recorded_events() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, json.loads(path.read_text())) for path in sorted(EVENTS_DIR.glob("*.json"))]


def test_pattern_forwards_every_recorded_email_event_and_no_other_ses_event() -> None:
    pattern = policies.ses_event_pattern("sesami-events")
    recorded = _recorded_events()
    assert recorded, f"no recorded events under {EVENTS_DIR}"

    for name, event in recorded:
        is_email_event = isinstance(event.get("detail"), dict) and "mail" in event["detail"]
        assert matches(pattern, event) == is_email_event, name
    forwarded_types = {e["detail-type"] for _, e in recorded if matches(pattern, e)}
    assert len(forwarded_types) == 10, forwarded_types


def test_pattern_drops_events_of_other_configuration_sets() -> None:
    pattern = policies.ses_event_pattern("sesami-events")
    for name, event in _recorded_events():
        tags = event.get("detail", {}).get("mail", {}).get("tags")
        if tags is None:
            continue
        other = json.loads(json.dumps(event))
        other["detail"]["mail"]["tags"]["ses:configuration-set"] = ["marketing"]
        assert not matches(pattern, other), name
        assert matches(policies.ses_event_pattern("marketing"), other), name
        other["source"] = "com.example.spoof"
        assert not matches(policies.ses_event_pattern("marketing"), other), name


def test_pattern_keeps_untagged_rendering_failures_but_not_other_untagged_events() -> None:
    pattern = policies.ses_event_pattern("sesami-events")
    failure = json.loads((EVENTS_DIR / "rendering_failure.json").read_text())
    delivery = json.loads((EVENTS_DIR / "delivery.json").read_text())
    del delivery["detail"]["mail"]["tags"]

    assert "tags" not in failure["detail"]["mail"]
    assert matches(pattern, failure)
    assert not matches(pattern, delivery)


# --- Validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"sesami_account_id": "12345678901"}, "sesamiAccountId"),
        ({"sesami_account_id": "1234567890123"}, "sesamiAccountId"),
        ({"sesami_account_id": "44445555666a"}, "sesamiAccountId"),
        ({"sesami_event_bus_arn": "sesami-ingest"}, "sesamiEventBusArn"),
        (
            {"sesami_event_bus_arn": f"arn:aws:sqs:{REGION}:{SESAMI_ACCOUNT}:sesami-ingest"},
            "sesamiEventBusArn",
        ),
        (
            {"sesami_event_bus_arn": f"arn:aws:events:{REGION}:{SESAMI_ACCOUNT}:rule/sesami"},
            "sesamiEventBusArn",
        ),
        (
            {"sesami_event_bus_arn": f"arn:aws:events:{REGION}:999988887777:event-bus/x"},
            "sesamiEventBusArn",
        ),
        ({"external_id": "too-short-0123456789abcdef01234"}, "externalId"),
        ({"external_id": "has a space 0123456789abcdef0123456789"}, "externalId"),
        ({"configuration_set_name": "sesami events"}, "configurationSetName"),
        ({"configuration_set_name": ""}, "configurationSetName"),
        ({"role_name": "SESami/Access"}, "roleName"),
        ({"sending_identities": ("*",)}, "sendingIdentities"),
        (
            {"sending_identities": ("arn:aws:ses:eu-west-1:111122223333:identity/*",)},
            "sendingIdentities",
        ),
        ({"sending_identities": ("arn:aws:iam::111122223333:role/x",)}, "sendingIdentities"),
        ({"sesami_role_arns": ()}, "sesamiRoleArns"),
        ({"sesami_role_arns": SESAMI_ROLE_ARNS[0]}, "sesamiRoleArns"),
        ({"sesami_role_arns": (f"arn:aws:iam::{SESAMI_ACCOUNT}:root",)}, "sesamiRoleArns"),
        ({"sesami_role_arns": (f"arn:aws:iam::{SESAMI_ACCOUNT}:role/*",)}, "sesamiRoleArns"),
        ({"sesami_role_arns": ("arn:aws:iam::999988887777:role/x",)}, "sesamiRoleArns"),
        ({"sesami_role_arns": (SESAMI_ROLE_ARNS[0],) * 2}, "sesamiRoleArns"),
        (
            {"sesami_role_arns": (f"arn:aws-cn:iam::{SESAMI_ACCOUNT}:role/x",)},
            "sesamiRoleArns",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_config_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}'"):
        _valid_args(**overrides)


def test_external_id_is_never_echoed_in_errors() -> None:
    short_secret = "s3cr3t-value-0123456789abcdef"
    with pytest.raises(ValueError, match="externalId") as refused:
        _valid_args(external_id=short_secret)
    assert short_secret not in str(refused.value)


def test_32_character_external_id_is_the_shortest_accepted() -> None:
    assert _valid_args(external_id="a" * 32).external_id == "a" * 32
    with pytest.raises(ValueError, match="externalId"):
        _valid_args(external_id="a" * 31)


# --- The program: config in, outputs out ----------------------------------------------------


@pytest.fixture
def stack_config() -> Iterator[Callable[..., None]]:
    with saved_config():
        yield lambda **values: set_config(PROJECT, values, ["externalId"])


def test_program_reads_config_and_exports_outputs(stack_config: Any) -> None:
    stack_config(
        sesamiAccountId=SESAMI_ACCOUNT,
        sesamiEventBusArn=SESAMI_BUS_ARN,
        externalId=EXTERNAL_ID,
        sesamiRoleArns=json.dumps(list(SESAMI_ROLE_ARNS)),
        sendingIdentities=json.dumps(["example.com"]),
    )
    mocks = _use_mocks()
    exported = run_main(ONBOARDING_DIR)
    assert set(exported.values) >= {
        "roleArn",
        "externalId",
        "configurationSetName",
        "ruleArn",
        "deadLetterQueueUrl",
        "deadLetterQueueArn",
        "region",
        "accountId",
    }
    assert "externalId" in exported.secret
    assert exported.values["configurationSetName"] == "sesami-events"
    assert exported.values["accountId"] == CUSTOMER_ACCOUNT
    assert exported.values["deadLetterQueueUrl"] == (
        f"https://sqs.{REGION}.amazonaws.com/{CUSTOMER_ACCOUNT}/sesami-dead-letters-{AUTONAME}"
    )
    assert mocks.one(ROLE, "access").state["name"] == "SESamiAccess"
    trust = json.loads(plain(mocks.one(ROLE, "access").state["assumeRolePolicy"]))
    assert trust["Statement"][0]["Principal"] == {"AWS": sorted(SESAMI_ROLE_ARNS)}
    send = json.loads(mocks.one(ROLE_POLICY, "access").state["policy"])
    assert (
        f"arn:aws:ses:{REGION}:{CUSTOMER_ACCOUNT}:identity/example.com"
        in _statement_with(send, "ses:SendEmail")["Resource"]
    )


def test_program_config_errors_name_the_key(stack_config: Any) -> None:
    roles = json.dumps(list(SESAMI_ROLE_ARNS))
    stack_config(
        sesamiAccountId="4444-5555-6666",
        sesamiEventBusArn=SESAMI_BUS_ARN,
        externalId=EXTERNAL_ID,
        sesamiRoleArns=roles,
    )
    with pytest.raises(ValueError, match="'sesamiAccountId'"):
        onboarding.OnboardingArgs.from_config(pulumi.Config(PROJECT))

    stack_config(sesamiAccountId=SESAMI_ACCOUNT, sesamiEventBusArn=SESAMI_BUS_ARN)
    with pytest.raises(pulumi.ConfigMissingError, match="sesamiRoleArns"):
        onboarding.OnboardingArgs.from_config(pulumi.Config(PROJECT))

    stack_config(
        sesamiAccountId=SESAMI_ACCOUNT, sesamiEventBusArn=SESAMI_BUS_ARN, sesamiRoleArns=roles
    )
    with pytest.raises(pulumi.ConfigMissingError, match="externalId"):
        onboarding.OnboardingArgs.from_config(pulumi.Config(PROJECT))

    stack_config(
        sesamiAccountId=SESAMI_ACCOUNT,
        sesamiEventBusArn=SESAMI_BUS_ARN,
        externalId=EXTERNAL_ID,
        sesamiRoleArns=json.dumps(SESAMI_ROLE_ARNS[0]),
    )
    with pytest.raises(ValueError, match="'sesamiRoleArns'"):
        onboarding.OnboardingArgs.from_config(pulumi.Config(PROJECT))

    stack_config(
        sesamiAccountId=SESAMI_ACCOUNT,
        sesamiEventBusArn=SESAMI_BUS_ARN,
        externalId=EXTERNAL_ID,
        sesamiRoleArns=roles,
        sendingIdentities=json.dumps("example.com"),
    )
    with pytest.raises(ValueError, match="'sendingIdentities'"):
        onboarding.OnboardingArgs.from_config(pulumi.Config(PROJECT))


# --- Pure policy builders ---------------------------------------------------------------------


@pytest.mark.parametrize("identities", [(), ("mail.example.com", "ann@example.org")])
def test_the_registered_access_policy_is_the_builders_for_the_deployed_arguments(
    identities: tuple[str, ...],
) -> None:
    """tests/api/test_permission_parity.py checks SESami's calls against the pure builder;
    this holds the program to attaching exactly that document to the role."""
    args = _valid_args(sending_identities=identities)
    deployment = deploy(args)
    rule = policies.forwarding_rule_arn("aws", REGION, CUSTOMER_ACCOUNT)
    assert deployment.outputs["ruleArn"] == rule
    expected = policies.sesami_access_policy(
        sending_identity_arns=policies.sending_identity_arns(
            identities, "aws", REGION, CUSTOMER_ACCOUNT
        ),
        configuration_set_arn=policies.configuration_set_arn(
            "aws", REGION, CUSTOMER_ACCOUNT, args.configuration_set_name
        ),
        forwarding_rule_arn=rule,
    )
    assert deployment.role_policy("access") == json.loads(json.dumps(expected))


def test_trust_policy_builder_binds_the_given_roles_and_external_id() -> None:
    worker, api = (f"arn:aws:iam::123456789012:role/{n}" for n in ("worker", "api"))
    document = policies.sesami_trust_policy([worker, api], "x" * 40)

    [statement] = statements(document)
    assert document["Version"] == "2012-10-17"
    assert statement["Principal"] == {"AWS": [api, worker]}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "x" * 40}}
    with pytest.raises(ValueError, match="at least one"):
        policies.sesami_trust_policy([], "x" * 40)


def test_access_policy_builder_grants_nothing_beyond_the_listed_actions() -> None:
    document = policies.sesami_access_policy(
        sending_identity_arns=["arn:aws:ses:us-east-1:123456789012:identity/example.com"],
        configuration_set_arn="arn:aws:ses:us-east-1:123456789012:configuration-set/cs",
        forwarding_rule_arn="arn:aws:events:us-east-1:123456789012:rule/sesami-forward",
    )

    granted = {a for s in statements(document) for a in as_list(s["Action"])}
    assert granted == {
        "ses:SendEmail",
        "ses:ListSuppressedDestinations",
        "ses:PutSuppressedDestination",
        "ses:DeleteSuppressedDestination",
        "ses:GetAccount",
        "ses:ListEmailIdentities",
        "ses:GetEmailIdentity",
        "ses:GetConfigurationSet",
        "ses:GetConfigurationSetEventDestinations",
        "events:DescribeRule",
        "events:ListTargetsByRule",
    }
    assert all(s["Effect"] == "Allow" for s in statements(document))


def test_sending_identity_builder_defaults_to_every_identity_of_the_account() -> None:
    assert policies.sending_identity_arns((), "aws", "us-east-1", "123456789012") == [
        "arn:aws:ses:us-east-1:123456789012:identity/*"
    ]
    assert policies.sending_identity_arns(
        ["a.example"], "aws-cn", "cn-north-1", "123456789012"
    ) == ["arn:aws-cn:ses:cn-north-1:123456789012:identity/a.example"]


def test_forwarder_builders_allow_put_events_on_one_bus_for_eventbridge_only() -> None:
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/central"

    assert policies.forward_to_bus_policy(bus)["Statement"] == [
        {
            "Sid": "PutEventsOnSesamiBus",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": [bus],
        }
    ]
    [trust] = policies.eventbridge_trust_policy()["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}


def test_default_bus_builder_names_the_default_bus() -> None:
    assert (
        policies.default_event_bus_arn("aws", "us-east-1", "123456789012")
        == "arn:aws:events:us-east-1:123456789012:event-bus/default"
    )


def test_dead_letter_queue_policy_builder_admits_eventbridge_for_one_rule_only() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:sesami-dead-letters"
    rule = "arn:aws:events:us-east-1:123456789012:rule/sesami-forward"

    assert policies.dead_letter_queue_policy(queue, rule) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeDeadLettersOfForwardingRule",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": ["sqs:SendMessage"],
                "Resource": [queue],
                "Condition": {"ArnEquals": {"aws:SourceArn": rule}},
            }
        ],
    }


BUNDLE_CONFIG = ONBOARDING_DIR / "Pulumi.sesami.yaml"


@pytest.mark.skipif(not BUNDLE_CONFIG.exists(), reason="run by test_onboarding_bundle.py")
def test_a_generated_bundle_runs_with_its_own_stack_config() -> None:
    """The values SESami filled in are valid for the program and reach the right resources."""
    lines = [line for line in BUNDLE_CONFIG.read_text().splitlines() if not line.startswith("#")]
    config = json.loads("\n".join(lines))["config"]
    with saved_config():
        pulumi.runtime.set_all_config(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
            [f"{PROJECT}:externalId"],
        )
        mocks = _use_mocks()
        exported = run_main(ONBOARDING_DIR)
    assert "externalId" in exported.secret
    assert exported.values["externalId"] == config[f"{PROJECT}:externalId"]
    assert exported.values["configurationSetName"] == config[f"{PROJECT}:configurationSetName"]
    trust = json.loads(plain(mocks.one(ROLE, "access").state["assumeRolePolicy"]))
    assert trust["Statement"][0]["Principal"] == {
        "AWS": sorted(config[f"{PROJECT}:sesamiRoleArns"])
    }
    condition = trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]
    assert condition == config[f"{PROJECT}:externalId"]
