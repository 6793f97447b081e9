"""Structured log lines. Counts are written in CloudWatch Embedded Metric Format, so a count in a
log line is also a CloudWatch metric without any API call from the function."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

METRICS_NAMESPACE = "SESami"
_log = logging.getLogger("sesami")


def emit(message: str, fields: Mapping[str, Any] | None = None, **kw: Any) -> None:
    """One JSON log line: `{"message": ..., **fields}`."""
    _log.warning(json.dumps({"message": message, **(fields or {}), **kw}, default=str))


def metric(name: str, value: float, dimensions: Mapping[str, str], **context: Any) -> None:
    """One EMF log line carrying metric `name` with `dimensions` and extra context fields."""
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
    _log.warning(json.dumps(line, default=str))
