"""What one event may make ingest store, whatever it carries.

SES allows 50 recipients and 50 tags of 256 + 256 characters per message, and every event of
that message repeats them. Stored as they come, one such event wrote ~2,250 items (a row per
recipient, a copy per recipient and tag): ~130,000 write units, and each tag partition past
DynamoDB's 1,000 writes/s. Ingest therefore stores at most:

- MAX_ROW_RECIPIENTS rows per event in the events table (time, status and recipient views): the
  message aggregate and the event's entry in its message partition still name every recipient;
  only the per-recipient rows past the cap are not written;
- MAX_STORED_TAGS user tags of at most MAX_STORED_TAG_CHARS characters together (names and
  values), the rest dropped whole, in name order (so every delivery of a message keeps the
  same ones). SES's own `ses:` tags are kept: SES sets them, a handful of short values;
- tag-view copies only for the tags the tenant designated (`TenantModel.indexed_tags`, at
  most core.tables.MAX_INDEXED_TAGS): a filter on any other tag reads the time view, filtered.

Nothing is dropped silently: what a cap left out is counted on the event's row and entry
(`detail.capped`: {"recipients": n, "tags": n}) and in the `CappedEvents` metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chalicelib.events.ses import SesEvent

MAX_ROW_RECIPIENTS = 5
MAX_STORED_TAGS = 10
MAX_STORED_TAG_CHARS = 1_024
SES_TAG_PREFIX = "ses:"


@dataclass(frozen=True)
class Capped:
    event: SesEvent  # the event as stored: user tags within the caps
    row_recipients: tuple[str, ...]  # the recipients that get a row
    dropped: dict[str, int] = field(default_factory=dict)  # what the caps left out, by kind


def cap(event: SesEvent) -> Capped:
    dropped: dict[str, int] = {}
    recipients = event.recipients
    if len(recipients) > MAX_ROW_RECIPIENTS:
        dropped["recipients"] = len(recipients) - MAX_ROW_RECIPIENTS
        recipients = recipients[:MAX_ROW_RECIPIENTS]
    tags = event.mail.tags
    kept: dict[str, tuple[str, ...]] = {}
    budget, count, cut = MAX_STORED_TAG_CHARS, 0, 0
    for name in sorted(tags):
        values = tags[name]
        if name.startswith(SES_TAG_PREFIX):
            kept[name] = values
            continue
        size = len(name) + sum(len(v) for v in values)
        if count >= MAX_STORED_TAGS or size > budget:
            cut += 1
            continue
        kept[name] = values
        budget -= size
        count += 1
    if cut:
        dropped["tags"] = cut
        event = replace(event, mail=replace(event.mail, tags=kept))
    return Capped(event, recipients, dropped)
