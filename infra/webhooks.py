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
from queues import function_queue

RETENTION_SECONDS = 4 * 86_400  # retries travel as new messages; a message lives minutes
BATCH_SIZE = 10
DEFAULT_CONCURRENCY = 20


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
        built = function_queue(
            resource=f"{name}-webhooks",
            name=f"{args.prefix}webhooks",
            dlq_resource=f"{name}-webhooks-dlq",
            dlq_name=f"{args.prefix}webhooks-dlq",
            alarm_resource=f"{name}-webhooks-dlq-depth",
            retention_seconds=RETENTION_SECONDS,
            function_timeout=args.function_timeout,
            alarm_description=(
                "Webhook tasks failed five times (DynamoDB, SQS or a bug): in the DLQ."
            ),
            alarm_actions=args.alarm_actions,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.queue, self.dead_letters, self.dlq_alarm = (
            built.queue,
            built.dead_letters,
            built.dlq_alarm,
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
