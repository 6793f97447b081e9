"""Structured log lines. Counts are written in CloudWatch Embedded Metric Format, so a count in a
log line is also a CloudWatch metric without any API call from the function.

EMF lines must be bare JSON, so they go straight to stdout (Lambda ships each line to CloudWatch
Logs), not through a logging handler: Chalice formats its app logger's records with a prefix."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

METRICS_NAMESPACE = "SESami"
_enabled = True


def silence_metrics() -> None:
    """For local tools that ingest thousands of events: no metric lines on their terminal."""
    global _enabled
    _enabled = False


def metric(name: str, value: float, dimensions: Mapping[str, str], **context: Any) -> None:
    """One EMF log line carrying metric `name` with `dimensions` and extra context fields."""
    if not _enabled:
        return
    line = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": "Count"}],
                }
            ],
        },
        name: value,
        **dimensions,
        **context,
    }
    print(json.dumps(line, default=str), flush=True)
