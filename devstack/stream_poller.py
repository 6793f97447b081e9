"""What Lambda's event source mapping does for `count_events` in production, for the local
stack: read the messages table's DynamoDB stream on DynamoDB Local, keep the records the
mapping's filter keeps (INSERT and MODIFY of items carrying counter changes), and hand them to
the very function production runs (chalicelib.ingest.counting), in batches of up to 1,000.

`drain()` reads until the stream has nothing new (the tests call it before they read counters;
`make dev` runs it every half second in a thread). A failed batch is handed over again, whole,
as Lambda does; the function's markers skip what it had already counted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from chalicelib.core.settings import Settings
from chalicelib.core.tables import COUNTED_ATTRIBUTE, STREAM_TABLES
from chalicelib.ingest.counting import count_stream_records

BATCH_SIZE = 1_000


def lambda_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stream record as Lambda delivers it (its creation time in epoch seconds)."""
    out = dict(record)
    stream = dict(out.get("dynamodb") or {})
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = created.timestamp()
    out["dynamodb"] = stream
    out.setdefault("eventSource", "aws:dynamodb")
    return out


def kept_by_filter(record: dict[str, Any]) -> bool:
    """The event source mapping's filter (infra): INSERT or MODIFY with `cc` in the new image."""
    new = (record.get("dynamodb") or {}).get("NewImage") or {}
    return record.get("eventName") in ("INSERT", "MODIFY") and COUNTED_ATTRIBUTE in new


class StreamPoller:
    """`state`: a file keeping where each shard was read up to (as the event source mapping keeps
    its checkpoints), so that `make dev` run again does not hand the same records over twice."""

    def __init__(self, settings: Settings, state: Path | None = None) -> None:
        self._settings = settings
        self._state = state
        self._after: dict[str, str] = (
            json.loads(state.read_text()) if state is not None and state.exists() else {}
        )
        endpoint = settings.dynamodb_endpoint
        config = Config(retries={"mode": "standard", "max_attempts": 3})
        # DynamoDB Local keeps one database per access key and region: the app's own.
        kwargs: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": settings.region,
            "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            "config": config,
        }
        self._ddb = boto3.client("dynamodb", **kwargs)
        self._streams = boto3.client("dynamodbstreams", **kwargs)
        self._lock = threading.Lock()
        self._stream_arns: list[str] | None = None
        self._known: dict[str, list[str]] = {}
        self._finished: set[str] = set()

    def _arns(self) -> list[str]:
        if self._stream_arns is None:
            arns = []
            for logical in STREAM_TABLES:
                table = self._ddb.describe_table(TableName=self._settings.table_prefix + logical)
                arns.append(table["Table"]["LatestStreamArn"])
            self._stream_arns = arns
        return self._stream_arns

    def _shards(self, arn: str) -> list[str]:
        shards: list[str] = []
        start: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StreamArn": arn}
            if start:
                kwargs["ExclusiveStartShardId"] = start
            described = self._streams.describe_stream(**kwargs)["StreamDescription"]
            shards += [s["ShardId"] for s in described.get("Shards", [])]
            start = described.get("LastEvaluatedShardId")
            if not start:
                return shards

    def drain(self) -> int:
        """Count every record written so far; returns how many records were handed over. The
        shard list is described again only when a shard it knew has closed (new shards appear
        only as a closed one's children)."""
        with self._lock:
            handed = 0
            for arn in self._arns():
                if arn not in self._known:
                    self._known[arn] = self._shards(arn)
                closed = False
                for shard in self._known[arn]:
                    if shard in self._finished:
                        continue
                    count, still_open = self._drain_shard(arn, shard)
                    handed += count
                    if not still_open:  # closed and read to its end: nothing more, ever
                        self._finished.add(shard)
                        closed = True
                if closed:  # its children: read them now, and know them from here on
                    self._known[arn] = self._shards(arn)
                    for shard in self._known[arn]:
                        if shard not in self._finished:
                            count, still_open = self._drain_shard(arn, shard)
                            handed += count
                            if not still_open:
                                self._finished.add(shard)
            return handed

    def _drain_shard(self, arn: str, shard: str) -> tuple[int, bool]:
        """Each drain starts a fresh iterator after the last record read (an iterator kept
        across drains can point at records DynamoDB Local has trimmed since)."""
        key = f"{arn}|{shard}"
        position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        if key in self._after:
            position = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": self._after[key],
            }
        iterator: str | None = self._streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, **position
        )["ShardIterator"]
        handed = 0
        while iterator:
            got = self._streams.get_records(ShardIterator=iterator, Limit=BATCH_SIZE)
            records = [lambda_record(r) for r in got.get("Records", [])]
            batch = [r for r in records if kept_by_filter(r)]
            if batch:
                self._count(batch)
                handed += len(batch)
            if records:
                self._after[key] = records[-1]["dynamodb"]["SequenceNumber"]
                if self._state is not None:
                    self._state.write_text(json.dumps(self._after))
            iterator = got.get("NextShardIterator")
            if not records:
                break
        return handed, iterator is not None

    def _count(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(5):
            try:
                count_stream_records(batch, self._settings)
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(0.1 * 2**attempt)  # Lambda retries the same batch
                continue
            return

    def run_forever(self, stop: threading.Event, interval: float = 0.5) -> None:
        while not stop.is_set():
            try:
                self.drain()
            except Exception as exc:  # keep polling: the next drain hands the batch over again
                print(f"stream poller: {exc!r}", flush=True)
            stop.wait(interval)
