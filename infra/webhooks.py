"""SESami's webhook queue: one SQS standard queue, encrypted, used as a fair queue (every message
carries its tenant as MessageGroupId, chalicelib/webhooks/queue.py), its dead-letter queue and
the alarm on it, and the event source mapping that hands its messages to the `webhooks` function.

- The function reports partial batch failures; a message that fails `MAX_RECEIVES` times (its
  handling raised: DynamoDB or SQS unavailable, a bug) goes to the dead-letter queue, which
  alarms at one message. Deliveries that a receiver failed for 24 hours are not these: they end
  as `failed` records in the tenant's delivery log (the app's own dead letters, replayable).
- The visibility timeout is six times the function's timeout (AWS's advice for Lambda sources).
- `maximum_concurrency` caps the function's concurrency on this source, so webhook deliveries can
  never take the Lambda concurrency ingest needs; fair queues share it between tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from events import queue_depth_alarm_args

MAX_RECEIVES = 5
RETENTION_SECONDS = 4 * 86_400  # retries travel as new messages; a message lives minutes
DLQ_RETENTION_SECONDS = 14 * 86_400
BATCH_SIZE = 10
DEFAULT_CONCURRENCY = 20


def redrive_policy(dlq_arn: str) -> str:
    """Pure: after MAX_RECEIVES failed receives, a message goes to the dead-letter queue."""
    import json

    return json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})


@dataclass(frozen=True)
class WebhookQueueArgs:
    prefix: str
    function_timeout: int  # seconds, of the webhooks function (sam.json)
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


class SesamiWebhookQueue(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    dead_letters: aws.sqs.Queue

    def __init__(
        self, name: str, args: WebhookQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:webhooks:Queue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.dead_letters = aws.sqs.Queue(
            f"{name}-webhooks-dlq",
            name=f"{args.prefix}webhooks-dlq",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-webhooks",
            name=f"{args.prefix}webhooks",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=RETENTION_SECONDS,
            visibility_timeout_seconds=6 * args.function_timeout,
            redrive_policy=self.dead_letters.arn.apply(redrive_policy),
            opts=child,
        )
        self.dlq_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-webhooks-dlq-depth",
            **queue_depth_alarm_args(
                description="Webhook tasks failed five times (DynamoDB, SQS or a bug): in the DLQ.",
                queue_name=self.dead_letters.name,
                alarm_actions=args.alarm_actions,
            ),
            opts=child,
        )
        self.register_outputs({"url": self.queue.url, "dlq_url": self.dead_letters.url})


def event_source_args(
    queue_arn: pulumi.Input[str], function_name: pulumi.Input[str], concurrency: int
) -> dict[str, Any]:
    """Pure: the mapping from the queue to the webhooks function."""
    return {
        "event_source_arn": queue_arn,
        "function_name": function_name,
        "batch_size": BATCH_SIZE,
        "function_response_types": ["ReportBatchItemFailures"],
        "scaling_config": aws.lambda_.EventSourceMappingScalingConfigArgs(
            maximum_concurrency=concurrency
        ),
    }
