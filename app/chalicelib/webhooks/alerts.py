"""Reputation alerts: a tenant's bounce and complaint rates against lines, checked as the counters
move, told as `alert.*` webhooks and by email to the tenant's admins, and optionally pausing the
tenant's sending until an admin resumes it.

    rule            counts                       fires at (default)   SES's line
    bounce_rate     hard bounces / recipients    >= 5 %               review at 5 %, pause at 10 %
    complaint_rate  complaints / recipients      >= 0.1 %             review at 0.1 %, pause 0.5 %

Both count over the last `window_hours` (24) of the hourly counters ingest keeps (the overview's
rates, history/reports.py, use the same counts), and only when at least `min_volume` (200)
recipients were sent to in the window: a rate over a handful of messages says nothing.

Hysteresis: a rule fires when the rate reaches its threshold and resolves only when it falls
below `resolve_ratio` (0.8) of it, so a rate wobbling around the line fires once and does not
flap. Too little volume changes nothing either way.

Once: a rule's state changes with a conditional write on its revision, so of several evaluations
racing (several ingest instances cue them, enqueue.py), exactly one fires or resolves it, and
only that one sends its webhooks and emails.

Auto-pause (off by default): when a rule with `auto_pause` fires, the tenant's sends are refused
with a 423 naming the alert (pause.py) — single sends and bulk batches alike — until an admin
resumes with POST /alerts/resume. Resolving does not resume by itself: a person decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import InvalidRequest, NotFound
from chalicelib.core.tables import AlertRuleModel
from chalicelib.webhooks import payloads
from chalicelib.webhooks.payloads import Outgoing
from chalicelib.webhooks.store import WebhookStore

log = logging.getLogger("sesami.alerts")


@dataclass(frozen=True)
class Rule:
    name: str
    counter: str  # the hourly counter counted against SENT
    label: str
    threshold: float
    window_hours: int = 24
    min_volume: int = 200
    resolve_ratio: float = 0.8
    auto_pause: bool = False
    enabled: bool = True

    @property
    def resolve_below(self) -> float:
        return self.threshold * self.resolve_ratio


DEFAULTS: dict[str, Rule] = {
    "bounce_rate": Rule("bounce_rate", "BOUNCED_PERMANENT", "bounce rate", 0.05),
    "complaint_rate": Rule("complaint_rate", "COMPLAINED", "complaint rate", 0.001),
}
# What a tenant may change, with its bounds.
BOUNDS: dict[str, tuple[type, float, float]] = {
    "threshold": (float, 0.0001, 1.0),
    "window_hours": (int, 1, 168),
    "min_volume": (int, 1, 10_000_000),
    "resolve_ratio": (float, 0.1, 1.0),
}
FLAGS = ("auto_pause", "enabled")
HISTORY_SHOWN = 50

Publish = Callable[[str, Iterable[Outgoing]], int]
Tell = Callable[[str, str, str], object]


def rule_of(name: str, config: Mapping[str, Any] | None) -> Rule:
    return replace(DEFAULTS[name], **dict(config or {}))


def parse_config(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(BOUNDS) - set(FLAGS))
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}", details={"field": unknown[0]})
    out: dict[str, Any] = {}
    for name, (kind, low, high) in BOUNDS.items():
        if name not in body:
            continue
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{name} must be a number", details={"field": name})
        if not low <= value <= high:  # NaN and infinities fail here too
            raise InvalidRequest(f"{name} must be {low}-{high}", details={"field": name})
        if kind is int and value != int(value):
            raise InvalidRequest(f"{name} must be a whole number", details={"field": name})
        out[name] = kind(value)
    for name in FLAGS:
        if name in body:
            if not isinstance(body[name], bool):
                raise InvalidRequest(f"{name} must be true or false", details={"field": name})
            out[name] = body[name]
    return out


def _now() -> datetime:
    return datetime.now(UTC)


class AlertService:
    def __init__(
        self,
        store: WebhookStore,
        publish: Publish,
        tell_admins: Tell,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store, self._publish, self._tell, self._clock = store, publish, tell_admins, clock

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, tenant_id: str) -> list[dict[str, Any]]:
        """Check every rule against the counters now; the alerts that fired or resolved."""
        tenant = self._store.tenant(tenant_id)
        if tenant is None:
            return []
        items = self._store.alert_rules(tenant_id)
        now = self._clock()
        counts: dict[int, Mapping[str, int]] = {}
        changes = []
        for name in DEFAULTS:
            item = items.get(name)
            rule = rule_of(name, item.config if item else None)
            if not rule.enabled:
                continue
            if rule.window_hours not in counts:
                start = now - timedelta(hours=rule.window_hours)
                shards = int(tenant.write_shards or 1)
                counts[rule.window_hours] = self._store.reputation_counts(
                    tenant_id, shards, start, now
                )
            measured = _measure(rule, counts[rule.window_hours])
            firing = item is not None and item.state == "firing"
            enough = measured["volume"] >= rule.min_volume
            if not firing and enough and measured["value"] >= rule.threshold:
                change = self._change(tenant_id, rule, item, "firing", measured, now)
            elif firing and enough and measured["value"] < rule.resolve_below:
                change = self._change(tenant_id, rule, item, "ok", measured, now)
            else:
                continue
            if change is not None:
                changes.append(change)
        return changes

    def _change(
        self,
        tenant_id: str,
        rule: Rule,
        item: AlertRuleModel | None,
        state: str,
        measured: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any] | None:
        firing = state == "firing"
        alert_id = (
            f"al_{rule.name}_{now.strftime('%Y%m%dT%H%M%S')}"
            if firing
            else (item.alert_id if item and item.alert_id else f"al_{rule.name}")
        )
        revision = int(item.revision) if item is not None else None
        updated = AlertRuleModel(
            keys.alerts_pk(tenant_id),
            keys.alert_rule_sk(rule.name),
            config=item.config if item else None,
            state=state,
            alert_id=alert_id,
            since=keys.iso_ms(now),
            last={"at": keys.iso_ms(now), **measured},
            revision=(revision or 0) + 1,
        )
        if not self._store.save_rule(updated, revision=revision):
            return None  # another evaluation changed it first: it tells
        paused = False
        data = {
            "alert_id": alert_id,
            "rule": rule.name,
            "label": rule.label,
            "state": state,
            **measured,
            "threshold": rule.threshold,
            "resolve_below": round(rule.resolve_below, 6),
            "window_hours": rule.window_hours,
            "min_volume": rule.min_volume,
            "since": keys.iso_ms(now),
        }
        if firing and rule.auto_pause:
            tenant = self._store.tenant(tenant_id)
            pause = {k: data[k] for k in ("alert_id", "rule", "label", "value", "threshold")}
            pause["since"] = data["since"]
            paused = tenant is not None and self._store.pause(tenant, pause)
        data["sending_paused"] = paused
        self._store.add_history(tenant_id, rule.name, now, {"event": state, **data})
        kind = payloads.ALERT_FIRED if firing else payloads.ALERT_RESOLVED
        self._publish(tenant_id, [payloads.alert(tenant_id, kind, data, now)])
        self._tell(tenant_id, _subject(rule, firing), _text(rule, data, firing, paused))
        log.warning("alert %s %s for tenant %s: %s", rule.name, state, tenant_id, measured)
        return data

    # ------------------------------------------------------------------ the API

    def view(self, tenant_id: str) -> dict[str, Any]:
        tenant = self._store.tenant(tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        items = self._store.alert_rules(tenant_id)
        now = self._clock()
        rules = []
        for name in DEFAULTS:
            item = items.get(name)
            rule = rule_of(name, item.config if item else None)
            start = now - timedelta(hours=rule.window_hours)
            counted = self._store.reputation_counts(
                tenant_id, int(tenant.write_shards or 1), start, now
            )
            rules.append(
                {
                    **asdict(rule),
                    "resolve_below": round(rule.resolve_below, 6),
                    "state": item.state if item else "ok",
                    "alert_id": item.alert_id if item and item.state == "firing" else None,
                    "since": item.since if item else None,
                    "current": _measure(rule, counted),
                }
            )
        return {
            "rules": rules,
            "sending_paused": tenant.sending_paused,
            "history": self._store.history(tenant_id, HISTORY_SHOWN),
        }

    def set_rule(self, tenant_id: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if name not in DEFAULTS:
            raise NotFound(f"no alert rule {name[:40]!r}", details={"rules": list(DEFAULTS)})
        config = parse_config(body)
        for _attempt in range(3):
            item = self._store.alert_rules(tenant_id).get(name)
            merged = {**dict(item.config or {}), **config} if item else config
            updated = AlertRuleModel(
                keys.alerts_pk(tenant_id),
                keys.alert_rule_sk(name),
                config=merged,
                state=item.state if item else "ok",
                alert_id=item.alert_id if item else None,
                since=item.since if item else None,
                last=item.last if item else None,
                revision=(int(item.revision) if item else 0) + 1,
            )
            if self._store.save_rule(updated, revision=int(item.revision) if item else None):
                return self.view(tenant_id)
        raise InvalidRequest("the rule changed while it was being saved; try again")

    def resume(self, tenant_id: str, by: str) -> dict[str, Any]:
        tenant = self._store.tenant(tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        paused = tenant.sending_paused
        if paused:
            self._store.resume(tenant)
            now = self._clock()
            doc = {"event": "resumed", "by": by, "alert_id": paused.get("alert_id")}
            doc["at"] = keys.iso_ms(now)
            self._store.add_history(tenant_id, str(paused.get("rule", "pause")), now, doc)
        return self.view(tenant_id)


def _measure(rule: Rule, counts: Mapping[str, int]) -> dict[str, Any]:
    volume = int(counts.get("SENT", 0))
    count = int(counts.get(rule.counter, 0))
    return {"value": round(count / volume, 6) if volume else 0.0, "volume": volume, "count": count}


def _subject(rule: Rule, firing: bool) -> str:
    return f"SESami alert: {rule.label} {'above' if firing else 'back under'} its line"


def _text(rule: Rule, data: Mapping[str, Any], firing: bool, paused: bool) -> str:
    rate = f"{100 * float(data['value']):.2f} %"
    window = f"the last {rule.window_hours} hours ({data['count']} of {data['volume']} recipients)"
    if firing:
        lines = [
            f"Your {rule.label} is {rate} over {window}; the alert line is "
            f"{100 * rule.threshold:g} %. SES reviews an account from 5 % bounces or 0.1 % "
            "complaints, and may pause it from 10 % or 0.5 %.",
        ]
        if paused:
            lines.append(
                "SESami has paused sending for your account (this rule's auto-pause): sends are "
                "refused until an admin resumes them on the Alerts page (POST /alerts/resume)."
            )
    else:
        lines = [f"Your {rule.label} is back to {rate} over {window}."]
    return "\n\n".join([*lines, f"Alert {data['alert_id']}."])
