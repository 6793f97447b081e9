"""Engagement figures (no I/O, process CPU time over many events, never wall-clock):

- classify_cpu_us_per_event: what telling people from machines costs ingest, per event of the
  realistic mix (devstack.traffic): each open's and click's signal (user agent, relay ranges),
  its fact added to the message's log, and the counter corrections re-derived before and after
  (a Delivery re-derives too), the way ingest does it. Its share of ingest_cpu_us_per_event
  (ingest_bench: parse + fold + suppression + the same engagement work, on the same traffic) is
  classify_share_of_ingest_cpu; the goal is under 0.10. Both are the best of three runs.
- classify_cpu_us_per_engagement_event: the same, per open or click only.
- engagement_demo_shares: the final verdicts of the demo traffic (`make dev` seeds the same
  generator), the share of each class among opens and among clicks;
  engagement_demo_intended_shares: what the generator meant each open and click to be. They
  agree by construction — the generator and the rules were written together — so the pair is a
  regression check, not evidence of accuracy on real mail (see README, "Honest engagement").
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from chalicelib.events import engagement as eng
from chalicelib.events.ses import Click, Delivery, SesEvent, parse_envelope, parse_event
from chalicelib.events.state import MessageState, apply

from devstack.traffic import traffic

MESSAGES = 2_000


def _events(seed: int, truth: dict[str, str] | None = None) -> list[tuple[str, SesEvent]]:
    envelopes = list(traffic("111122223333", MESSAGES, seed=seed, truth=truth))
    return [(raw["id"], parse_event(parse_envelope(raw))) for raw in envelopes]


def _classify_cpu(events: list[tuple[str, SesEvent]]) -> tuple[float, float]:
    """Only the engagement work, each event against the state its message had before it."""
    states: dict[str, MessageState] = {}
    steps: list[tuple[SesEvent, MessageState | None, MessageState]] = []
    for _, event in events:
        mid = event.mail.message_id
        after = apply(states.get(mid), event)
        steps.append((event, states.get(mid), after))
        states[mid] = after
    eng._agent.cache_clear()  # a cold instance: every user agent is classified once
    engaged = 0
    start = time.process_time()
    for event, before, after in steps:
        signal = eng.signal_of(event)
        log = before.engagement if before is not None else eng.EngagementLog()
        ref = before.reference_ms if before is not None else 0
        if signal is not None:
            engaged += 1
            url = event.detail.link if isinstance(event.detail, Click) else None
            fact = eng.fact_of(event, after.sent_at, signal, url if url in after.links else None)
            new = log.add(fact)
            eng.counter_deltas(after.sent_at, (log, ref), (new, after.reference_ms), fact)
        elif isinstance(event.detail, Delivery) and log.facts:
            eng.counter_deltas(after.sent_at, (log, ref), (log, after.reference_ms), None)
    elapsed = time.process_time() - start
    return elapsed / len(steps) * 1e6, elapsed / max(1, engaged) * 1e6


def _shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {name: round(n / total, 3) for name, n in sorted(counts.items()) if n} if total else {}


def demo_shares(seed: int = 1) -> dict[str, Any]:
    """Final verdicts of the demo traffic, and the generator's intent, per opens and clicks."""
    truth: dict[str, str] = {}
    events = _events(seed, truth)
    states: dict[str, MessageState] = {}
    for _, event in events:
        states[event.mail.message_id] = apply(states.get(event.mail.message_id), event)
    verdicts = {
        mid: eng.assess(state.engagement, state.reference_ms) for mid, state in states.items()
    }
    got: dict[str, Counter[str]] = {"opens": Counter(), "clicks": Counter()}
    meant: dict[str, Counter[str]] = {"opens": Counter(), "clicks": Counter()}
    agree = engaged = 0
    for envelope_id, event in events:
        signal = eng.signal_of(event)
        if signal is None:
            continue
        state = states[event.mail.message_id]
        url = event.detail.link if isinstance(event.detail, Click) else None
        fact = eng.fact_of(event, state.sent_at, signal, url if url in state.links else None)
        verdict = verdicts[event.mail.message_id].verdict(fact).engagement.value
        kind = "clicks" if isinstance(event.detail, Click) else "opens"
        got[kind][verdict] += 1
        meant[kind][truth[envelope_id]] += 1
        engaged += 1
        agree += verdict == truth[envelope_id]
    return {
        "engagement_demo_events": {kind: sum(c.values()) for kind, c in got.items()},
        "engagement_demo_shares": {kind: _shares(c) for kind, c in got.items()},
        "engagement_demo_intended_shares": {kind: _shares(c) for kind, c in meant.items()},
        "engagement_demo_agreement": round(agree / max(1, engaged), 4),
    }


def run() -> dict[str, Any]:
    from bench.ingest_bench import _cpu

    events = _events(seed=5)  # the traffic ingest_bench measures
    ingest = min(_cpu(MESSAGES) for _ in range(3))
    classify, per_engaged = min(_classify_cpu(events) for _ in range(3))
    return {
        "classify_cpu_us_per_event": round(classify, 2),
        "classify_cpu_us_per_engagement_event": round(per_engaged, 2),
        "classify_share_of_ingest_cpu": round(classify / ingest, 3),
        **demo_shares(),
    }


if __name__ == "__main__":
    print(run())
