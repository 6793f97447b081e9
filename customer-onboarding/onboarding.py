"""The SESami customer-onboarding component: what a customer creates in their own account.

- an IAM role SESami assumes (with its external ID) to send mail and manage suppression;
- an SESv2 configuration set whose events go to the account's default EventBridge bus;
- a rule on the default bus forwarding those events to SESami's bus, through a role that
  may only put events on that bus, retrying for a day and then keeping what never got through
  in a dead-letter queue in this account.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import policies
import pulumi
import pulumi_aws as aws

DEFAULT_CONFIGURATION_SET_NAME = "sesami-events"
DEFAULT_ROLE_NAME = "SESamiAccess"
EVENT_DESTINATION_NAME = "sesami-eventbridge"
ROLE_PATH = "/sesami/"
# SESami reaches this role by role chaining (its Lambda assumes it), which caps sessions at 1 h.
MAX_SESSION_SECONDS = 3600

# The forwarding target's retry policy: EventBridge's maximum (a day, 185 attempts), spelled out
# so that it is part of the stack, not a default that could change under it.
RETRY_MAX_EVENT_AGE_SECONDS = 86400
RETRY_MAX_ATTEMPTS = 185
# SQS's maximum retention (14 days): the longest time to notice and deal with dead letters.
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600

MIN_EXTERNAL_ID_LENGTH = 32  # SESami issues >= 128 random bits; anything shorter is not ours.
MAX_EXTERNAL_ID_LENGTH = 1224  # STS limit for ExternalId.
# So the customer can tell at a glance what SESami's onboarding created in their account.
TAGS = {"managed-by": "sesami-customer-onboarding"}

_ACCOUNT_ID = re.compile(r"\d{12}")
_EVENT_BUS_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):events:(?P<region>[a-z]{2}(-[a-z]+)+-\d):"
    r"(?P<account>\d{12}):event-bus/(?P<name>[A-Za-z0-9._/-]{1,256})"
)
_SESAMI_ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)
MAX_SESAMI_ROLES = 10  # SESami has two (its API and its bulk worker); a long list is a mistake.
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]+")
_CONFIGURATION_SET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_IDENTITY_ARN = re.compile(r"arn:aws[a-z-]*:ses:[a-z0-9-]+:\d{12}:identity/[^\s*]+")
_IDENTITY_NAME = re.compile(r"[^\s*:/]+")


def _invalid(key: str, problem: str) -> ValueError:
    return ValueError(f"config {key!r}: {problem}")


@dataclass(frozen=True)
class OnboardingArgs:
    """Validated inputs; the field comments name the pulumi config key each one comes from."""

    sesami_account_id: str  # sesamiAccountId
    sesami_event_bus_arn: str  # sesamiEventBusArn
    external_id: str = field(repr=False)  # externalId (secret)
    sesami_role_arns: tuple[str, ...]  # sesamiRoleArns: the roles the trust policy names
    configuration_set_name: str = DEFAULT_CONFIGURATION_SET_NAME  # configurationSetName
    sending_identities: tuple[str, ...] = ()  # sendingIdentities; empty = all identities
    role_name: str = DEFAULT_ROLE_NAME  # roleName

    def __post_init__(self) -> None:
        if not isinstance(self.sesami_account_id, str) or not _ACCOUNT_ID.fullmatch(
            self.sesami_account_id
        ):
            raise _invalid(
                "sesamiAccountId",
                f"must be the 12-digit SESami AWS account ID, got {self.sesami_account_id!r}",
            )
        bus = _EVENT_BUS_ARN.fullmatch(self.sesami_event_bus_arn or "")
        if bus is None:
            raise _invalid(
                "sesamiEventBusArn",
                "must be an EventBridge bus ARN like "
                f"arn:aws:events:<region>:<account>:event-bus/<name>, "
                f"got {self.sesami_event_bus_arn!r}",
            )
        if bus["account"] != self.sesami_account_id:
            raise _invalid(
                "sesamiEventBusArn",
                f"the bus belongs to account {bus['account']}, not to the SESami account "
                f"{self.sesami_account_id} (sesamiAccountId)",
            )
        self._check_sesami_roles(bus["partition"])
        # Never echo the external ID: it is a secret.
        if not isinstance(self.external_id, str) or not (
            MIN_EXTERNAL_ID_LENGTH <= len(self.external_id) <= MAX_EXTERNAL_ID_LENGTH
        ):
            raise _invalid(
                "externalId",
                f"must be the external ID issued by SESami ({MIN_EXTERNAL_ID_LENGTH} to "
                f"{MAX_EXTERNAL_ID_LENGTH} characters); the value given has "
                f"{len(self.external_id or '')} characters",
            )
        if not _EXTERNAL_ID.fullmatch(self.external_id):
            raise _invalid(
                "externalId", "may only contain letters, digits and the characters +=,.@:/-_"
            )
        if not _CONFIGURATION_SET_NAME.fullmatch(self.configuration_set_name or ""):
            raise _invalid(
                "configurationSetName",
                f"must be 1-64 letters, digits, '_' or '-', got {self.configuration_set_name!r}",
            )
        if not _ROLE_NAME.fullmatch(self.role_name or ""):
            raise _invalid(
                "roleName",
                f"must be a valid IAM role name (1-64 of A-Za-z0-9+=,.@_-), got {self.role_name!r}",
            )
        if isinstance(self.sending_identities, str):
            raise _invalid("sendingIdentities", "must be a list of identity names or ARNs")
        for identity in self.sending_identities:
            if not isinstance(identity, str) or not (
                _IDENTITY_ARN.fullmatch(identity)
                if identity.startswith("arn:")
                else _IDENTITY_NAME.fullmatch(identity)
            ):
                raise _invalid(
                    "sendingIdentities",
                    "each entry must be a verified identity (example.com, sender@example.com) "
                    "or its ARN arn:aws:ses:<region>:<account>:identity/<name>, without "
                    f"wildcards; got {identity!r} (omit the key to allow every identity)",
                )

    def _check_sesami_roles(self, partition: str) -> None:
        roles = self.sesami_role_arns
        if isinstance(roles, str) or not isinstance(roles, tuple | list):
            raise _invalid("sesamiRoleArns", "must be a list of SESami's role ARNs")
        if not 1 <= len(roles) <= MAX_SESAMI_ROLES or len(set(roles)) != len(roles):
            raise _invalid(
                "sesamiRoleArns",
                f"must list SESami's role ARNs (1 to {MAX_SESAMI_ROLES}, no repeats) as the "
                f"SESami operator stack exports them (sesami_role_arns); got {len(roles)}",
            )
        for arn in roles:
            match = _SESAMI_ROLE_ARN.fullmatch(arn) if isinstance(arn, str) else None
            if match is None or match["partition"] != partition:
                raise _invalid(
                    "sesamiRoleArns",
                    f"each entry must be an IAM role ARN arn:{partition}:iam::<account>:role/<name>"
                    f" without wildcards, got {arn!r}",
                )
            if match["account"] != self.sesami_account_id:
                raise _invalid(
                    "sesamiRoleArns",
                    f"{arn} belongs to account {match['account']}, not to the SESami account "
                    f"{self.sesami_account_id} (sesamiAccountId)",
                )

    @property
    def partition(self) -> str:
        """The AWS partition, taken from the SESami bus ARN: cross-partition access is impossible,
        so the customer's account lives in the same one."""
        match = _EVENT_BUS_ARN.fullmatch(self.sesami_event_bus_arn)
        assert match is not None  # checked in __post_init__
        return match["partition"]

    @classmethod
    def from_config(cls, config: pulumi.Config) -> OnboardingArgs:
        identities = config.get_object("sendingIdentities") or []
        if not isinstance(identities, list):
            raise _invalid("sendingIdentities", "must be a list of identity names or ARNs")
        roles = config.require_object("sesamiRoleArns")
        if not isinstance(roles, list):
            raise _invalid("sesamiRoleArns", "must be a list of SESami's role ARNs")
        return cls(
            sesami_account_id=config.require("sesamiAccountId"),
            sesami_event_bus_arn=config.require("sesamiEventBusArn"),
            sesami_role_arns=tuple(roles),
            # Read as plain text so it can be validated; the component re-marks it secret.
            external_id=config.require("externalId"),
            configuration_set_name=config.get("configurationSetName")
            or DEFAULT_CONFIGURATION_SET_NAME,
            sending_identities=tuple(identities),
            role_name=config.get("roleName") or DEFAULT_ROLE_NAME,
        )


def _json(document: policies.PolicyDocument) -> str:
    return json.dumps(document, sort_keys=True)


class CustomerOnboarding(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    external_id: pulumi.Output[str]
    configuration_set_name: pulumi.Output[str]
    rule_arn: pulumi.Output[str]
    dead_letter_queue_url: pulumi.Output[str]
    dead_letter_queue_arn: pulumi.Output[str]
    region: pulumi.Output[str]
    account_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: OnboardingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:onboarding:CustomerOnboarding", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        partition = args.partition
        self.account_id = aws.get_caller_identity_output(opts=invoke).account_id
        self.region = aws.get_region_output(opts=invoke).region

        self.configuration_set = aws.sesv2.ConfigurationSet(
            f"{name}-configuration-set",
            configuration_set_name=args.configuration_set_name,
            tags=TAGS,
            opts=child,
        )
        self.event_destination = aws.sesv2.ConfigurationSetEventDestination(
            f"{name}-eventbridge",
            configuration_set_name=self.configuration_set.configuration_set_name,
            event_destination_name=EVENT_DESTINATION_NAME,
            event_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationArgs(
                enabled=True,
                matching_event_types=list(policies.SES_EVENT_TYPES),
                event_bridge_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationEventBridgeDestinationArgs(
                    event_bus_arn=pulumi.Output.all(self.region, self.account_id).apply(
                        lambda ra: policies.default_event_bus_arn(partition, ra[0], ra[1])
                    ),
                ),
            ),
            opts=child,
        )

        self.rule = aws.cloudwatch.EventRule(
            f"{name}-forward",
            # A fixed name: SESami's checklist reads this rule by name (see policies.py).
            name=policies.FORWARDING_RULE_NAME,
            description="Forward this account's SES events for SESami to the SESami event bus",
            event_bus_name="default",
            event_pattern=_json(policies.ses_event_pattern(args.configuration_set_name)),
            tags=TAGS,
            opts=child,
        )
        self.forwarder_role = aws.iam.Role(
            f"{name}-forwarder",
            path=ROLE_PATH,
            description="EventBridge delivers SES events to the SESami bus with this role",
            assume_role_policy=_json(policies.eventbridge_trust_policy()),
            tags=TAGS,
            opts=child,
        )
        self.forwarder_policy = aws.iam.RolePolicy(
            f"{name}-forwarder-put-events",
            role=self.forwarder_role.id,
            policy=_json(policies.forward_to_bus_policy(args.sesami_event_bus_arn)),
            opts=child,
        )
        # What the SESami bus refuses (its one policy admits SES events from any account, but an
        # operator may block one: blockedAccounts) or what outlives the retry policy lands here
        # instead of being dropped.
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dead-letters",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            tags=TAGS,
            opts=child,
        )
        self.dead_letter_queue_policy = aws.sqs.QueuePolicy(
            f"{name}-dead-letters",
            queue_url=self.dead_letter_queue.url,
            policy=pulumi.Output.all(self.dead_letter_queue.arn, self.rule.arn).apply(
                lambda arns: _json(policies.dead_letter_queue_policy(arns[0], arns[1]))
            ),
            opts=child,
        )
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-sesami-bus",
            rule=self.rule.name,
            event_bus_name="default",
            target_id="sesami-event-bus",
            arn=args.sesami_event_bus_arn,
            role_arn=self.forwarder_role.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=RETRY_MAX_EVENT_AGE_SECONDS,
                maximum_retry_attempts=RETRY_MAX_ATTEMPTS,
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
                arn=self.dead_letter_queue.arn,
            ),
            # Before the first event is forwarded, the role must be able to PutEvents and
            # EventBridge must be able to write to the dead-letter queue.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.forwarder_policy, self.dead_letter_queue_policy],
            ),
        )

        self.access_role = aws.iam.Role(
            f"{name}-access",
            name=args.role_name,
            path=ROLE_PATH,
            description="Assumed by SESami (with its external ID) to send mail and manage "
            "the suppression list",
            # The trust policy embeds the external ID, so it is as secret as the ID.
            assume_role_policy=pulumi.Output.secret(
                _json(policies.sesami_trust_policy(args.sesami_role_arns, args.external_id))
            ),
            max_session_duration=MAX_SESSION_SECONDS,
            tags=TAGS,
            opts=child,
        )
        self.access_policy = aws.iam.RolePolicy(
            f"{name}-access",
            role=self.access_role.id,
            policy=pulumi.Output.all(self.region, self.account_id, self.rule.arn).apply(
                lambda values: _json(
                    policies.sesami_access_policy(
                        sending_identity_arns=policies.sending_identity_arns(
                            args.sending_identities, partition, values[0], values[1]
                        ),
                        configuration_set_arn=policies.configuration_set_arn(
                            partition, values[0], values[1], args.configuration_set_name
                        ),
                        forwarding_rule_arn=values[2],
                    )
                )
            ),
            opts=child,
        )

        self.role_arn = self.access_role.arn
        self.external_id = pulumi.Output.secret(args.external_id)
        self.configuration_set_name = self.configuration_set.configuration_set_name
        self.rule_arn = self.rule.arn
        self.dead_letter_queue_url = self.dead_letter_queue.url
        self.dead_letter_queue_arn = self.dead_letter_queue.arn
        self.register_outputs(
            {
                "roleArn": self.role_arn,
                "externalId": self.external_id,
                "configurationSetName": self.configuration_set_name,
                "ruleArn": self.rule_arn,
                "deadLetterQueueUrl": self.dead_letter_queue_url,
                "deadLetterQueueArn": self.dead_letter_queue_arn,
                "region": self.region,
                "accountId": self.account_id,
            }
        )
