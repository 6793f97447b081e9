"""The ingest queue: the rule on SESami's bus sends SES events to one encrypted SQS queue, and an
event source mapping hands them to the ingest function in batches of up to 100.

- One invocation amortises its set-up (the warm instance, the tenant directory, botocore's
  clients) over a batch instead of paying it per event, and the rule's invocations stop scaling
  with the event rate. The batching window adds at most `BATCH_WINDOW_SECONDS` before an event
  is stored (nothing else moves out of the request path: counters and aggregates are still
  written by the event's own invocation).
- The function reports partial batch failures (ReportBatchItemFailures): a failing event is
  retried alone, up to `MAX_RECEIVES` receives, then kept in the queue's dead-letter queue,
  which alarms at one message. Events EventBridge could not put in the queue go to the rule's
  own DLQ (infra/events.py), as before.
- Only EventBridge, and only for the ingest rule, may send to the queue (its policy).
- The visibility timeout is six times the function's timeout (AWS's advice for Lambda sources).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from events import EVENTS_PRINCIPAL
from queues import function_queue

BATCH_SIZE = 100
BATCH_WINDOW_SECONDS = 1  # Lambda requires a window for batches over 10
RETENTION_SECONDS = 4 * 86_400


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Pure: only EventBridge, and only for the ingest rule, may send to the ingest queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "IngestRuleEvents",
                "Effect": "Allow",
                "Principal": {"Service": EVENTS_PRINCIPAL},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def event_source_args(
    queue_arn: pulumi.Input[str], function_name: pulumi.Input[str]
) -> dict[str, Any]:
    """Pure: the mapping from the ingest queue to the ingest function."""
    return {
        "event_source_arn": queue_arn,
        "function_name": function_name,
        "batch_size": BATCH_SIZE,
        "maximum_batching_window_in_seconds": BATCH_WINDOW_SECONDS,
        "function_response_types": ["ReportBatchItemFailures"],
    }


@dataclass(frozen=True)
class IngestQueueArgs:
    prefix: str
    function_timeout: int  # seconds, of the ingest function (sam.json)
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


class SesamiIngestQueue(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    dead_letters: aws.sqs.Queue

    def __init__(
        self, name: str, args: IngestQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:ingest:Queue", name, None, opts)
        built = function_queue(
            resource=f"{name}-ingest-queue",
            name=f"{args.prefix}ingest-queue",
            dlq_resource=f"{name}-ingest-queue-dead-letters",
            dlq_name=f"{args.prefix}ingest-queue-dead-letters",
            alarm_resource=f"{name}-ingest-queue-dlq-depth",
            retention_seconds=RETENTION_SECONDS,
            function_timeout=args.function_timeout,
            alarm_description="SES events ingest failed five times are in the ingest queue's DLQ.",
            alarm_actions=args.alarm_actions,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.queue, self.dead_letters, self.dlq_alarm = (
            built.queue,
            built.dead_letters,
            built.dlq_alarm,
        )
        self.register_outputs({"url": self.queue.url, "dlq_url": self.dead_letters.url})
