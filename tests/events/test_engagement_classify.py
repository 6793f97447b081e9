"""Who opened, who clicked: recorded opens and clicks with real user agents classify as their
sources say, the timing rules (delivery, link bursts) hold in every arrival order, and the
aggregate's counter corrections add up to the same totals whatever the order.

User agents, and where each one is documented (see also tests/events/README.md):
- `Mozilla/5.0` alone: Apple Mail Privacy Protection (ua-parser/uap-core issue #509).
- `... (via ggpht.com GoogleImageProxy)`: Gmail's image proxy (browscap issue #1108,
  ua-parser/uap-core pull #170); `YahooMailProxy; https://help.yahoo.com/kb/...`: Yahoo's
  (ua-parser/uap-core pull #333, ua-parser-js issue #494).
- `Barracuda Sentinel (EE)`, `python-requests/2.32.3`: named by Braze's documentation of the
  user agents its bot-click filter drops; `HeadlessChrome/...`: ua-parser/uap-core pull #228.
- Microsoft Defender Safe Links, Mimecast and Proofpoint do not announce themselves: they fetch
  with an ordinary browser user agent, so the gateway fixtures carry a plain Chrome one and only
  the timing rules can tell.
"""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from chalicelib.events import engagement as eng
from chalicelib.events.engagement import CLICK, OPEN, Engagement, EngagementLog, Fact
from chalicelib.events.relay_ranges import DEFAULT_PATH, RelayRanges, load
from chalicelib.events.ses import SesEvent, parse_envelope, parse_event
from chalicelib.events.state import MessageState, apply

from tests.conftest import load_event

H, A, P, S, U = (eng.CODES[c.value] for c in eng.CLASSES)
SAMPLE = load(DEFAULT_PATH, today=date(2026, 7, 10))  # the shipped sample, fresh
NONE = RelayRanges()  # no usable ranges: what a missing or stale file gives


def ev(name: str) -> SesEvent:
    return parse_event(parse_envelope(load_event(name)))


def fold(names: list[str] | tuple[str, ...], ranges: RelayRanges = SAMPLE) -> MessageState:
    state = None
    for name in names:
        event = ev(name)
        state = apply(state, event, signal=eng.signal_of(event, ranges))
    assert state is not None
    return state


def verdicts(state: MessageState) -> list[tuple[int, str, str]]:
    judged = eng.assess(state.engagement, state.reference_ms)
    return [(f.t_ms, f.kind, judged.verdict(f).engagement.value) for f in state.engagement.facts]


RECORDED = [
    ("open", Engagement.HUMAN),  # iPhone Mail loading images itself (MPP off)
    ("open_second", Engagement.HUMAN),  # Thunderbird
    ("open_image_proxy", Engagement.IMAGE_PROXY),  # Gmail
    ("click", Engagement.HUMAN),  # Safari on iPhone
    ("engagement/open_apple_mpp", Engagement.APPLE_PRIVACY),
    ("engagement/open_yahoo_proxy", Engagement.IMAGE_PROXY),
    ("engagement/open_headless", Engagement.SCANNER),
    ("engagement/click_barracuda", Engagement.SCANNER),
    ("engagement/click_person_hour_later", Engagement.HUMAN),
    # Safari with iCloud Private Relay: a relay address, and a person (MPP never clicks).
    ("engagement/click_safari_private_relay", Engagement.HUMAN),
    # A gateway's fetches look like a browser: the signal alone says human, timing corrects it.
    ("engagement/open_gateway_prefetch", Engagement.HUMAN),
    ("engagement/click_gateway_1", Engagement.HUMAN),
]


@pytest.mark.parametrize(("name", "expected"), RECORDED)
def test_recorded_events_signal_their_class(name: str, expected: Engagement) -> None:
    signal = eng.signal_of(ev(name), SAMPLE)
    assert signal is not None and signal.engagement is expected, signal


@pytest.mark.parametrize(
    ("kind", "user_agent", "expected"),
    [
        (OPEN, "Mozilla/5.0", Engagement.APPLE_PRIVACY),
        (
            OPEN,
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
            "GoogleImageProxy)",
            Engagement.IMAGE_PROXY,
        ),
        (
            OPEN,
            "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.0.7) Gecko/2009021910 "
            "Firefox/3.0.7 (via ggpht.com GoogleImageProxy)",  # browscap issue #121, older form
            Engagement.IMAGE_PROXY,
        ),
        (
            OPEN,
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            Engagement.IMAGE_PROXY,
        ),
        (CLICK, "Barracuda Sentinel (EE)", Engagement.SCANNER),
        (CLICK, "python-requests/2.32.3", Engagement.SCANNER),
        (CLICK, "curl/8.5.0", Engagement.SCANNER),
        (
            CLICK,
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/80.0.3987.162 Safari/537.36",  # ua-parser/uap-core pull #228
            Engagement.SCANNER,
        ),
        (
            CLICK,
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            Engagement.SCANNER,
        ),
        (
            CLICK,
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            Engagement.HUMAN,
        ),
        (
            OPEN,
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
            "Thunderbird/128.4.0",
            Engagement.HUMAN,
        ),
        (OPEN, "Mozilla/4.0 (compatible; ms-office; MSOffice 16)", Engagement.HUMAN),
        # An Android phone whose model name ends in "bot" is still a person.
        (
            CLICK,
            "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            Engagement.HUMAN,
        ),
        (OPEN, None, Engagement.UNKNOWN),
        (OPEN, "", Engagement.UNKNOWN),
        (CLICK, "Mozilla/5.0", Engagement.UNKNOWN),  # MPP's form never clicks
        (
            CLICK,
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
            "GoogleImageProxy)",
            Engagement.UNKNOWN,
        ),
        (OPEN, "SomeMailFetcher", Engagement.UNKNOWN),
    ],
)
def test_user_agents_from_public_sources(
    kind: str, user_agent: str | None, expected: Engagement
) -> None:
    assert eng.classify(kind, user_agent, "198.51.100.9", NONE).engagement is expected


def test_apple_form_is_corroborated_by_the_relay_list_and_contradicted_by_a_complete_one() -> None:
    assert eng.classify(OPEN, "Mozilla/5.0", "172.224.226.7", SAMPLE).reason == "ua+ip:apple_relay"
    # A sample is no evidence against: the bare form stays Apple's on its own.
    outside = eng.classify(OPEN, "Mozilla/5.0", "198.51.100.9", SAMPLE)
    assert (outside.engagement, outside.reason) == (Engagement.APPLE_PRIVACY, "ua:apple_mpp")
    complete = RelayRanges(v4=SAMPLE.v4, v6=SAMPLE.v6, coverage="full", usable=True)
    assert eng.classify(OPEN, "Mozilla/5.0", "198.51.100.9", complete).engagement is (
        Engagement.UNKNOWN
    )
    assert eng.classify(OPEN, None, "172.224.226.7", SAMPLE).engagement is Engagement.APPLE_PRIVACY
    # Without usable ranges (missing or stale file) the user agent alone decides.
    assert eng.classify(OPEN, "Mozilla/5.0", "172.224.226.7", NONE).reason == "ua:apple_mpp"
    assert eng.classify(OPEN, None, "172.224.226.7", NONE).engagement is Engagement.UNKNOWN


GATEWAY = [
    "engagement/send",
    "engagement/delivery",
    "engagement/open_gateway_prefetch",
    "engagement/click_gateway_1",
    "engagement/click_gateway_2",
    "engagement/click_gateway_3",
    "engagement/click_person_hour_later",
]


def test_every_link_clicked_in_a_second_of_delivery_is_a_scanner_an_hour_later_human() -> None:
    state = fold(GATEWAY)
    got = [(kind, verdict) for _, kind, verdict in verdicts(state)]
    assert got == [
        ("o", "scanner"),
        ("c", "scanner"),
        ("c", "scanner"),
        ("c", "scanner"),
        ("c", "human"),
    ]
    first_click = next(f for f in state.engagement.facts if f.kind == CLICK)
    assert first_click.t_ms - state.reference_ms == 800  # 0.8 s after delivery


def test_verdicts_do_not_depend_on_the_order_events_arrive_in() -> None:
    expected = verdicts(fold(GATEWAY))
    for order in itertools.permutations(GATEWAY):
        assert verdicts(fold(order)) == expected, order


def test_open_before_its_delivery_is_judged_against_the_send_then_rederived() -> None:
    # 5.1 s after the send: no rule applies yet. The Delivery (4.5 s after the send) makes it
    # 0.6 s after delivery: a scanner.
    early = fold(["engagement/open_gateway_prefetch"])
    assert verdicts(early)[0][2] == "human"
    assert verdicts(fold(["engagement/open_gateway_prefetch", "engagement/delivery"]))[0][2] == (
        "scanner"
    )


def test_one_click_soon_after_delivery_or_the_same_link_twice_is_not_a_burst() -> None:
    later = timedelta(minutes=5) // timedelta(milliseconds=1)
    same_link = [Fact(later, CLICK, H, "https://a"), Fact(later + 400, CLICK, H, "https://a")]
    assert [v.engagement for v in eng.derive(same_link, 0)] == [Engagement.HUMAN] * 2
    two_links = [Fact(later, CLICK, H, "https://a"), Fact(later + 1900, CLICK, H, "https://b")]
    assert [v.timing for v in eng.derive(two_links, 0)] == ["timing:link_burst"] * 2
    apart = [Fact(later, CLICK, H, "https://a"), Fact(later + 2100, CLICK, H, "https://b")]
    assert [v.engagement for v in eng.derive(apart, 0)] == [Engagement.HUMAN] * 2
    # Timing never overrules a proxy or Apple: their fetches at delivery are what they are.
    verdicts = eng.derive([Fact(500, OPEN, A), Fact(500, OPEN, P)], 0)
    assert [(v.engagement, v.timing) for v in verdicts] == [
        (Engagement.APPLE_PRIVACY, None),
        (Engagement.IMAGE_PROXY, None),
    ]


def _facts(rng: random.Random, n: int) -> list[Fact]:
    links = ["https://a", "https://b", "https://c", None]
    out = []
    for _ in range(n):
        kind = rng.choice([OPEN, CLICK])
        out.append(
            Fact(
                rng.randint(0, 20_000),  # all within 20 s: timing rules fire and change
                kind,
                rng.choice([H, H, U, A, P, S]),
                rng.choice(links) if kind == CLICK else None,
            )
        )
    return out


def _summed(facts: list[Fact], delivery_ms: int, where: int, cap: int) -> dict[Any, int]:
    """Fold `facts` one by one (the Delivery after `where` of them) the way ingest does, and
    sum the counter corrections of every step."""
    sent = datetime(2026, 11, 9, 9, tzinfo=eng.EPOCH.tzinfo)
    log, ref = EngagementLog(), 0
    total: dict[Any, int] = {}

    def add(deltas: eng.CounterDeltas) -> None:
        for hour, counts in deltas.hours.items():
            for name, n in counts.items():
                total[(hour, name)] = total.get((hour, name), 0) + n
        for key, counts in deltas.links.items():
            for name, n in counts.items():
                total[(key, name)] = total.get((key, name), 0) + n

    for i, fact in enumerate(facts):
        if i == where:
            add(eng.counter_deltas(sent, (log, ref), (log, delivery_ms), None))
            ref = delivery_ms
        new = log.add(fact, cap=cap)
        add(eng.counter_deltas(sent, (log, ref), (new, ref), fact))
        log = new
    if where >= len(facts):
        add(eng.counter_deltas(sent, (log, ref), (log, delivery_ms), None))
    return {k: n for k, n in total.items() if n}


def test_counter_corrections_sum_to_the_same_totals_in_any_order_even_past_the_cap() -> None:
    rng = random.Random(17)
    facts = _facts(rng, 12)
    expected = _summed(facts, 2_000, 0, cap=5)
    assert sum(n for (_, name), n in expected.items() if name.startswith("OPENED_")) > 0
    for _ in range(40):
        order = facts[:]
        rng.shuffle(order)
        assert _summed(order, 2_000, rng.randint(0, len(order)), cap=5) == expected
    # Every fact is counted exactly once, in exactly one class.
    per_class = sum(
        n
        for (_, name), n in expected.items()
        if isinstance(name, str)
        and name.split("_", 1)[0] in ("OPENED", "CLICKED")
        and "MESSAGES" not in name
    )
    assert per_class == len(facts)


def test_the_log_keeps_the_earliest_facts_and_counts_the_rest() -> None:
    facts = [Fact(t, OPEN, H) for t in (50, 10, 40, 30, 20)]
    log = EngagementLog()
    for f in facts:
        log = log.add(f, cap=3)
    assert [f.t_ms for f in log.facts] == [10, 20, 30]
    assert log.overflow == (eng.Overflow(OPEN, H, None, 2, 40),)
    doc = eng.log_to_doc(log, [], 1_500)
    assert doc == {"d": 1_500, "f": ["10oh", "20oh", "30oh"], "o": [["oh", -1, 2, 40]]}
    assert eng.log_from_doc(doc, []) == (log, 1_500)
    clicks = EngagementLog((Fact(-5, CLICK, S, "https://b"), Fact(7, CLICK, H, None)))
    links = ["https://b", "https://a"]
    assert eng.log_to_doc(clicks, links)["f"] == ["-5cs1", "7ch"]  # index in the sorted links
    assert eng.log_from_doc(eng.log_to_doc(clicks, links), links) == (clicks, None)


def test_classifying_is_cached_and_cheap_to_repeat() -> None:
    eng._agent.cache_clear()
    for _ in range(100):
        eng.classify(CLICK, "curl/8.5.0", "198.51.100.9", NONE)
    info = eng._agent.cache_info()
    assert (info.misses, info.hits) == (1, 99)


def test_every_place_that_names_the_classes_names_the_same_ones() -> None:
    from pathlib import Path

    from chalicelib.history.routes import ENGAGEMENT_CLASSES

    names = tuple(c.value for c in Engagement)
    assert names == ENGAGEMENT_CLASSES
    dashboard = Path(eng.__file__).parent.parent / "web" / "dashboard" / "engagement.js"
    assert f"export const CLASSES = {list(names)};".replace("'", '"') in dashboard.read_text()
    from chalicelib.core.tables import CounterModel

    declared = set(CounterModel.get_attributes())
    assert {eng.counter_name(k, c) for k in (OPEN, CLICK) for c in names} <= declared
    assert set(eng.UNIQUE.values()) <= declared
