"""The counter changes an entry carries (`cc`): relative to the entry's own hour and status, and
read back as the same changes, whatever form they took."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from chalicelib.core import keys
from chalicelib.core.tables import CounterModel, LinkCounterModel
from chalicelib.ingest.engagement_writes import CounterChange, decode_changes, encode_changes

AT = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
OWN = (keys.hour_of(AT), "DELIVERED")
RETENTION = timedelta(days=30)


def _hour(ts: datetime, **adds: int) -> CounterChange:
    return CounterChange(
        CounterModel, keys.counter_pk("t1", 2), keys.counter_sk(ts), Counter(adds), {}
    )


def _round_trip(changes: list[CounterChange]) -> list[tuple[str, str, dict[str, int]]]:
    encoded = encode_changes(changes, OWN)
    back = decode_changes(encoded, "t1", 2, RETENTION, OWN)
    return [(c.pk, c.sk, dict(c.adds)) for c in back]


def _plain(changes: list[CounterChange]) -> list[tuple[str, str, dict[str, int]]]:
    return [(c.pk, c.sk, dict(c.adds)) for c in changes]


def test_its_own_status_in_its_own_hour_is_a_number() -> None:
    one = [_hour(AT, DELIVERED=1)]
    assert encode_changes(one, OWN) == 1
    assert encode_changes([_hour(AT, DELIVERED=3)], OWN) == 3
    assert _round_trip(one) == _plain(one)


def test_other_changes_keep_what_the_entry_cannot_say() -> None:
    earlier = AT - timedelta(hours=5)
    click = CounterChange(
        LinkCounterModel,
        keys.link_pk("t1", AT, 2),
        keys.link_day_sk(AT, "https://x.example/a"),
        Counter(clicks=1),
        {"url": "https://x.example/a"},
    )
    changes = [_hour(AT, DELIVERED=1, BOUNCED=1), _hour(earlier, OPENED_HUMAN=-1), click]
    encoded = encode_changes(changes, OWN)
    assert encoded[0] == ["h", {"BOUNCED": 1, "DELIVERED": 1}]  # its own hour: left out
    assert encoded[1][1] == keys.hour_of(earlier)  # another hour: named
    assert _round_trip(changes) == _plain(changes)


def test_without_its_entry_a_relative_change_is_not_guessed() -> None:
    assert decode_changes(1, "t1", 2, RETENTION) == []
    assert decode_changes([["h", {"SENT": 1}]], "t1", 2, RETENTION) == []
    absolute = encode_changes([_hour(AT, SENT=1)])  # entries written before `own`
    assert _plain(decode_changes(absolute, "t1", 2, RETENTION, OWN)) == _plain([_hour(AT, SENT=1)])
