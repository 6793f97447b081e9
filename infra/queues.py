"""A queue that feeds a Lambda function: encrypted (SQS-managed keys), with its dead-letter queue
after `MAX_RECEIVES` failed receives and an alarm on the dead-letter queue's first message. The
webhook queue (webhooks.py) and the ingest queue (ingest_queue.py) are both built with it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from events import queue_depth_alarm_args

MAX_RECEIVES = 5
DLQ_RETENTION_SECONDS = 14 * 86_400


def redrive_policy(dlq_arn: str) -> str:
    """Pure: after MAX_RECEIVES failed receives, a message goes to the dead-letter queue."""
    return json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})


@dataclass(frozen=True)
class FunctionQueue:
    queue: aws.sqs.Queue
    dead_letters: aws.sqs.Queue
    dlq_alarm: aws.cloudwatch.MetricAlarm


def function_queue(
    *,
    resource: str,
    name: str,
    dlq_resource: str,
    dlq_name: str,
    alarm_resource: str,
    retention_seconds: int,
    function_timeout: int,
    alarm_description: str,
    alarm_actions: Sequence[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> FunctionQueue:
    """The queue `name` (Pulumi resource `resource`), its dead-letter queue and the alarm on it.
    The visibility timeout is six times the function's timeout (AWS's advice for Lambda
    sources)."""
    dead_letters = aws.sqs.Queue(
        dlq_resource,
        name=dlq_name,
        sqs_managed_sse_enabled=True,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        opts=opts,
    )
    queue = aws.sqs.Queue(
        resource,
        name=name,
        sqs_managed_sse_enabled=True,
        message_retention_seconds=retention_seconds,
        visibility_timeout_seconds=6 * function_timeout,
        redrive_policy=dead_letters.arn.apply(redrive_policy),
        opts=opts,
    )
    alarm = aws.cloudwatch.MetricAlarm(
        alarm_resource,
        **queue_depth_alarm_args(
            description=alarm_description,
            queue_name=dead_letters.name,
            alarm_actions=alarm_actions,
        ),
        opts=opts,
    )
    return FunctionQueue(queue, dead_letters, alarm)
