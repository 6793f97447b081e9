"""Query parameters the read routes share: the time range, statuses, tags.

A range is one of: `range` (SESami's presets 24h, 7d, 30d, 90d, 1y, measured by the server's
clock), `since` (a duration back from now: a timedelta or "15m", "36h", "7d", "2w"; a preset
string is sent as `range`, anything else as `from`), or `from_`/`to` (datetimes or ISO 8601
strings). Giving none leaves SESami's default (7d).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

PRESETS = ("24h", "7d", "30d", "90d", "1y")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)

When = datetime | str
Params = list[tuple[str, str]]


def parse_duration(text: str) -> timedelta:
    """ "90m" -> 90 minutes; units s, m, h, d, w. "1y" is SESami's preset, 365 days."""
    if text.strip().lower() == "1y":
        return timedelta(days=365)
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration: a positive number and a unit s, m, h, d or w (e.g. 7d)"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).lower()])


def instant(value: When) -> str:
    """ISO 8601 for SESami; a naive datetime is taken as UTC."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def time_params(
    *,
    range: str | None = None,
    since: timedelta | str | None = None,
    from_: When | None = None,
    to: When | None = None,
    now: datetime | None = None,
) -> Params:
    given = [name for name, v in (("range", range), ("since", since), ("from_", from_)) if v]
    if len(given) > 1:
        raise ValueError(f"give one of range, since or from_, not {' and '.join(given)}")
    if range is not None and to is not None:
        raise ValueError("range counts back from now: give from_ and to instead")
    out: Params = []
    if range is not None:
        if range not in PRESETS:
            raise ValueError(f"range must be one of {', '.join(PRESETS)}")
        out.append(("range", range))
    elif since is not None:
        if isinstance(since, str) and since.strip().lower() in PRESETS and to is None:
            out.append(("range", since.strip().lower()))
        else:
            span = parse_duration(since) if isinstance(since, str) else since
            if span <= timedelta(0):
                raise ValueError("since must be a positive duration")
            out.append(("from", instant((now or datetime.now(UTC)) - span)))
    elif from_ is not None:
        out.append(("from", instant(from_)))
    if to is not None:
        out.append(("to", instant(to)))
    return out


def status_params(status: str | Iterable[str] | None) -> Params:
    """One `status` parameter per status (SESami also takes them comma-separated)."""
    if status is None:
        return []
    names = [status] if isinstance(status, str) else list(status)
    out: Params = []
    for chunk in names:
        out.extend(("status", s.strip().upper()) for s in chunk.split(",") if s.strip())
    return out


def tag_param(tag: tuple[str, str] | str | None) -> Params:
    """A tag filter, ("campaign", "spring") or "campaign:spring" / "campaign=spring"."""
    if tag is None:
        return []
    if isinstance(tag, str):
        name, value = _split_tag(tag)
    else:
        name, value = tag
    return [("tag", f"{name}:{value}")]


def _split_tag(text: str) -> tuple[str, str]:
    for sep in (":", "="):
        name, found, value = text.partition(sep)
        if found and name and value:
            return name, value
    raise ValueError(f"{text!r} is not a tag: name:value or name=value")


def parse_tags(pairs: Iterable[str]) -> dict[str, str]:
    """["campaign=spring", "team=growth"] -> {"campaign": "spring", "team": "growth"}."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, found, value = pair.partition("=")
        if not found or not name or not value:
            raise ValueError(f"{pair!r} is not a tag: name=value")
        out[name] = value
    return out
