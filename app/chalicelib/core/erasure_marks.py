"""How a recipient erasure learns that counting can no longer bring back a link counter it
deleted (lifecycle/erasure.py writes the marks, ingest/counting.py acknowledges them).

The race: a click ingested shortly before the erasure whose stream record count_events has not
taken in yet is counted after the erasure deleted the click's link counter (its URL names the
address), and the counter comes back. The tenant's COUNTED.counted_through cannot say when this
can no longer happen: it is the newest record of whichever batch wrote it last, while the
stream's shards are counted each at its own pace, and it does not move while the tenant is idle.

What does say it: DynamoDB Streams keep the records of one item in order, in one shard, and
count_events takes a shard's records in order. So the erasure rewrites each timeline entry of a
click on such a link with `cc` set to a mark naming the job (instead of removing `cc`): that
rewrite is a stream record of the same item, after the click's own, and the mapping's filter
keeps it (it has `cc`). count_events does not count a mark (it takes nothing back either: the
hourly counters name nobody and keep their counts); once the batch's counts are committed, it
puts an acknowledgement (keys.erasure_ack_sk: the job and a digest of the entry's key) for each
mark. When every entry the job marked is acknowledged, every click of those entries has been
counted, so the erasure's second sweep of the same link counters is final.

Cost: nothing per counted event (no read, no write); per marked entry, one small put.
"""

from __future__ import annotations

import json
from typing import Any

_MARK = "erased"


def mark(job_id: str) -> str:
    """The `cc` value of a timeline entry an erasure stripped (a JSON object, where counter
    changes are a JSON list or number)."""
    return json.dumps({_MARK: job_id}, separators=(",", ":"))


def job_of(cc: Any) -> str | None:
    """The erasure job whose mark `cc` is, or None (counter changes, nothing, or unreadable)."""
    if not isinstance(cc, str) or not cc.startswith("{"):
        return None
    try:
        value = json.loads(cc)
    except ValueError:
        return None
    job = value.get(_MARK) if isinstance(value, dict) else None
    return job if isinstance(job, str) and job else None
