"""One message: its summary from the aggregate, its timeline a page at a time.

GET /messages/{id} used to read every timeline entry of the message: thousands of opens made a
multi-megabyte response and as many reads. Now the summary (status, recipients, opens and clicks
by class, clicks per link) comes from the aggregate alone, which is bounded (events/state.py),
and the timeline is paged out of the message's partition in time order: at most `limit` entries
and at most `MAX_PAGE_BYTES` of JSON per response, continued by a signed cursor bound to the
tenant and the message (invariant 6), like GET /events's `next`.

Each entry's class is the final verdict: re-derived from the aggregate's facts (the earliest
MAX_FACTS opens and clicks, against the earliest delivery, see events/engagement.py), not the
class the event got on arrival; an entry past the kept facts keeps its signal, as the counters do.
"""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import InvalidRequest, NotFound
from chalicelib.core.item_size import compact_json
from chalicelib.core.signing import Signer
from chalicelib.core.tables import AGGREGATE_SK, MessageEventModel, MessageModel
from chalicelib.events import engagement as eng
from chalicelib.events.links import is_truncated
from chalicelib.events.messages import entry_recipients
from chalicelib.events.status import STATUS_OF, EventType, Status

CURSOR_PURPOSE = "message-timeline"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_PAGE_BYTES = 240_000  # of JSON per response, summary included: under 256 KB


def live(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at > now


def aggregate(tenant_id: str, message_id: str, now: datetime) -> MessageModel | None:
    """The live aggregate; a message wholly erased (a tombstone, lifecycle/erasure.py) is none."""
    try:
        item = MessageModel.get(keys.message_pk(tenant_id, message_id), AGGREGATE_SK)
    except MessageModel.DoesNotExist:
        return None
    if (item.body or {}).get("erased") == "whole":
        return None
    return item if live(item.expires_at, now) else None


def aggregates(tenant_id: str, message_ids: list[str], now: datetime) -> dict[str, MessageModel]:
    """The live aggregates of several messages in BatchGetItem requests (100 keys each), not one
    GetItem after another; a message wholly erased or expired is left out."""
    wanted = [(keys.message_pk(tenant_id, m), AGGREGATE_SK) for m in dict.fromkeys(message_ids)]
    found = {}
    for item in MessageModel.batch_get(wanted):
        if (item.body or {}).get("erased") != "whole" and live(item.expires_at, now):
            found[item.message()] = item
    return found


def judged(body: dict[str, Any]) -> eng.Assessment:
    """The message's opens and clicks by class, derived from its stored facts."""
    log, delivered = eng.log_from_doc(body.get("engagement"), body.get("links", {}))
    return eng.assess(log, delivered or 0)


def message_detail(
    tenant_id: str,
    message_id: str,
    now: datetime | None = None,
    *,
    signer: Signer | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The summary and one page of the timeline (oldest first), `next` continuing it. Without a
    `signer` (in-process callers reading one page) the cursor is signed by a throwaway key."""
    now = now or datetime.now(UTC)
    signer = signer or Signer(secrets.token_bytes(32))
    after = _position(signer, cursor, tenant_id, message_id)
    agg = aggregate(tenant_id, message_id, now)
    if agg is None:
        raise NotFound(f"no message {message_id[:80]!r} for this tenant")
    body = agg.body or {}
    assessment = judged(body)
    out = _summary(agg, body, assessment)
    budget = MAX_PAGE_BYTES - len(compact_json(out).encode()) - 1_000  # user agents, cursor
    pk = keys.message_pk(tenant_id, message_id)
    start = {"pk": {"S": pk}, "sk": {"S": after}} if after else None
    entries = MessageEventModel.query(
        pk,
        MessageEventModel.sk.startswith("E#"),
        last_evaluated_key=start,
        limit=limit + 1,
        page_size=limit + 1,
    )
    sent = datetime.fromisoformat(agg.sent_at)
    links = body.get("links", {})
    events: list[dict[str, Any]] = []
    user_agents: dict[str, Counter[str]] = {}
    last_sk, more = None, False
    for entry in entries:
        if len(events) >= limit:
            more = True
            break
        if not live(entry.expires_at, now):
            last_sk = entry.sk
            continue
        view = _entry_view(entry, sent, links, assessment, body.get("destination", []))
        size = len(compact_json(view).encode()) + 1
        if events and size > budget:
            more = True
            break
        budget -= size
        events.append(view)
        last_sk = entry.sk
        ua = view["detail"].get("user_agent")
        if view["status"] == Status.OPENED.value and ua is not None:
            user_agents.setdefault(ua, Counter())[
                view["detail"].get("engagement", "unclassified")
            ] += 1
    out["events"] = events
    out["opens"]["user_agents"] = [
        {"user_agent": ua, "count": sum(by.values()), "by_class": dict(by)}
        for ua, by in sorted(user_agents.items(), key=lambda kv: -sum(kv[1].values()))
    ]
    whole = cursor is None and not more
    out["opens"]["user_agents_scope"] = "message" if whole else "page"
    out["next"] = (
        signer.sign(CURSOR_PURPOSE, {"t": tenant_id, "m": message_id, "a": last_sk})
        if more and last_sk
        else None
    )
    return out


def _position(signer: Signer, cursor: str | None, tenant_id: str, message_id: str) -> str | None:
    if cursor is None:
        return None
    data = signer.verify(CURSOR_PURPOSE, cursor, field="next")
    after = data.get("a")
    if data.get("t") != tenant_id or data.get("m") != message_id or not isinstance(after, str):
        raise InvalidRequest("next is not a valid token", details={"field": "next"})
    if not after.startswith("E#"):
        raise InvalidRequest("next is not a valid token", details={"field": "next"})
    return after


def _summary(agg: MessageModel, body: dict[str, Any], assessment: eng.Assessment) -> dict[str, Any]:
    links_by = assessment.link_split()
    overflow = eng.log_from_doc(body.get("engagement"), body.get("links", {}))[0].overflow
    return {
        "message_id": agg.message(),
        "subject": agg.subject,
        "from": agg.source,
        "sent_at": agg.sent_at,
        "status": agg.status,
        "status_at": agg.status_at,
        "destination": body.get("destination", []),
        "tags": body.get("tags", {}),
        "event_count": int(agg.events or 0),
        "recipients": recipients_by_class(agg, body, assessment),
        "opens": {
            "count": agg.opens,
            "human": assessment.by_class(eng.OPEN).get("human", 0),
            "by_class": assessment.by_class(eng.OPEN),
            "first_at": body.get("first_open_at"),
            "last_at": body.get("last_open_at"),
        },
        "clicks": {
            "count": agg.clicks,
            "human": assessment.by_class(eng.CLICK).get("human", 0),
            "by_class": assessment.by_class(eng.CLICK),
            "links": [
                {
                    "url": url,
                    "count": n,
                    "human": links_by.get(url, {}).get("human", 0),
                    "scanner": links_by.get(url, {}).get("scanner", 0),
                    "truncated": is_truncated(url),
                }
                for url, n in sorted(links.items(), key=lambda kv: -kv[1])
            ]
            if (links := body.get("links", {}))
            else [],
            "other_links": body.get("links_other", 0),
        },
        # What the aggregate's bounds left out, counted (events/state.py).
        "bounded": {
            "recipients_other": body.get("recipients_other", 0),
            "tags_dropped": body.get("tags_dropped", 0),
            "engagement_unjudged": sum(o.n for o in overflow),
        },
    }


def recipients_by_class(
    agg: MessageModel, body: dict[str, Any], assessment: eng.Assessment
) -> dict[str, Any]:
    """Per recipient (its status, rank and time the message's unless it has its own:
    events/messages.py); SES attributes opens and clicks to a recipient only on a message to
    one address, so that recipient's by class are the message's."""
    same = {"status": agg.status, "rank": int(agg.status_rank), "status_at": agg.status_at}
    recipients = {a: {**same, **doc} for a, doc in body.get("recipients", {}).items()}
    destination = body.get("destination", [])
    if len(destination) == 1 and destination[0] in recipients:
        recipients[destination[0]].update(
            opens_by=assessment.by_class(eng.OPEN), clicks_by=assessment.by_class(eng.CLICK)
        )
    return recipients


def _entry_view(
    entry: MessageEventModel,
    sent: datetime,
    links: dict[str, int],
    assessment: eng.Assessment,
    destination: list[str],
) -> dict[str, Any]:
    detail = dict(entry.detail or {})
    signal = detail.get("signal")
    if entry.event_type in ("Open", "Click") and signal in eng.CODES:
        link = detail.get("link") if entry.event_type == "Click" else None
        fact = eng.Fact(
            eng.ms_between(sent, datetime.fromisoformat(entry.at())),
            eng.CLICK if entry.event_type == "Click" else eng.OPEN,
            eng.CODES[signal],
            link if link in links else None,
        )
        verdict = assessment.verdict(fact)
        detail["engagement"] = verdict.engagement.value
        detail["engagement_reason"] = verdict.timing or str(detail.get("signal_reason", ""))
    recipients, more = entry_recipients(entry, destination)
    return {
        "id": entry.key(),
        "type": entry.event_type,
        "status": entry.status or STATUS_OF[EventType(entry.event_type)].value,
        "at": entry.at(),
        "recipients": recipients,
        "recipients_more": more,  # recipients it concerns past the ones it names
        "detail": detail,
    }
