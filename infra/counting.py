"""The counters' feed: the messages table's DynamoDB stream, an event source mapping that hands
its records to the `count_events` function, and the alarms that say when counting lags or fails.

Ingest writes each event's timeline entry with the counter changes the event makes (the `cc`
attribute, `chalicelib.core.tables.COUNTED_ATTRIBUTE`); `count_events` adds a batch's changes to
the counters table in transactions, once per batch (its marker item), even when Lambda retries.

- Only the records that carry counter changes invoke it: INSERT and MODIFY records whose new
  image has `cc` (a string), by the mapping's filter. Aggregates, rows, TTL deletions never do.
- A retry must see the very same batch (the function deduplicates per batch): no bisecting on
  error, no partial batch responses, one batch per shard at a time (parallelization factor 1).
- A counter change is never dropped: retries until the records expire (the stream keeps them
  24 h), with no maximum record age. A batch that keeps failing holds its shard back; the
  IteratorAge alarm (the counters' lag) says so within minutes, the Errors alarm at the first
  failed invocation.
- Batches of up to `BATCH_SIZE` records, gathered for up to `BATCH_WINDOW_SECONDS`: each
  batch costs a marker and one update per counter item it touches, so a tenant at one event a
  second pays ~0.45 write units an event with 30 s, ~1.5 with 5 s (BENCHMARKS.md). The counters
  (the overview's numbers, not the event lists) trail ingest by up to that much.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from events import alarm_args, function_errors_alarm_args

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.core.tables import COUNTED_ATTRIBUTE

STARTING_POSITION = "TRIM_HORIZON"  # a new mapping counts what the stream still holds
BATCH_SIZE = 1000
BATCH_WINDOW_SECONDS = 30
RETRY_UNTIL_EXPIRED = -1  # maximum_retry_attempts and maximum_record_age_in_seconds: no limit
PARALLELIZATION_FACTOR = 1
# The counters' lag: the age of the newest record of a batch when it was read, in ms (CloudWatch
# publishes IteratorAge in milliseconds), over `LAG_ALARM_SECONDS` for `LAG_ALARM_MINUTES`.
LAG_ALARM_SECONDS = 60
LAG_ALARM_MINUTES = 5


def filter_pattern() -> dict[str, Any]:
    """Pure: the records that invoke count_events: new or changed timeline entries that carry
    counter changes (Lambda's event filtering for DynamoDB, on the `dynamodb` key)."""
    return {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"NewImage": {COUNTED_ATTRIBUTE: {"S": [{"exists": True}]}}},
    }


def event_source_args(
    stream_arn: pulumi.Input[str], function_name: pulumi.Input[str]
) -> dict[str, Any]:
    """Pure: the mapping from the messages table's stream to count_events."""
    return {
        "event_source_arn": stream_arn,
        "function_name": function_name,
        "starting_position": STARTING_POSITION,
        "batch_size": BATCH_SIZE,
        "maximum_batching_window_in_seconds": BATCH_WINDOW_SECONDS,
        "bisect_batch_on_function_error": False,
        "maximum_retry_attempts": RETRY_UNTIL_EXPIRED,
        "maximum_record_age_in_seconds": RETRY_UNTIL_EXPIRED,
        "parallelization_factor": PARALLELIZATION_FACTOR,
        # No function_response_types: no partial batch responses, a batch is retried whole.
        "filter_criteria": aws.lambda_.EventSourceMappingFilterCriteriaArgs(
            filters=[
                aws.lambda_.EventSourceMappingFilterCriteriaFilterArgs(
                    pattern=json.dumps(filter_pattern(), separators=(",", ":"))
                )
            ]
        ),
    }


def lag_alarm_args(
    function_name: pulumi.Input[str], alarm_actions: Sequence[pulumi.Input[str]]
) -> dict[str, Any]:
    """Pure: the counters lag more than LAG_ALARM_SECONDS behind ingest, every minute of
    LAG_ALARM_MINUTES (the function's IteratorAge: count_events has this one source)."""
    return alarm_args(
        description=(
            f"The counters lag more than {LAG_ALARM_SECONDS} s behind ingest for "
            f"{LAG_ALARM_MINUTES} minutes: count_events is failing or too slow on the messages "
            "table's stream (a failing batch is retried until its records expire after 24 h)."
        ),
        namespace="AWS/Lambda",
        metric_name="IteratorAge",
        dimensions={"FunctionName": function_name},
        statistic="Maximum",
        alarm_actions=alarm_actions,
        threshold=LAG_ALARM_SECONDS * 1000,
    ) | {
        "period": 60,
        "evaluation_periods": LAG_ALARM_MINUTES,
        "datapoints_to_alarm": LAG_ALARM_MINUTES,
        "comparison_operator": "GreaterThanThreshold",
    }


@dataclass(frozen=True)
class CountingArgs:
    prefix: str
    stream_arn: pulumi.Input[str]  # the messages table's stream (tables.stream_arns)
    function_name: pulumi.Input[str]  # count_events (functions.py)
    # The function's role policy: the mapping reads the stream with it.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


class SesamiCounting(pulumi.ComponentResource):
    source: aws.lambda_.EventSourceMapping
    lag_alarm: aws.cloudwatch.MetricAlarm
    errors_alarm: aws.cloudwatch.MetricAlarm

    def __init__(
        self, name: str, args: CountingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:counting:Stream", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.source = aws.lambda_.EventSourceMapping(
            f"{name}-count-events-source",
            **event_source_args(args.stream_arn, args.function_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.lag_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-counters-lag",
            name=f"{args.prefix}counters-lag",
            **lag_alarm_args(args.function_name, args.alarm_actions),
            opts=child,
        )
        self.errors_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-count-events-errors",
            name=f"{args.prefix}count-events-errors",
            **function_errors_alarm_args(
                description=(
                    "count_events failed a batch of the messages table's stream: Lambda retries "
                    "it whole; the counters lag until it succeeds (see the counters-lag alarm)."
                ),
                function_name=args.function_name,
                alarm_actions=args.alarm_actions,
            ),
            opts=child,
        )
        self.register_outputs({"source_uuid": self.source.uuid})
