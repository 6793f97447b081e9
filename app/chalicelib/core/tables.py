"""SESami's DynamoDB tables as PynamoDB models: the one description of every table.

Long by design: every table and model is described here, once, so that the key schema Pulumi,
the local stack and the tests create cannot drift from what the code reads and writes.

`table_specs()` turns these models into plain key-schema/index/TTL descriptions. The local stack
and the tests create tables from it, and the Pulumi program declares the production tables from
it, so the three can never disagree. Long by design: every table in one module, described once.

Tables (partition key / sort key -> what it serves):

- tenants      tenant_id -> a tenant and its settings
- users        sub -> the tenant a signed-up user belongs to (bound once, conditionally)
  - by_tenant     tenant_id / sub -> the tenant's users and invitations (team page, deletion)
- accounts     account_id -> the one tenant an AWS account belongs to, since `bound_at`
- events       T#t#S#shard / time#event#n -> a tenant's events, newest first, in a range
               T#t#G#name=value#S#shard / time... -> the same, carrying one tag (a copy
               of the row without index keys, one per user tag)
  - by_status     T#t#STATUS#S#shard / time... -> the same, of one status
  - by_recipient  T#t#R#address / time... -> one recipient's history
- messages     T#t#M#message / AGG -> the message aggregate
               T#t#M#message / E#time#event -> one entry per event: the message's timeline, and
               the record that the event was applied (written with the aggregate, once)
  - by_pending    T#t#I#n / pk -> aggregates POST /mail recorded that no event has reached yet
                  (keys only; ingest's first write of the aggregate drops the entry)
- counters     T#t#C#shard / H#hour -> per-status hourly counts;
               T#t#L#month#shard / D#day#link, M#link -> clicks per link per day, per month
- suppression  T#t / address -> the tenant's suppression list;
               T#t#REMOVED / address -> removed addresses (tombstones with their history)
- quarantine   Q#day / digest -> events that could not be read, kept raw
  - by_tenant     tenant_id / digest -> the ones ingest could attribute to a tenant (keys only)
- sending      T#t#IK#key / IK -> Idempotency-Key records (24 h); T#t#B#batch / B, R#n -> bulk
               batches and their per-recipient results; T#t#BULK / SLOTS -> the batches in flight
  - by_tenant     T#t#I#n / pk -> the tenant's Idempotency-Key records and batch summaries
                  (keys only: their partitions cannot be derived from anything else)
- webhooks     T#t#WH / EP#endpoint -> the tenant's webhook endpoints (secrets encrypted);
               T#t#WH / GONE#endpoint -> a deleted endpoint whose log is still kept;
               T#t#WH / X#hash -> an erased address whose queued webhooks are dropped;
               T#t#WH#endpoint / D#delivery -> one endpoint's delivery log (30 days);
               T#t#AL / R#rule -> reputation alert rules and their state; T#t#AL / H#time#rule
               -> the alerts' history
- api_keys     K#key id -> an API key: its tenant, scope and the hash of its secret (a
               directory from credential to tenant, like users and accounts: one GetItem per
               request); by_tenant (tenant_id / key_id) lists a tenant's keys
- lifecycle    T#t#AUDIT / time#id -> the tenant's audit trail (disconnect, erasure, deletion);
               T#t#JOB / job -> erasure and deletion jobs (progress, cursors);
               DELETED#t / RECEIPT -> what remains of a deleted tenant: who, when, counts
- templates    T#t#TPL / H#template -> the tenant's template heads, N -> their count;
               T#t#TPL#template / D, V#n, M#n -> its draft, published versions (immutable) and
               their metadata
- suppression  T#t#SV#n / SV -> the counters whose sum is the version of the tenant's suppression
               list (the send-time cache's key: raised with every change)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.attributes import JSONAttribute as _PynamoJSONAttribute
from pynamodb.constants import STRING
from pynamodb.expressions.operand import Path
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
)
from pynamodb.models import Model

from chalicelib.core.item_size import compact_json
from chalicelib.core.settings import Settings

TTL_ATTRIBUTE = "expires_at"


# Tables with a DynamoDB stream, and what its records carry. The messages table's stream feeds
# the counters: each timeline entry carries the counter changes its event makes (`cc`), and the
# `count_events` function adds them up (ingest/counting.py).
STREAM_TABLES = {"messages": "NEW_AND_OLD_IMAGES"}
COUNTED_ATTRIBUTE = "cc"


class JSONAttribute(_PynamoJSONAttribute):
    """PynamoDB's JSON attribute, except that an update's `set` always serialises its document.
    PynamoDB takes a one-key dict whose key is a DynamoDB type name (`{"S": ...}`, `{"N": ...}`)
    for a value already serialised: `indexed_tags_since` for a tag named `S` was stored as a bare
    string that no later read of the tenant could parse (every request of the tenant failed)."""

    def set(self, value: Any) -> Any:
        if isinstance(value, dict):
            return Path(self).set({STRING: self.serialize(value)})
        return super().set(value)


class CompactJSONAttribute(JSONAttribute):
    """A JSON document stored by `compact_json`: the message aggregate, its timeline entries.
    Every byte of an aggregate is written again with each event of its message."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else compact_json(value)


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
    # Set by a reputation alert with auto-pause (chalicelib/webhooks/alerts.py): sends are refused
    # (423) until an admin resumes. {"rule", "alert_id", "value", "threshold", "since"}
    sending_paused = JSONAttribute(null=True)
    # Quota limits an operator set for this tenant (`python -m ops.quotas`), over the defaults.
    quotas = JSONAttribute(null=True)

    # Which open and click rates the overview leads with: "human" (default) or "raw".
    overview_rate = UnicodeAttribute(null=True)

    # Tag names whose events get a tag view (at most 3: chalicelib/ingest/caps.py); a filter on
    # any other tag reads the time view with a filter. Events stored before a tag was named
    # are not in its view: `indexed_tags_since` (name -> ISO time it was named, by
    # PUT /account/settings) says from when the view is whole (`indexed_tags_covering`).
    indexed_tags = UnicodeSetAttribute(null=True)
    indexed_tags_since = JSONAttribute(null=True)

    # Set once, by DELETE /tenant: from then on only the deletion job touches the tenant.
    deletion_started_at = UTCDateTimeAttribute(null=True)
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
    """Binds an AWS account to the one tenant allowed to send its events (conditional put).
    `bound_at` is the binding's version: events of mail sent before it are not the tenant's,
    and the binding is only ever replaced or removed under a condition on it."""

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


# What the by_recipient index carries besides the keys: what its readers need without the row
# (the recipient page's messages, erasure's, the status and engagement filters of GET /events).
# A copy of every row would double the rows' storage; GET /events?recipient= reads its page's
# rows from the table in one BatchGetItem (history/event_list.py).
RECIPIENT_INDEX_ATTRIBUTES = ("message_id", "status", "engagement")


class _ByRecipient(GlobalSecondaryIndex["EventModel"]):
    class Meta:
        index_name = "by_recipient"
        projection = IncludeProjection(list(RECIPIENT_INDEX_ATTRIBUTES))

    recipient_pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


# The statuses the by_status index holds (a sparse index): the rare ones, which a filter over the
# time view would read through thousands of rows to find. SENT, DELIVERED, OPENED and CLICKED
# are each 15-35 % of a tenant's events: filtering the time view for them reads 3-7 rows per
# row returned, which costs less than an index entry on every one of those events.
# (Status values: core imports nothing from events/.)
INDEXED_STATUSES = frozenset(
    {"BOUNCED", "COMPLAINED", "REJECTED", "RENDERING_FAILED", "DELIVERY_DELAYED", "SUBSCRIPTION"}
)


# The SES event type of each status (the inverse of events/status.STATUS_OF; core imports
# nothing from events/, tests/core/test_row_fields.py holds the two together): rows keep the status.
TYPE_OF_STATUS = {
    "SENT": "Send",
    "DELIVERED": "Delivery",
    "BOUNCED": "Bounce",
    "COMPLAINED": "Complaint",
    "OPENED": "Open",
    "CLICKED": "Click",
    "REJECTED": "Reject",
    "RENDERING_FAILED": "Rendering Failure",
    "DELIVERY_DELAYED": "DeliveryDelay",
    "SUBSCRIPTION": "Subscription",
}


MAX_INDEXED_TAGS = 3  # tag names a tenant may designate for the tag view


def indexed_tag_names(names: Any) -> frozenset[str]:
    """The tags of a tenant that get a tag view: at most MAX_INDEXED_TAGS, in name order (the cap
    holds even for an item written around the API)."""
    return frozenset(sorted(names or ())[:MAX_INDEXED_TAGS])


# How long after a tag is named every ingest instance writes its view: the tenant directory's
# cache (ingest/directory.py, 60 s) with room to spare.
TAG_VIEW_SETTLE = timedelta(minutes=5)


def indexed_tags_covering(tenant: TenantModel, start: datetime) -> frozenset[str]:
    """The designated tags whose view holds every tagged event from `start` on: named at least
    TAG_VIEW_SETTLE before it. A range reaching further back reads the time view, filtered,
    so that a tag named today still finds last month's events. A tag without a time was named
    around the API (an operator's write): its view is taken as whole."""
    since: dict[str, str] = dict(tenant.indexed_tags_since or {})
    covering = set()
    for name in indexed_tag_names(tenant.indexed_tags):
        named = since.get(name)
        if named is None or datetime.fromisoformat(named) + TAG_VIEW_SETTLE <= start:
            covering.add(name)
    return frozenset(covering)


class EventModel(Model):
    """One row per (event, recipient), for the time, status and recipient views (at most
    ingest/caps.MAX_ROW_RECIPIENTS rows per event). An open or
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

    # Only on rows written before they were read from the keys: use key(), at(), kind() and
    # address() (the sort key is <time>#<event key>#<n>, the type follows from the status, the
    # recipient is the recipient_pk's; a tag-view copy, which has none, stores it).
    event_key = UnicodeAttribute(null=True)
    event_type = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    occurred_at = UnicodeAttribute(null=True)
    message_id = UnicodeAttribute()
    recipient = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    tags = JSONAttribute(null=True)  # rows written before tag_pairs carried them alone
    tag_pairs = UnicodeSetAttribute(null=True)  # "name=value": the event's tags, and their filter
    # The facts the list shows (events/messages.row_detail); those of the device and the
    # transport are the timeline entry's alone.
    detail = CompactJSONAttribute(null=True)
    engagement = UnicodeAttribute(null=True)  # opens and clicks: human, scanner, ... at arrival
    expires_at = TTLAttribute(null=True)

    def key(self) -> str:
        """The event's key (keys.event_sk: <time>#<key>#<recipient index>)."""
        return self.event_key or self.sk.split("#")[1]

    def at(self) -> str:
        """When the event happened, as keys.iso_ms wrote it into the sort key."""
        return self.occurred_at or self.sk.split("#")[0]

    def kind(self) -> str:
        """The SES event type ("Delivery", ...): the one its status comes from."""
        return self.event_type or TYPE_OF_STATUS[self.status]

    def address(self) -> str | None:
        """The row's recipient: the stored one on a tag-view copy (it has no recipient_pk) and
        on rows written before, else the recipient_pk's (ingest keeps canonical keys)."""
        if self.recipient is not None or self.recipient_pk is None:
            return self.recipient
        return self.recipient_pk.partition("#R#")[2]

    def tag_map(self) -> dict[str, list[str]]:
        """The event's user tags, {name: [values]}: stored once, as `tag_pairs`."""
        if self.tags:
            return dict(self.tags)
        out: dict[str, list[str]] = {}
        for pair in sorted(self.tag_pairs or ()):
            name, _, value = pair.partition("=")
            out.setdefault(name, []).append(value)
        return out


AGGREGATE_SK = "AGG"


class _PendingMessages(GlobalSecondaryIndex["MessageModel"]):
    class Meta:
        index_name = "by_pending"
        projection = KeysOnlyProjection()

    pending_key = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class MessageModel(Model):
    """The message aggregate (sk = AGG). `body.erased` marks a message an erasure touched: its
    later events are not applied, so they cannot bring the erased address back."""

    class Meta(_Meta):
        table_name = "messages"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=AGGREGATE_SK)
    # Only on aggregates written before it was read from the key: use `message()`.
    message_id = UnicodeAttribute(null=True)
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
    body = CompactJSONAttribute()
    version = VersionAttribute()
    expires_at = TTLAttribute(null=True)
    # Only on an aggregate POST /mail wrote (sending/store.py); ingest rewrites the item without it.
    pending_key = UnicodeAttribute(null=True)
    by_pending = _PendingMessages()

    def message(self) -> str:
        """The message ID: the partition key is T#<tenant>#M#<message ID> (keys.message_pk)."""
        return self.message_id or self.pk.partition("#M#")[2]


class MessageEventModel(Model):
    """One entry per event in its message's partition (sk = E#time#event): the timeline, and
    for a message past the aggregate's applied list (or older than it) the event's
    deduplication record (conditional put in the ingest transaction). `projected` marks an
    entry written beside the rows, whose event's deduplication is the aggregate's list
    (ingest/store.py): it proves nothing about the event being applied."""

    class Meta(_Meta):
        table_name = "messages"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # Only on entries written before they were read from the sort key: use `key()` and `at()`.
    event_key = UnicodeAttribute(null=True)
    event_type = UnicodeAttribute()
    status = UnicodeAttribute(null=True)  # likewise: the event type's (events/status.STATUS_OF)
    occurred_at = UnicodeAttribute(null=True)
    # The event's recipients when they are not the message's destination (at most
    # events/messages.MAX_ENTRY_RECIPIENTS, `recipients_more` counting the others); when they
    # are, `to_destination` alone: the reader takes the aggregate's (events/messages.py).
    recipients = UnicodeSetAttribute(null=True)
    recipients_more = NumberAttribute(null=True)
    to_destination = BooleanAttribute(null=True, attr_name="d")  # short: on most entries
    to_destination_before = BooleanAttribute(null=True, attr_name="to_destination")  # older ones
    shard = NumberAttribute(null=True)  # the write shard of its rows; absent: 0 (most tenants)
    detail = CompactJSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    projected = BooleanAttribute(null=True, attr_name="pj")  # short: on nearly every entry
    # The counter changes its event makes, which the table's stream adds up (ingest/counting.py).
    counted = UnicodeAttribute(null=True, attr_name=COUNTED_ATTRIBUTE)

    def for_destination(self) -> bool:
        """The event concerns the message's whole destination (its recipients are not stored)."""
        return bool(self.to_destination or self.to_destination_before)

    def row_shard(self) -> int:
        return int(self.shard or 0)

    def key(self) -> str:
        """The event's key (its sort key is E#<time>#<key>, keys.message_event_sk)."""
        return self.event_key or self.sk[2:].partition("#")[2]

    def at(self) -> str:
        """When the event happened, as keys.iso_ms wrote it into the sort key."""
        return self.occurred_at or self.sk[2:].partition("#")[0]


class CounterModel(Model):
    """Hourly counts per status, one item per tenant, hour and shard. Counts are top-level
    numbers so that an update is a plain ADD. Opens and clicks are also counted per class
    (OPENED_HUMAN, CLICKED_SCANNER, ...: see events/engagement.py), and messages by the hour
    of their first open or click, by anyone and by a person (OPENED_MESSAGES_HUMAN, ...)."""

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
    OPENED_HUMAN = NumberAttribute(null=True)
    OPENED_APPLE_PRIVACY = NumberAttribute(null=True)
    OPENED_IMAGE_PROXY = NumberAttribute(null=True)
    OPENED_SCANNER = NumberAttribute(null=True)
    OPENED_UNKNOWN = NumberAttribute(null=True)
    CLICKED_HUMAN = NumberAttribute(null=True)
    CLICKED_APPLE_PRIVACY = NumberAttribute(null=True)
    CLICKED_IMAGE_PROXY = NumberAttribute(null=True)
    CLICKED_SCANNER = NumberAttribute(null=True)
    CLICKED_UNKNOWN = NumberAttribute(null=True)
    OPENED_MESSAGES = NumberAttribute(null=True)
    OPENED_MESSAGES_HUMAN = NumberAttribute(null=True)
    CLICKED_MESSAGES = NumberAttribute(null=True)
    CLICKED_MESSAGES_HUMAN = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    # Only on the tenant's COUNTED item (shard 0): when the counters last took in the stream's
    # records of the tenant, and when the newest of them was written (ingest/counting.py).
    counted_at = UnicodeAttribute(null=True)
    counted_through = UnicodeAttribute(null=True)


class LinkCounterModel(Model):
    """Clicks per link per day (sk D#day#link) and per month (sk M#link, the rollup that a
    range's whole months read), in one partition per month and shard of the counters table (same
    key schema), and how many of them were a person's and a scanner's (the rest: unknown). Both
    are updated in the event's own transaction, so the rollup is exactly once like the day."""

    class Meta(_Meta):
        table_name = "counters"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    url = UnicodeAttribute()
    clicks = NumberAttribute(default=0)
    human = NumberAttribute(null=True)
    scanner = NumberAttribute(null=True)
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


class _QuarantineByTenant(GlobalSecondaryIndex["QuarantineModel"]):
    class Meta:
        index_name = "by_tenant"
        projection = KeysOnlyProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


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
    by_tenant = _QuarantineByTenant()


class _SendingByTenant(GlobalSecondaryIndex["IdempotencyModel"]):
    class Meta:
        index_name = "by_tenant"
        projection = KeysOnlyProjection()

    tenant_key = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


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
    tenant_key = UnicodeAttribute(null=True)  # keys.tenant_index_key: the by_tenant index
    by_tenant = _SendingByTenant()


# A bulk job is JSON text stored in parts of this many characters (D#0000, D#0001...): under
# 400 KB per item whatever the escaping. Sending writes them, an erasure rewrites them.
JOB_CHUNK_CHARS = 100_000


class BatchModel(Model):
    """A bulk batch's summary (sk B) or one page of its per-recipient results (sk R#nnnn)."""

    class Meta(_Meta):
        table_name = "sending"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    doc = JSONAttribute()
    expires_at = TTLAttribute()
    tenant_key = UnicodeAttribute(null=True)  # on the summary (sk B) only: the by_tenant index


class AuditModel(Model):
    """One entry of a tenant's audit trail (lifecycle table, T#t#AUDIT / time#id): who did what,
    when, and what it changed (counts). Never an erased address: its salted hash at most."""

    class Meta(_Meta):
        table_name = "lifecycle"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = UnicodeAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute(null=True)
    detail = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class JobModel(Model):
    """An erasure or a tenant deletion (lifecycle table, T#t#JOB / job id): its progress and the
    cursor to resume from, changed only by compare-and-swap on `version`."""

    class Meta(_Meta):
        table_name = "lifecycle"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()  # erasure | deletion
    state = UnicodeAttribute()  # running | waiting | finished | failed
    doc = JSONAttribute()
    version = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


class WebhookEndpointModel(Model):
    """A webhook endpoint of a tenant (webhooks table, sk EP#<id>). `secrets` holds the signing
    secrets AES-GCM-encrypted (chalicelib/webhooks/secrets.py), newest first, each with the time
    it stops being used (an old one overlaps a rotation)."""

    class Meta(_Meta):
        table_name = "webhooks"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    endpoint_id = UnicodeAttribute()
    url = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    event_types = JSONAttribute()  # ["email.bounced", "alert.*", ...]
    tags = JSONAttribute(null=True)  # ["campaign=nov", ...]: deliver email events with any of these
    enabled = BooleanAttribute(default=True)
    secrets = JSONAttribute()  # [{"id", "sealed", "created_at", "expires_at"}]
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    failing_since = UnicodeAttribute(null=True)  # the first failure of the current run
    disabled_reason = UnicodeAttribute(null=True)
    disabled_at = UnicodeAttribute(null=True)
    # Until then, a new delivery first checks that its body names no erased address (X# items).
    erased_until = UnicodeAttribute(null=True)


class WebhookMarkModel(Model):
    """A small item beside a tenant's endpoints (webhooks table): a deleted endpoint
    (sk GONE#<id>) or an erased address (sk X#<hash>, with `before`: the delivery-ID stamp of
    its erasure), each kept as long as a delivery log."""

    class Meta(_Meta):
        table_name = "webhooks"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    before = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class WebhookDeliveryModel(Model):
    """One webhook message to one endpoint (webhooks table, sk D#<delivery id>): the exact body
    that is signed on every attempt, its state and its last attempts. Kept 30 days; a delivery
    that failed for 24 hours stays as the dead-letter record (status `failed`)."""

    class Meta(_Meta):
        table_name = "webhooks"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    webhook_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    body = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | retrying | delivered | failed
    attempts = NumberAttribute(default=0)
    log = JSONAttribute(null=True)  # the last attempts: [{n, at, kind, code, ms, body, error}]
    schedule = NumberAttribute(default=0)  # the retry a queued task must carry to be current
    created_at = UnicodeAttribute()
    first_attempt_at = UnicodeAttribute(null=True)
    next_attempt_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class AlertRuleModel(Model):
    """A reputation alert rule of a tenant and its state (webhooks table, sk R#<rule>); an
    absent item is the default rule, not firing."""

    class Meta(_Meta):
        table_name = "webhooks"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    config = JSONAttribute(null=True)  # what the tenant changed from the defaults
    state = UnicodeAttribute(default="ok")  # ok | firing
    alert_id = UnicodeAttribute(null=True)
    since = UnicodeAttribute(null=True)
    last = JSONAttribute(null=True)  # the last evaluation: {at, value, volume, count}
    revision = NumberAttribute(default=0)


class AlertHistoryModel(Model):
    """An alert that fired or resolved (webhooks table, sk H#<time>#<rule>), kept a year."""

    class Meta(_Meta):
        table_name = "webhooks"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    doc = JSONAttribute()
    expires_at = TTLAttribute(null=True)


class _KeysByTenant(GlobalSecondaryIndex["ApiKeyModel"]):
    class Meta:
        index_name = "by_tenant"
        projection = AllProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute(range_key=True)


class ApiKeyModel(Model):
    """An API key (chalicelib.tenants.api_keys). The secret itself is never stored: only the
    SHA-256 of the whole key bound to its tenant. A revoked key keeps its item (revoked_at) until
    `expires_at`, the item's purge time (TTL), passes; the key's own expiry is `valid_until`."""

    class Meta(_Meta):
        table_name = "api_keys"

    pk = UnicodeAttribute(hash_key=True)  # K#<key id> (core/keys.py)
    key_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    by_tenant = _KeysByTenant()
    name = UnicodeAttribute()
    scope = UnicodeAttribute()  # read | send | admin (core/permissions.py SCOPES)
    secret_hash = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    created_by = UnicodeAttribute()
    valid_until = UTCDateTimeAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)
    revoked_by = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


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
    "webhooks": WebhookEndpointModel,
    "api_keys": ApiKeyModel,
    "lifecycle": AuditModel,
    "templates": TemplateModel,
}
# Models that share a table with the model named in TABLE_MODELS.
_SHARED: dict[type[Model], str] = {
    LinkCounterModel: "counters",
    MessageEventModel: "messages",
    BatchModel: "sending",
    WebhookDeliveryModel: "webhooks",
    WebhookMarkModel: "webhooks",
    AlertRuleModel: "webhooks",
    AlertHistoryModel: "webhooks",
    JobModel: "lifecycle",
    SuppressionVersionModel: "suppression",
}

_TTL_TABLES = {
    "events",
    "messages",
    "counters",
    "quarantine",
    "sending",
    "webhooks",
    "api_keys",
    "lifecycle",
}


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
                    # INCLUDE: the attributes copied besides the keys (else empty).
                    "non_key_attributes": sorted(gsi["projection"].get("NonKeyAttributes", [])),
                }
            )
        keys = {k["KeyType"]: k["AttributeName"] for k in schema["key_schema"]}
        specs[name] = {
            "hash_key": keys["HASH"],
            "range_key": keys.get("RANGE"),
            "attributes": attributes,
            "global_secondary_indexes": indexes,
            "ttl_attribute": TTL_ATTRIBUTE if name in _TTL_TABLES else None,
            "stream_view_type": STREAM_TABLES.get(name),
        }
    return specs
