"""Erasures and deletions run as jobs: a record in the tenant's lifecycle partition (T#t#JOB /
id) with the step reached, a cursor and the counts so far, advanced a slice at a time.

    jobs.create(tenant_id, kind, doc)   the record, state running
    jobs.start(job)                     run it in the background (the bulk worker's runner)
    jobs.run(event, remaining_ms)       one slice: the bulk_worker function, {"kind": "lifecycle"}
    jobs.advance(job, seconds)          one slice in this process (DELETE /recipients runs the
                                        first one inline, so that a small erasure answers at once)

A slice claims the job (a lease until its deadline, compare-and-swap on `version`), lets the
job's handler work until the deadline, saves what it reached, and starts the next slice if
there is more. A duplicate invocation finds the lease held and does nothing; one that finds it
expired (its worker died) takes over from the last saved point. Every step of both handlers is
idempotent — it finds what is left and removes it — so taking over repeats at most one page.
A job whose worker chain was lost is resumed by reading its progress (`resume_if_stalled`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.core import dynamo, keys
from chalicelib.core.tables import JobModel

log = logging.getLogger("sesami.lifecycle")

EVENT_KIND = "lifecycle"
SAFETY_MARGIN_SECONDS = 10.0
THREAD_BUDGET_SECONDS = 60.0
RUNNING, WAITING, FINISHED = "running", "waiting", "finished"
FINISHED_KEPT = timedelta(days=30)
# What a handler's slice ended with:
MORE, DONE, REMOVED = "more", "done", "removed"  # REMOVED: the job deleted its own record


class Runner(Protocol):
    def start(self, event: dict[str, Any]) -> None: ...


@dataclass
class Job:
    tenant_id: str
    job_id: str
    kind: str
    state: str
    doc: dict[str, Any]
    version: int

    def view(self) -> dict[str, Any]:
        public = {k: v for k, v in self.doc.items() if not k.startswith("_")}
        return {"job_id": self.job_id, "kind": self.kind, "state": self.state, **public}


class Handler(Protocol):
    def advance(self, job: Job, out_of_time: Callable[[], bool], save: Callable[[], None]) -> str:
        """Work on `job` (mutating job.doc) until done or out of time; `save` checkpoints.
        Returns MORE, DONE or REMOVED."""
        ...


class LeaseLost(Exception):
    """Another slice took the job over: this one stops without saving."""


class Jobs:
    def __init__(
        self,
        runner: Runner,
        handlers: Mapping[str, Handler],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._runner, self._handlers, self._wall = runner, dict(handlers), wall

    # ------------------------------------------------------------------ records

    def create(self, tenant_id: str, kind: str, doc: dict[str, Any]) -> Job:
        job = Job(tenant_id, uuid.uuid4().hex, kind, RUNNING, dict(doc), 0)
        item = JobModel(
            keys.job_pk(tenant_id), job.job_id, kind=kind, state=RUNNING, doc=job.doc, version=0
        )
        with dynamo.storage("job write"):
            item.save()
        return job

    def get(self, tenant_id: str, job_id: str) -> Job | None:
        item = dynamo.get(JobModel, keys.job_pk(tenant_id), job_id)
        if item is None:
            return None
        return Job(
            tenant_id, job_id, item.kind, item.state, dict(item.doc or {}), int(item.version)
        )

    def latest(self, tenant_id: str, kind: str) -> Job | None:
        with dynamo.storage("job read"):
            items = [i for i in JobModel.query(keys.job_pk(tenant_id)) if i.kind == kind]
        if not items:
            return None
        item = max(items, key=lambda i: str((i.doc or {}).get("started_at", "")))
        return self.get(tenant_id, item.sk)

    def save(self, job: Job) -> bool:
        """Compare-and-swap on the version; False when another slice changed the job."""
        item = JobModel(keys.job_pk(job.tenant_id), job.job_id)
        actions: list[Any] = [  # PynamoDB update actions
            JobModel.doc.set(job.doc),
            JobModel.state.set(job.state),
            JobModel.version.set(job.version + 1),
        ]
        if job.state == FINISHED:  # its counts are in the audit trail; the job itself goes
            actions.append(JobModel.expires_at.set(datetime.now(UTC) + FINISHED_KEPT))
        ok = dynamo.write_if(
            "job update",
            lambda: item.update(actions=actions, condition=JobModel.version == job.version),
        )
        if ok:
            job.version += 1
        return ok

    # ------------------------------------------------------------------ running

    def start(self, job: Job) -> None:
        self._runner.start({"kind": EVENT_KIND, "tenant_id": job.tenant_id, "job_id": job.job_id})

    def run(self, event: Mapping[str, Any], remaining_ms: float | None = None) -> dict[str, Any]:
        """One background slice (the bulk_worker function, or the local stack's thread)."""
        job = self.get(str(event["tenant_id"]), str(event["job_id"]))
        if job is None:
            return {"outcome": "missing"}
        if remaining_ms is None:
            budget = THREAD_BUDGET_SECONDS
        else:
            budget = max(remaining_ms / 1000.0 - SAFETY_MARGIN_SECONDS, 1.0)
        outcome = self.advance(job, budget)
        if outcome == MORE:
            self.start(job)
        return {"outcome": outcome, "job_id": job.job_id, "state": job.state}

    def advance(self, job: Job, seconds: float) -> str:
        """One slice of at most `seconds` in this process: claimed, worked, saved."""
        if job.state == FINISHED:
            return DONE
        now = self._wall()
        lease = float(job.doc.get("_lease_until") or 0)
        if lease > now:
            return "claimed"
        deadline = now + seconds
        job.doc["_lease_until"] = deadline + SAFETY_MARGIN_SECONDS
        if not self.save(job):
            return "raced"

        def save() -> None:
            if not self.save(job):
                raise LeaseLost(job.job_id)

        handler = self._handlers[job.kind]
        try:
            outcome = handler.advance(job, lambda: self._wall() >= deadline, save)
        except LeaseLost:
            log.warning("lifecycle job %s was taken over", job.job_id)
            return "overtaken"
        except Exception:
            job.doc["_lease_until"] = 0  # let the next slice take it at once
            try:
                self.save(job)
            except Exception as exc:  # the original error matters more
                log.warning("lifecycle job %s: could not release its lease: %s", job.job_id, exc)
            raise
        if outcome == REMOVED:
            return REMOVED
        job.doc["_lease_until"] = 0
        if outcome == DONE:
            job.state = FINISHED
            job.doc["finished_at"] = keys.iso_ms(datetime.now(UTC))
        if not self.save(job):
            return "overtaken"
        return outcome

    def resume_if_stalled(self, job: Job) -> bool:
        """Start a slice for a job that is not finished and that no live slice holds."""
        if job.state == FINISHED or float(job.doc.get("_lease_until") or 0) > self._wall():
            return False
        self.start(job)
        return True
