"""Who opened, who clicked: every Open and Click is the work of a person or of a machine.

Classes (`Engagement`):
- `human`: a person's mail client or browser, nothing says otherwise.
- `apple_privacy`: Apple Mail Privacy Protection (MPP) fetched the images through Apple's relays,
  at delivery, whether or not anyone reads the mail. A person may be behind it; nobody can tell.
- `image_proxy`: Gmail's or Yahoo's image proxy: a real open, whose device is hidden.
- `scanner`: a security gateway, link checker or script: a known automation user agent, an open
  or click within `MACHINE_DELAY` of delivery, or links of one message clicked in a burst.
- `unknown`: no user agent, one that is neither a client nor a known machine, or MPP's form from
  an address that the (complete, fresh) relay list says is not Apple's.

Two layers, so that the verdict does not depend on the order SES's events arrive in:
1. The *signal* of one event, from its own user agent and IP address (`signal_of`): decided at
   ingest and kept with the event and in the message aggregate.
2. The *verdict*, the signal corrected by timing against the message's other events (`derive`):
   its delivery time and its other clicks. It is a pure function of the message's facts (time,
   kind, signal, link of each open and click) and of its earliest Delivery, re-derived whenever an
   event is folded into the aggregate. So when an Open arrives before its Delivery, it is
   classified with what is known — against the send time, which is never later than the delivery
   — and the Delivery, when it comes, re-derives every verdict from the stored timestamps; the
   counters are corrected in the same transaction (`counter_deltas`). Any order of the same events
   gives the same verdicts, the same counts, the same counters.

Long by design: the rules, their sources and the compact stored form of the facts they read are
one unit; split, a rule's citation would live apart from the code that applies it.

What each rule rests on (the sources are public; none of these vendors documents its prefetcher):
- MPP's user agent is exactly `Mozilla/5.0` (ua-parser/uap-core issue #509, "Apple Mail proxy",
  September 2021), and MPP loads images through iCloud Private Relay's egress addresses (Word to
  the Wise, "Apple MPP reporting and geolocation", 2021), which Apple publishes (see
  `relay_ranges.py`). An address in the list corroborates the form; with the whole, fresh list, an
  address outside it contradicts it. A *click* from a relay address is a person in Safari with
  Private Relay: MPP never follows links.
- Gmail's image proxy: `... (via ggpht.com GoogleImageProxy)` (browscap issue #1108,
  ua-parser/uap-core pull #170). Yahoo's: `YahooMailProxy; https://help.yahoo.com/kb/
  yahoo-mail-proxy-SLN28749.html` (ua-parser/uap-core pull #333, ua-parser-js issue #494).
- Automation user agents: `Barracuda Sentinel (EE)` and `python-requests/...` are named in Braze's
  documentation on bot-click filtering; headless Chrome says `HeadlessChrome` (ua-parser/uap-core
  pull #228); Bing's page-preview fetcher says `BingPreview/1.0b` (as crawler-detection lists
  such as JayBizzle/Crawler-Detect record it); HTTP libraries name themselves. Most
  gateways (Microsoft Defender Safe Links, Mimecast, Proofpoint) present an ordinary browser user
  agent instead, so for them only timing tells.
- Timing: an inline gateway scans a message when it accepts it, that is at SES's Delivery
  timestamp, and fetches every link within a second or two; no person reads and clicks within
  `MACHINE_DELAY` of delivery, nor clicks two different links within `BURST_WINDOW`.
"""

from __future__ import annotations

import re
from bisect import insort
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from chalicelib.events.relay_ranges import RelayRanges, default_ranges
from chalicelib.events.ses import Click, Open, SesEvent


class Engagement(StrEnum):
    HUMAN = "human"
    APPLE_PRIVACY = "apple_privacy"
    IMAGE_PROXY = "image_proxy"
    SCANNER = "scanner"
    UNKNOWN = "unknown"


CLASSES = tuple(Engagement)
OPEN, CLICK = "o", "c"
MACHINE_DELAY = timedelta(seconds=3)
BURST_WINDOW = timedelta(seconds=2)
MAX_FACTS = 64  # facts kept per message; later ones are counted by their signal alone
_DELAY_MS = MACHINE_DELAY // timedelta(milliseconds=1)
_BURST_MS = BURST_WINDOW // timedelta(milliseconds=1)
_CODE = {
    Engagement.HUMAN: "h",
    Engagement.APPLE_PRIVACY: "a",
    Engagement.IMAGE_PROXY: "p",
    Engagement.SCANNER: "s",
    Engagement.UNKNOWN: "u",
}
_FROM_CODE = {code: cls for cls, code in _CODE.items()}
CODES: dict[str, str] = {cls.value: code for cls, code in _CODE.items()}  # class name -> code
NAMES: dict[str, str] = {code: cls.value for cls, code in _CODE.items()}  # code -> class name
_TIMED = frozenset({Engagement.HUMAN, Engagement.UNKNOWN})  # what timing can overrule
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# ------------------------------------------------------------------------------- the signal

APPLE_MPP_UA = "Mozilla/5.0"
_IMAGE_PROXY = re.compile(r"GoogleImageProxy|via ggpht\.com|YahooMailProxy")
_AUTOMATION = re.compile(
    r"HeadlessChrome|Barracuda Sentinel|BingPreview|PhantomJS|Puppeteer|Playwright"
    r"|python-requests|python-urllib|aiohttp|\bcurl/|\bWget/|Go-http-client|okhttp"
    r"|Apache-HttpClient|libwww-perl|\bJava/|node-fetch|axios/"
    r"|Googlebot|bingbot|Slackbot|Twitterbot|facebookexternalhit|LinkedInBot|Discordbot"
    r"|TelegramBot|WhatsApp/"
    # Self-declared robots: "(compatible; SomeBot/1.0; +https://...)"
    r"|\(compatible;[^)]*(?:bot|crawl|spider|scan|preview|fetch)|\+https?://",
    re.IGNORECASE,
)
_CLIENT = re.compile(r"^Mozilla/\d|Thunderbird|Outlook|Microsoft Office|ms-office")


class Signal(NamedTuple):
    """What one event says about itself: its class and the rule that decided it."""

    engagement: Engagement
    reason: str
    code: str  # the class's one-letter code, as facts store it


class _Agent(StrEnum):
    MISSING = "missing"
    APPLE_FORM = "apple_form"
    IMAGE_PROXY = "image_proxy"
    AUTOMATION = "automation"
    CLIENT = "client"
    OTHER = "other"


@lru_cache(maxsize=4096)
def _agent(user_agent: str | None) -> _Agent:
    """What a user agent is, from the string alone (cached: agents repeat)."""
    ua = (user_agent or "").strip()
    if not ua:
        return _Agent.MISSING
    if ua == APPLE_MPP_UA:
        return _Agent.APPLE_FORM
    if _IMAGE_PROXY.search(ua):
        return _Agent.IMAGE_PROXY
    if _AUTOMATION.search(ua):
        return _Agent.AUTOMATION
    if _CLIENT.search(ua):
        return _Agent.CLIENT
    return _Agent.OTHER


def _signals(*rules: tuple[str, Engagement, str]) -> dict[str, Signal]:
    return {name: Signal(cls, reason, _CODE[cls]) for name, cls, reason in rules}


# Built once: classifying an event allocates nothing.
_SIGNAL = _signals(
    ("automation", Engagement.SCANNER, "ua:automation"),
    ("client", Engagement.HUMAN, "ua:client"),
    ("image_proxy", Engagement.IMAGE_PROXY, "ua:image_proxy"),
    ("proxy_click", Engagement.UNKNOWN, "ua:image_proxy_click"),  # proxies fetch, never click
    ("other", Engagement.UNKNOWN, "ua:unrecognised"),
    ("missing", Engagement.UNKNOWN, "ua:missing"),
    ("bare_click", Engagement.UNKNOWN, "ua:bare_click"),  # MPP never follows links
    ("relay", Engagement.APPLE_PRIVACY, "ua+ip:apple_relay"),
    ("not_relay", Engagement.UNKNOWN, "ua:apple_form_not_apple_ip"),
    ("apple", Engagement.APPLE_PRIVACY, "ua:apple_mpp"),
)


def classify(
    kind: str, user_agent: str | None, ip_address: str | None, ranges: RelayRanges | None = None
) -> Signal:
    """The signal of one open (`kind` OPEN) or click (CLICK) from its user agent and IP."""
    agent = _agent(user_agent)
    if agent is _Agent.AUTOMATION:
        return _SIGNAL["automation"]
    if agent is _Agent.CLIENT:
        return _SIGNAL["client"]
    if agent is _Agent.IMAGE_PROXY:
        return _SIGNAL["image_proxy" if kind == OPEN else "proxy_click"]
    if agent is _Agent.OTHER:
        return _SIGNAL["other"]
    # MPP's bare form, or no user agent at all: only the address can say more.
    if kind == CLICK:
        return _SIGNAL["missing" if agent is _Agent.MISSING else "bare_click"]
    ranges = ranges if ranges is not None else default_ranges()
    relay = ranges.contains(ip_address)
    if relay:
        return _SIGNAL["relay"]
    if agent is _Agent.MISSING:
        return _SIGNAL["missing"]
    if relay is False and ranges.complete:
        return _SIGNAL["not_relay"]
    return _SIGNAL["apple"]


def signal_of(event: SesEvent, ranges: RelayRanges | None = None) -> Signal | None:
    """The signal of an Open or Click event; None for every other event type."""
    detail = event.detail
    if isinstance(detail, Open):
        return classify(OPEN, detail.user_agent, detail.ip_address, ranges)
    if isinstance(detail, Click):
        return classify(CLICK, detail.user_agent, detail.ip_address, ranges)
    return None


# ------------------------------------------------------------------------------- the facts


class Fact(NamedTuple):
    """One open or click as the aggregate keeps it: milliseconds after the send, kind, signal
    (a class code), link (clicks; None when the message has too many links to name them)."""

    t_ms: int
    kind: str
    signal: str
    link: str | None = None


class Overflow(NamedTuple):
    """Facts past MAX_FACTS, counted together: they keep their signal as their verdict."""

    kind: str
    signal: str
    link: str | None
    n: int
    first_ms: int


def _key(fact: Fact) -> tuple[int, str, str, str]:
    return fact.t_ms, fact.kind, fact.signal, fact.link or ""


def ms_between(earlier: datetime, later: datetime) -> int:
    return (later - earlier) // _MS


class EngagementLog(NamedTuple):
    """The earliest MAX_FACTS facts of a message in time order, and the rest counted. Adding
    facts in any order gives the same log: the kept ones are always the earliest."""

    facts: tuple[Fact, ...] = ()
    overflow: tuple[Overflow, ...] = ()

    def add(self, fact: Fact, cap: int = MAX_FACTS) -> EngagementLog:
        facts = self.facts
        if not facts or _key(fact) >= _key(facts[-1]):  # the usual case: the latest so far
            grown = (*facts, fact)
        else:
            ordered = list(facts)
            insort(ordered, fact, key=_key)
            grown = tuple(ordered)
        if len(grown) <= cap:
            return EngagementLog(grown, self.overflow)
        return EngagementLog(grown[:cap], _spill(self.overflow, grown[cap]))


def _spill(overflow: tuple[Overflow, ...], fact: Fact) -> tuple[Overflow, ...]:
    entries = {(o.kind, o.signal, o.link): o for o in overflow}
    old = entries.get((fact.kind, fact.signal, fact.link))
    entries[(fact.kind, fact.signal, fact.link)] = Overflow(
        fact.kind,
        fact.signal,
        fact.link,
        (old.n if old else 0) + 1,
        min(old.first_ms, fact.t_ms) if old else fact.t_ms,
    )
    return tuple(sorted(entries.values(), key=lambda o: (o.kind, o.signal, o.link or "")))


def fact_of(event: SesEvent, sent_at: datetime, signal: Signal, link: str | None) -> Fact:
    kind = CLICK if isinstance(event.detail, Click) else OPEN
    return Fact((event.timestamp - sent_at) // _MS, kind, signal.code, link)


# ------------------------------------------------------------------------------- the verdict


class Verdict(NamedTuple):
    engagement: Engagement
    timing: str | None  # the timing rule that overruled the signal, if one did
    code: str  # the class's one-letter code (dict keys: hashing an Enum runs Python code)


_PLAIN = {code: Verdict(cls, None, code) for cls, code in _CODE.items()}
_NEAR_DELIVERY = Verdict(Engagement.SCANNER, "timing:near_delivery", "s")
_LINK_BURST = Verdict(Engagement.SCANNER, "timing:link_burst", "s")
_TIMED_CODES = frozenset(_CODE[c] for c in _TIMED)


def _bursts(facts: Sequence[Fact], clicks: list[int]) -> set[int]:
    """Indexes of the clicks within BURST_WINDOW of a click on another link."""
    burst: set[int] = set()
    low = 0
    for pos, i in enumerate(clicks):
        t, link = facts[i].t_ms, facts[i].link
        while facts[clicks[low]].t_ms < t - _BURST_MS:
            low += 1
        for j in clicks[low:pos]:
            if facts[j].link != link:
                burst.add(i)
                burst.add(j)
    return burst


def derive(facts: Sequence[Fact], reference_ms: int) -> list[Verdict]:
    """The verdict of each fact (same order), given the message's reference time: its earliest
    delivery, or its send (0) while no delivery is known — the send is never later, so the
    rule can only under-call a machine then, never over-call one."""
    clicks = [i for i, f in enumerate(facts) if f.kind == CLICK]
    burst = _bursts(facts, clicks) if len(clicks) > 1 else ()
    near = reference_ms + _DELAY_MS
    out = []
    for i, f in enumerate(facts):
        if f.signal in _TIMED_CODES:
            if f.t_ms <= near:
                out.append(_NEAR_DELIVERY)
                continue
            if i in burst:
                out.append(_LINK_BURST)
                continue
        out.append(_PLAIN[f.signal])
    return out


UNIQUE = {
    "open": "OPENED_MESSAGES",
    "open_human": "OPENED_MESSAGES_HUMAN",
    "click": "CLICKED_MESSAGES",
    "click_human": "CLICKED_MESSAGES_HUMAN",
}


_COUNTER = {
    (kind, _CODE[cls]): f"{'OPENED' if kind == OPEN else 'CLICKED'}_{cls.value.upper()}"
    for kind in (OPEN, CLICK)
    for cls in Engagement
}


def counter_name(kind: str, engagement: Engagement | str) -> str:
    """The hourly counter of opens or clicks of one class, e.g. OPENED_APPLE_PRIVACY."""
    return _COUNTER[(kind, _CODE[Engagement(engagement)])]


class Assessment:
    """A message's engagement, judged: counts per class (kept and overflowed facts), per link,
    the first open and click (by anyone, by a person), and each kept fact's verdict. Counts are
    keyed by class code (see `by_class` and `link_split` for names)."""

    __slots__ = ("_facts", "_verdicts", "clicks", "first", "links", "opens")

    def __init__(self, facts: tuple[Fact, ...] = (), verdicts: list[Verdict] | None = None) -> None:
        self._facts, self._verdicts = facts, verdicts or []
        self.opens: dict[str, int] = {}
        self.clicks: dict[str, int] = {}
        self.links: dict[str, dict[str, int]] = {}
        self.first: dict[str, int] = {}

    @property
    def verdicts(self) -> dict[Fact, Verdict]:
        return dict(zip(self._facts, self._verdicts, strict=True))

    def verdict(self, fact: Fact) -> Verdict:
        """A kept fact's verdict; an overflowed one's is its signal. (Equal facts have equal
        verdicts: the rules look only at time, kind, signal and link.)"""
        try:
            return self._verdicts[self._facts.index(fact)]
        except ValueError:
            return _PLAIN[fact.signal]

    def by_class(self, kind: str) -> dict[str, int]:
        counts = self.opens if kind == OPEN else self.clicks
        return {name: n for code, name in _NAMES if (n := counts.get(code, 0))}

    def link_split(self) -> dict[str, dict[str, int]]:
        """url -> {"human": n, "scanner": m} (zeros left out), in url order."""
        out = {}
        for url, counts in sorted(self.links.items()):
            split = {name: n for code, name in _SPLIT_NAMES if (n := counts.get(code, 0))}
            out[url] = split
        return out


_NAMES = [(_CODE[cls], cls.value) for cls in CLASSES]
_SPLIT_NAMES = [("h", "human"), ("s", "scanner")]


def assess(log: EngagementLog, reference_ms: int) -> Assessment:
    return _assessment(log, derive(log.facts, reference_ms))


def _assessment(log: EngagementLog, verdicts: list[Verdict]) -> Assessment:
    result = Assessment(log.facts, verdicts)
    first, opens, clicks, links = result.first, result.opens, result.clicks, result.links
    for f, v in zip(log.facts, verdicts, strict=True):
        code = v.code
        if f.kind == OPEN:
            opens[code] = opens.get(code, 0) + 1
            name, human = "open", "open_human"
        else:
            clicks[code] = clicks.get(code, 0) + 1
            name, human = "click", "click_human"
            if f.link is not None:
                counts = links.setdefault(f.link, {})
                counts[code] = counts.get(code, 0) + 1
        # Facts are in time order: the first seen is the first.
        if name not in first:
            first[name] = f.t_ms
        if code == "h" and human not in first:
            first[human] = f.t_ms
    for o in log.overflow:  # all later than every kept fact
        code, n = o.signal, o.n
        if o.kind == OPEN:
            opens[code] = opens.get(code, 0) + n
            name, human = "open", "open_human"
        else:
            clicks[code] = clicks.get(code, 0) + n
            name, human = "click", "click_human"
            if o.link is not None:
                counts = links.setdefault(o.link, {})
                counts[code] = counts.get(code, 0) + n
        if o.first_ms < first.get(name, o.first_ms + 1):
            first[name] = o.first_ms
        if code == "h" and o.first_ms < first.get(human, o.first_ms + 1):
            first[human] = o.first_ms
    return result


def _firsts(log: EngagementLog, verdicts: list[Verdict]) -> dict[str, int]:
    first: dict[str, int] = {}
    rows = [(f.kind, v.code, f.t_ms) for f, v in zip(log.facts, verdicts, strict=True)]
    rows += [(o.kind, o.signal, o.first_ms) for o in log.overflow]
    for kind, code, t_ms in rows:
        name = "open" if kind == OPEN else "click"
        if t_ms < first.get(name, t_ms + 1):
            first[name] = t_ms
        if code == "h" and t_ms < first.get(name + "_human", t_ms + 1):
            first[name + "_human"] = t_ms
    return first


# ------------------------------------------------------------------------------- counters


class CounterDeltas:
    """What one folded event changes in the hourly counters (hour, as hours since the epoch ->
    counter -> delta) and in the daily per-link counters ((day since the epoch, url) ->
    "human"/"scanner" -> delta), the verdict of the fact it added (None for a Delivery), and
    the assessment of the message after it (derived when first asked for: ingest needs only the
    verdict, and in the usual case nothing else is derived)."""

    __slots__ = ("_assessment", "_log", "_reference_ms", "hours", "links", "verdict")

    def __init__(
        self,
        assessment: Assessment | None = None,
        verdict: Verdict | None = None,
        log: tuple[EngagementLog, int] | None = None,
    ) -> None:
        self.hours: dict[int, dict[str, int]] = {}
        self.links: dict[tuple[int, str], dict[str, int]] = {}
        self.verdict = verdict
        self._assessment = assessment
        self._log, self._reference_ms = log if log is not None else (EngagementLog(), 0)

    @property
    def assessment(self) -> Assessment:
        if self._assessment is None:
            self._assessment = assess(self._log, self._reference_ms)
        return self._assessment


HOUR_MS, DAY_MS = 3_600_000, 86_400_000


def hour_start(hour: int) -> datetime:
    return EPOCH + timedelta(hours=hour)


def day_start(day: int) -> datetime:
    return EPOCH + timedelta(days=day)


_SPLIT = {"h": "human", "s": "scanner"}  # the per-link split


def counter_deltas(
    sent_at: datetime,
    before: tuple[EngagementLog, int] | None,
    after: tuple[EngagementLog, int],
    added: Fact | None,
) -> CounterDeltas:
    """What folding one event changed, given (log, reference) before and after it and the fact
    it added (None for a Delivery that moved the reference). Summed over a message's events this
    is the message's final contribution — each kept fact counted by its final verdict, each
    overflowed fact by its signal, the first opens and clicks once — whatever their order."""
    sent_ms = (sent_at - EPOCH) // _MS
    old_log, old_ref = before if before is not None else (EngagementLog(), 0)
    new_log, new_ref = after
    if added is not None and old_ref == new_ref and len(new_log.facts) == len(old_log.facts) + 1:
        return _around_the_new_fact(old_log, new_log, new_ref, added, sent_ms)
    new_v = derive(new_log.facts, new_ref)
    assessment = _assessment(new_log, new_v)
    deltas = CounterDeltas(assessment, assessment.verdict(added) if added is not None else None)
    _everything_that_changed(deltas, old_log, old_ref, new_log, new_v, added, sent_ms)
    return deltas


def _verdict_at(facts: Sequence[Fact], i: int, reference_ms: int) -> Verdict:
    """`derive`'s verdict of the fact at `i` alone (facts in time order, as a log keeps them)."""
    f = facts[i]
    if f.signal not in _TIMED_CODES:
        return _PLAIN[f.signal]
    if f.t_ms <= reference_ms + _DELAY_MS:
        return _NEAR_DELIVERY
    if f.kind == CLICK and _burst_partners(facts, i):
        return _LINK_BURST
    return _PLAIN[f.signal]


def _burst_partners(facts: Sequence[Fact], i: int) -> list[int]:
    """The clicks on another link within BURST_WINDOW of the click at `i` (`_bursts` pairs)."""
    t, link, out = facts[i].t_ms, facts[i].link, []
    j = i - 1
    while j >= 0 and facts[j].t_ms >= t - _BURST_MS:
        if facts[j].kind == CLICK and facts[j].link != link:
            out.append(j)
        j -= 1
    j = i + 1
    while j < len(facts) and facts[j].t_ms <= t + _BURST_MS:
        if facts[j].kind == CLICK and facts[j].link != link:
            out.append(j)
        j += 1
    return out


def _first(log: EngagementLog, kind: str, reference_ms: int, human: bool) -> int | None:
    """The first open (click), by anyone or by a person, as `assess` finds it: the kept facts
    are in time order, so the first that qualifies, unless the overflow has an earlier one."""
    kept = None
    for i, f in enumerate(log.facts):
        if f.kind == kind and (not human or _verdict_at(log.facts, i, reference_ms).code == "h"):
            kept = f.t_ms
            break
    for o in log.overflow:
        if (
            o.kind == kind
            and (not human or o.signal == "h")
            and (kept is None or o.first_ms < kept)
        ):
            kept = o.first_ms
    return kept


def _around_the_new_fact(
    old_log: EngagementLog, new_log: EngagementLog, reference_ms: int, added: Fact, sent_ms: int
) -> CounterDeltas:
    """The usual case (a new open or click, same reference, nothing pushed out of the log),
    kept cheap: only the new fact's verdict is derived and, for a click, those of the clicks it
    may have joined in a burst (no other verdict can change), and each first open or click is
    looked for where it can have moved. Gives what `_everything_that_changed` gives."""
    facts, old_facts = new_log.facts, old_log.facts
    position = len(facts) - 1 if facts[-1] == added else facts.index(added)
    verdict = _verdict_at(facts, position, reference_ms)
    deltas = CounterDeltas(verdict=verdict, log=(new_log, reference_ms))
    hours, links = deltas.hours, deltas.links
    code = verdict.code
    at = sent_ms + added.t_ms
    hours[at // HOUR_MS] = {_COUNTER[(added.kind, code)]: 1}
    if added.kind == CLICK and added.link is not None and code in _SPLIT:
        links[(at // DAY_MS, added.link)] = {_SPLIT[code]: 1}
    taken_back = False  # whether a count went down (then some may now be zero)
    if added.kind == CLICK:
        for j in _burst_partners(facts, position):
            before = _verdict_at(old_facts, j if j < position else j - 1, reference_ms).code
            after = _verdict_at(facts, j, reference_ms).code
            if before != after:
                _count(hours, links, facts[j], before, -1, sent_ms)
                _count(hours, links, facts[j], after, 1, sent_ms)
                taken_back = True
    partner_moved = taken_back
    name = "open" if added.kind == OPEN else "click"
    for key, human in ((name, False), (name + "_human", True)):
        if human and code != "h" and not partner_moved:
            continue  # no person's open or click appeared or went
        was = _first(old_log, added.kind, reference_ms, human)
        if was is not None and was < added.t_ms and not (human and partner_moved):
            continue  # the new fact is later than the first, which stays
        now = _first(new_log, added.kind, reference_ms, human)
        if was == now:
            continue
        counter = UNIQUE[key]
        if was is not None:
            per_hour = hours.setdefault((sent_ms + was) // HOUR_MS, {})
            per_hour[counter] = per_hour.get(counter, 0) - 1
            taken_back = True
        if now is not None:
            per_hour = hours.setdefault((sent_ms + now) // HOUR_MS, {})
            per_hour[counter] = per_hour.get(counter, 0) + 1
    if taken_back:
        _drop_zeros(hours)
        _drop_zeros(links)
    return deltas


def _count(
    hours: dict[int, dict[str, int]],
    links: dict[tuple[int, str], dict[str, int]],
    fact: Fact,
    code: str,
    n: int,
    sent_ms: int,
) -> None:
    """Add `n` to the hourly counter of the fact's class (`code`) and, for a click, to its
    link's human or scanner split."""
    at = sent_ms + fact.t_ms
    per_hour = hours.setdefault(at // HOUR_MS, {})
    name = _COUNTER[(fact.kind, code)]
    per_hour[name] = per_hour.get(name, 0) + n
    if fact.kind == CLICK and fact.link is not None and code in _SPLIT:
        per_link = links.setdefault((at // DAY_MS, fact.link), {})
        per_link[_SPLIT[code]] = per_link.get(_SPLIT[code], 0) + n


def _everything_that_changed(
    deltas: CounterDeltas,
    old_log: EngagementLog,
    old_ref: int,
    new_log: EngagementLog,
    new_v: list[Verdict],
    added: Fact | None,
    sent_ms: int,
) -> None:
    """The general case: verdicts before and after compared fact by fact, facts pushed out of
    the log counted by their signal, first opens and clicks moved."""
    hours, links = deltas.hours, deltas.links

    old_v = derive(old_log.facts, old_ref) if old_log.facts else []
    pairs: dict[tuple[Fact, str], int] = {}
    for f, v in zip(old_log.facts, old_v, strict=True):
        pairs[(f, v.code)] = pairs.get((f, v.code), 0) - 1
    for f, v in zip(new_log.facts, new_v, strict=True):
        pairs[(f, v.code)] = pairs.get((f, v.code), 0) + 1
    for (fact, code), n in pairs.items():
        if n:
            _count(hours, links, fact, code, n, sent_ms)
    # Facts that left the kept set (or never entered it) count by their signal, for good.
    left: dict[Fact, int] = {}
    for f in (*old_log.facts, *((added,) if added else ())):
        left[f] = left.get(f, 0) + 1
    for f in new_log.facts:
        left[f] = left.get(f, 0) - 1
    for fact, n in left.items():
        if n > 0:
            _count(hours, links, fact, fact.signal, n, sent_ms)
    # A message's first open and click, by anyone and by a person: counted once, in its hour.
    old_first, new_first = _firsts(old_log, old_v), deltas.assessment.first
    for name, counter in UNIQUE.items():
        was, now = old_first.get(name), new_first.get(name)
        if was == now:
            continue
        for t_ms, n in ((was, -1), (now, 1)):
            if t_ms is not None:
                per_hour = hours.setdefault((sent_ms + t_ms) // HOUR_MS, {})
                per_hour[counter] = per_hour.get(counter, 0) + n
    _drop_zeros(hours)
    _drop_zeros(links)


def _drop_zeros(table: dict[Any, dict[str, int]]) -> None:
    for key, counts in list(table.items()):
        for name in [n for n, v in counts.items() if not v]:
            del counts[name]
        if not counts:
            del table[key]


# ------------------------------------------------------------------------------- storage


_FACT = re.compile(r"(-?\d+)([oc])([hapsu])(\d*)")


def log_to_doc(
    log: EngagementLog, links: Iterable[str], delivered_ms: int | None = None
) -> dict[str, Any]:
    """Compact JSON for the aggregate, where every byte counts (an item over 1 KB costs double):
    `d` the earliest delivery (ms after the send), `f` the facts as strings — time, kind, signal
    and, for a click, its link's index in the sorted link names (`137951494ch0`) — and `o` the
    overflow as [kind+signal, link index or -1, count, first ms]. Sorted link names make the
    document independent of the order links were first seen."""
    index = {url: i for i, url in enumerate(sorted(links))}
    doc: dict[str, Any] = {}
    if delivered_ms is not None:
        doc["d"] = delivered_ms
    if log.facts:
        doc["f"] = [
            f"{f.t_ms}{f.kind}{f.signal}{index.get(f.link, '') if f.link is not None else ''}"
            for f in log.facts
        ]
    if log.overflow:
        doc["o"] = [
            [
                o.kind + o.signal,
                index.get(o.link, -1) if o.link is not None else -1,
                o.n,
                o.first_ms,
            ]
            for o in log.overflow
        ]
    return doc


def log_from_doc(doc: Any, links: Iterable[str]) -> tuple[EngagementLog, int | None]:
    """(the log, the earliest delivery in ms after the send) from `log_to_doc`'s document."""
    if not isinstance(doc, dict):
        return EngagementLog(), None
    names = sorted(links)

    def name(i: str | int) -> str | None:
        n = int(i) if i != "" else -1
        return names[n] if 0 <= n < len(names) else None

    facts = []
    for text in doc.get("f", []):
        match = _FACT.fullmatch(str(text))
        if match:
            t, kind, signal, link = match.groups()
            facts.append(Fact(int(t), kind, signal, name(link) if kind == CLICK else None))
    overflow = tuple(
        Overflow(str(ks)[0], str(ks)[1], name(i), int(n), int(first))
        for ks, i, n, first in doc.get("o", [])
    )
    delivered = doc.get("d")
    return EngagementLog(tuple(facts), overflow), int(delivered) if delivered is not None else None
