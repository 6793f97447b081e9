"""Event types, the statuses they map to, and the precedence that decides a message's status.

SES promises no ordering: a Delivery can arrive after an Open, a Bounce after a Delivery. A
recipient's status is therefore the *highest-ranked* status seen so far, never the latest one.
Ranks encode what each outcome proves:

- SENT < DELIVERY_DELAYED < soft (transient/undetermined) BOUNCED < DELIVERED: a delay or a soft
  bounce is a retryable hiccup and must not hide a later delivery.
- DELIVERED < OPENED < CLICKED: engagement proves delivery.
- a Permanent bounce outranks engagement (SES can report an asynchronous bounce after accepting the
  mail), and a complaint outranks everything deliverable: it is what the sender must act on.
- REJECTED and RENDERING_FAILED end a message before it leaves SES.
- SUBSCRIPTION (a list-management preference change) says nothing about delivery: rank 0, below
  SENT. A message known only from Subscription events shows SUBSCRIPTION, never SENT (a state
  starts from its first event's status, see state.py): SESami has seen no Send event for it,
  and SUBSCRIPTION says what it does know.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """SES `eventType` values, spelled exactly as SES spells them."""

    SEND = "Send"
    DELIVERY = "Delivery"
    BOUNCE = "Bounce"
    COMPLAINT = "Complaint"
    OPEN = "Open"
    CLICK = "Click"
    REJECT = "Reject"
    RENDERING_FAILURE = "Rendering Failure"
    DELIVERY_DELAY = "DeliveryDelay"
    SUBSCRIPTION = "Subscription"


class Status(StrEnum):
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    BOUNCED = "BOUNCED"
    COMPLAINED = "COMPLAINED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    REJECTED = "REJECTED"
    RENDERING_FAILED = "RENDERING_FAILED"
    DELIVERY_DELAYED = "DELIVERY_DELAYED"
    SUBSCRIPTION = "SUBSCRIPTION"


# EventBridge detail-type -> SES eventType. Other aws.ses detail-types (advisor recommendations,
# sending status changes) are not SES event records and are ignored.
DETAIL_TYPES: dict[str, EventType] = {
    "Email Sent": EventType.SEND,
    "Email Delivered": EventType.DELIVERY,
    "Email Bounced": EventType.BOUNCE,
    "Email Complaint Received": EventType.COMPLAINT,
    "Email Opened": EventType.OPEN,
    "Email Clicked": EventType.CLICK,
    "Email Rejected": EventType.REJECT,
    "Email Rendering Failed": EventType.RENDERING_FAILURE,
    "Email Delivery Delayed": EventType.DELIVERY_DELAY,
    "Email Subscribed": EventType.SUBSCRIPTION,
}

STATUS_OF: dict[EventType, Status] = {
    EventType.SEND: Status.SENT,
    EventType.DELIVERY: Status.DELIVERED,
    EventType.BOUNCE: Status.BOUNCED,
    EventType.COMPLAINT: Status.COMPLAINED,
    EventType.OPEN: Status.OPENED,
    EventType.CLICK: Status.CLICKED,
    EventType.REJECT: Status.REJECTED,
    EventType.RENDERING_FAILURE: Status.RENDERING_FAILED,
    EventType.DELIVERY_DELAY: Status.DELIVERY_DELAYED,
    EventType.SUBSCRIPTION: Status.SUBSCRIPTION,
}

_RANK: dict[Status, int] = {
    Status.SUBSCRIPTION: 0,
    Status.SENT: 10,
    Status.DELIVERY_DELAYED: 20,
    # BOUNCED is ranked by bounce type, see rank().
    Status.DELIVERED: 40,
    Status.OPENED: 50,
    Status.CLICKED: 60,
    Status.COMPLAINED: 80,
    Status.REJECTED: 90,
    Status.RENDERING_FAILED: 90,
}
_SOFT_BOUNCE_RANK = 30
_HARD_BOUNCE_RANK = 70


def rank(status: Status, *, permanent_bounce: bool = False) -> int:
    """Precedence of a status; a BOUNCED status ranks by whether the bounce was permanent."""
    if status is Status.BOUNCED:
        return _HARD_BOUNCE_RANK if permanent_bounce else _SOFT_BOUNCE_RANK
    return _RANK[status]
