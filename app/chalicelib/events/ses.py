"""Typed models of the EventBridge envelopes and SES event records SESami ingests, and the one
parser that builds them. Nothing past this module indexes a raw event dict.

Facts this parser relies on (AWS SES event publishing, verified against real records):
- `detail` is the SES event record; its `eventType` must agree with the envelope's detail-type.
- `Rendering Failure` is spelled with a space and keeps its data under `failure`;
  `DeliveryDelay` keeps its data under `deliveryDelay`.
- `mail.tags` and `click.linkTags` map a name to a *list* of strings; `linkTags` may be null and
  `tags` may be absent; `complaintSubType` and `complaintFeedbackType` may be null or absent.
Anything that cannot be read raises `MalformedEvent` with a reason that names the field.

Long by design: the ten event types' models and their readers are one boundary, read top to
bottom; a model and the reader that builds it are kept within a screen of each other.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from chalicelib.core import addresses
from chalicelib.core.errors import MalformedEvent
from chalicelib.events.links import display_form
from chalicelib.events.status import DETAIL_TYPES, STATUS_OF, EventType, Status

# Bounds on what one event may carry. Anything larger is not an SES event we can trust to store
# (SES itself caps recipients and tags at 50, addresses at 320 octets, headers at 10 KB).
MAX_ADDRESS = 320
MAX_RECIPIENTS = 50
MAX_TAGS = 50
MAX_TAG_PART = 256
MAX_MESSAGE_ID = 256
MAX_LINK = 8_192
MAX_TEXT = 4_096  # user agents, diagnostic codes, error messages, SMTP responses
MAX_SUBJECT_STORED = 998  # RFC 5322 line length; longer subjects are cut for display only

JsonObj = Mapping[str, Any]
Tags = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Envelope:
    """An EventBridge event as delivered to the ingest function."""

    id: str
    detail_type: str
    source: str
    account: str
    time: datetime
    region: str
    detail: Any  # still raw: parse_event() reads it


@dataclass(frozen=True, slots=True)
class Mail:
    message_id: str
    timestamp: datetime
    source: str
    destination: tuple[str, ...]
    subject: str | None
    tags: Tags
    headers_truncated: bool

    @property
    def configuration_set(self) -> str | None:
        values = self.tags.get("ses:configuration-set")
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Delivery:
    processing_time_ms: int | None
    smtp_response: str | None
    reporting_mta: str | None
    remote_mta_ip: str | None


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    address: str
    action: str | None
    status: str | None
    diagnostic_code: str | None


@dataclass(frozen=True, slots=True)
class Bounce:
    bounce_type: str  # Permanent | Transient | Undetermined
    bounce_subtype: str | None
    bounced: tuple[BouncedRecipient, ...]
    feedback_id: str | None
    reporting_mta: str | None

    @property
    def permanent(self) -> bool:
        return self.bounce_type == "Permanent"


@dataclass(frozen=True, slots=True)
class Complaint:
    complained: tuple[str, ...]
    subtype: str | None
    feedback_type: str | None
    user_agent: str | None
    feedback_id: str | None


@dataclass(frozen=True, slots=True)
class Open:
    user_agent: str | None
    ip_address: str | None


@dataclass(frozen=True, slots=True)
class Click:
    """`link` is its bounded display form (events/links.py), never the raw URL."""

    link: str
    link_tags: Tags
    user_agent: str | None
    ip_address: str | None


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str | None


@dataclass(frozen=True, slots=True)
class RenderingFailure:
    error_message: str | None
    template_name: str | None


@dataclass(frozen=True, slots=True)
class DelayedRecipient:
    address: str
    status: str | None
    diagnostic_code: str | None


@dataclass(frozen=True, slots=True)
class DeliveryDelay:
    delay_type: str | None
    expiration_time: datetime | None
    delayed: tuple[DelayedRecipient, ...]
    reporting_mta: str | None


@dataclass(frozen=True, slots=True)
class Subscription:
    contact_list: str | None
    unsubscribed_all: bool
    topics: Mapping[str, str]  # topic name -> new subscription status


Detail = (
    Send
    | Delivery
    | Bounce
    | Complaint
    | Open
    | Click
    | Reject
    | RenderingFailure
    | DeliveryDelay
    | Subscription
)


@dataclass(frozen=True, slots=True)
class SesEvent:
    """One SES event record, parsed. `key` identifies the event across duplicate deliveries."""

    event_type: EventType
    key: str
    timestamp: datetime
    mail: Mail
    # Addresses the event concerns. Empty for an open/click on a message with several
    # recipients: SES cannot tell which of them opened it, and neither can we.
    recipients: tuple[str, ...]
    detail: Detail

    @property
    def status(self) -> Status:
        return STATUS_OF[self.event_type]


# --------------------------------------------------------------------------------------------
# Readers for one field each: they raise MalformedEvent naming the field's path.


def _obj(parent: JsonObj, key: str, path: str) -> JsonObj:
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{path}.{key} must be an object, got {_kind(value)}")
    return value


def _str(
    parent: JsonObj, key: str, path: str, *, max_len: int = MAX_TEXT, optional: bool = False
) -> str | None:
    value = parent.get(key)
    if value is None:
        if optional:
            return None
        raise MalformedEvent(f"{path}.{key} is missing")
    if not isinstance(value, str):
        raise MalformedEvent(f"{path}.{key} must be a string, got {_kind(value)}")
    if len(value) > max_len:
        raise MalformedEvent(f"{path}.{key} is {len(value)} characters, over the {max_len} limit")
    return value


def _req_str(parent: JsonObj, key: str, path: str, *, max_len: int = MAX_TEXT) -> str:
    value = _str(parent, key, path, max_len=max_len)
    assert value is not None
    return value


def _time(parent: JsonObj, key: str, path: str, *, optional: bool = False) -> datetime | None:
    raw = _str(parent, key, path, max_len=64, optional=optional)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise MalformedEvent(f"{path}.{key} is not an ISO 8601 timestamp: {raw[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _req_time(parent: JsonObj, key: str, path: str) -> datetime:
    value = _time(parent, key, path)
    assert value is not None
    return value


def _list(parent: JsonObj, key: str, path: str, *, optional: bool = False) -> list[Any]:
    value = parent.get(key)
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise MalformedEvent(f"{path}.{key} must be a list, got {_kind(value)}")
    if len(value) > MAX_RECIPIENTS:
        raise MalformedEvent(f"{path}.{key} has {len(value)} entries, over {MAX_RECIPIENTS}")
    return value


# RFC 5322 atext and dots, "@", a domain of letters, digits, dots and hyphens.
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _address(raw: Any, path: str) -> str:
    """A recipient address as its canonical key (core/addresses.py): `Name <a@b>` -> `a@b`,
    the domain in IDNA ASCII, lower-cased."""
    if not isinstance(raw, str):
        raise MalformedEvent(f"{path} must be an email address string, got {_kind(raw)}")
    if len(raw) > MAX_ADDRESS:
        raise MalformedEvent(f"{path} is {len(raw)} characters, over {MAX_ADDRESS}")
    # A bare ASCII address-spec (what SES reports) is its own parse: no display name, quotes,
    # comments or groups for parseaddr to take apart (~14 µs an address, more than the rest of
    # the record's parsing); tests/events/test_ses_events.py checks the two agree.
    address = raw if _BARE_ADDRESS.fullmatch(raw) else (parseaddr(raw)[1] or raw)
    if "@" not in address or any(ch.isspace() for ch in address) or "\x00" in address:
        raise MalformedEvent(f"{path} is not an email address: {raw[:80]!r}")
    return addresses.key(address)


def _tags(raw: Any, path: str) -> Tags:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise MalformedEvent(f"{path} must be an object of lists, got {_kind(raw)}")
    if len(raw) > MAX_TAGS:
        raise MalformedEvent(f"{path} has {len(raw)} tags, over {MAX_TAGS}")
    tags: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        if len(name) > MAX_TAG_PART:
            raise MalformedEvent(f"{path} has a tag name over {MAX_TAG_PART} characters")
        if isinstance(values, str):  # tolerate a bare string where SES sends a list
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise MalformedEvent(f"{path}.{name} must be a list of strings")
        if any(len(v) > MAX_TAG_PART for v in values):
            raise MalformedEvent(f"{path}.{name} has a value over {MAX_TAG_PART} characters")
        tags[name] = tuple(values)
    return tags


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --------------------------------------------------------------------------------------------


def parse_envelope(raw: Any) -> Envelope:
    """Read the EventBridge envelope. Raises MalformedEvent if it is not one."""
    if not isinstance(raw, Mapping):
        raise MalformedEvent(f"envelope must be an object, got {_kind(raw)}")
    account = _req_str(raw, "account", "envelope", max_len=12)
    if not (len(account) == 12 and account.isdigit()):
        raise MalformedEvent(f"envelope.account is not a 12-digit AWS account ID: {account!r}")
    return Envelope(
        id=_req_str(raw, "id", "envelope", max_len=128),
        detail_type=_req_str(raw, "detail-type", "envelope", max_len=256),
        source=_req_str(raw, "source", "envelope", max_len=256),
        account=account,
        time=_req_time(raw, "time", "envelope"),
        region=_str(raw, "region", "envelope", max_len=64, optional=True) or "",
        detail=raw.get("detail"),
    )


def is_ses_event_record(envelope: Envelope) -> bool:
    """True for the ten SES event detail-types; False for advisor, sending-status and the like."""
    return envelope.source == "aws.ses" and envelope.detail_type in DETAIL_TYPES


def parse_event(envelope: Envelope) -> SesEvent:
    """Parse the SES event record carried by an envelope whose detail-type is an event type."""
    detail = envelope.detail
    if not isinstance(detail, Mapping):
        raise MalformedEvent(f"detail must be an object, got {_kind(detail)}")
    raw_type = _req_str(detail, "eventType", "detail", max_len=64)
    try:
        event_type = EventType(raw_type)
    except ValueError:
        raise MalformedEvent(
            f"detail.eventType {raw_type[:40]!r} is not an SES event type"
        ) from None
    expected = DETAIL_TYPES.get(envelope.detail_type)
    if expected is not event_type:
        raise MalformedEvent(
            f"detail-type {envelope.detail_type!r} disagrees with eventType {raw_type!r}"
        )
    mail = _parse_mail(_obj(detail, "mail", "detail"))
    section = _SECTION[event_type]
    data: JsonObj = {} if section is None else _obj(detail, section, "detail")
    parser = _DETAIL_PARSERS[event_type]
    parsed, timestamp, recipients = parser(data, mail, f"detail.{section}")
    return SesEvent(
        event_type=event_type,
        key=event_key(event_type, mail.message_id, data),
        timestamp=timestamp,
        mail=mail,
        recipients=recipients,
        detail=parsed,
    )


def event_key(event_type: EventType, message_id: str, data: JsonObj) -> str:
    """Identity of an event across duplicate deliveries: SES, EventBridge and Lambda may each
    deliver one event twice, under different envelope IDs, but its record is the same."""
    canonical = json.dumps(
        [event_type.value, message_id, data], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def _parse_mail(mail: JsonObj) -> Mail:
    destination = tuple(
        _address(a, f"detail.mail.destination[{i}]")
        for i, a in enumerate(_list(mail, "destination", "detail.mail"))
    )
    subject: str | None = None
    common = mail.get("commonHeaders")
    if isinstance(common, Mapping) and isinstance(common.get("subject"), str):
        subject = common["subject"][:MAX_SUBJECT_STORED]
    return Mail(
        message_id=_req_str(mail, "messageId", "detail.mail", max_len=MAX_MESSAGE_ID),
        timestamp=_req_time(mail, "timestamp", "detail.mail"),
        source=_req_str(mail, "source", "detail.mail", max_len=MAX_ADDRESS),
        destination=destination,
        subject=subject,
        tags=_tags(mail.get("tags"), "detail.mail.tags"),
        headers_truncated=bool(mail.get("headersTruncated", False)),
    )


_Parsed = tuple[Detail, datetime, tuple[str, ...]]


def _engagement_recipients(mail: Mail) -> tuple[str, ...]:
    return mail.destination if len(mail.destination) == 1 else ()


def _p_send(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    return Send(), mail.timestamp, mail.destination


def _p_delivery(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    recipients = tuple(
        _address(a, f"{path}.recipients[{i}]")
        for i, a in enumerate(_list(data, "recipients", path))
    )
    processing = data.get("processingTimeMillis")
    return (
        Delivery(
            processing_time_ms=processing if isinstance(processing, int) else None,
            smtp_response=_str(data, "smtpResponse", path, optional=True),
            reporting_mta=_str(data, "reportingMTA", path, optional=True),
            remote_mta_ip=_str(data, "remoteMtaIp", path, max_len=64, optional=True),
        ),
        _req_time(data, "timestamp", path),
        recipients,
    )


def _p_bounce(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    bounce_type = _req_str(data, "bounceType", path, max_len=64)
    if bounce_type not in ("Permanent", "Transient", "Undetermined"):
        raise MalformedEvent(f"{path}.bounceType {bounce_type!r} is not a known bounce type")
    bounced = []
    for i, entry in enumerate(_list(data, "bouncedRecipients", path)):
        where = f"{path}.bouncedRecipients[{i}]"
        if not isinstance(entry, Mapping):
            raise MalformedEvent(f"{where} must be an object")
        bounced.append(
            BouncedRecipient(
                address=_address(entry.get("emailAddress"), f"{where}.emailAddress"),
                action=_str(entry, "action", where, max_len=64, optional=True),
                status=_str(entry, "status", where, max_len=64, optional=True),
                diagnostic_code=_str(entry, "diagnosticCode", where, optional=True),
            )
        )
    bounce = Bounce(
        bounce_type=bounce_type,
        bounce_subtype=_str(data, "bounceSubType", path, max_len=64, optional=True),
        bounced=tuple(bounced),
        feedback_id=_str(data, "feedbackId", path, max_len=256, optional=True),
        reporting_mta=_str(data, "reportingMTA", path, optional=True),
    )
    return bounce, _req_time(data, "timestamp", path), tuple(b.address for b in bounced)


def _p_complaint(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    complained = []
    for i, entry in enumerate(_list(data, "complainedRecipients", path)):
        where = f"{path}.complainedRecipients[{i}]"
        if not isinstance(entry, Mapping):
            raise MalformedEvent(f"{where} must be an object")
        complained.append(_address(entry.get("emailAddress"), f"{where}.emailAddress"))
    complaint = Complaint(
        complained=tuple(complained),
        subtype=_str(data, "complaintSubType", path, max_len=64, optional=True),
        feedback_type=_str(data, "complaintFeedbackType", path, max_len=64, optional=True),
        user_agent=_str(data, "userAgent", path, optional=True),
        feedback_id=_str(data, "feedbackId", path, max_len=256, optional=True),
    )
    return complaint, _req_time(data, "timestamp", path), tuple(complained)


def _p_open(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    opened = Open(
        user_agent=_str(data, "userAgent", path, optional=True),
        ip_address=_str(data, "ipAddress", path, max_len=64, optional=True),
    )
    return opened, _req_time(data, "timestamp", path), _engagement_recipients(mail)


def _p_click(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    click = Click(
        link=display_form(_req_str(data, "link", path, max_len=MAX_LINK)),
        link_tags=_tags(data.get("linkTags"), f"{path}.linkTags"),
        user_agent=_str(data, "userAgent", path, optional=True),
        ip_address=_str(data, "ipAddress", path, max_len=64, optional=True),
    )
    return click, _req_time(data, "timestamp", path), _engagement_recipients(mail)


def _p_reject(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    reject = Reject(reason=_str(data, "reason", path, optional=True))
    return reject, mail.timestamp, mail.destination


def _p_rendering_failure(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    failure = RenderingFailure(
        error_message=_str(data, "errorMessage", path, optional=True),
        template_name=_str(data, "templateName", path, max_len=256, optional=True),
    )
    return failure, mail.timestamp, mail.destination


def _p_delivery_delay(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    delayed = []
    for i, entry in enumerate(_list(data, "delayedRecipients", path)):
        where = f"{path}.delayedRecipients[{i}]"
        if not isinstance(entry, Mapping):
            raise MalformedEvent(f"{where} must be an object")
        delayed.append(
            DelayedRecipient(
                address=_address(entry.get("emailAddress"), f"{where}.emailAddress"),
                status=_str(entry, "status", where, max_len=64, optional=True),
                diagnostic_code=_str(entry, "diagnosticCode", where, optional=True),
            )
        )
    delay = DeliveryDelay(
        delay_type=_str(data, "delayType", path, max_len=64, optional=True),
        expiration_time=_time(data, "expirationTime", path, optional=True),
        delayed=tuple(delayed),
        reporting_mta=_str(data, "reportingMTA", path, optional=True),
    )
    return delay, _req_time(data, "timestamp", path), tuple(d.address for d in delayed)


def _p_subscription(data: JsonObj, mail: Mail, path: str) -> _Parsed:
    prefs = data.get("newTopicPreferences")
    prefs = prefs if isinstance(prefs, Mapping) else {}
    topics: dict[str, str] = {}
    for entry in prefs.get("topicSubscriptionStatus") or []:
        if isinstance(entry, Mapping):
            name, state = entry.get("topicName"), entry.get("subscriptionStatus")
            if isinstance(name, str) and isinstance(state, str):
                topics[name[:MAX_TAG_PART]] = state[:64]
    subscription = Subscription(
        contact_list=_str(data, "contactList", path, max_len=256, optional=True),
        unsubscribed_all=bool(prefs.get("unsubscribeAll", False)),
        topics=topics,
    )
    return subscription, _req_time(data, "timestamp", path), _engagement_recipients(mail)


_SECTION: dict[EventType, str | None] = {
    EventType.SEND: None,
    EventType.DELIVERY: "delivery",
    EventType.BOUNCE: "bounce",
    EventType.COMPLAINT: "complaint",
    EventType.OPEN: "open",
    EventType.CLICK: "click",
    EventType.REJECT: "reject",
    EventType.RENDERING_FAILURE: "failure",
    EventType.DELIVERY_DELAY: "deliveryDelay",
    EventType.SUBSCRIPTION: "subscription",
}

_DETAIL_PARSERS = {
    EventType.SEND: _p_send,
    EventType.DELIVERY: _p_delivery,
    EventType.BOUNCE: _p_bounce,
    EventType.COMPLAINT: _p_complaint,
    EventType.OPEN: _p_open,
    EventType.CLICK: _p_click,
    EventType.REJECT: _p_reject,
    EventType.RENDERING_FAILURE: _p_rendering_failure,
    EventType.DELIVERY_DELAY: _p_delivery_delay,
    EventType.SUBSCRIPTION: _p_subscription,
}
