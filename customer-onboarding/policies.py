"""IAM policy documents, ARNs and the event pattern of the customer-onboarding stack.

Everything here is a pure function of plain strings: no Pulumi, no AWS calls. The component
turns the returned dicts into JSON; the tests call these functions directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

PolicyDocument = dict[str, Any]

POLICY_VERSION = "2012-10-17"

# Every event type an SESv2 event destination can publish. SESami tracks all of them: dropping
# one (say DELIVERY_DELAY) silently hides a message state from the customer.
SES_EVENT_TYPES: tuple[str, ...] = (
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
)

# What SESami calls in the customer's account, and nothing more: tests/api/test_permission_parity.py
# records every AWS call SESami makes with this role's credentials (the setup checklist, sending
# one message and in bulk, the suppression sync) and fails if one is missing here or if one of
# these is never made.
SEND_ACTIONS: tuple[str, ...] = ("ses:SendEmail",)  # SESv2 SendEmail, one call per message
SUPPRESSION_LIST_ACTIONS: tuple[str, ...] = (
    "ses:ListSuppressedDestinations",
    "ses:PutSuppressedDestination",
    "ses:DeleteSuppressedDestination",
)
# GetAccount: sending quota and status (the checklist, the pace of a bulk send, whether the account
# is in the sandbox); ListEmailIdentities: the checklist's canary picks a verified identity to send
# from, SESami refuses a send from an unverified sender before SES does, the identities page.
ACCOUNT_READ_ACTIONS: tuple[str, ...] = ("ses:GetAccount", "ses:ListEmailIdentities")
# GetEmailIdentity: SESami's identities page (GET /identities) shows each identity's verification,
# DKIM and MAIL FROM status and the DNS records a pending domain needs. It takes an identity ARN;
# every identity of the account may be listed, so it is granted on all of them (read only).
IDENTITY_READ_ACTIONS: tuple[str, ...] = ("ses:GetEmailIdentity",)
CONFIGURATION_SET_READ_ACTIONS: tuple[str, ...] = (
    "ses:GetConfigurationSet",
    "ses:GetConfigurationSetEventDestinations",
)
RULE_READ_ACTIONS: tuple[str, ...] = ("events:DescribeRule", "events:ListTargetsByRule")

# The forwarding rule's name on the default bus. SESami's checklist reads this rule by name
# (chalicelib.tenants.accounts.FORWARDING_RULE_NAME, the same value), which lets the role grant
# DescribeRule/ListTargetsByRule on this one rule instead of ListRules on the whole account.
FORWARDING_RULE_NAME = "sesami-forward"

# The message tag SES adds to every event of a message sent with a configuration set; the
# EventBridge event's `detail` is the SES event record, so the tag sits at detail.mail.tags.
CONFIGURATION_SET_TAG = "ses:configuration-set"


# --- ARNs -----------------------------------------------------------------------------------


def forwarding_rule_arn(partition: str, region: str, account_id: str) -> str:
    # A rule on the default bus has no bus name in its ARN.
    return f"arn:{partition}:events:{region}:{account_id}:rule/{FORWARDING_RULE_NAME}"


def default_event_bus_arn(partition: str, region: str, account_id: str) -> str:
    # SES publishes email events only to the default bus of the sending account and Region.
    return f"arn:{partition}:events:{region}:{account_id}:event-bus/default"


def configuration_set_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:ses:{region}:{account_id}:configuration-set/{name}"


def account_identities_arn(partition: str, region: str, account_id: str) -> str:
    return f"arn:{partition}:ses:{region}:{account_id}:identity/*"


def sending_identity_arns(
    identities: Sequence[str] | None, partition: str, region: str, account_id: str
) -> list[str]:
    """ARNs the role may send as: the given ARNs as they are, bare names (domain or address)
    turned into this account's identity ARNs, and every identity of the account when none
    are given."""
    if not identities:
        return [f"arn:{partition}:ses:{region}:{account_id}:identity/*"]
    return [
        identity
        if identity.startswith("arn:")
        else f"arn:{partition}:ses:{region}:{account_id}:identity/{identity}"
        for identity in identities
    ]


# --- Event pattern ----------------------------------------------------------------------------


def ses_event_pattern(configuration_set_name: str) -> dict[str, Any]:
    """EventBridge pattern for the SES email events of one configuration set.

    SES tags every event of a message sent with a configuration set with
    `ses:configuration-set`, and the EventBridge `detail` is the SES event record, so the match
    is on detail.mail.tags. That keeps out the events of the customer's other configuration
    sets and the advisor/sending-status events (same source, no `mail`).

    The one exception: AWS's documented Rendering Failure record has no `tags` at all. So that
    SESami does not lose RENDERING_FAILURE, an "Email Rendering Failed" event *without* the tag
    is forwarded too; one tagged with another configuration set still is not.
    """
    return {
        "source": ["aws.ses"],
        "$or": [
            {"detail": {"mail": {"tags": {CONFIGURATION_SET_TAG: [configuration_set_name]}}}},
            {
                "detail-type": ["Email Rendering Failed"],
                "detail": {"mail": {"tags": {CONFIGURATION_SET_TAG: [{"exists": False}]}}},
            },
        ],
    }


# --- Policies -----------------------------------------------------------------------------------


def _document(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def _allow(sid: str, actions: Iterable[str], resources: Iterable[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": list(resources),
    }


def sesami_trust_policy(sesami_role_arns: Sequence[str], external_id: str) -> PolicyDocument:
    """Only SESami's own roles that act in customer accounts (its API and its bulk worker, which
    the operator stack exports as `sesami_role_arns`) may assume the access role, and only with
    the external ID that SESami issued for this tenant (the confused-deputy guard). Naming the
    roles rather than the SESami account's root keeps every other principal of that account out,
    whatever its own IAM policies say."""
    if not sesami_role_arns:
        raise ValueError("the trust policy names at least one SESami role")
    return _document(
        {
            "Sid": "SesamiAssumeWithExternalId",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(sesami_role_arns)},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
        }
    )


def sesami_access_policy(
    *,
    sending_identity_arns: Sequence[str],
    configuration_set_arn: str,
    forwarding_rule_arn: str,
    identities_arn: str | None = None,
) -> PolicyDocument:
    """What SESami does in the customer's account, and nothing else. `identities_arn` (every
    identity of the account, `account_identities_arn`) defaults to the one of the configuration
    set's account and Region."""
    if identities_arn is None:
        identities_arn = configuration_set_arn.rsplit(":", 1)[0] + ":identity/*"
    return _document(
        # SESv2 SendEmail authorises the call against the sending identity AND, when a
        # configuration set is named, against the configuration set: both must be allowed.
        _allow(
            "SendAsIdentitiesThroughConfigurationSet",
            SEND_ACTIONS,
            [*sending_identity_arns, configuration_set_arn],
        ),
        # The account-level suppression list is not a resource of its own: the Service
        # Authorization Reference gives these actions no resource type, so IAM only accepts "*".
        _allow("ManageAccountSuppressionList", SUPPRESSION_LIST_ACTIONS, ["*"]),
        # GetAccount and ListEmailIdentities are account-wide reads with no resource type in the
        # Service Authorization Reference: "*" only.
        _allow("ReadAccountSendingStatus", ACCOUNT_READ_ACTIONS, ["*"]),
        # The identities page: each identity's verification, DKIM and MAIL FROM (reads only).
        _allow("ReadIdentities", IDENTITY_READ_ACTIONS, [identities_arn]),
        # Verification checklist: the configuration set exists and publishes every event type.
        _allow("ReadConfigurationSet", CONFIGURATION_SET_READ_ACTIONS, [configuration_set_arn]),
        # Verification checklist: the forwarding rule exists and targets the SESami bus.
        _allow("ReadForwardingRule", RULE_READ_ACTIONS, [forwarding_rule_arn]),
    )


def eventbridge_trust_policy() -> PolicyDocument:
    """EventBridge assumes the forwarder role to deliver to the SESami bus."""
    return _document(
        {
            "Sid": "EventBridgeAssume",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )


def forward_to_bus_policy(sesami_event_bus_arn: str) -> PolicyDocument:
    """The forwarder role may put events on the SESami bus and nowhere else."""
    return _document(_allow("PutEventsOnSesamiBus", ["events:PutEvents"], [sesami_event_bus_arn]))


def dead_letter_queue_policy(queue_arn: str, forwarding_rule_arn: str) -> PolicyDocument:
    """EventBridge may drop into the dead-letter queue what the forwarding rule could not deliver
    to the SESami bus, and nothing else may use this policy: the service principal alone is not
    enough (any rule of any account would match it), so the rule's ARN is the condition."""
    return _document(
        {
            "Sid": "EventBridgeDeadLettersOfForwardingRule",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["sqs:SendMessage"],
            "Resource": [queue_arn],
            "Condition": {"ArnEquals": {"aws:SourceArn": forwarding_rule_arn}},
        }
    )
