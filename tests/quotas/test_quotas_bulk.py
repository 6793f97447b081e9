"""Quotas of bulk mail, on the service and the worker (fake SES and clock, DynamoDB Local): each
slice's sends are reserved from the tenant's window before they are sent, and a tenant's bulk
batches in flight are bounded by slots that finished batches give back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.signing import Signer
from chalicelib.core.tables import BatchModel, SuppressionModel
from chalicelib.quotas.limiter import Quotas
from chalicelib.quotas.limits import tenant_counter, window
from chalicelib.sending.service import MailService
from chalicelib.sending.slots import SLOTS_SK, STORING_GRACE_SECONDS, BulkSlots, TooManyBatches
from chalicelib.sending.store import SendingStore
from chalicelib.sending.worker import BulkWorker

from tests.fakes import FakeEpochClock, FakeSes
from tests.quotas.test_quotas import LIMITS, FakeCounters
from tests.sending.test_mail import Runner, _recipients, _tenant_model, bulk

pytestmark = pytest.mark.ddb_local


class Bulk:
    """The service and the worker as wiring builds them, over fakes."""

    def __init__(self, settings: Any, *, sends: int = 20, batches: int = 2) -> None:
        self.clock, self.ses, self.store = FakeEpochClock(), FakeSes(rate=100.0), FakeCounters()
        self.clock.now = 1_760_000_000.0
        limits = replace(LIMITS, sends_per_minute=sends, bulk_batches=batches)
        self.quotas = Quotas(limits, self.store, clock=self.clock)
        self.tenant, self.runner = _tenant_model(), Runner(hold=True)
        self.slots = BulkSlots(wall=self.clock)
        sending, signer = SendingStore(settings), Signer(b"k" * 32)
        self.service = MailService(
            settings,
            sending,
            lambda tenant: self.ses,
            signer,
            runner=self.runner,
            wall=self.clock,
            slots=self.slots,
            bulk_batches=lambda tenant: self.quotas.limits(tenant).bulk_batches,
        )
        self.worker = BulkWorker(
            sending,
            lambda tenant: self.ses,
            signer,
            self.runner,
            "https://sesami.example",
            tenant_for=lambda tid: self.tenant,
            clock=self.clock,
            sleep=self.clock.sleep,
            wall=self.clock,
            reserve_sends=self.quotas.reserve_sends,
            slots=self.slots,
        )

    def post(self, n: int) -> str:
        out = self.service.send_bulk(self.tenant, bulk(recipients=_recipients(n)), None)
        assert out.status == 202
        return str(out.body["batch_id"])

    def statuses(self, batch_id: str) -> list[str]:
        return [r["status"] for r in self.service.batch(self.tenant, batch_id)["results"]]

    def window_start(self) -> None:
        self.clock.now = window(tenant_counter(self.tenant.tenant_id), self.clock.now).ends_at


def test_a_slice_sends_what_the_window_has_left_and_the_rest_waits_for_the_next(
    settings: Any,
) -> None:
    b = Bulk(settings, sends=3)
    b.window_start()
    batch_id = b.post(5)
    first = b.worker.run(b.runner.events[0], remaining_ms=120_000)
    assert first["sent"] == 3 and first["next"] == 3  # granted 3 of 5: 2 given back
    assert b.statuses(batch_id) == ["sent"] * 3 + ["queued"] * 2
    assert b.clock.sleeps == [0.01, 0.01]  # paced at 100/s, nothing else

    second = b.worker.run(b.runner.events[-1], remaining_ms=120_000)
    assert b.clock.sleeps[2:] == [60.0, 0.01]  # nothing left this window: it waited for the next
    assert second["sent"] == 2
    assert b.statuses(batch_id) == ["sent"] * 5 and len(b.ses.sent) == 5
    assert len(b.store.calls) == 2  # one reservation per slice; the spent window from memory


def test_a_worker_that_cannot_wait_within_its_budget_gives_the_slice_back(settings: Any) -> None:
    b = Bulk(settings, sends=1)
    b.window_start()
    b.post(3)
    b.worker.run(b.runner.events[0], remaining_ms=120_000)
    outcome = b.worker.run(b.runner.events[-1], remaining_ms=30_000)  # 20 s of budget < 60 s
    assert outcome["sent"] == 0 and b.clock.sleeps == []
    assert b.runner.events[-1]["next"] == outcome["next"] == 1  # the next worker goes on


def test_bulk_slots_bound_batches_in_flight_and_a_finished_batch_frees_its_own(
    settings: Any,
) -> None:
    b = Bulk(settings, batches=2)
    one, two = b.post(2), b.post(2)
    with pytest.raises(TooManyBatches) as caught:
        b.post(2)
    assert caught.value.status == 429 and caught.value.retry_after == 30
    assert caught.value.details["in_flight"] == sorted([one, two])  # type: ignore[index]
    b.worker.run(b.runner.events[0])  # `one` is sent whole and finishes
    assert b.statuses(one) == ["sent", "sent"]
    assert set(b.slots.held(b.tenant.tenant_id)) == {two}
    b.post(2)  # its slot is free again


def test_slots_of_batches_no_longer_in_flight_are_taken_back(settings: Any) -> None:
    """A batch whose worker chain was lost, or whose release failed, does not hold its slot
    for ever: a full acquire reads the listed batches and drops those no longer in flight."""
    b = Bulk(settings, batches=2)
    stalled = b.post(1)
    tid = b.tenant.tenant_id
    held = b.slots.held(tid)
    ghost = "f" * 32  # a slot whose request died before storing its batch
    doc = {"batches": {**held, ghost: b.clock.now}}
    expires = datetime.now(UTC) + timedelta(days=1)
    BatchModel(keys.bulk_slots_pk(tid), SLOTS_SK, doc=doc, expires_at=expires).save()
    with pytest.raises(TooManyBatches):
        b.post(1)  # the ghost is young: its request may still be storing it
    b.clock.now += 3_601  # the first batch's worker never ran: stalled; the ghost is old
    assert STORING_GRACE_SECONDS < 3_601
    fresh = b.post(1)
    assert set(b.slots.held(tid)) == {fresh}
    assert b.service.batch(b.tenant, stalled)["status"] == "incomplete"


def test_a_batch_with_everyone_suppressed_takes_no_slot(settings: Any) -> None:
    b = Bulk(settings, batches=1)
    tid = b.tenant.tenant_id
    for r in _recipients(2):
        address = r["to"]
        SuppressionModel(
            keys.tenant_pk(tid), address, reason="BOUNCE", reasons={"BOUNCE"}, created_at="x"
        ).save()
    out = b.service.send_bulk(b.tenant, bulk(recipients=_recipients(2)), None)
    assert out.status == 202 and b.slots.held(tid) == {}
    b.post(3)  # the one slot is still free
