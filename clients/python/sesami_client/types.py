"""The shapes of SESami's answers, as TypedDicts: each result is the JSON object SESami sent,
typed for the checker and the editor, with no copy into other objects. A field SESami adds later
is still there at run time (and in `--json` output) before this module names it. Keys that are
Python keywords (`from`) use the functional syntax. Times are ISO 8601 strings, as sent."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class AddressObject(TypedDict):
    address: str
    name: NotRequired[str]


# "Ada <ada@example.com>", "ada@example.com" or {"address": ..., "name": ...}
Address = str | AddressObject


class BulkRecipient(TypedDict):
    to: Address
    variables: NotRequired[dict[str, str | int | float]]


class Skipped(TypedDict):
    """A suppressed recipient that was not sent to."""

    address: str
    reason: str
    reasons: list[str]
    since: str | None


class MailSent(TypedDict):
    message_id: str
    status: Literal["sent"]
    configuration_set: str
    recipients: list[str]
    skipped: list[Skipped]
    recorded: bool
    # Added by the client: the key this call was sent with, and whether SESami replayed the
    # answer of an earlier call with the same key (header Idempotent-Replayed) instead of sending.
    idempotency_key: NotRequired[str]
    replayed: NotRequired[bool]


BatchStatus = Literal["queued", "sending", "done", "incomplete"]
FINISHED: frozenset[str] = frozenset({"done", "incomplete"})


class BatchProgress(TypedDict):
    total: int
    processed: int


class SendRate(TypedDict):
    per_second: float
    source: Literal["ses", "default"]
    note: str | None


class BatchResult(TypedDict, total=False):
    address: str
    status: str  # sent, suppressed, failed, not_sent, unknown, queued, sending
    message_id: str
    reason: str
    error: str


class Batch(TypedDict):
    batch_id: str
    status: BatchStatus
    created_at: str
    configuration_set: str
    progress: BatchProgress
    counts: dict[str, int]
    send_rate: SendRate | None
    results: NotRequired[list[BatchResult]]
    skipped: NotRequired[list[Skipped]]  # POST /mail/bulk only
    idempotency_key: NotRequired[str]  # added by the client on send_bulk
    replayed: NotRequired[bool]


Event = TypedDict(
    "Event",
    {
        "id": str,
        "message_id": str,
        "type": str,
        "status": str,
        "recipient": str | None,
        "at": str,
        "subject": str | None,
        "from": str | None,
        "tags": dict[str, Any],
        "detail": dict[str, Any],
        # opens and clicks: human | apple_privacy | image_proxy | scanner | unknown
        "engagement": str | None,
    },
)


class EventPage(TypedDict):
    events: list[Event]
    next: str | None


class MessageEvent(TypedDict):
    id: str
    type: str
    status: str
    at: str
    recipients: list[str]
    recipients_more: int  # recipients the event concerns past the ones named
    detail: dict[str, Any]


class UserAgentCount(TypedDict):
    user_agent: str
    count: int


class Opens(TypedDict):
    count: int
    human: int
    by_class: dict[str, int]
    first_at: str | None
    last_at: str | None
    user_agents: list[UserAgentCount]
    # "message": user_agents counts every open; "page": the opens on this page of the timeline
    user_agents_scope: Literal["message", "page"]


class LinkCount(TypedDict):
    url: str  # the link, or its first characters and a digest when longer than 200
    count: int
    human: int
    scanner: int
    truncated: bool


class Clicks(TypedDict):
    count: int
    human: int
    by_class: dict[str, int]
    links: list[LinkCount]
    other_links: int


class Bounded(TypedDict):
    """What the message's bounds left out, counted."""

    recipients_other: int
    tags_dropped: int
    engagement_unjudged: int


Message = TypedDict(
    "Message",
    {
        "message_id": str,
        "subject": str | None,
        "from": str | None,
        "sent_at": str | None,
        "status": str,
        "status_at": str | None,
        "destination": list[str],
        "tags": dict[str, Any],
        "event_count": int,
        "recipients": dict[str, dict[str, Any]],
        "opens": Opens,
        "clicks": Clicks,
        "bounded": Bounded,
        # one page of the timeline, oldest first; `next` continues it
        "events": list[MessageEvent],
        "next": str | None,
        # what SESami sent, on the first page (status, headers, text, the HTML's frame URLs)
        "content": NotRequired[dict[str, Any]],
    },
)


class RecipientMessage(TypedDict):
    message_id: str
    subject: str | None
    sent_at: str | None
    status: str
    opens: int
    clicks: int
    first_open_at: str | None
    last_open_at: str | None
    bounce_type: str | None


class RecipientSuppression(TypedDict):
    reason: str
    since: str | None
    bounce_type: str | None
    bounce_subtype: str | None
    feedback_type: str | None
    diagnostic_code: str | None
    source_message_id: str | None


class RecipientTotals(TypedDict):
    messages: int
    opens: int
    clicks: int


class Recipient(TypedDict):
    recipient: str
    suppressed: bool
    suppression: RecipientSuppression | None
    messages: list[RecipientMessage]
    totals: RecipientTotals


class LinkClicks(TypedDict):
    url: str
    clicks: int


Links = TypedDict(
    "Links",
    {
        "from": str,
        "to": str,
        "links": list[LinkClicks],
        "total_clicks": int,
        "distinct_links": int,
    },
)


class Rate(TypedDict):
    value: float
    review_at: float
    pause_at: float
    state: Literal["ok", "warning", "at_risk"]


class Rates(TypedDict):
    bounce: Rate
    complaint: Rate


Stats = TypedDict(
    "Stats",
    {
        "from": str,
        "to": str,
        "interval": Literal["hour", "day"],
        # {"t": "2026-05-01T13" or "2026-05-01", "SENT": 3, "DELIVERED": 2, ...}
        "series": list[dict[str, Any]],
        "totals": dict[str, int],
        "rates": Rates,
        "buckets_read": int,
    },
)


class SuppressionChange(TypedDict):
    at: str
    by: str
    action: str  # added, updated, unsubscribed, imported, removed, removed_from_ses
    why: str | None


class Suppression(TypedDict):
    """A suppression list entry (or, with suppressed false, the tombstone of a removed one)."""

    address: str
    suppressed: bool
    reason: str  # BOUNCE, COMPLAINT, MANUAL, UNSUBSCRIBED
    reasons: list[str]
    note: str | None
    created_at: str
    created_by: str | None
    occurrences: int
    source_message_id: str | None
    event_at: str | None
    bounce_type: str | None
    bounce_subtype: str | None
    feedback_type: str | None
    diagnostic_code: str | None
    removed_at: str | None
    removed_by: str | None
    last_change: SuppressionChange
    history: NotRequired[list[SuppressionChange]]  # one entry (get, add, remove), not lists
    created: NotRequired[bool]  # add only: false when the address was already suppressed


class SuppressionPage(TypedDict):
    items: list[Suppression]
    next: str | None


class Account(TypedDict):
    tenant_id: str
    external_id: str
    account_id: str | None
    role_arn: str | None
    region: str | None
    configuration_set: str | None
    connected: bool
    role: str  # the caller's: admin | sender | viewer (an API key: its scope's role)
    permissions: list[str]  # what that role may do (read, send, suppression:add, admin)
    settings: dict[str, Any]  # display settings: {"overview_rate": "human" | "raw"}
