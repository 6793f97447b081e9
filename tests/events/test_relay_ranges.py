"""Apple's relay ranges as data: the shipped sample, a malformed line, a missing or stale file
(the classifier degrades to the other signals, never to an error), IPv6, the operator's refresh
command on a local file (no network), and the deployed published copy: read once per instance,
used when it is the newest usable list, left out (never an error) when missing, failing or stale."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalicelib.events import engagement as eng
from chalicelib.events import relay_ranges
from chalicelib.events.relay_ranges import (
    DEFAULT_PATH,
    MAX_AGE_DAYS,
    default_ranges,
    from_lines,
    load,
    newest,
    parse_prefix,
    use_published,
)

from ops.refresh_relay_ranges import RefreshError, main, refresh

FRESH = date(2026, 7, 10)  # a week after the sample was published


def write(tmp_path: Path, body: str, published: str | None = "2026-07-02") -> Path:
    path = tmp_path / "ranges.csv"
    head = f"# published: {published}\n" if published else ""
    path.write_text(head + "# coverage: sample\n" + body)
    return path


def test_the_shipped_sample_loads_with_its_date_and_finds_v4_and_v6_addresses() -> None:
    ranges = load(DEFAULT_PATH, today=FRESH)
    assert ranges.usable and not ranges.complete and ranges.problems == ()
    assert ranges.published == date(2026, 7, 2) and ranges.coverage == "sample"
    assert ranges.contains("172.224.226.5") is True  # 172.224.226.0/27, London
    assert ranges.contains("172.224.226.59") is True  # the last /31 of the merged run
    assert ranges.contains("172.224.226.60") is False
    assert ranges.contains("2a04:4e41:200::1") is True  # 2a04:4e41:200::/52
    assert ranges.contains("2a04:4e41:200:fff:ffff:ffff:ffff:ffff") is True  # its last address
    assert ranges.contains("2a04:4e41:200:1000::") is False  # just past the /52
    assert ranges.contains("2a09:bac2:1f:ffff::1") is True  # 2a09:bac2:18::/45 runs to 1f
    assert ranges.contains("::ffff:172.224.226.33") is True  # IPv4-mapped, looked up as IPv4
    assert ranges.contains("not an address") is False and ranges.contains(None) is False
    # The fifteen London-to-Egg-Buckland rows are contiguous: merged into one range.
    assert ranges.prefixes < 35


def test_a_malformed_line_is_skipped_and_counted_the_rest_is_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        "172.224.226.0/27,GB,GB-EN,London,\n"
        "this is not a prefix\n"
        "300.1.2.3/24,XX,,,\n"
        "10.0.0.0/33\n"
        "2a04:4e41:200::/52\n"
        "\n",
    )
    with caplog.at_level(logging.INFO, logger="sesami.engagement"):
        ranges = load(path, today=FRESH)
    assert ranges.usable and ranges.malformed == 3
    assert ranges.contains("172.224.226.9") and ranges.contains("2a04:4e41:200::9")
    assert "3 malformed line(s) skipped" in caplog.text


def test_a_missing_file_degrades_to_the_user_agent_never_to_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sesami.engagement"):
        ranges = load(tmp_path / "nowhere.csv", today=FRESH)
    assert not ranges.usable and ranges.contains("172.224.226.5") is None
    assert "cannot read" in caplog.text and "user agent and timing alone" in caplog.text
    signal = eng.classify(eng.OPEN, "Mozilla/5.0", "172.224.226.5", ranges)
    assert (signal.engagement, signal.reason) == (eng.Engagement.APPLE_PRIVACY, "ua:apple_mpp")


def test_a_stale_or_undated_file_is_not_used(tmp_path: Path) -> None:
    body = "172.224.226.0/27\n"
    assert load(write(tmp_path, body), today=date(2026, 12, 28)).usable  # 179 days
    stale = load(write(tmp_path, body), today=date(2026, 12, 30))  # 181 days
    assert not stale.usable and stale.contains("172.224.226.5") is None
    assert f"over {MAX_AGE_DAYS} days ago" in stale.problems[-1]
    undated = load(write(tmp_path, body, published=None), today=FRESH)
    assert not undated.usable
    assert not load(write(tmp_path, body, published="last week"), today=FRESH).usable


def test_prefixes_with_host_bits_are_aligned_and_bad_lengths_refused() -> None:
    assert parse_prefix("172.224.226.7/27") == (32, 0xACE0E200, 0xACE0E21F)
    assert parse_prefix("2a09:bac2:18::/45") is not None
    assert parse_prefix("2a09:bac2:18::/129") is None
    assert parse_prefix("172.224.226.0") is None
    assert parse_prefix("172.224.226.0/0") is None


APPLE_ROWS = (
    "172.224.226.0/27,GB,GB-EN,London,\n"
    "172.224.226.32/31,GB,GB-SC,Aberdeen,\n"
    "172.224.226.34/31,GB,GB-EN,Oxford,\n"
    "104.28.30.0/26,JP,JP-13,,\n"
    "2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n"
    "2a02:26f7:b3c0:4001::/64,GB,GB-EN,London,\n"
)


def test_refresh_merges_apple_rows_into_a_dated_complete_list_the_loader_reads(
    tmp_path: Path,
) -> None:
    source = tmp_path / "egress-ip-ranges.csv"
    source.write_text(APPLE_ROWS)
    out = tmp_path / "apple_relay_egress.csv"
    printed = io.StringIO()
    n = refresh(str(source), out, published=date(2026, 12, 1), out=printed)
    lines = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    assert lines == [
        "104.28.30.0/26",
        "172.224.226.0/27",
        "172.224.226.32/30",  # the two /31s, merged
        "2a02:26f7:b3c0:4000::/63",  # the two /64s, merged
    ]
    assert n == 4
    ranges = load(out, today=date(2026, 12, 2))
    assert ranges.complete and ranges.published == date(2026, 12, 1)
    assert ranges.contains("172.224.226.35") and ranges.contains("2a02:26f7:b3c0:4001::1")
    assert not ranges.contains("172.224.226.36")
    assert "from 6 rows, 0 malformed" in printed.getvalue()
    # With the complete list, MPP's form from elsewhere is not Apple's.
    assert eng.classify(eng.OPEN, "Mozilla/5.0", "198.51.100.9", ranges).engagement is (
        eng.Engagement.UNKNOWN
    )


def test_refresh_never_replaces_a_list_with_an_empty_or_broken_one(tmp_path: Path) -> None:
    out = tmp_path / "kept.csv"
    out.write_text("# published: 2026-07-02\n172.224.226.0/27\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("<html>Service Unavailable</html>\n")
    with pytest.raises(RefreshError, match="no valid prefix"):
        refresh(str(empty), out)
    mostly_bad = tmp_path / "bad.csv"
    mostly_bad.write_text("172.224.226.0/27\n" + "nope\n" * 5)
    with pytest.raises(RefreshError, match="malformed"):
        refresh(str(mostly_bad), out)
    with pytest.raises(RefreshError, match="https"):
        refresh("http://mask-api.icloud.com/egress-ip-ranges.csv", out)
    assert out.read_text() == "# published: 2026-07-02\n172.224.226.0/27\n"
    assert main([str(empty), "--out", str(out)]) == 1


# ------------------------------------------------------------ the published copy (deployed)

COPY_ADDRESS = "104.28.30.9"  # in 104.28.30.0/26, which the shipped sample does not hold


def _copy(published: date, coverage: str = "full") -> list[str]:
    return [f"# published: {published.isoformat()}", f"# coverage: {coverage}", "104.28.30.0/26"]


@pytest.fixture
def published() -> Iterator[list[Any]]:
    """Registers a fake copy (what the fake returns is set by the test), counting its reads;
    the shipped file alone again afterwards."""
    answers: list[Any] = []
    reads: list[int] = []

    def read() -> Any:
        reads.append(1)
        answer = answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    use_published(read)
    yield [answers, reads]
    use_published(None)


def test_a_fresh_published_copy_is_read_once_and_used(published: list[Any]) -> None:
    answers, reads = published
    answers.append(_copy(datetime.now(UTC).date()))
    for _ in range(50):
        signal = eng.classify(eng.OPEN, "Mozilla/5.0", COPY_ADDRESS)
        assert signal.reason == "ua+ip:apple_relay"
    assert default_ranges().source == "published copy" and default_ranges().complete
    assert len(reads) == 1  # once per instance, never per event


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (None, "no published copy yet"),
        (TimeoutError("S3 did not answer"), "unreadable (S3 did not answer)"),
        (_copy(date(2020, 1, 1)), "not used"),  # stale: over MAX_AGE_DAYS old
        (["<html>Service Unavailable</html>"], "not used"),  # no prefix, no date
    ],
)
def test_a_missing_failing_or_stale_copy_leaves_the_shipped_file(
    published: list[Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    answer: Any,
    logged: str,
) -> None:
    monkeypatch.setattr(relay_ranges, "utc_today", lambda: FRESH)  # the shipped file is fresh
    answers, _ = published
    answers.append(answer)
    with caplog.at_level(logging.WARNING, logger="sesami.engagement"):
        ranges = default_ranges()
    assert ranges.source == str(DEFAULT_PATH)
    assert logged in caplog.text
    signal = eng.classify(eng.OPEN, "Mozilla/5.0", COPY_ADDRESS)  # never an error
    assert signal.engagement is eng.Engagement.APPLE_PRIVACY


STALE_DAY = date(2026, 7, 2) + timedelta(days=MAX_AGE_DAYS + 1)  # the sample, past its age


@pytest.mark.parametrize(
    "answer",
    [
        None,
        TimeoutError("S3 did not answer"),
        _copy(date(2020, 1, 1)),
        ["<html>Service Unavailable</html>"],
    ],
    ids=["none", "unreadable", "stale", "html"],
)
def test_when_the_shipped_file_is_stale_too_it_degrades_to_the_other_signals(
    published: list[Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    answer: Any,
) -> None:
    """No usable list at all: the shipped file is kept (and not used), never an error."""
    monkeypatch.setattr(relay_ranges, "utc_today", lambda: STALE_DAY)
    answers, _ = published
    answers.append(answer)
    with caplog.at_level(logging.WARNING, logger="sesami.engagement"):
        ranges = default_ranges()
    assert ranges.source == str(DEFAULT_PATH) and not ranges.usable
    assert f"over {MAX_AGE_DAYS} days ago: not used" in caplog.text
    assert "classifying on user agent and timing alone" in caplog.text
    # An address the sample holds no longer corroborates MPP's form; the form still decides.
    in_sample = "172.224.226.3"
    assert load(DEFAULT_PATH, today=FRESH).contains(in_sample)
    signal = eng.classify(eng.OPEN, "Mozilla/5.0", in_sample)
    assert (signal.engagement, signal.reason) == (eng.Engagement.APPLE_PRIVACY, "ua:apple_mpp")
    assert eng.classify(eng.OPEN, None, in_sample).reason == "ua:missing"


def test_a_fresh_copy_is_used_when_the_shipped_file_is_stale(
    published: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_ranges, "utc_today", lambda: STALE_DAY)
    answers, _ = published
    answers.append(_copy(STALE_DAY - timedelta(days=1)))
    assert default_ranges().source == "published copy" and default_ranges().usable
    assert eng.classify(eng.OPEN, "Mozilla/5.0", COPY_ADDRESS).reason == "ua+ip:apple_relay"


def test_the_newest_usable_list_wins_the_copy_on_a_tie() -> None:
    shipped = load(DEFAULT_PATH, today=FRESH)
    older = from_lines(_copy(date(2026, 6, 1)), source="older copy", today=FRESH)
    newer = from_lines(_copy(date(2026, 7, 9)), source="newer copy", today=FRESH)
    same_day = from_lines(_copy(date(2026, 7, 2)), source="same day", today=FRESH)
    stale = from_lines(_copy(date(2025, 1, 1)), source="stale", today=FRESH)
    assert newest(older, shipped) is shipped
    assert newest(newer, shipped) is newer
    assert newest(same_day, shipped) is same_day
    assert newest(stale, shipped) is shipped
    assert newest(stale, load(Path("/nowhere"), today=FRESH)) is stale  # neither usable
