"""Recipient erasure against counting's lag, on DynamoDB Local and its stream: a click on a
personalised link ingested just before the erasure and counted after it must not leave a link
counter naming the address once the job reports done (lifecycle/counting_wait.py,
core/erasure_marks.py).

The suite's harness counts the stream before every counter read (tests/conftest.py); these
tests hold that back to let the click's record wait, as it does in production for up to the
mapping's 30 s batching window (more when counting is behind). Time is a fake clock: the job's
polls advance it instead of sleeping."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import keys, wiring
from chalicelib.core.tables import CounterModel
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from chalicelib.lifecycle import erasure
from chalicelib.lifecycle.counting_wait import (
    FIRST_WAIT_SECONDS,
    POLL_SECONDS,
    STREAM_RETENTION,
    CountingWait,
)
from chalicelib.lifecycle.jobs import EVENT_KIND, Jobs
from chalicelib.lifecycle.service import Lifecycle
from chalicelib.lifecycle.spellings import spellings
from chalicelib.suppression.entries import normalize_address

from tests.conftest import STREAM_POLLERS
from tests.lifecycle.support import admin, click_of, event, items_mentioning, personal_link, unique
from tests.support import TestTenant, make_tenant

pytestmark = pytest.mark.ddb_local


class FakeTime:
    """One clock for the job's lease (epoch seconds) and its waiting (datetime); `sleep`
    advances it and counts the polls."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)
        self.polls = 0

    def now(self) -> datetime:
        return self.at

    def wall(self) -> float:
        return self.at.timestamp()

    def sleep(self, seconds: float) -> None:
        self.polls += 1
        self.at += timedelta(seconds=seconds)


class Runner:
    """The bulk worker's runner: slices it is asked to start are run by the test."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def start(self, event: dict[str, Any]) -> None:
        self.started.append(event)


class Setup:
    def __init__(self, tenant: TestTenant, target: str, time: FakeTime) -> None:
        self.tenant, self.target, self.time = tenant, target, time
        self.runner = Runner()
        handler = erasure.Erasure(wiring.audit_log(), counting=CountingWait(time.now, time.sleep))
        self.jobs = Jobs(self.runner, {erasure.KIND: handler}, wall=time.wall)
        self.service = Lifecycle(
            wiring.account_service(),
            wiring.audit_log(),
            self.jobs,
            wiring.tenant_deletion(),
            normalize_address,
            clock=time.now,
        )

    def erase(self) -> tuple[int, dict[str, Any]]:
        return self.service.erase(admin(self.tenant.tenant_id), self.target)

    def progress(self, job_id: str) -> dict[str, Any]:
        return self.jobs.get(self.tenant.tenant_id, job_id).view()  # type: ignore[union-attr]

    def slice(self, job_id: str) -> str:
        event = {"kind": EVENT_KIND, "tenant_id": self.tenant.tenant_id, "job_id": job_id}
        return str(self.jobs.run(event, remaining_ms=40_000)["outcome"])

    def link_counters(self) -> list[dict[str, Any]]:
        """The tenant's link counters that name the target (read without counting first)."""
        found = items_mentioning(wiring.settings(), spellings(self.target), self.tenant.tenant_id)
        return [item for table, item in found.items if table == "counters"]


@pytest.fixture
def held(app_settings: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counting held back: the stream's records wait until `release()`."""
    drains = [(p, p.drain) for p in STREAM_POLLERS]
    for poller, _ in drains:
        monkeypatch.setattr(poller, "drain", lambda: 0)

    def release() -> int:
        return sum(drain() for _, drain in drains)

    return release


@pytest.fixture
def clicked(app_settings: Any, held: Callable[[], int]) -> Setup:
    """A message to the target alone, sent and delivered (counted), then a click on a link
    naming the target, not yet counted."""
    tenant, target = make_tenant(app_settings), unique("Late.Click")
    message = f"0100{uuid.uuid4().hex}-000000"
    send = event("send", message, tenant.account_id, alice=target)
    first = [send, event("delivery", message, tenant.account_id, alice=target)]
    ingest = ingest_envelopes(first, tenants=tenant.directory, store=tenant.store)
    assert set(ingest.outcomes) == {Outcome.STORED}
    held()  # the send and the delivery are counted
    click = click_of(send, personal_link(target))
    late = ingest_envelopes([click], tenants=tenant.directory, store=tenant.store)
    assert late.outcomes == [Outcome.STORED]
    setup = Setup(tenant, target, FakeTime())
    assert setup.link_counters() == []  # the click is not counted yet
    return setup


def test_a_click_counted_after_the_erasure_leaves_no_link_counter_once_it_is_done(
    clicked: Setup, held: Callable[[], int]
) -> None:
    s = clicked
    status, job = s.erase()
    assert status == 202  # not done: its click is not counted yet
    # The click is counted now, after the erasure deleted what existed of its link counter:
    # the race, which brings a counter naming the address back.
    assert held() >= 2  # the click's record, and the erasure's mark of its entry
    for _ in range(3):  # the slices the background would run, until it reports done
        if job["state"] == "finished":
            break
        s.slice(job["job_id"])
        job = s.progress(job["job_id"])
    assert job["state"] == "finished"
    assert s.link_counters() == []
    assert job["counts"]["link_counters_recounted"] == 1  # the day's, deleted again
    assert job["counting"]["marked"] == job["counting"]["counted"] == 1
    # What the job kept for the wait goes with it, acknowledgements too.
    kept = s.jobs.get(s.tenant.tenant_id, job["job_id"])
    assert kept is not None and not {"_links", "_marked", "_address"} & set(kept.doc)
    prefix = keys.erasure_acks_prefix(job["job_id"])
    pk = keys.counter_pk(s.tenant.tenant_id, 0)
    assert list(CounterModel.query(pk, CounterModel.sk.startswith(prefix))) == []


def test_the_erasure_is_not_done_before_counting_has_taken_the_click_in(
    clicked: Setup, held: Callable[[], int]
) -> None:
    s = clicked
    status, job = s.erase()
    assert status == 202
    assert job["state"] == "waiting" and job["step"] == "counting"
    assert job["counting"] == {"since": job["counting"]["since"], "marked": 1, "counted": 0}
    assert s.runner.started  # it goes on in the background
    # The request waited a few polls, not its whole 20 s, before answering 202.
    assert 0 < s.time.polls <= FIRST_WAIT_SECONDS / POLL_SECONDS + 1
    # The tenant's COUNTED item moving past the erasure proves nothing about this click (another
    # stream shard, another batch): only its entry's own acknowledgement does.
    CounterModel(
        keys.counter_pk(s.tenant.tenant_id, 0),
        keys.COUNTED_SK,
        counted_at=keys.iso_ms(s.time.now() + timedelta(hours=1)),
        counted_through=keys.iso_ms(s.time.now() + timedelta(hours=1)),
    ).save()
    for _ in range(3):
        assert s.slice(job["job_id"]) == "more"
        job = s.progress(job["job_id"])
        assert job["state"] == "waiting" and job["counting"]["counted"] == 0
    held()
    assert s.slice(job["job_id"]) == "done"
    assert s.progress(job["job_id"])["state"] == "finished"
    assert s.link_counters() == []


def test_after_the_streams_retention_the_erasure_sweeps_again_and_is_done(
    clicked: Setup,
) -> None:
    """A mark never acknowledged (count_events failing for a day): once the stream no longer
    holds any record from before, nothing can be counted any more; the job sweeps and ends."""
    s = clicked
    status, job = s.erase()
    assert status == 202 and job["state"] == "waiting"
    s.time.at += STREAM_RETENTION
    assert s.slice(job["job_id"]) == "done"
    job = s.progress(job["job_id"])
    assert job["state"] == "finished" and job["counting"]["gave_up_waiting"] is True
    assert job["counting"]["counted"] == 0
