"""Security invariant 14, second half: the customer's onboarding role grants every AWS call SESami
makes in the customer's account, and nothing SESami never calls.

No emulator enforces IAM, so the calls are recorded instead (tests/aws_calls.py: botocore's event
hooks on every client built while recording, whatever builds it) while SESami runs, through its
API on moto and DynamoDB Local: connecting the account, the setup checklist with its canary,
one send, a bulk send, the suppression sync and the identities page. Each call signed with the
assumed role's credentials is checked, with the resources it names, against the policy document
the onboarding program attaches to the role (`policies.sesami_access_policy`, the same pure
function), using tests/iam_reference.py's evaluator.

Emulator gaps, written down: moto has no SESv2 GetAccount, event destinations or suppression
list APIs; the recorder answers those calls in place of moto (after recording them), so the
code after them runs as it would against SES.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

import pytest
from chalice.test import Client

from tests import iam_reference as ref
from tests.api_fixtures import MOTO_ACCOUNT, SESAMI_ACCOUNT, client, sign_in
from tests.aws_calls import AwsCalls, Call, recording
from tests.conftest import ROOT

REGION = "us-east-1"  # moto's, and the tenant's
CONFIGURATION_SET = "sesami-events"
DOMAIN = "example.net"  # the identity devstack.provision verifies, as a customer would have
SENDER = f"News <news@{DOMAIN}>"
SESAMI_ROLE_ARNS = (
    f"arn:aws:iam::{SESAMI_ACCOUNT}:role/sesami-test-api-role",
    f"arn:aws:iam::{SESAMI_ACCOUNT}:role/sesami-test-bulk-worker-role",
)
TEN_EVENT_TYPES = [
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
]


def _load_policies() -> Any:
    spec = importlib.util.spec_from_file_location(
        "_parity_policies", ROOT / "customer-onboarding" / "policies.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


policies = _load_policies()


def onboarding_policy(
    identities: tuple[str, ...] = (DOMAIN,), rule_arn: str | None = None
) -> dict[str, Any]:
    """The role's policy as the onboarding program builds it for this customer: moto's account
    and region, the tenant's configuration set, its sending identity."""
    return dict(
        policies.sesami_access_policy(
            sending_identity_arns=policies.sending_identity_arns(
                identities, "aws", REGION, MOTO_ACCOUNT
            ),
            configuration_set_arn=policies.configuration_set_arn(
                "aws", REGION, MOTO_ACCOUNT, CONFIGURATION_SET
            ),
            forwarding_rule_arn=rule_arn
            or policies.forwarding_rule_arn("aws", REGION, MOTO_ACCOUNT),
        )
    )


# ---------------------------------------------------------------------------- resources


def _arn(call: Call, account: str, resource: str) -> str:
    return f"arn:aws:{call.service}:{call.region}:{account}:{resource}"


def _identities(call: Call, account: str) -> list[str]:
    """SES authorises a send as the address's identity if it is verified, else its domain's."""
    address = parseaddr(str(call.params["FromEmailAddress"]))[1]
    return [
        _arn(call, account, f"identity/{address}"),
        _arn(call, account, f"identity/{address.rpartition('@')[2]}"),
    ]


def _send(call: Call, account: str) -> list[list[str]]:
    extra = []
    if call.params.get("ConfigurationSetName"):
        extra = [_arn(call, account, f"configuration-set/{call.params['ConfigurationSetName']}")]
    return [[identity, *extra] for identity in _identities(call, account)]


def _identity(call: Call, account: str) -> list[list[str]]:
    return [[_arn(call, account, f"identity/{call.params['EmailIdentity']}")]]


def _config_set(call: Call, account: str) -> list[list[str]]:
    return [[_arn(call, account, f"configuration-set/{call.params['ConfigurationSetName']}")]]


def _rule(name_param: str) -> Callable[[Call, str], list[list[str]]]:
    def resources(call: Call, account: str) -> list[list[str]]:
        bus = call.params.get("EventBusName", "default")
        path = call.params[name_param] if bus == "default" else f"{bus}/{call.params[name_param]}"
        return [[_arn(call, account, f"rule/{path}")]]

    return resources


def _account_wide(call: Call, account: str) -> list[list[str]]:
    return [["*"]]


# What each call touches, as IAM authorises it (alternatives: any one list, fully allowed). A call
# SESami starts making in a customer's account needs its line here, and its grant.
RESOURCES: dict[str, Callable[[Call, str], list[list[str]]]] = {
    "ses:SendEmail": _send,
    "ses:GetAccount": _account_wide,
    "ses:ListEmailIdentities": _account_wide,
    "ses:GetEmailIdentity": _identity,
    "ses:GetConfigurationSet": _config_set,
    "ses:GetConfigurationSetEventDestinations": _config_set,
    "ses:ListSuppressedDestinations": _account_wide,
    "ses:PutSuppressedDestination": _account_wide,
    "ses:DeleteSuppressedDestination": _account_wide,
    "events:DescribeRule": _rule("Name"),
    "events:ListTargetsByRule": _rule("Rule"),
}


def refused(document: dict[str, Any], aws: AwsCalls, calls: list[Call]) -> list[str]:
    """Each call the document would not allow, with why."""
    out = []
    for call in calls:
        account = aws.account_of(call)
        assert account is not None
        if call.action not in RESOURCES:
            out.append(f"{call.action}: not mapped to the resources it touches (RESOURCES)")
            continue
        alternatives = RESOURCES[call.action](call, account)
        if not any(ref.allows(document, call.action, r) for r in alternatives):
            out.append(f"{call.action} on {alternatives} {dict(call.params)}")
    return out


def granted(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] for a in ref._as_list(s["Action"])}


# ---------------------------------------------------------------------------- recording


@dataclass
class Recorded:
    aws: AwsCalls
    customer: list[Call]
    responses: dict[str, Any]


class InlineRunner:
    """Bulk workers run inside the request that starts them."""

    def start(self, event: dict[str, Any]) -> None:
        from chalicelib.core import wiring

        wiring.run_bulk_slice(event, None)


def _customer_account(moto: str, bus_arn: str) -> str:
    """What the onboarding stack creates in the customer's account, as far as moto goes."""
    from chalicelib.core.tables import TenantModel

    from devstack import provision

    events = client(moto, "events")
    for rule in events.list_rules(EventBusName="default").get("Rules", []):
        if rule["Name"] == policies.FORWARDING_RULE_NAME:  # another module's moto state
            return f"arn:aws:iam::{MOTO_ACCOUNT}:role/sesami/SESamiAccess"
    provision.customer_ses_setup(moto, bus_arn, CONFIGURATION_SET)
    # moto ignores trust policies and external IDs; the role is the one the app will assume.
    return provision.customer_role(moto, SESAMI_ROLE_ARNS, "x" * 40 + TenantModel.Meta.table_name)


def _answers(aws: AwsCalls) -> None:
    aws.answer(
        "sesv2",
        "GetAccount",
        {
            "ProductionAccessEnabled": True,
            "SendingEnabled": True,
            "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 50.0, "SentLast24Hours": 0.0},
        },
    )
    aws.answer(
        "sesv2",
        "GetConfigurationSetEventDestinations",
        {
            "EventDestinations": [
                {
                    "Name": "sesami-eventbridge",
                    "Enabled": True,
                    "MatchingEventTypes": TEN_EVENT_TYPES,
                    "EventBridgeDestination": {
                        "EventBusArn": f"arn:aws:events:{REGION}:{MOTO_ACCOUNT}:event-bus/default"
                    },
                }
            ]
        },
    )
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    aws.answer(
        "sesv2",
        "ListSuppressedDestinations",
        {
            "SuppressedDestinationSummaries": [
                {"EmailAddress": "gone@example.org", "Reason": "BOUNCE", "LastUpdateTime": long_ago}
            ]
        },
    )
    aws.answer("sesv2", "PutSuppressedDestination", {})
    aws.answer("sesv2", "DeleteSuppressedDestination", {})


@pytest.fixture(scope="module")
def recorded(settings: Any, moto: str, pool: dict[str, str]) -> Iterator[Recorded]:
    from chalicelib.core import tables, wiring
    from chalicelib.core.tables import AccountModel

    import app

    value = replace(
        settings,
        signing_key=b"s" * 32,
        credentials_key=b"c" * 32,
        account_id=SESAMI_ACCOUNT,
        event_bus_arn=pool["bus_arn"],
        role_arns=SESAMI_ROLE_ARNS,
        user_pool_id=pool["pool_id"],
        user_pool_client_ids=(pool["client_id"],),
        jwks_url=f"{moto}/{pool['pool_id']}/.well-known/jwks.json",
        aws_endpoint=moto,
        skip_external_id_check=True,  # moto's STS ignores external IDs
    )
    role_arn = _customer_account(moto, pool["bus_arn"])
    token = sign_in(moto, pool)
    responses: dict[str, Any] = {}
    wiring.use(value)
    wiring.use(bulk_runner=InlineRunner())
    try:
        with recording() as aws, Client(app.app) as api:
            _answers(aws)

            def call(method: str, path: str, body: Any = None) -> Any:
                headers = {"Content-Type": "application/json", "Authorization": token}
                raw = None if body is None else json.dumps(body)
                response = getattr(api.http, method.lower())(path, headers=headers, body=raw)
                assert response.status_code < 300, (method, path, response.json_body)
                return response.json_body

            call("GET", "/account")
            AccountModel(MOTO_ACCOUNT).delete()  # moto has one account: this tenant takes it
            call("PUT", "/account", {"role_arn": role_arn, "region": REGION})
            responses["checklist"] = call("POST", "/verify-sts/canary")
            text = {"subject": "Hello", "text": "Hi"}
            responses["send"] = call(
                "POST", "/mail", {"from": SENDER, "to": ["alice@example.org"], **text}
            )
            responses["bulk"] = call(
                "POST",
                "/mail/bulk",
                {
                    "from": SENDER,
                    "template": {"subject": "Hello {{name}}", "text": "Hi {{name}}"},
                    "recipients": [
                        {"to": "bob@example.org", "variables": {"name": "Bob"}},
                        {"to": "carol@example.org", "variables": {"name": "Carol"}},
                    ],
                },
            )
            for address in ("keep@example.org", "gone@example.org"):
                call("PUT", f"/suppression-list/{address}", {"reason": "asked by phone"})
            call("DELETE", "/suppression-list/gone@example.org")
            responses["sync"] = call("POST", "/suppression-list/sync")
            responses["identities"] = call("GET", "/identities")
        yield Recorded(aws, aws.in_customer_accounts(own_account=SESAMI_ACCOUNT), responses)
    finally:
        wiring.use(bulk_runner=None)
        wiring.use(None)
        tables.configure(settings)
        AccountModel(MOTO_ACCOUNT).delete()  # free moto's one account for the other modules


# ---------------------------------------------------------------------------- parity


def test_the_paths_ran_and_their_calls_were_recorded(recorded: Recorded) -> None:
    """Not vacuous: every path reached SES and EventBridge in the customer's account, and did
    what it should with the answers."""
    checks = {c["id"]: c for c in recorded.responses["checklist"]["checks"]}
    for item in ("role_assumable", "ses_account", "configuration_set", "forwarding_rule"):
        assert checks[item]["status"] == "ok", checks[item]
    assert "sent to success@simulator.amazonses.com" in checks["canary"]["message"]
    assert recorded.responses["send"]["status"] == "sent"
    assert recorded.responses["bulk"]["status"] in ("done", "queued", "sending")
    sync = recorded.responses["sync"]
    assert (sync["status"], sync["pushed"], sync["removed_from_ses"]) == ("completed", 1, 1)
    sends = [c for c in recorded.customer if c.action == "ses:SendEmail"]
    assert len(sends) == 4  # the canary, one message, two bulk recipients
    identities = recorded.responses["identities"]
    assert [i["identity"] for i in identities["items"]] == [DOMAIN]
    assert identities["sandbox"] is False
    assert {c.region for c in recorded.customer} == {REGION}


def test_every_call_in_the_customers_account_is_granted_by_the_onboarding_role(
    recorded: Recorded,
) -> None:
    assert recorded.customer
    assert refused(onboarding_policy(), recorded.aws, recorded.customer) == []


def test_the_onboarding_role_grants_nothing_sesami_does_not_call(recorded: Recorded) -> None:
    called = {c.action for c in recorded.customer}
    assert granted(onboarding_policy()) == called


def test_every_call_is_an_action_of_the_service_authorization_reference(
    recorded: Recorded,
) -> None:
    for action in {c.action for c in recorded.customer}:
        assert ref.action_data(action) is not None, action


def test_no_call_ran_on_credentials_the_recording_did_not_see_issued(recorded: Recorded) -> None:
    assert recorded.aws.unattributed() == set()
    # ...and SESami's own calls (STS) stayed in its own account; none edits the bus policy,
    # which is the operator stack's alone (chalicelib.ingest.bus).
    own = {c.action for c in recorded.aws.calls if recorded.aws.account_of(c) is None}
    assert "sts:AssumeRole" in own
    assert not {a for a in own if a.startswith("events:")}, own


@pytest.mark.parametrize("action", sorted(RESOURCES))
def test_dropping_any_grant_fails_the_parity_check(recorded: Recorded, action: str) -> None:
    document = onboarding_policy()
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != action]
    found = refused(document, recorded.aws, recorded.customer)
    assert found and all(f.startswith(action) for f in found), found


@pytest.mark.parametrize(
    ("policy", "action"),
    [
        (
            lambda: onboarding_policy(
                rule_arn=f"arn:aws:events:{REGION}:{MOTO_ACCOUNT}:rule/sesami-forward-7c1f3e2"
            ),
            "events:DescribeRule",
        ),
        (lambda: onboarding_policy(identities=("example.com",)), "ses:SendEmail"),
    ],
    ids=["another-rule", "another-identity"],
)
def test_a_grant_on_the_wrong_resource_fails_the_parity_check(
    recorded: Recorded, policy: Callable[[], dict[str, Any]], action: str
) -> None:
    found = refused(policy(), recorded.aws, recorded.customer)
    assert any(f.startswith(action) for f in found), found


def test_an_unmapped_call_fails_the_parity_check(recorded: Recorded) -> None:
    sample = recorded.customer[0]
    new = Call("ses", "DeleteEmailIdentity", {}, REGION, sample.access_key)
    assert refused(onboarding_policy(), recorded.aws, [new]) == [
        "ses:DeleteEmailIdentity: not mapped to the resources it touches (RESOURCES)"
    ]


def test_the_checklist_reads_the_rule_the_onboarding_stack_creates() -> None:
    from chalicelib.tenants.accounts import FORWARDING_RULE_NAME

    assert FORWARDING_RULE_NAME == policies.FORWARDING_RULE_NAME


# ---------------------------------------------------------------------------- the recorder


def test_the_recorder_sees_clients_however_they_are_built(moto: str) -> None:
    import boto3
    from botocore.exceptions import ClientError

    with recording() as aws:
        sts = boto3.client("sts", endpoint_url=moto, region_name=REGION)
        role = f"arn:aws:iam::{MOTO_ACCOUNT}:role/x"
        issued = sts.assume_role(RoleArn=role, RoleSessionName="recorder-test")
        keys = issued["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
            region_name=REGION,
        )
        aws.answer("sesv2", "GetAccount", {"SendingEnabled": True})
        assert session.client("sesv2", endpoint_url=moto).get_account() == {"SendingEnabled": True}
        session.client("events", endpoint_url=moto).list_event_buses()
    assert [c.action for c in aws.in_customer_accounts()] == [
        "ses:GetAccount",
        "events:ListEventBuses",
    ]
    assert aws.calls[0].action == "sts:AssumeRole" and aws.account_of(aws.calls[0]) is None
    # After the recording, clients built during it neither record nor answer.
    sesv2 = session.client("sesv2", endpoint_url=moto)
    with pytest.raises(ClientError) as not_answered:
        sesv2.get_account()
    assert not_answered.value.response["Error"]["Code"] == "404"  # moto's: no SESv2 GetAccount
    assert len(aws.calls) == 3
