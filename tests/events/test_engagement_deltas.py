"""The counter corrections of one open or click: the usual case (a new fact, the same delivery,
nothing pushed out of the log) derives only the verdicts that can change, and gives exactly what
re-deriving the whole log before and after gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from chalicelib.events import engagement as eng
from chalicelib.events.engagement import CLICK, OPEN, EngagementLog, Fact

H, A, P, S, U = (eng.CODES[c.value] for c in eng.CLASSES)
SENT = datetime(2026, 11, 9, 9, 59, 58, tzinfo=UTC)  # facts cross an hour and a day rarely


def _fact(rng: random.Random, links: list[str | None]) -> Fact:
    kind = rng.choice([OPEN, CLICK])
    return Fact(
        rng.randint(0, 12_000),  # within a few windows: near delivery and bursts fire and change
        kind,
        rng.choice([H, H, H, U, A, P, S]),
        rng.choice(links) if kind == CLICK else None,
    )


def _rederived(old: EngagementLog, new: EngagementLog, ref: int, added: Fact) -> eng.CounterDeltas:
    """What every verdict re-derived before and after the fact gives (the general case)."""
    new_v = eng.derive(new.facts, ref)
    deltas = eng.CounterDeltas(eng._assessment(new, new_v))
    sent_ms = (SENT - eng.EPOCH) // eng._MS
    eng._everything_that_changed(deltas, old, ref, new, new_v, added, sent_ms)
    return deltas


@pytest.mark.parametrize("seed", range(6))
def test_the_usual_case_gives_what_rederiving_everything_gives(seed: int) -> None:
    rng = random.Random(seed)
    links = ["https://a", "https://b", "https://c", None]
    checked = moved_first = burst = 0
    for _ in range(150):
        ref = rng.choice([0, 0, 1_500, 4_000])
        log = EngagementLog()
        overflow = rng.random() < 0.2  # some logs carry overflow from a smaller cap
        cap = 6 if overflow else eng.MAX_FACTS
        for _ in range(rng.randint(1, 12)):
            fact = _fact(rng, links)
            new = log.add(fact, cap=cap)
            got = eng.counter_deltas(SENT, (log, ref), (new, ref), fact)
            want = _rederived(log, new, ref, fact)
            assert got.hours == want.hours, (log, fact, ref)
            assert got.links == want.links, (log, fact, ref)
            assert got.verdict == want.assessment.verdict(fact)
            assert got.assessment.verdicts == want.assessment.verdicts
            checked += 1
            moved_first += any(n < 0 for c in got.hours.values() for n in c.values())
            burst += got.verdict == eng._LINK_BURST
            log = new
    # The cases that matter were exercised, not only the trivial ones.
    assert checked > 500 and moved_first > 20 and burst > 20


def test_the_usual_case_derives_only_the_new_facts_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """An open or click that changes no other verdict costs ingest one verdict, not a log's."""
    calls: list[int] = []
    derive = eng.derive

    def counted(facts: tuple[Fact, ...], reference_ms: int) -> list[eng.Verdict]:
        calls.append(len(facts))
        return derive(facts, reference_ms)

    monkeypatch.setattr(eng, "derive", counted)
    log, ref = EngagementLog(), 1_000
    for i in range(40):
        kind = OPEN if i % 3 else CLICK
        fact = Fact(10_000 + i * 60_000, kind, H, "https://a" if kind == CLICK else None)
        new = log.add(fact)
        deltas = eng.counter_deltas(SENT, (log, ref), (new, ref), fact)
        assert deltas.verdict == eng._PLAIN[H]
        log = new
    assert calls == []
    # A Delivery that moves the reference re-derives the log (every verdict may change).
    eng.counter_deltas(SENT, (log, ref), (log, 500), None)
    assert calls == [40, 40]
