"""What SES events write to the suppression list (the public module ingest uses): exactly the
bounced recipients of a Permanent bounce, the complained recipients of a complaint, and the
recipient of a Subscription event that unsubscribed from everything. The rest of the list
(manual adds, unsubscribe links, the SES sync, removals) is suppression/store.py.

SES list management (contact lists and topics, SES's own List-Unsubscribe) reports a change of a
contact's preferences as a `Subscription` event:
- `unsubscribeAll: true`: the contact opted out of every topic of the list. SESami puts the
  address on its list with reason UNSUBSCRIBED, in the event's ingest transaction (so exactly
  once: a redelivered event writes nothing). SESami's own sends (POST /mail, bulk) carry no list
  management options, so without this entry SESami would keep mailing someone who unsubscribed.
- a topic set to OptOut without `unsubscribeAll`: recorded (the event, its `topics`, the message
  timeline) and NOT suppressed. SESami has no topics of its own, so it cannot tell whether its
  next message belongs to that topic, and suppressing would stop every other kind of mail the
  person still wants. SES itself does not deliver (it reports a bounce for) mail sent with
  `ListManagementOptions` to a contact who opted out of its topic: that is where topic
  preferences are enforced.
- SES cannot say who acted when a message had several recipients (its event names none): such an
  event suppresses nobody rather than every address of `mail.destination`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib.core import keys
from chalicelib.core.tables import SuppressionModel, SuppressionVersionModel
from chalicelib.events.ses import Bounce, Complaint, SesEvent, Subscription


def suppression_targets(event: SesEvent) -> tuple[str, ...]:
    """Addresses this event puts on the suppression list: exactly the bounced recipients of a
    Permanent bounce, the complained recipients of a complaint, and the one recipient of an
    unsubscribe from everything. Transient and Undetermined bounces and topic-level opt-outs
    suppress nobody; other recipients of the same message are never touched."""
    detail = event.detail
    if isinstance(detail, Bounce):
        return tuple(b.address for b in detail.bounced) if detail.permanent else ()
    if isinstance(detail, Complaint):
        return detail.complained
    if isinstance(detail, Subscription) and detail.unsubscribed_all:
        return event.recipients  # empty when the message had several recipients (see above)
    return ()


def _reason(event: SesEvent) -> str:
    if isinstance(event.detail, Complaint):
        return "COMPLAINT"
    return "UNSUBSCRIBED" if isinstance(event.detail, Subscription) else "BOUNCE"


def suppression_actions(event: SesEvent, address: str, now: datetime) -> list[Action]:
    """The update ingest makes to one suppression entry: the first event to suppress an address
    describes the entry; later ones add their reason and count."""
    detail = event.detail
    reason = _reason(event)
    first: dict[str, Any] = {
        "reason": reason,
        "source_message_id": event.mail.message_id,
        "event_at": keys.iso_ms(event.timestamp),
        "created_at": keys.iso_ms(now),
        "created_by": "ses-event",
    }
    if isinstance(detail, Bounce):
        bounced = next(b for b in detail.bounced if b.address == address)
        first.update(
            bounce_type=detail.bounce_type,
            bounce_subtype=detail.bounce_subtype,
            diagnostic_code=bounced.diagnostic_code,
        )
    elif isinstance(detail, Complaint):
        first["feedback_type"] = detail.feedback_type
    actions: list[Action] = []
    for name, value in first.items():
        if value is not None:
            attr = getattr(SuppressionModel, name)
            # The first event to suppress an address describes the entry; later ones count.
            actions.append(attr.set(attr | value))
    actions.append(SuppressionModel.reasons.add({reason}))
    actions.append(SuppressionModel.occurrences.add(1))
    return actions


def version_bump(tenant_id: str, seed: str) -> tuple[SuppressionVersionModel, list[Action]]:
    """The update that raises the tenant's suppression-list version, to make in the same
    transaction as any change to the list (the send-time cache keys its answers by it)."""
    shard = keys.suppression_version_shard(seed)
    item = SuppressionVersionModel(keys.suppression_version_pk(tenant_id, shard))
    return item, [SuppressionVersionModel.version.add(1)]
