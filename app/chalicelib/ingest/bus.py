"""Who may put events on SESami's bus: one resource policy, the same for 1 or 10,000 tenants.

    bus_policy(bus_arn)                         the document infra/events.py declares
    bus_policy(bus_arn, blocked_accounts=[...])  ... with a Deny for accounts that abuse the bus

The bus accepts SES's own events (`events:source` = `aws.ses`) from any AWS account. Customers
are in other organisations, so `aws:PrincipalOrgID` cannot name them, and one statement per
account would cap SESami at about 50 customers (EventBridge's 10,240-character policy quota).
What is accepted is then decided where it always was: ingest maps the envelope's `account` (set
by EventBridge) to the tenant bound to it and drops, and counts, what no tenant owns (README,
"Tenants past 50"). Nobody can put a fake SES event: EventBridge refuses a `source` beginning
with `aws.` from anyone but the AWS service itself, so a stranger can only forward the genuine
SES events of their own account. Connecting an account therefore changes nothing on the bus,
and disconnecting one is a change of the binding alone.

Pure: the app's tests, the local stack and the Pulumi program all build the document here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

POLICY_SIZE_QUOTA = 10_240  # characters: EventBridge's "Event bus policy size" quota
SES_SOURCE = "aws.ses"
ALLOW_SID = "SesEventsFromAnyAccount"
DENY_SID = "BlockedAccounts"
_ACCOUNT = re.compile(r"^\d{12}$")
_BUS_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):events:[a-z0-9-]+:\d{12}:event-bus/.+$")


def bus_policy(bus_arn: str, blocked_accounts: Sequence[str] = ()) -> dict[str, Any]:
    """The bus's whole resource policy. Raises ValueError on a malformed ARN or account, or if
    the document would exceed the quota (295 blocked accounts fit)."""
    match = _BUS_ARN.match(bus_arn)
    if match is None:
        raise ValueError(f"not an event bus ARN: {bus_arn!r}")
    statements: list[dict[str, Any]] = [
        {
            "Sid": ALLOW_SID,
            "Effect": "Allow",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": bus_arn,
            "Condition": {
                # Every entry's source is aws.ses, and a source is present at all (ForAllValues
                # alone is true of an empty set).
                "ForAllValues:StringEquals": {"events:source": [SES_SOURCE]},
                "Null": {"events:source": "false"},
            },
        }
    ]
    blocked = sorted(set(blocked_accounts))
    for account in blocked:
        if not _ACCOUNT.match(account):
            raise ValueError(f"blocked account {account!r} is not a 12-digit AWS account ID")
    if blocked:
        partition = match["partition"]
        statements.append(
            {
                "Sid": DENY_SID,
                "Effect": "Deny",
                "Principal": {"AWS": [f"arn:{partition}:iam::{a}:root" for a in blocked]},
                "Action": "events:PutEvents",
                "Resource": bus_arn,
            }
        )
    policy = {"Version": "2012-10-17", "Statement": statements}
    if policy_size(policy) > POLICY_SIZE_QUOTA:
        raise ValueError(
            f"the bus policy would be {policy_size(policy)} characters, over EventBridge's "
            f"{POLICY_SIZE_QUOTA}: block fewer accounts"
        )
    return policy


def policy_size(policy: dict[str, Any]) -> int:
    """The document's length as EventBridge counts it (the JSON text it stores)."""
    return len(json.dumps(policy, separators=(",", ":")))
