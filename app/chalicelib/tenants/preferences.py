"""A tenant's display settings: small choices of how the dashboard presents the same data.

- `overview_rate`: which open and click rates the overview leads with. `human` (the default)
  counts only opens and clicks a person made; `raw` counts every one, Apple's prefetches and
  security scanners included (see events/engagement.py). Both are always shown.
- `indexed_tags`: up to three tag names (e.g. `campaign`) whose events ingest also writes to a
  tag view, so that GET /events?tag=name:value reads only the tagged events. Any other tag is
  found by reading the time view with a filter (more reads, the same answer). The view starts
  when the tag is named: a range that begins earlier reads the time view, filtered, so nothing is
  missed (core/tables.py `indexed_tags_covering`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.tables import MAX_INDEXED_TAGS, TenantModel, indexed_tag_names

OVERVIEW_RATES = ("human", "raw")
DEFAULT_OVERVIEW_RATE = "human"


# SES's own rule for a message tag's name: ASCII letters, digits, '_' and '-', up to 256.
_TAG_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
SETTINGS = ("overview_rate", "indexed_tags")


def settings_of(tenant: TenantModel) -> dict[str, Any]:
    rate = tenant.overview_rate if tenant.overview_rate in OVERVIEW_RATES else None
    return {
        "overview_rate": rate or DEFAULT_OVERVIEW_RATE,
        "indexed_tags": sorted(indexed_tag_names(tenant.indexed_tags)),
    }


def _indexed_tags(raw: object) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise InvalidRequest(
            "indexed_tags must be a list of tag names", details={"field": "indexed_tags"}
        )
    names = sorted(set(raw))
    if len(names) > MAX_INDEXED_TAGS:
        raise InvalidRequest(
            f"at most {MAX_INDEXED_TAGS} tags can be indexed, got {len(names)}",
            details={"field": "indexed_tags"},
        )
    for name in names:
        if not _TAG_NAME.fullmatch(name):
            raise InvalidRequest(
                f"{name[:40]!r} is not a tag name (letters, digits, _ and -, up to 256; SES's "
                "own ses: tags are never indexed)",
                details={"field": "indexed_tags"},
            )
    return names


def update(tenant: TenantModel, body: dict[str, Any]) -> dict[str, Any]:
    """Apply the settings in `body` (each optional; an unknown one is a 400) and return them."""
    unknown = sorted(set(body) - set(SETTINGS))
    if unknown:
        raise InvalidRequest(f"unknown setting {unknown[0][:40]!r}", details={"field": unknown[0]})
    if "overview_rate" in body:
        rate = body["overview_rate"]
        if rate not in OVERVIEW_RATES:
            raise InvalidRequest(
                "overview_rate must be human or raw", details={"field": "overview_rate"}
            )
        tenant.update(actions=[TenantModel.overview_rate.set(rate)])
    if "indexed_tags" in body:
        names = _indexed_tags(body["indexed_tags"])
        before = dict(tenant.indexed_tags_since or {})
        now = keys.iso_ms(datetime.now(UTC))
        since = {n: before.get(n, now) for n in names}  # a tag kept keeps its time
        actions: list[Any]
        if names:
            actions = [
                TenantModel.indexed_tags.set(set(names)),
                TenantModel.indexed_tags_since.set(since),
            ]
        else:
            actions = [TenantModel.indexed_tags.remove(), TenantModel.indexed_tags_since.remove()]
        tenant.update(actions=actions)
    return settings_of(tenant)
