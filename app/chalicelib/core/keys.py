"""Every DynamoDB key SESami writes or reads is built here, and only here.

Every partition key starts with the tenant (`T#<tenant>#...`): a query can only be issued for one
tenant's partition, so no read can wander into another tenant's data (invariant 7).

Hot partitions: the time-ordered partitions (all events of a tenant, its events per status, its
hourly counters, its monthly link counters) are split into `shards` partitions by a hash of the
event. A tenant with `write_shards = n` spreads those writes over n keys; readers query the n
shards and merge. Per-recipient and per-message partitions are naturally spread.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chalicelib.core import addresses

if TYPE_CHECKING:
    from chalicelib.events.status import Status


def shard_of(event_key: str, shards: int) -> int:
    """Stable shard of an event (its key is a hex digest)."""
    return int(event_key[:8], 16) % max(1, shards)


def iso_ms(ts: datetime) -> str:
    """Fixed-width UTC timestamp: lexicographic order is chronological order."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def hour_of(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H")


def day_of(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d")


def events_pk(tenant_id: str, shard: int) -> str:
    return f"T#{tenant_id}#S#{shard}"


def event_sk(ts: datetime, event_key: str, recipient_index: int) -> str:
    return f"{iso_ms(ts)}#{event_key}#{recipient_index:02d}"


def status_pk(tenant_id: str, status: Status, shard: int) -> str:
    return f"T#{tenant_id}#{status.value}#S#{shard}"


def tag_pk(tenant_id: str, pair: str, shard: int) -> str:
    """Partition of the rows carrying one `name=value` tag (a view, like the GSIs)."""
    return f"T#{tenant_id}#G#{pair}#S#{shard}"


def recipient_pk(tenant_id: str, address: str) -> str:
    """One recipient's history, under the address's canonical key (invariant 12)."""
    return f"T#{tenant_id}#R#{addresses.key(address)}"


def message_pk(tenant_id: str, message_id: str) -> str:
    return f"T#{tenant_id}#M#{message_id}"


def tenant_of_message_pk(pk: str) -> str:
    """The tenant of a `message_pk` (T#<tenant>#M#<message>)."""
    head, tenant_id, kind, *_ = pk.split("#", 3)
    if head != "T" or kind != "M" or not tenant_id:
        raise ValueError(f"not a message partition: {pk[:80]!r}")
    return tenant_id


def message_event_sk(ts: datetime, event_key: str) -> str:
    return f"E#{iso_ms(ts)}#{event_key}"


def counter_pk(tenant_id: str, shard: int) -> str:
    return f"T#{tenant_id}#C#{shard}"


# The tenant's item of how current its counters are (in its first counter partition; the hourly
# items' sort keys start with H#, so no range of them reads it).
COUNTED_SK = "COUNTED"


def erasure_acks_prefix(job_id: str) -> str:
    """count_events' acknowledgements of one erasure's marked timeline entries (in the tenant's
    first counter partition, beside COUNTED: core/erasure_marks.py)."""
    return f"ERASED#{job_id}#"


def erasure_ack_sk(job_id: str, entry_pk: str, entry_sk: str) -> str:
    """One marked entry's acknowledgement: a digest of the entry's key, which names nobody."""
    return erasure_acks_prefix(job_id) + entry_digest(entry_pk, entry_sk)


def entry_digest(entry_pk: str, entry_sk: str) -> str:
    return hashlib.blake2b(f"{entry_pk}|{entry_sk}".encode(), digest_size=8).hexdigest()


def counter_sk(ts: datetime) -> str:
    return f"H#{hour_of(ts)}"


def month_of(ts: datetime) -> str:
    return ts.strftime("%Y-%m")


def link_pk(tenant_id: str, ts: datetime, shard: int) -> str:
    """One month of a tenant's link counters (per shard): a day's clicks per link
    (`link_day_sk`) and the month's (`link_month_sk`), so that a year is 13 queries a shard."""
    return f"T#{tenant_id}#L#{month_of(ts)}#{shard}"


def link_hash(url: str) -> str:
    return hashlib.blake2b(url.encode(), digest_size=10).hexdigest()


def link_day_sk(ts: datetime, url: str) -> str:
    return f"D#{day_of(ts)}#{link_hash(url)}"


def link_month_sk(url: str) -> str:
    return f"M#{link_hash(url)}"


def tenant_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def removed_pk(tenant_id: str) -> str:
    """The tenant's suppression tombstones (removed addresses, with their history)."""
    return f"{tenant_pk(tenant_id)}#REMOVED"


def is_list_partition(pk: str) -> bool:
    """`tenant_pk` (a suppression list) or `removed_pk` (its tombstones): the suppression table's
    partitions keyed by address, not the erased hashes or the version counters beside them."""
    parts = pk.split("#")
    return parts[0] == "T" and (len(parts) == 2 or (len(parts) == 3 and parts[2] == "REMOVED"))


def tenant_of_list_pk(pk: str) -> str:
    """The tenant of an `is_list_partition` key (T#<tenant> or T#<tenant>#REMOVED)."""
    if not is_list_partition(pk) or not pk.split("#")[1]:
        raise ValueError(f"not a suppression-list partition: {pk[:80]!r}")
    return pk.split("#")[1]


def idempotency_pk(tenant_id: str, key: str) -> str:
    """An Idempotency-Key of the tenant (hashed: the key is the caller's, of any shape)."""
    return f"{tenant_pk(tenant_id)}#IK#{hashlib.sha256(key.encode()).hexdigest()}"


def batch_pk(tenant_id: str, batch_id: str) -> str:
    """A bulk batch: summary (B), job chunks (D#n), addresses (A#n), results (R#n)."""
    return f"{tenant_pk(tenant_id)}#B#{batch_id}"


def bulk_slots_pk(tenant_id: str) -> str:
    """The tenant's bulk batches in flight (sk SLOTS): the concurrent-batches quota."""
    return f"{tenant_pk(tenant_id)}#BULK"


def batch_result_sk(index: int) -> str:
    return f"R#{index:04d}"


def webhooks_pk(tenant_id: str) -> str:
    """The tenant's webhook endpoints (sk EP#<endpoint>): one query lists them all."""
    return f"{tenant_pk(tenant_id)}#WH"


def endpoint_sk(endpoint_id: str) -> str:
    return f"EP#{endpoint_id}"


def gone_endpoint_sk(endpoint_id: str) -> str:
    """A deleted endpoint (beside the endpoints): its delivery log outlives it for up to 30 days,
    and deletion and erasure find that log's partition from this."""
    return f"GONE#{endpoint_id}"


def erased_webhook_sk(address_digest: str) -> str:
    """An erased address (its `address_hash`): webhooks about what happened before its erasure
    are dropped, not delivered. A message queued before the erasure may still be travelling in
    SQS (webhooks/delivery.py)."""
    return f"X#{address_digest}"


def deliveries_pk(tenant_id: str, endpoint_id: str) -> str:
    """One endpoint's delivery log, by the time of what was delivered (sk D#<delivery id>)."""
    return f"{tenant_pk(tenant_id)}#WH#{endpoint_id}"


def delivery_stamp(at: datetime) -> str:
    """The start of a delivery ID: the time of what is delivered (UTC, to the millisecond)."""
    at = at.astimezone(UTC)
    return at.strftime("%Y%m%dT%H%M%S") + f"{at.microsecond // 1000:03d}Z"


def delivery_sk(delivery_id: str) -> str:
    return f"D#{delivery_id}"


def alerts_pk(tenant_id: str) -> str:
    """The tenant's reputation alert rules (sk R#<rule>) and their history (sk H#<time>#<rule>)."""
    return f"{tenant_pk(tenant_id)}#AL"


def alert_rule_sk(rule: str) -> str:
    return f"R#{rule}"


def alert_history_sk(ts: datetime, rule: str) -> str:
    return f"H#{iso_ms(ts)}#{rule}"


def templates_pk(tenant_id: str) -> str:
    """The tenant's template heads (sk H#<template>) and their count (sk N)."""
    return f"{tenant_pk(tenant_id)}#TPL"


def template_pk(tenant_id: str, template_id: str) -> str:
    """One template: its draft (sk D), its versions (V#000001...) and their metadata (M#...)."""
    return f"{tenant_pk(tenant_id)}#TPL#{template_id}"


# The version of a tenant's suppression list is the sum of this many counters, so that the writes
# raising it (every change to the list, in the same transaction) rarely meet on one item.
SUPPRESSION_VERSION_SHARDS = 4


def suppression_version_pk(tenant_id: str, shard: int) -> str:
    """One counter of the tenant's suppression-list version (sending/suppression_cache.py)."""
    return f"{tenant_pk(tenant_id)}#SV#{shard}"


def suppression_version_shard(seed: str) -> int:
    return int(hashlib.blake2b(seed.encode(), digest_size=2).hexdigest(), 16) % (
        SUPPRESSION_VERSION_SHARDS
    )


def quarantine_pk(received: datetime) -> str:
    return f"Q#{day_of(received)}"


def api_key_pk(key_id: str) -> str:
    """An API key's item, by the key's public ID (the `sk_<id>_` prefix of the key itself): one
    GetItem from a presented key to its tenant. Not tenant-prefixed, like a user's `sub` or an
    account ID: it is the directory that finds the tenant; the tenant's keys are listed through
    the `by_tenant` index, keyed by the tenant."""
    return f"K#{key_id}"


# ---------------------------------------------------------------------------- lifecycle

# The by_tenant / by_pending indexes spread one tenant's entries over this many keys, so that a
# tenant sending at SES's highest rates never drives one index partition past 1,000 writes/s.
INDEX_SHARDS = 4


def tenant_index_key(tenant_id: str, item_pk: str) -> str:
    """The index key of an item that only an index can find again (an Idempotency-Key record, a
    batch summary, an aggregate POST /mail wrote): `T#t#I#n`, n from the item's own key."""
    shard = int(hashlib.blake2b(item_pk.encode(), digest_size=4).hexdigest(), 16) % INDEX_SHARDS
    return f"{tenant_pk(tenant_id)}#I#{shard}"


def tenant_index_keys(tenant_id: str) -> list[str]:
    return [f"{tenant_pk(tenant_id)}#I#{n}" for n in range(INDEX_SHARDS)]


def address_hash(tenant_id: str, address: str) -> str:
    """What SESami keeps of an erased address: a digest salted with the tenant, enough to
    recognise the address again (to honour an objection), not to read it back."""
    data = f"sesami-erased\n{tenant_id}\n{address.strip().lower()}".encode()
    return hashlib.sha256(data).hexdigest()


def erased_pk(tenant_id: str) -> str:
    """Suppressions of erased addresses, keyed by `address_hash` (suppression table)."""
    return f"{tenant_pk(tenant_id)}#ERASED"


# The sort key of the item in `erased_pk` that says the tenant has erased suppressions (a hash
# is hex: it cannot collide). The send-time check reads it with the live entries and looks the
# hashes up only when it is there, so a tenant without erasures pays nothing for them.
ERASED_MARKER = "#any"


def audit_pk(tenant_id: str) -> str:
    return f"{tenant_pk(tenant_id)}#AUDIT"


def audit_sk(ts: datetime, entry_id: str) -> str:
    return f"{iso_ms(ts)}#{entry_id}"


def job_pk(tenant_id: str) -> str:
    return f"{tenant_pk(tenant_id)}#JOB"


def receipt_pk(tenant_id: str) -> str:
    """What is kept of a deleted tenant (lifecycle table): deliberately not under T#<tenant>."""
    return f"DELETED#{tenant_id}"
