"""SESami's Chalice app: it only declares. Routes live in each feature package's Blueprints;
each parses its input, calls one service in `chalicelib`, and returns."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice
from chalicelib.content import routes as content
from chalicelib.core import meta, wiring
from chalicelib.history import routes as history
from chalicelib.identities import routes as identities
from chalicelib.sending import routes as sending
from chalicelib.suppression import routes as suppression
from chalicelib.suppression import unsubscribe
from chalicelib.templates import routes as templates
from chalicelib.tenants import routes as account
from chalicelib.tenants import signin_routes as session
from chalicelib.web import routes as dashboard

# Logs propagate to the root logger, which Lambda ships to CloudWatch (and pytest captures).
app = Chalice(app_name="sesami", configure_logs=False)
for routes in (
    meta,
    session,
    dashboard,
    account,
    history,
    suppression,
    unsubscribe,
    sending,
    templates,
    identities,
    content,
):
    app.register_blueprint(routes.api.blueprint)


@app.lambda_function(name="ingest")
def ingest(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Target of the rule on SESami's event bus: one EventBridge envelope per invocation.
    Transient storage errors raise, so EventBridge/Lambda retry and the DLQ keeps the event."""
    return wiring.ingest([event]).counts()


@app.lambda_function(name="bulk_worker")
def bulk_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One slice of a bulk batch: `{"tenant_id", "batch_id", "next"}`, invoked asynchronously by
    POST /mail/bulk and then by itself until the batch is sent (see chalicelib.sending.worker)."""
    return wiring.run_bulk_slice(event, context)
