"""SESami's Chalice app: it only declares. Routes live in each feature package's Blueprints;
each parses its input, calls one service in `chalicelib`, and returns."""

from __future__ import annotations

from typing import Any

from chalice.app import AuthRequest, AuthResponse, Chalice
from chalicelib.content import routes as content
from chalicelib.core import meta, wiring
from chalicelib.core.settings import AUTHORIZER_TTL_SECONDS
from chalicelib.history import routes as history
from chalicelib.identities import routes as identities
from chalicelib.lifecycle import routes as lifecycle
from chalicelib.sending import routes as sending
from chalicelib.suppression import routes as suppression
from chalicelib.suppression import unsubscribe
from chalicelib.templates import routes as templates
from chalicelib.tenants import key_routes as api_keys
from chalicelib.tenants import routes as account
from chalicelib.tenants import signin_routes as session
from chalicelib.web import routes as dashboard
from chalicelib.webhooks import routes as webhook_routes

# Logs propagate to the root logger, which Lambda ships to CloudWatch (and pytest captures).
app = Chalice(app_name="sesami", configure_logs=False)
for routes in (
    meta,
    session,
    dashboard,
    account,
    api_keys,
    history,
    suppression,
    unsubscribe,
    sending,
    webhook_routes,
    templates,
    identities,
    content,
):
    app.register_blueprint(routes.api.blueprint)
app.register_blueprint(lifecycle.api.blueprint)
app.register_blueprint(lifecycle.progress_api.blueprint)


@app.authorizer(ttl_seconds=AUTHORIZER_TTL_SECONDS)
def authorizer(auth_request: AuthRequest) -> AuthResponse:
    """API Gateway's authorizer on every private route (infra/gateway.py puts it there): a
    Cognito JWT or an API key, checked as the app checks them (chalicelib.tenants.authorizer).
    The routes do not name it: the app verifies every credential itself, locally too."""
    return wiring.authorize(auth_request)


@app.lambda_function(name="ingest")
def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The ingest queue's consumer (EventBridge rule -> SQS -> batches of up to 100, partial
    batch responses: a failed event is retried alone), or, invoked by the rule directly, one
    EventBridge envelope (transient storage errors raise, so EventBridge retries it)."""
    if "Records" in event:
        return wiring.ingest_queue_batch(event["Records"])
    return wiring.ingest([event]).counts()


@app.lambda_function(name="count_events")
def count_events(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The messages table's stream consumer (a DynamoDB event source mapping, filtered to the
    timeline entries that carry counter changes): adds a batch's changes to the hourly and link
    counters, once per batch even when Lambda retries it (chalicelib.ingest.counting)."""
    return wiring.count_events(event.get("Records", []))


@app.lambda_function(name="bulk_worker")
def bulk_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One slice of a bulk batch: `{"tenant_id", "batch_id", "next"}`, invoked asynchronously by
    POST /mail/bulk and then by itself until the batch is sent (see chalicelib.sending.worker)."""
    return wiring.run_bulk_slice(event, context)


@app.lambda_function(name="webhooks")
def webhooks(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The webhook queue's consumer (an SQS event source mapping, partial batch responses):
    delivers signed webhooks, retries them, evaluates reputation alerts (chalicelib.webhooks)."""
    return wiring.deliver_webhooks(event)


@app.lambda_function(name="relay_ranges")
def relay_ranges(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run daily by a schedule rule (infra/relay_ranges.py): Apple's iCloud Private Relay egress
    list, fetched, merged and stored in SESami's bucket for ingest (chalicelib.relays)."""
    return wiring.refresh_relay_ranges()
