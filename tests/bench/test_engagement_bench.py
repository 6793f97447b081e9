"""The engagement CPU figures: classify and ingest are measured the same way, in the same run, in
interleaved rounds, and the published share is the one of the two published figures (never a
figure of another measurement). No timing is asserted: the measurements are replaced by fixed
values, and the committed results are checked for consistency."""

from __future__ import annotations

import json

import pytest

from bench import engagement_bench
from devstack.traffic import traffic
from tests.conftest import ROOT


def test_share_is_the_published_classify_over_the_published_ingest_measured_slice_by_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fixed costs per event stand in for the measurements: ingest 40, 80, 60 µs in the three
    rounds, classify 3, 9, 5 µs."""
    order: list[tuple[int, str, int]] = []  # (round, which, slice length)
    ingest_us, classify_us = [40.0, 80.0, 60.0], [3.0, 9.0, 5.0]
    current = [-1]  # the round: each starts with a fresh IngestCompute

    class FakeIngest:
        def __init__(self) -> None:
            current[0] += 1

        def run(self, envelopes: list[dict[str, object]]) -> float:
            order.append((current[0], "ingest", len(envelopes)))
            return ingest_us[current[0]] * len(envelopes) / 1e6

    def fake_classify(steps: list[engagement_bench.Step]) -> float:
        order.append((current[0], "classify", len(steps)))
        return classify_us[current[0]] * len(steps) / 1e6

    monkeypatch.setattr(engagement_bench, "IngestCompute", FakeIngest)
    monkeypatch.setattr(engagement_bench, "_classify_cpu", lambda steps: 0.0)  # the warm-up
    events = len(list(traffic(engagement_bench.ACCOUNT, 80, seed=5)))
    slices = -(-events // engagement_bench.SLICE)
    assert slices >= 2
    monkeypatch.setattr(engagement_bench, "_classify_cpu", fake_classify)
    got = engagement_bench.cpu_figures(messages=80, rounds=3)
    # Every event is measured by both, once a round, and the two take turns going first.
    for r in range(3):
        mine = [(which, n) for rr, which, n in order if rr == r]
        assert sum(n for which, n in mine if which == "ingest") == events
        assert sum(n for which, n in mine if which == "classify") == events
        firsts = [mine[2 * i][0] for i in range(slices)]
        assert firsts == [("ingest", "classify")[(i + r) % 2] for i in range(slices)]
    assert got["ingest_cpu_us_per_event"] == 60.0  # medians
    assert got["classify_cpu_us_per_event"] == 5.0
    assert got["classify_share_of_ingest_cpu"] == round(5.0 / 60.0, 3)
    assert got["classify_share_of_ingest_cpu_range"] == [0.075, 0.113]  # 3/40 and 9/80


def test_the_committed_share_is_of_the_committed_figures_and_meets_the_goal() -> None:
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    classify = results["classify_cpu_us_per_event"]
    ingest = results["ingest_cpu_us_per_event"]
    assert results["classify_share_of_ingest_cpu"] == round(classify / ingest, 3)
    low, high = results["classify_share_of_ingest_cpu_range"]
    assert low <= results["classify_share_of_ingest_cpu"] <= high
    assert results["classify_share_of_ingest_cpu"] < 0.10  # the goal
