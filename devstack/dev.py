"""`make dev`: SESami's local stack on loopback, with demo data.

Starts Amazon DynamoDB Local (data kept in .dev/dynamodb between runs), moto's server (STS, SES,
Cognito, EventBridge, IAM, SQS, S3 for stored content), the local Momento server, and the API on
http://127.0.0.1:8000.
Provisions tables, the user pool and the event bus from the production definitions, a demo
tenant whose AWS account is connected, a demo user, and seeds ~30 days of realistic SES traffic
through the real ingest code. Webhooks: the webhook queue in moto's SQS, a thread that does what
the webhooks Lambda function does with it, a thread that counts events from the messages
table's stream as the count_events function does (devstack/stream_poller.py), and a demo
receiver (http://127.0.0.1:8004/) that the demo tenant's endpoint points at and that verifies
every delivery's signature. Ctrl-C stops
everything it started; running it again works.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "app"), str(ROOT)]
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

from chalicelib.core import logs, tables  # noqa: E402
from chalicelib.core.settings import Settings  # noqa: E402
from chalicelib.ingest.directory import TenantDirectory  # noqa: E402
from chalicelib.ingest.pipeline import ingest_envelopes  # noqa: E402
from chalicelib.ingest.store import EventStore  # noqa: E402

from devstack.dynamodb_local import DynamoDBLocal, create_tables  # noqa: E402
from devstack.momento_local.server import MomentoLocalServer  # noqa: E402
from devstack.moto_server import MotoServer  # noqa: E402
from devstack.stream_poller import StreamPoller  # noqa: E402
from devstack.traffic import traffic  # noqa: E402

DEMO_TENANT = "demo"
DEMO_ACCOUNT = "123456789012"  # moto's account: the demo customer's resources live there
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "Sesami-demo-2026"  # noqa: S105 - local demo login, printed on start
SESAMI_ACCOUNT = "444455556666"
# Named like the operator stack's API and bulk-worker roles; the local stack has no such roles
# (moto ignores trust policies), but the onboarding commands name them as production's do.
SESAMI_ROLE_ARNS = tuple(
    f"arn:aws:iam::{SESAMI_ACCOUNT}:role/sesami-dev-{f}-role" for f in ("api", "bulk-worker")
)
API_PORT = int(os.environ.get("SESAMI_DEV_PORT", "8000"))
DDB_PORT = int(os.environ.get("SESAMI_DEV_DYNAMODB_PORT", "8001"))
MOMENTO_PORT = int(os.environ.get("SESAMI_DEV_MOMENTO_PORT", "8002"))
MOTO_PORT = int(os.environ.get("SESAMI_DEV_MOTO_PORT", "8003"))
RECEIVER_PORT = int(os.environ.get("SESAMI_DEV_RECEIVER_PORT", "8004"))
ALERTS_FROM = "alerts@sesami.local"  # verified in moto's SES: alert emails to admins
SEED_MESSAGES = int(os.environ.get("SESAMI_DEV_MESSAGES", "3000"))
SEED_DAYS = 30
CONTENT_BUCKET = "sesami-dev-content"  # in moto's S3: the content of mail sent through the API
# Where the stack keeps its state (DynamoDB data, signing key, token, ready.json); tests point
# this at a temporary directory to run a stack of their own beside a developer's.
DEV_DIR = Path(os.environ.get("SESAMI_DEV_DIR") or ROOT / ".dev")


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def ensure_demo_tenant() -> bool:
    """Create the demo tenant and bind the demo account. Returns False if it already existed."""
    from chalicelib.core.tables import AccountModel, TenantModel
    from chalicelib.tenants.membership import new_external_id

    try:
        TenantModel.get(DEMO_TENANT)
        return False
    except TenantModel.DoesNotExist:
        pass
    now = datetime.now(UTC)
    TenantModel(
        DEMO_TENANT,
        name="Demo Co",
        external_id=new_external_id(),
        created_at=now,
        account_id=DEMO_ACCOUNT,
        region="us-east-1",
        configuration_set="sesami-events",
    ).save()
    # Bound before the seeded month: mail sent before an account's binding is not the tenant's.
    bound_at = now - timedelta(days=SEED_DAYS + 1)
    AccountModel(DEMO_ACCOUNT, tenant_id=DEMO_TENANT, bound_at=bound_at).save()
    return True


def provision_aws(moto_endpoint: str) -> dict[str, str]:
    """moto's state lives in memory: provision it on every start. Returns the app's settings."""
    from chalicelib.core.tables import TenantModel, UserModel
    from chalicelib.ingest.bus import bus_policy

    from devstack import provision

    identity = provision.user_pool(moto_endpoint)
    bus_arn = provision.event_bus(moto_endpoint)
    sub = provision.user(moto_endpoint, identity, DEMO_EMAIL, DEMO_PASSWORD)
    tenant = TenantModel.get(DEMO_TENANT)
    role_arn = provision.customer_role(moto_endpoint, SESAMI_ROLE_ARNS, tenant.external_id)
    tenant.update(actions=[TenantModel.role_arn.set(role_arn)])
    provision.content_bucket(moto_endpoint, CONTENT_BUCKET)
    for gap in provision.customer_ses_setup(moto_endpoint, bus_arn, "sesami-events"):
        step(f"  (moto has no {gap}: the checklist reports it not_checked)")
    # The user gets a new sub on every start: bind it to the demo tenant, as an admin.
    UserModel(
        sub, tenant_id=DEMO_TENANT, email=DEMO_EMAIL, role="admin", created_at=datetime.now(UTC)
    ).save()
    provision.aws(moto_endpoint, "cognito-idp").admin_update_user_attributes(
        UserPoolId=identity.pool_id,
        Username=DEMO_EMAIL,
        UserAttributes=[
            {"Name": "custom:tenant_id", "Value": DEMO_TENANT},
            {"Name": "custom:tenant_role", "Value": "admin"},
        ],
    )
    queue_url = provision.aws(moto_endpoint, "sqs").create_queue(QueueName="sesami-dev-webhooks")[
        "QueueUrl"
    ]
    provision.aws(moto_endpoint, "sesv2").create_email_identity(EmailIdentity=ALERTS_FROM)
    # The production bus policy (infra/events.py declares the same document).
    provision.aws(moto_endpoint, "events").put_permission(
        EventBusName="sesami", Policy=json.dumps(bus_policy(bus_arn))
    )
    return {
        "SESAMI_ACCOUNT_ID": SESAMI_ACCOUNT,
        "SESAMI_EVENT_BUS_ARN": bus_arn,
        "SESAMI_ROLE_ARNS": ",".join(SESAMI_ROLE_ARNS),
        "SESAMI_USER_POOL_ID": identity.pool_id,
        "SESAMI_USER_POOL_CLIENT_IDS": identity.client_id,
        "SESAMI_JWKS_URL": identity.jwks_url,
        "SESAMI_AWS_ENDPOINT": moto_endpoint,
        "SESAMI_WEBHOOK_QUEUE_URL": queue_url,
        "SESAMI_ALERTS_FROM": ALERTS_FROM,
        "SESAMI_CONTENT_BUCKET": CONTENT_BUCKET,
    }


def serve_api(port: int) -> Any:
    """The Chalice app on 127.0.0.1:port (Chalice's local server, in a thread)."""
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, LocalDevServer

    import app as chalice_app

    class Handler(ChaliceRequestHandler):
        # http.server writes the headers and the body in two sends: with Nagle's algorithm on,
        # the body waits for the client's delayed ACK, ~40 ms on every keep-alive request.
        disable_nagle_algorithm = True

    server = LocalDevServer(chalice_app.app, Config(), "127.0.0.1", port, handler_cls=Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def seed(settings: Settings, stop: threading.Event, poller: StreamPoller) -> None:
    store, directory = EventStore(settings), TenantDirectory(ttl_seconds=300)
    start = datetime.now(UTC) - timedelta(days=SEED_DAYS)
    # Newest first: the dashboard's default ranges (24h, 7d) fill within seconds, and the rest of
    # the month follows. Ingest does not depend on arrival order (the aggregate is a fold).
    envelopes = sorted(
        traffic(
            DEMO_ACCOUNT,
            SEED_MESSAGES,
            start=start,
            span=timedelta(days=SEED_DAYS),
            until=datetime.now(UTC),
        ),
        key=lambda envelope: str(envelope["time"]),
        reverse=True,
    )
    total = len(envelopes)
    for done in range(0, total, 200):
        if stop.is_set():
            return
        ingest_envelopes(envelopes[done : done + 200], tenants=directory, store=store)
        seeded = min(done + 200, total)
        oldest = str(envelopes[seeded - 1]["time"])[:10]
        if seeded < total:
            print(f"    seeded {seeded} of {total} events (back to {oldest})", flush=True)
            _write_state("seed.json", {"events": seeded, "total": total, "finished": False})
    try:
        poller.drain()  # finished means counted too (the counters follow the stream)
    except Exception as exc:  # the poller thread counts them on its next round
        print(f"    counting the seeded events: {exc!r}", flush=True)
    _write_state("seed.json", {"events": total, "total": total, "finished": True})
    step(f"demo data ready: {total} events for {SEED_MESSAGES} messages")


def _write_state(name: str, data: dict[str, Any]) -> None:
    """Machine-readable progress for scripts and tests (written whole, then renamed)."""
    DEV_DIR.mkdir(parents=True, exist_ok=True)
    tmp = DEV_DIR / f".{name}.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(DEV_DIR / name)


def simulate_ses_events() -> None:
    """moto's SES publishes no events: mail sent through the API produces SES's events (mailbox
    simulator rules) through the real ingest, a second later, as from the tenant's account."""
    from chalicelib.core import wiring

    from devstack.ses_simulator import SimulatedSes

    def deliver(envelopes: list[dict[str, Any]]) -> object:
        # As the ingest queue hands them to the ingest function (infra/ingest_queue.py): one
        # batch of SQS records, webhooks and alerts too.
        records = [{"messageId": e["id"], "body": json.dumps(e)} for e in envelopes]
        return wiring.ingest_queue_batch(records)

    wiring.use(ses_wrapper=lambda tenant, ses: SimulatedSes(ses, tenant.account_id, deliver))


def deliver_webhooks(queue_url: str, stop: threading.Event) -> None:
    """What the webhooks Lambda function and its SQS event source mapping do, in a thread: receive
    up to 10 messages, hand them to the same handler, delete those it did not report failed."""
    import logging

    from chalicelib.core import wiring

    sqs = wiring.aws_client("sqs")
    while not stop.is_set():
        try:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = got.get("Messages") or []
            if not messages:
                continue
            records = [
                {
                    "messageId": m["MessageId"],
                    "body": m["Body"],
                    "receiptHandle": m["ReceiptHandle"],
                }
                for m in messages
            ]
            answer = wiring.deliver_webhooks({"Records": records})
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        except Exception:
            logging.getLogger("sesami.webhooks").exception("local webhook delivery failed")
            stop.wait(1.0)


def demo_endpoint(receiver_url: str) -> str:
    """The demo tenant's endpoint at the demo receiver, and its secret: created the first time,
    its secret rotated on every later start (a secret is shown once; this run needs it)."""
    from chalicelib.core import wiring

    service = wiring.webhook_endpoints()
    url = f"{receiver_url}/hooks"
    mine = [e for e in service.endpoints(DEMO_TENANT)["endpoints"] if e["url"] == url]
    if mine:
        if not mine[0]["enabled"]:
            service.update(DEMO_TENANT, mine[0]["id"], {"enabled": True}, "make dev")
        return str(service.rotate(DEMO_TENANT, mine[0]["id"], {"overlap_hours": 0})["secret"])
    body = {"url": url, "description": "make dev's demo receiver", "event_types": ["*"]}
    return str(service.create(DEMO_TENANT, body, "make dev")["secret"])


def _signing_key() -> str:
    """Kept in .dev/ so that cursors and unsubscribe links survive a restart."""
    return _kept_key("signing-key")


def _kept_key(name: str) -> str:
    """A 32-byte key kept in .dev/ (the webhook key: the endpoints' sealed secrets stay
    readable after a restart)."""
    import secrets

    path = DEV_DIR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    import secrets

    from chalicelib.core import wiring

    logs.silence_metrics()  # seeding would print one metric line per batch
    # Ctrl-C and SIGTERM stop everything, also when started in the background (where a shell
    # leaves SIGINT ignored) and also halfway through starting.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    ports = (API_PORT, DDB_PORT, MOMENTO_PORT, MOTO_PORT, RECEIVER_PORT)
    busy = [port for port in ports if _in_use(port)]
    if busy:
        sys.exit(
            f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use (is another `make dev` "
            "running?). Stop it, or choose ports with SESAMI_DEV_PORT, SESAMI_DEV_DYNAMODB_PORT, "
            "SESAMI_DEV_MOMENTO_PORT, SESAMI_DEV_MOTO_PORT and SESAMI_DEV_RECEIVER_PORT."
        )
    stop = threading.Event()
    step(f"starting Amazon DynamoDB Local on 127.0.0.1:{DDB_PORT} (data in {DEV_DIR}/dynamodb)")
    (DEV_DIR / "ready.json").unlink(missing_ok=True)
    ddb = DynamoDBLocal(DDB_PORT, in_memory=False, db_path=DEV_DIR / "dynamodb")
    ddb.start()
    momento = MomentoLocalServer(port=MOMENTO_PORT)
    moto = MotoServer(MOTO_PORT)
    from devstack.webhook_receiver import DemoReceiver

    receiver = DemoReceiver(RECEIVER_PORT)
    api = None
    try:
        step(f"starting the local Momento server on 127.0.0.1:{momento.start()}")
        step(f"starting moto's server (STS, SES, Cognito, EventBridge, IAM) on {moto.start()}")
        settings = Settings(table_prefix="sesami-dev-", dynamodb_endpoint=ddb.endpoint)
        step("creating tables from chalicelib.core.tables.table_specs()")
        create_tables(settings)
        tables.configure(settings)
        step("counting events from the messages table's stream (what count_events does)")
        poller = StreamPoller(settings, state=DEV_DIR / "stream.json")
        threading.Thread(target=poller.run_forever, args=(stop,), daemon=True).start()
        seeder = None
        if ensure_demo_tenant():
            step(f"seeding ~30 days of traffic for tenant '{DEMO_TENANT}' in the background")
            seeder = threading.Thread(target=seed, args=(settings, stop, poller), daemon=True)
            seeder.start()
        else:
            step("demo tenant exists: reusing its data")
        step("provisioning the user pool, the event bus and the demo customer's role in moto")
        env = provision_aws(moto.endpoint)
        env.update(
            SESAMI_TABLE_PREFIX=settings.table_prefix,
            SESAMI_DYNAMODB_ENDPOINT=ddb.endpoint,
            SESAMI_MOMENTO_LOCAL=f"127.0.0.1:{MOMENTO_PORT}",
            SESAMI_CREDENTIALS_KEY=secrets.token_hex(32),
            SESAMI_SIGNING_KEY=_signing_key(),
            SESAMI_PUBLIC_URL=f"http://127.0.0.1:{API_PORT}",
            # moto's STS ignores ExternalId, so a role cannot prove it refuses SESami without it.
            SESAMI_INSECURE_SKIP_EXTERNAL_ID_CHECK="true",
            SESAMI_WEBHOOK_KEY=_kept_key("webhook-key"),
            # The demo receiver is on loopback, over http: allowed here only (logged at start).
            SESAMI_INSECURE_WEBHOOKS_TO_LOOPBACK="true",
        )
        os.environ.update(env)
        wiring.reset()
        simulate_ses_events()
        api = serve_api(API_PORT)
        step(f"starting the demo webhook receiver on {receiver.start()}")
        receiver.use_secret(demo_endpoint(receiver.url))
        threading.Thread(
            target=deliver_webhooks, args=(env["SESAMI_WEBHOOK_QUEUE_URL"], stop), daemon=True
        ).start()
        url = f"http://127.0.0.1:{API_PORT}"
        from devstack import provision

        identity = provision.Identity(
            env["SESAMI_USER_POOL_ID"], env["SESAMI_USER_POOL_CLIENT_IDS"], env["SESAMI_JWKS_URL"]
        )
        token = provision.id_token(moto.endpoint, identity, DEMO_EMAIL, DEMO_PASSWORD)
        DEV_DIR.mkdir(parents=True, exist_ok=True)
        (DEV_DIR / "token").write_text(token)
        if seeder is None:
            _write_state("seed.json", {"events": None, "finished": True})
        _write_state(
            "ready.json",
            {
                "url": url,
                "email": DEMO_EMAIL,
                "password": DEMO_PASSWORD,
                "tenant": DEMO_TENANT,
                "moto": moto.endpoint,
                "dynamodb": ddb.endpoint,
                "webhook_receiver": receiver.url,
                **{k: v for k, v in env.items() if not k.endswith("_KEY")},
            },
        )
        token_path = os.path.relpath(DEV_DIR / "token")
        print(
            f"""
SESami is running
  dashboard        {url}/
  login            {DEMO_EMAIL} / {DEMO_PASSWORD}   (tenant '{DEMO_TENANT}')
                   Sign-up works too: the local user pool (moto) accepts any confirmation code.
  API              {url}   (described at {url}/openapi.json)
  a token          {token_path} (an id token for the demo user, valid one hour)
  try              curl -s -H "Authorization: Bearer $(cat {token_path})" {url}/account
  webhooks         {receiver.url}/   the demo receiver: signed deliveries, verified
                   (send to bounce@simulator.amazonses.com and watch them arrive)
  DynamoDB Local   {ddb.endpoint}   (tables sesami-dev-*)
  moto             {moto.endpoint}   Momento (local) 127.0.0.1:{MOMENTO_PORT}
Ctrl-C stops everything.""",
            flush=True,
        )
        try:
            while not stop.is_set():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        stop.set()
        (DEV_DIR / "ready.json").unlink(missing_ok=True)
        if seeder:
            seeder.join(timeout=10)
    finally:
        step("stopping")
        if api is not None:
            api.server.shutdown()
        receiver.stop()
        moto.stop()
        momento.stop()
        ddb.stop()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # stopped while starting: everything started is stopped
        sys.exit(130)
