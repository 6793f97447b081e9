"""The erasure's last step: wait until counting has taken in every click the erasure found on a
link that names the address, then delete those link counters again (core/erasure_marks.py says
why the first deletion is not final, and how count_events tells the job).

While it waits the job is `waiting` at step `counting`, with `counting: {marked, counted,
since}` in its view: how many timeline entries it marked, how many count_events has
acknowledged. It is done when every one is, or when the stream's 24 hours (plus a margin) have
passed since it began waiting: no record older than that can still be counted. Either way the
same link counters are deleted once more, and only then is the erasure reported done.

What the job keeps for this, hidden from its view (`_` fields) and removed when it finishes
(the job itself expires 30 days later): `_links`, the keys of the link counters it deleted
(they end in a hash of the URL, not the URL: the entries' links are redacted by then, so the
keys cannot be derived again), and `_marked`, digests of the marked entries' keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import dynamo, keys
from chalicelib.core.tables import CounterModel, LinkCounterModel
from chalicelib.lifecycle import items
from chalicelib.lifecycle.jobs import RUNNING, WAITING, Job

STEP = "counting"
# A stream keeps records 24 hours; Lambda may still be handing over one read just before.
STREAM_RETENTION = timedelta(hours=25)
POLL_SECONDS = 2.0
# The slice that reaches the step waits this long at most, then hands over to the background:
# it is often DELETE /recipients' own (the request answers 202 rather than wait for counting's
# batching window). Later slices wait until they are out of time.
FIRST_WAIT_SECONDS = 5.0
HIDDEN = ("_links", "_marked")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CountingWait:
    def __init__(
        self,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep

    def advance(self, job: Job, out_of_time: Callable[[], bool], save: Callable[[], None]) -> bool:
        """True when the step is finished (counters swept again); False to be resumed."""
        doc = job.doc
        marked = set(doc.get("_marked") or ())
        began = self._clock()
        first = "counting" not in doc
        state = doc.setdefault("counting", {"since": keys.iso_ms(began)})
        since = datetime.fromisoformat(str(state["since"]).replace("Z", "+00:00"))

        def patience_out() -> bool:
            waited = (self._clock() - began).total_seconds()
            return out_of_time() or (first and waited >= FIRST_WAIT_SECONDS)

        while marked:
            counted = marked & acknowledged(job.tenant_id, job.job_id)
            state.update(marked=len(marked), counted=len(counted))
            if counted == marked:
                break
            if self._clock() >= since + STREAM_RETENTION:
                state["gave_up_waiting"] = True  # the stream no longer holds what was missing
                break
            if patience_out():
                if job.state != WAITING:
                    job.state = WAITING
                    save()
                return False
            self._sleep(POLL_SECONDS)
        links = [(str(pk), str(sk)) for pk, sk in doc.get("_links") or ()]
        present = [k for k in links if _exists(*k)]
        swept = items.delete(LinkCounterModel, present)
        if swept:
            doc["counts"]["link_counters_recounted"] = swept
        job.state = RUNNING
        return True


def acknowledged(tenant_id: str, job_id: str) -> set[str]:
    """The digests count_events has acknowledged for the job."""
    prefix = keys.erasure_acks_prefix(job_id)
    found = items.everything(
        CounterModel,
        keys.counter_pk(tenant_id, 0),
        range_key_condition=CounterModel.sk.startswith(prefix),
    )
    return {c.sk.removeprefix(prefix) for c in found}


def forget(tenant_id: str, job_id: str, doc: dict[str, Any]) -> None:
    """What the job kept for this step goes when it finishes, acknowledgements too."""
    marked = doc.get("_marked")
    for name in HIDDEN:
        doc.pop(name, None)
    if not marked:  # nothing was marked: nothing was acknowledged
        return
    prefix = keys.erasure_acks_prefix(job_id)
    acks = [
        (c.pk, c.sk)
        for c in items.everything(
            CounterModel,
            keys.counter_pk(tenant_id, 0),
            range_key_condition=CounterModel.sk.startswith(prefix),
        )
    ]
    items.delete(CounterModel, acks)


def _exists(pk: str, sk: str) -> bool:
    return dynamo.get(LinkCounterModel, pk, sk) is not None
