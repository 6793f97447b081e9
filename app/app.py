"""SESami's Chalice app: it only declares. Routes and functions parse their input, call one
service in `chalicelib`, and return."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice
from chalicelib import runtime

app = Chalice(app_name="sesami")


@app.lambda_function(name="ingest")
def ingest(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Target of the rule on SESami's event bus: one EventBridge envelope per invocation.
    Transient storage errors raise, so EventBridge/Lambda retry and the DLQ keeps the event."""
    return runtime.ingest([event]).counts()
