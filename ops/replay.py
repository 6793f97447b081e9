"""Re-drive SES events through ingest: from files, or from the ingest dead-letter queue.

    python -m ops.replay events/*.json                 # one EventBridge envelope per file
    python -m ops.replay events.jsonl                  # or JSON lines
    python -m ops.replay --as-account 123456789012 f.json   # rewrite the envelope `account`
    python -m ops.replay --dlq https://sqs.../sesami-ingest-dlq
    python -m ops.replay --dlq https://sqs.../sesami-ingest-failures   # Lambda's failure records

Ingest is idempotent, so replaying is always safe: an event already stored is a `duplicate`.
Each event's outcome is printed (stored, duplicate, quarantined, ignored, unknown_account,
before_binding: mail sent before the account was bound to its tenant; erased: a message a
recipient erasure touched), then the counts. From the DLQ, a message is deleted only once
ingest has an outcome for it; a transient failure leaves it in the queue for the next run.

Settings come from the environment (SESAMI_TABLE_PREFIX, SESAMI_DYNAMODB_ENDPOINT, AWS_REGION...),
as the functions read them; the local stack's are printed by `make dev`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))

from chalicelib.ingest.pipeline import Store, Tenants, ingest_envelopes  # noqa: E402


def unwrap(body: Any) -> tuple[Any, str]:
    """(envelope, why it failed) from a queued message. The bus rule's DLQ holds the bare
    envelope; the ingest function's on-failure destination holds Lambda's invocation record,
    with the envelope under `requestPayload` and the failure under `requestContext` and
    `responsePayload`."""
    if isinstance(body, dict) and "requestPayload" in body and "requestContext" in body:
        context = body.get("requestContext") or {}
        response = body.get("responsePayload") or {}
        why = " ".join(
            str(part)
            for part in (
                context.get("condition"),
                response.get("errorType") if isinstance(response, dict) else None,
            )
            if part
        )
        return body["requestPayload"], why
    return body, ""


def envelopes_from_files(paths: Iterable[Path]) -> Iterator[tuple[str, Any]]:
    """(where, envelope) for every envelope in the files: a JSON object, a JSON array, or JSON
    lines. A line or file that is not JSON is reported as such (and replayed as-is, so ingest
    quarantines it)."""
    for path in paths:
        text = path.read_text()
        try:
            data = json.loads(text)
        except ValueError:
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        yield f"{path}:{number}", json.loads(line)
                    except ValueError:
                        yield f"{path}:{number}", line
            continue
        items = data if isinstance(data, list) else [data]
        for index, item in enumerate(items):
            yield (f"{path}[{index}]" if isinstance(data, list) else str(path)), unwrap(item)[0]


def replay(
    items: Iterable[tuple[str, Any]],
    *,
    tenants: Tenants,
    store: Store,
    as_account: str | None = None,
    out: TextIO = sys.stdout,
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for where, envelope in items:
        if as_account and isinstance(envelope, dict):
            envelope = {**envelope, "account": as_account}
        outcome = ingest_envelopes([envelope], tenants=tenants, store=store).outcomes[0]
        counts[outcome.value] += 1
        print(f"{outcome.value:16} {where}", file=out)
    return counts


def drain_dlq(
    sqs: Any,
    queue_url: str,
    *,
    tenants: Tenants,
    store: Store,
    out: TextIO = sys.stdout,
    max_messages: int = 10_000,
) -> Counter[str]:
    """Replay every message of an ingest failure queue: the bus rule's DLQ (each body is one
    EventBridge envelope) or the function's on-failure destination (Lambda's records)."""
    counts: Counter[str] = Counter()
    seen = 0
    while seen < max_messages:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen += 1
            try:
                body: Any = json.loads(message["Body"])
            except ValueError:
                body = message["Body"]
            envelope, why = unwrap(body)
            reason = (message.get("MessageAttributes", {}).get("ERROR_CODE") or {}).get(
                "StringValue", why
            )
            outcome = ingest_envelopes([envelope], tenants=tenants, store=store).outcomes[0]
            counts[outcome.value] += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            print(f"{outcome.value:16} {message['MessageId']} {reason}".rstrip(), file=out)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.replay", description=__doc__.split("\n")[0]
    )
    parser.add_argument("files", nargs="*", type=Path, help="JSON or JSON-lines files")
    parser.add_argument(
        "--dlq", help="URL of an ingest failure queue to drain (the rule's DLQ or ingest-failures)"
    )
    parser.add_argument("--as-account", help="rewrite each envelope's account (12 digits)")
    parser.add_argument("--sqs-endpoint", help="SQS endpoint (local stack)")
    args = parser.parse_args(argv)
    if not args.files and not args.dlq:
        parser.error("give files to replay, or --dlq")
    if args.as_account and not (len(args.as_account) == 12 and args.as_account.isdigit()):
        parser.error("--as-account must be a 12-digit AWS account ID")

    from chalicelib.core import wiring

    tenants, store = wiring.tenant_directory(), wiring.event_store()
    if args.dlq:
        import boto3

        sqs = boto3.client(
            "sqs", endpoint_url=args.sqs_endpoint, region_name=wiring.settings().region
        )
        counts = drain_dlq(sqs, args.dlq, tenants=tenants, store=store)
    else:
        counts = replay(
            envelopes_from_files(args.files),
            tenants=tenants,
            store=store,
            as_account=args.as_account,
        )
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing to replay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
