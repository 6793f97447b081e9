"""The deployed refresh of Apple's iCloud Private Relay egress ranges (chalicelib/relays/): the
bucket that keeps SESami's copy, and the daily schedule that runs the `relay_ranges` function.

- The bucket is private (every public-access block on; S3 encrypts new objects and disables
  ACLs by default) and holds one object, `relay-ranges/apple_relay_egress.csv` (~250 KB). Its
  name is spelled from the stack, account and region, so roles and environments name it before
  it exists (no cycle). `force_destroy`: the copy is remade by the next run, nothing is lost.
- The function's role may put that one object, nothing else (roles.relay_ranges_policy);
  ingest's may get it (roles.ingest_policy), and neither may list the bucket.
- An EventBridge schedule rule on the default bus invokes the function once a day; Lambda's
  permission names that rule as the only source. A failed run alarms (its Errors metric); the
  copy already stored stays in use until it is 180 days old.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
from events import function_errors_alarm_args
from target import Target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.relays.store import OBJECT_KEY

SCHEDULE = "rate(1 day)"
EVENTS_PRINCIPAL = "events.amazonaws.com"
MAX_BUCKET_NAME = 63


def bucket_name(prefix: str, target: Target) -> str:
    """Pure: a valid, globally unique S3 name (lowercase letters, digits, hyphens)."""
    raw = f"{prefix}relay-ranges-{target.account_id}-{target.region}".lower()
    return re.sub(r"[^a-z0-9-]", "-", raw)[:MAX_BUCKET_NAME].strip("-")


def object_arn(partition: str, bucket: str, key: str = OBJECT_KEY) -> str:
    """Pure: an S3 object's ARN (S3 ARNs name neither region nor account)."""
    return f"arn:{partition}:s3:::{bucket}/{key}"


@dataclass(frozen=True)
class RelayBucketArgs:
    bucket: str  # bucket_name(...)


class SesamiRelayBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: RelayBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:relays:Bucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-relay-ranges", bucket=args.bucket, force_destroy=True, opts=child
        )
        self.public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-relay-ranges-private",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.register_outputs({"bucket": self.bucket.id})


@dataclass(frozen=True)
class RelayScheduleArgs:
    function_arn: pulumi.Input[str]
    function_name: pulumi.Input[str]
    prefix: str
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


class SesamiRelaySchedule(pulumi.ComponentResource):
    rule: aws.cloudwatch.EventRule

    def __init__(
        self, name: str, args: RelayScheduleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:relays:Schedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-relay-ranges-daily",
            name=f"{args.prefix}relay-ranges-daily",
            description="SESami: refresh Apple's iCloud Private Relay egress ranges",
            schedule_expression=SCHEDULE,
            opts=child,
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-relay-ranges-invoke",
            action="lambda:InvokeFunction",
            function=args.function_name,
            principal=EVENTS_PRINCIPAL,
            source_arn=self.rule.arn,
            opts=child,
        )
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-relay-ranges-target",
            rule=self.rule.name,
            arn=args.function_arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.permission]),
        )
        self.alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-relay-ranges-failed",
            **function_errors_alarm_args(
                description=(
                    "The daily refresh of Apple's relay ranges failed: ingest keeps the copy it "
                    "has (used until 180 days old), then the shipped file."
                ),
                function_name=args.function_name,
                alarm_actions=args.alarm_actions,
            ),
            opts=child,
        )
        self.register_outputs({"rule_arn": self.rule.arn})
