"""SESami's event path: the custom bus customers' default buses forward SES events to, the rule
that hands `aws.ses` events to the ingest queue (infra/ingest_queue.py; without one, to the
ingest function directly) with 24 h of retries, then an encrypted DLQ, and the alarms that say
when events are being lost.

The bus's resource policy is declared here, whole, and never changes with the tenants:
`chalicelib.ingest.bus.bus_policy` accepts SES's own events (`events:source` = `aws.ses`) from
any account, and ingest keeps only what a tenant's binding owns (README, "Tenants past 50").
The API never edits it. The first `pulumi up` of this version replaces the document, and with it
the one-statement-per-tenant grants older versions added at onboarding (the new statement covers
them). `blockedAccounts` adds a Deny for accounts that abuse the bus; the `UnknownAccountEvents`
alarm says when to look."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.core.logs import METRICS_NAMESPACE
from chalicelib.ingest.bus import bus_policy

with warnings.catch_warnings():
    # pulumi-aws 7.x warns on import of its lambda module about a resource SESami does not use.
    warnings.filterwarnings(
        "ignore", message=r".*MicrovmsImage has been deprecated", category=DeprecationWarning
    )
    # pulumi_aws modules load lazily: taking the class out is what runs the import.
    from pulumi_aws.lambda_ import Permission as LambdaPermission

EVENTS_PRINCIPAL = "events.amazonaws.com"
DLQ_RETENTION_SECONDS = 14 * 86_400  # SQS's maximum: two weeks to notice and redrive.
# EventBridge's maximums: keep retrying a failing ingest function for a full day.
MAX_EVENT_AGE_SECONDS = 86_400
MAX_RETRY_ATTEMPTS = 185
ALARM_PERIOD_SECONDS = 300
# Events from accounts no tenant owns, per 5 minutes, before the operator is told: strays from a
# customer who disconnected are a trickle; a flood is someone using the bus (README).
UNKNOWN_ACCOUNT_EVENTS_ALARM = 1_000


@dataclass(frozen=True)
class EventsArgs:
    bus_name: str
    # The ingest function (functions.py, from the `chalice package` zip).
    ingest_function_arn: pulumi.Input[str]
    ingest_function_name: pulumi.Input[str]
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    blocked_accounts: Sequence[str] = field(default_factory=tuple)
    # The ingest queue (infra/ingest_queue.py): the rule's target. Without it, the rule invokes
    # the function directly, one event per invocation.
    ingest_queue_arn: pulumi.Input[str] | None = None
    ingest_queue_url: pulumi.Input[str] | None = None


def ses_event_pattern() -> dict[str, Any]:
    """Pure: every SES event on the bus. The tenant is decided later from the envelope's
    `account`, so the pattern does not filter by account (registered tenants change at runtime)."""
    return {"source": ["aws.ses"]}


def dlq_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Pure: only EventBridge, and only for the ingest rule, may put messages in the DLQ."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "IngestRuleDeadLetters",
                "Effect": "Allow",
                "Principal": {"Service": EVENTS_PRINCIPAL},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def alarm_args(
    *,
    description: str,
    namespace: str,
    metric_name: str,
    dimensions: dict[str, pulumi.Input[str]],
    statistic: str,
    alarm_actions: Sequence[pulumi.Input[str]],
    threshold: float = 1,
) -> dict[str, Any]:
    """Pure: a "this is ≥ threshold (1) in any 5-minute window" alarm; no data means nothing
    went wrong."""
    return {
        "alarm_description": description,
        "namespace": namespace,
        "metric_name": metric_name,
        "dimensions": dimensions,
        "statistic": statistic,
        "period": ALARM_PERIOD_SECONDS,
        "evaluation_periods": 1,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "threshold": threshold,
        "treat_missing_data": "notBreaching",
        "alarm_actions": list(alarm_actions),
        "ok_actions": list(alarm_actions),
    }


def queue_depth_alarm_args(
    *, description: str, queue_name: pulumi.Input[str], alarm_actions: Sequence[pulumi.Input[str]]
) -> dict[str, Any]:
    """Pure: alarm_args for "a message is waiting in this queue" (a DLQ or a failures queue)."""
    return alarm_args(
        description=description,
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": queue_name},
        statistic="Maximum",
        alarm_actions=alarm_actions,
    )


def function_errors_alarm_args(
    *,
    description: str,
    function_name: pulumi.Input[str],
    alarm_actions: Sequence[pulumi.Input[str]],
) -> dict[str, Any]:
    """Pure: alarm_args for "this Lambda function failed an invocation"."""
    return alarm_args(
        description=description,
        namespace="AWS/Lambda",
        metric_name="Errors",
        dimensions={"FunctionName": function_name},
        statistic="Sum",
        alarm_actions=alarm_actions,
    )


class SesamiEvents(pulumi.ComponentResource):
    bus: aws.cloudwatch.EventBus
    dead_letters: aws.sqs.Queue
    rule: aws.cloudwatch.EventRule
    target: aws.cloudwatch.EventTarget

    def __init__(
        self, name: str, args: EventsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:events:Events", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.bus = aws.cloudwatch.EventBus(f"{name}-bus", name=args.bus_name, opts=child)
        blocked = tuple(args.blocked_accounts)
        bus_policy(f"arn:aws:events:us-east-1:000000000000:event-bus/{args.bus_name}", blocked)
        self.bus_policy = aws.cloudwatch.EventBusPolicy(
            f"{name}-bus-policy",
            event_bus_name=self.bus.name,
            policy=self.bus.arn.apply(lambda arn: json.dumps(bus_policy(arn, blocked))),
            opts=child,
        )
        self.dead_letters = aws.sqs.Queue(
            f"{name}-ingest-dlq",
            name=f"{args.bus_name}-ingest-dlq",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            opts=child,
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-ses",
            name=f"{args.bus_name}-ses-to-ingest",
            description="Every SES event forwarded by a tenant's account goes to ingest.",
            event_bus_name=self.bus.name,
            event_pattern=json.dumps(ses_event_pattern()),
            opts=child,
        )
        self.queue_policy = aws.sqs.QueuePolicy(
            f"{name}-ingest-dlq-policy",
            queue_url=self.dead_letters.url,
            policy=pulumi.Output.all(self.dead_letters.arn, self.rule.arn).apply(
                lambda arns: json.dumps(dlq_policy(arns[0], arns[1]))
            ),
            opts=child,
        )
        if args.ingest_queue_arn is not None and args.ingest_queue_url is not None:
            from ingest_queue import queue_policy

            # The rule sends to the ingest queue; only the queue's mapping invokes ingest.
            self.ingest_queue_policy = aws.sqs.QueuePolicy(
                f"{name}-ingest-queue-policy",
                queue_url=args.ingest_queue_url,
                policy=pulumi.Output.all(args.ingest_queue_arn, self.rule.arn).apply(
                    lambda arns: json.dumps(queue_policy(arns[0], arns[1]))
                ),
                opts=child,
            )
            target_arn: pulumi.Input[str] = args.ingest_queue_arn
            ready: list[pulumi.Resource] = [self.ingest_queue_policy, self.queue_policy]
        else:
            self.permission = LambdaPermission(
                f"{name}-ingest-invoke",
                action="lambda:InvokeFunction",
                function=args.ingest_function_name,
                principal=EVENTS_PRINCIPAL,
                source_arn=self.rule.arn,
                opts=child,
            )
            target_arn = args.ingest_function_arn
            ready = [self.permission, self.queue_policy]
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-ingest",
            rule=self.rule.name,
            event_bus_name=self.bus.name,
            target_id="ingest",
            arn=target_arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS,
                maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
                arn=self.dead_letters.arn
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )
        self.dlq_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-ingest-dlq-depth",
            **queue_depth_alarm_args(
                description="SES events EventBridge could not deliver to ingest are in the DLQ.",
                queue_name=self.dead_letters.name,
                alarm_actions=args.alarm_actions,
            ),
            opts=child,
        )
        self.ingest_errors_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-ingest-errors",
            **function_errors_alarm_args(
                description="The ingest function failed; EventBridge is retrying SES events.",
                function_name=args.ingest_function_name,
                alarm_actions=args.alarm_actions,
            ),
            opts=child,
        )
        self.unknown_accounts_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-unknown-account-events",
            **alarm_args(
                description=(
                    "Many SES events reached the bus from accounts no tenant owns: a stranger "
                    "may be using it (see README, Tenants past 50; blockedAccounts denies one)."
                ),
                namespace=METRICS_NAMESPACE,
                metric_name="UnknownAccountEvents",
                dimensions={"Outcome": "unknown_account"},
                statistic="Sum",
                alarm_actions=args.alarm_actions,
                threshold=UNKNOWN_ACCOUNT_EVENTS_ALARM,
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "bus_arn": self.bus.arn,
                "bus_name": self.bus.name,
                "dlq_url": self.dead_letters.url,
                "rule_arn": self.rule.arn,
            }
        )
