"""SESami's DynamoDB tables as PynamoDB models: the one description of every table.

Long by design: every table's model is here, so that Pulumi, the local stack and the tests build
their tables from one place (`table_specs()`).

`table_specs()` turns these models into plain key-schema/index/TTL descriptions. The local stack
and the tests create tables from it, and the Pulumi program declares the production tables from
it, so the three can never disagree.

Tables (partition key / sort key -> what it serves):

- tenants      tenant_id -> a tenant and its settings
- users        sub -> the tenant a signed-up user belongs to (bound once, conditionally)
- accounts     account_id -> the one tenant an AWS account belongs to
- events       T#t#S#shard / time#event#n -> a tenant's events, newest first, in a range
               T#t#G#name=value#S#shard / time... -> the same, carrying one tag (a copy
               of the row without index keys, one per user tag)
  - by_status     T#t#STATUS#S#shard / time... -> the same, of one status
  - by_recipient  T#t#R#address / time... -> one recipient's history
- messages     T#t#M#message / AGG -> the message aggregate
               T#t#M#message / E#time#event -> one entry per event: the message's timeline, and
               the record that the event was applied (written with the aggregate, once)
- counters     T#t#C#shard / H#hour -> per-status hourly counts;
               T#t#L#day#shard / link -> clicks per link per day
- suppression  T#t / address -> the tenant's suppression list;
               T#t#REMOVED / address -> removed addresses (tombstones with their history)
- quarantine   Q#day / digest -> events that could not be read, kept raw
- sending      T#t#IK#key / IK -> Idempotency-Key records (24 h); T#t#B#batch / B, R#n -> bulk
               batches and their per-recipient results
- templates    T#t#TPL / H#template -> the tenant's template heads, N -> their count;
               T#t#TPL#template / D, V#n, M#n -> its draft, published versions (immutable) and
               their metadata
- suppression  T#t#SV#n / SV -> the counters whose sum is the version of the tenant's suppression
               list (the send-time cache's key: raised with every change)
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.settings import Settings

TTL_ATTRIBUTE = "expires_at"


class _Meta:
    billing_mode = "PAY_PER_REQUEST"
    region = "us-east-1"
    host: str | None = None
    max_retry_attempts = 3


class TenantModel(Model):
    class Meta(_Meta):
        table_name = "tenants"

    tenant_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(null=True)
    external_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    account_id = UnicodeAttribute(null=True)
    role_arn = UnicodeAttribute(null=True)
    region = UnicodeAttribute(null=True)
    configuration_set = UnicodeAttribute(null=True)
    # How many partitions the tenant's time-ordered writes are spread over; only ever raised.
    write_shards = NumberAttribute(default=1)
    # Active admins, kept with every role change in one transaction: the last one cannot leave.
    admin_count = NumberAttribute(null=True)
    canary_message_id = UnicodeAttribute(null=True)
    canary_sent_at = UTCDateTimeAttribute(null=True)
    # Days the content SESami sent is kept (content/retention.py); None: the default, 0: off.
    content_retention_days = NumberAttribute(null=True)


class _ByTenant(GlobalSecondaryIndex["UserModel"]):
    class Meta:
        index_name = "by_tenant"
        projection = AllProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    sub = UnicodeAttribute(range_key=True)


class UserModel(Model):
    """A Cognito user (by `sub`) -> its tenant. Written with a condition, so that two first
    requests of one user racing each other cannot create two tenants. A removed user keeps the
    item with `removed_at` set: their still-valid tokens find it and are refused at once.

    The same table holds the tenant's pending invitations, under `sub = I#<tenant>#<email>`
    (never a Cognito sub, which is a UUID): `by_tenant` lists a team and its invitations in one
    query."""

    class Meta(_Meta):
        table_name = "users"

    sub = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    by_tenant = _ByTenant()
    email = UnicodeAttribute(null=True)
    username = UnicodeAttribute(null=True)  # the user pool's username (its admin API's key)
    role = UnicodeAttribute(default="admin")  # admin | sender | viewer (core/permissions.py)
    created_at = UTCDateTimeAttribute()
    kind = UnicodeAttribute(default="user")  # user | invitation
    last_seen_at = UTCDateTimeAttribute(null=True)
    invited_by = UnicodeAttribute(null=True)
    # Invitations: pending | accepted | cancelled. Users: None.
    status = UnicodeAttribute(null=True)
    removed_at = UTCDateTimeAttribute(null=True)
    removed_by = UnicodeAttribute(null=True)


class AccountModel(Model):
    """Binds an AWS account to the one tenant allowed to send its events (conditional put)."""

    class Meta(_Meta):
        table_name = "accounts"

    account_id = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    role_arn = UnicodeAttribute(null=True)
    bound_at = UTCDateTimeAttribute()


class _ByStatus(GlobalSecondaryIndex["EventModel"]):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status_pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class _ByRecipient(GlobalSecondaryIndex["EventModel"]):
    class Meta:
        index_name = "by_recipient"
        projection = AllProjection()

    recipient_pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class EventModel(Model):
    """One row per (event, recipient), for the time, status and recipient views. An open or
    click SES cannot attribute to one recipient has one row without recipient (and so no
    by_recipient entry). Rows are projections of the message partition: rewriting one with the
    same content is harmless, so they are written outside the ingest transaction."""

    class Meta(_Meta):
        table_name = "events"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    status_pk = UnicodeAttribute(null=True)  # absent on tag-view rows: they are not in the GSIs
    recipient_pk = UnicodeAttribute(null=True)
    by_status = _ByStatus()
    by_recipient = _ByRecipient()

    event_key = UnicodeAttribute()
    event_type = UnicodeAttribute()
    status = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    message_id = UnicodeAttribute()
    recipient = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    tags = JSONAttribute(null=True)
    tag_pairs = UnicodeSetAttribute(null=True)  # "name=value", for the tag filter
    detail = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)


AGGREGATE_SK = "AGG"


class MessageModel(Model):
    """The message aggregate (sk = AGG)."""

    class Meta(_Meta):
        table_name = "messages"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=AGGREGATE_SK)
    message_id = UnicodeAttribute()
    source = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    sent_at = UnicodeAttribute()
    status = UnicodeAttribute()
    status_rank = NumberAttribute()
    status_at = UnicodeAttribute()
    events = NumberAttribute(default=0)
    opens = NumberAttribute(default=0)
    clicks = NumberAttribute(default=0)
    # destination, tags, per-recipient states, per-link clicks: one compact JSON document.
    body = JSONAttribute()
    version = VersionAttribute()
    expires_at = TTLAttribute(null=True)


class MessageEventModel(Model):
    """One entry per event in its message's partition (sk = E#time#event): the timeline, and
    the event's deduplication record (conditional put in the ingest transaction)."""

    class Meta(_Meta):
        table_name = "messages"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event_key = UnicodeAttribute()
    event_type = UnicodeAttribute()
    status = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    recipients = UnicodeSetAttribute(null=True)
    shard = NumberAttribute()
    detail = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class CounterModel(Model):
    """Hourly counts per status, one item per tenant, hour and shard. Counts are top-level
    numbers so that an update is a plain ADD."""

    class Meta(_Meta):
        table_name = "counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    SENT = NumberAttribute(null=True)
    DELIVERED = NumberAttribute(null=True)
    BOUNCED = NumberAttribute(null=True)
    BOUNCED_PERMANENT = NumberAttribute(null=True)
    COMPLAINED = NumberAttribute(null=True)
    OPENED = NumberAttribute(null=True)
    CLICKED = NumberAttribute(null=True)
    REJECTED = NumberAttribute(null=True)
    RENDERING_FAILED = NumberAttribute(null=True)
    DELIVERY_DELAYED = NumberAttribute(null=True)
    SUBSCRIPTION = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class LinkCounterModel(Model):
    """Clicks per link per day, in the counters table (same key schema)."""

    class Meta(_Meta):
        table_name = "counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    url = UnicodeAttribute()
    clicks = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


class SuppressionModel(Model):
    class Meta(_Meta):
        table_name = "suppression"

    pk = UnicodeAttribute(hash_key=True)
    address = UnicodeAttribute(range_key=True)
    # BOUNCE | COMPLAINT | MANUAL | UNSUBSCRIBED: what first put it here; `reasons` has them all.
    reason = UnicodeAttribute()
    reasons = UnicodeSetAttribute(null=True)
    bounce_type = UnicodeAttribute(null=True)
    bounce_subtype = UnicodeAttribute(null=True)
    feedback_type = UnicodeAttribute(null=True)
    diagnostic_code = UnicodeAttribute(null=True)
    source_message_id = UnicodeAttribute(null=True)
    event_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)
    occurrences = NumberAttribute(default=1)
    # Written by the suppression-list API (chalicelib.suppression.store), never by ingest:
    note = UnicodeAttribute(null=True)  # the latest reason a person gave, free text
    history = JSONAttribute(null=True)  # the last 50 changes: [{at, by, action, why}]
    # Guards the history's read-modify-write. Not a VersionAttribute: that would put a version
    # condition on ingest's transactional updates of the same item.
    revision = NumberAttribute(null=True)
    # Tombstones only (partition T#<tenant>#REMOVED): who removed the address, and when.
    removed_at = UnicodeAttribute(null=True)
    removed_by = UnicodeAttribute(null=True)


class SuppressionVersionModel(Model):
    """One counter of the tenant's suppression-list version (pk T#t#SV#n, address SV), in the
    suppression table: every write that changes the list raises one counter in the same
    transaction (ingest's, the list's own writes), so the version (their sum) moves on and a
    cached answer under an older version is never used again."""

    class Meta(_Meta):
        table_name = "suppression"

    pk = UnicodeAttribute(hash_key=True)
    address = UnicodeAttribute(range_key=True, default="SV")
    version = NumberAttribute(default=0)


class TemplateModel(Model):
    """A stored template's head (name, latest published version), draft, version or version
    metadata; which one is told by the keys (core/keys.py templates_pk / template_pk)."""

    class Meta(_Meta):
        table_name = "templates"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    html = UnicodeAttribute(null=True)
    text = UnicodeAttribute(null=True)
    sample = JSONAttribute(null=True)  # sample variables for the preview
    latest_version = NumberAttribute(null=True)  # heads: 0 until the first publication
    revision = NumberAttribute(null=True)  # drafts: raised by every save
    template_count = NumberAttribute(null=True)  # the count item: templates of the tenant
    created_at = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)


class QuarantineModel(Model):
    class Meta(_Meta):
        table_name = "quarantine"

    pk = UnicodeAttribute(hash_key=True)  # Q#<received day>
    sk = UnicodeAttribute(range_key=True)  # digest of the raw event: re-quarantining is idempotent
    received_at = UnicodeAttribute()
    reason = UnicodeAttribute()
    account = UnicodeAttribute(null=True)
    tenant_id = UnicodeAttribute(null=True)
    envelope_id = UnicodeAttribute(null=True)
    detail_type = UnicodeAttribute(null=True)
    raw = UnicodeAttribute()
    raw_bytes = NumberAttribute()
    truncated = BooleanAttribute(default=False)
    expires_at = TTLAttribute(null=True)


class IdempotencyModel(Model):
    """An `Idempotency-Key` of POST /mail, per tenant, kept 24 hours (sending table)."""

    class Meta(_Meta):
        table_name = "sending"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="IK")
    fingerprint = UnicodeAttribute()
    state = UnicodeAttribute()  # in_progress | done
    claimed_at = UTCDateTimeAttribute()
    status_code = NumberAttribute(null=True)
    response = JSONAttribute(null=True)
    expires_at = TTLAttribute()


class BatchModel(Model):
    """A bulk batch's summary (sk B) or one page of its per-recipient results (sk R#nnnn)."""

    class Meta(_Meta):
        table_name = "sending"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    doc = JSONAttribute()
    expires_at = TTLAttribute()


# Tables in creation order, by their logical name (the suffix after the stage prefix).
TABLE_MODELS: dict[str, type[Model]] = {
    "tenants": TenantModel,
    "users": UserModel,
    "accounts": AccountModel,
    "events": EventModel,
    "messages": MessageModel,
    "counters": CounterModel,
    "suppression": SuppressionModel,
    "quarantine": QuarantineModel,
    "sending": IdempotencyModel,
    "templates": TemplateModel,
}
# Models that share a table with the model named in TABLE_MODELS.
_SHARED: dict[type[Model], str] = {
    LinkCounterModel: "counters",
    MessageEventModel: "messages",
    BatchModel: "sending",
    SuppressionVersionModel: "suppression",
}

_TTL_TABLES = {"events", "messages", "counters", "quarantine", "sending"}


def configure(settings: Settings) -> None:
    """Point every model at the tables of `settings` (prefix, region, endpoint)."""
    for name, model in [*TABLE_MODELS.items(), *((n, m) for m, n in _SHARED.items())]:
        model.Meta.table_name = settings.table_prefix + name
        model.Meta.region = settings.region
        model.Meta.host = settings.dynamodb_endpoint
        model._connection = None


def table_specs() -> dict[str, dict[str, Any]]:
    """Plain description of every table, keyed by logical name. Pulumi and the local stack both
    build their tables from this."""
    specs: dict[str, dict[str, Any]] = {}
    for name, model in TABLE_MODELS.items():
        schema = model._get_schema()
        attributes = {
            a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]
        }
        indexes = []
        for gsi in schema["global_secondary_indexes"]:
            for a in gsi.get("attribute_definitions", []):
                attributes[a["AttributeName"]] = a["AttributeType"]
            keys = {k["KeyType"]: k["AttributeName"] for k in gsi["key_schema"]}
            indexes.append(
                {
                    "name": gsi["index_name"],
                    "hash_key": keys["HASH"],
                    "range_key": keys.get("RANGE"),
                    "projection": gsi["projection"]["ProjectionType"],
                }
            )
        keys = {k["KeyType"]: k["AttributeName"] for k in schema["key_schema"]}
        specs[name] = {
            "hash_key": keys["HASH"],
            "range_key": keys.get("RANGE"),
            "attributes": attributes,
            "global_secondary_indexes": indexes,
            "ttl_attribute": TTL_ATTRIBUTE if name in _TTL_TABLES else None,
        }
    return specs
