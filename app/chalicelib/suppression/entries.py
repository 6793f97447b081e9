"""The suppression list's entries as requests give them and as the API shows them: parsing
(addresses, reasons, free text, paging) and views (an entry, its history, its first record).
No storage here: suppression/store.py reads and writes the entries."""

from __future__ import annotations

import unicodedata
from typing import Any

from chalicelib.core import addresses, api
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.tables import SuppressionModel

REASONS = ("BOUNCE", "COMPLAINT", "MANUAL", "UNSUBSCRIBED")
MAX_LIMIT, DEFAULT_LIMIT = 100, 50
MAX_WHY = 500


# ---------------------------------------------------------------------------- input


def normalize_address(raw: object, field: str = "email") -> str:
    """A validated address (`Name <addr>` accepted), as its canonical key (core/addresses.py)."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequest(f"{field} must be an email address", details={"field": field})
    try:
        return addresses.parse(raw).key
    except addresses.InvalidAddress as exc:
        raise InvalidRequest(
            f"{field} is not a valid email address: {exc}", details={"field": field}
        ) from None


def parse_why(raw: object, field: str, *, required: bool) -> str | None:
    """Free text for the history: whitespace collapsed, no control characters, bounded."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise InvalidRequest(
                f"{field} is required: say why the address is suppressed",
                details={"field": field},
            )
        return None
    if not isinstance(raw, str):
        raise InvalidRequest(f"{field} must be a string", details={"field": field})
    text = " ".join(raw.split())
    if len(text) > MAX_WHY or any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidRequest(
            f"{field} must be at most {MAX_WHY} printable characters", details={"field": field}
        )
    return text


def parse_reason(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw.upper() not in REASONS:
        raise InvalidRequest(
            f"reason must be one of {', '.join(REASONS)}", details={"field": "reason"}
        )
    return raw.upper()


def parse_limit(raw: str | None) -> int:
    return api.parse_limit(raw, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)


def parse_prefix(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    prefix = raw.strip()
    if len(prefix) > 254 or any(c.isspace() or unicodedata.category(c) == "Cc" for c in prefix):
        raise InvalidRequest(
            "q must be the start of an address (no spaces, at most 254 characters)",
            details={"field": "q"},
        )
    try:
        return addresses.prefix_key(prefix)  # the keys' form: lower-cased, IDNA domain
    except addresses.InvalidAddress as exc:
        raise InvalidRequest(f"q: {exc}", details={"field": "q"}) from None


def parse_flag(raw: str | None, field: str) -> bool:
    value = (raw or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidRequest(f"{field} must be true or false", details={"field": field})
    return value in ("true", "1")


# ---------------------------------------------------------------------------- views


def first_record(item: SuppressionModel) -> dict[str, Any]:
    """The first history record of an entry ingest created (ingest writes no history)."""
    if item.reason == "BOUNCE":
        why = f"permanent bounce ({item.bounce_type or '?'}/{item.bounce_subtype or '?'})"
        if item.diagnostic_code:
            why += f": {item.diagnostic_code}"
    elif item.reason == "COMPLAINT":
        why = f"complaint ({item.feedback_type or 'no feedback type'})"
    elif item.reason == "UNSUBSCRIBED" and item.created_by == "ses-event":
        why = "unsubscribed from every topic through SES list management (unsubscribeAll)"
    else:
        why = item.note or item.reason
    if item.source_message_id:
        why += f" (message {item.source_message_id})"
    return {
        "at": item.created_at,
        "by": item.created_by or "ses-event",
        "action": "added",
        "why": why[:MAX_WHY],
    }


def stored_history(item: SuppressionModel) -> list[dict[str, Any]]:
    history = item.history
    return list(history) if isinstance(history, list) else []


def entry_view(item: SuppressionModel, *, full: bool) -> dict[str, Any]:
    history = stored_history(item) or [first_record(item)]
    view: dict[str, Any] = {
        "address": item.address,
        "suppressed": item.removed_at is None,
        "reason": item.reason,
        "reasons": sorted(item.reasons or {item.reason}),
        "note": item.note,
        "created_at": item.created_at,
        "created_by": item.created_by,
        "occurrences": int(item.occurrences or 1),
        "source_message_id": item.source_message_id,
        "event_at": item.event_at,
        "bounce_type": item.bounce_type,
        "bounce_subtype": item.bounce_subtype,
        "feedback_type": item.feedback_type,
        "diagnostic_code": item.diagnostic_code,
        "removed_at": item.removed_at,
        "removed_by": item.removed_by,
        "last_change": history[-1],
    }
    if full:
        view["history"] = history
    return view
