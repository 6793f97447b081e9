"""`make dev`: SESami's local stack on loopback, with demo data.

Starts Amazon DynamoDB Local (data kept in .dev/dynamodb between runs) and the local Momento
server, creates the tables from the production table description, registers a demo tenant with
a demo AWS account, and seeds ~30 days of realistic SES traffic through the real ingest code.
Ctrl-C stops everything it started; running it again reuses the data.

The REST API and the dashboard (and moto's STS/SES/Cognito) join this stack as they are built;
until then it prints how to reach the data and the ingest path.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "app"), str(ROOT)]
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

from chalicelib import logs, tables  # noqa: E402
from chalicelib.ingest import ingest_envelopes  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from chalicelib.store import EventStore, TenantDirectory  # noqa: E402

from devstack.dynamodb_local import DynamoDBLocal, create_tables  # noqa: E402
from devstack.momento_local.server import MomentoLocalServer  # noqa: E402
from devstack.traffic import traffic  # noqa: E402

DEMO_TENANT = "demo"
DEMO_ACCOUNT = "111122223333"
DDB_PORT = int(os.environ.get("SESAMI_DEV_DYNAMODB_PORT", "8001"))
MOMENTO_PORT = int(os.environ.get("SESAMI_DEV_MOMENTO_PORT", "8002"))
SEED_MESSAGES = int(os.environ.get("SESAMI_DEV_MESSAGES", "3000"))


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def ensure_demo_tenant() -> bool:
    """Create the demo tenant and bind the demo account. Returns False if it already existed."""
    from chalicelib.tables import AccountModel, TenantModel

    try:
        TenantModel.get(DEMO_TENANT)
        return False
    except TenantModel.DoesNotExist:
        pass
    now = datetime.now(UTC)
    TenantModel(
        DEMO_TENANT,
        name="Demo Co",
        external_id="sesami-demo-external-id-not-secret",
        created_at=now,
        account_id=DEMO_ACCOUNT,
    ).save()
    AccountModel(DEMO_ACCOUNT, tenant_id=DEMO_TENANT, bound_at=now).save()
    return True


def seed(settings: Settings, stop: threading.Event) -> None:
    store, directory = EventStore(settings), TenantDirectory(ttl_seconds=300)
    start = datetime.now(UTC) - timedelta(days=30)
    batch: list[dict[str, object]] = []
    done = 0
    for envelope in traffic(DEMO_ACCOUNT, SEED_MESSAGES, start=start, span=timedelta(days=30)):
        if stop.is_set():
            return
        batch.append(envelope)
        if len(batch) == 200:
            ingest_envelopes(batch, tenants=directory, store=store)
            done += len(batch)
            batch.clear()
            print(f"    seeded {done} events", flush=True)
    ingest_envelopes(batch, tenants=directory, store=store)
    step(f"demo data ready: {done + len(batch)} events for {SEED_MESSAGES} messages")


def main() -> None:
    logs.silence_metrics()  # seeding would print one metric line per batch
    stop = threading.Event()
    step(f"starting Amazon DynamoDB Local on 127.0.0.1:{DDB_PORT} (data in .dev/dynamodb)")
    ddb = DynamoDBLocal(DDB_PORT, in_memory=False, db_path=ROOT / ".dev" / "dynamodb")
    ddb.start()
    momento = MomentoLocalServer(port=MOMENTO_PORT)
    try:
        step(f"starting the local Momento server on 127.0.0.1:{momento.start()}")
        settings = Settings(table_prefix="sesami-dev-", dynamodb_endpoint=ddb.endpoint)
        step("creating tables from chalicelib.tables.table_specs()")
        create_tables(settings)
        tables.configure(settings)
        seeder = None
        if ensure_demo_tenant():
            step(f"seeding ~30 days of traffic for tenant '{DEMO_TENANT}' (account {DEMO_ACCOUNT})")
            seeder = threading.Thread(target=seed, args=(settings, stop), daemon=True)
            seeder.start()
        else:
            step("demo tenant exists: reusing its data")
        print(
            f"""
SESami local stack
  DynamoDB Local   {ddb.endpoint}   (tables sesami-dev-*)
  Momento (local)  127.0.0.1:{MOMENTO_PORT}
  demo tenant      {DEMO_TENANT}, AWS account {DEMO_ACCOUNT}
  try:             AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws dynamodb scan \\
                     --endpoint-url {ddb.endpoint} --region us-east-1 \\
                     --table-name sesami-dev-suppression
Not yet part of the stack: the REST API, the dashboard and its login (they arrive with the API
and dashboard work). Ctrl-C stops everything.""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.is_set():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        stop.set()
        if seeder:
            seeder.join(timeout=10)
    finally:
        step("stopping")
        momento.stop()
        ddb.stop()


if __name__ == "__main__":
    main()
