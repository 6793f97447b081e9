"""A lowered content retention deletes the stored content past the new one, as a lifecycle job
(lifecycle/jobs.py): a tenant's prefix can hold millions of objects, more than one request can
list and delete. The first slice runs in the request (a small tenant is done when PUT
/account/content answers); the rest in the background, resumable from the last key listed.

Until it is done nothing past the new retention is shown anyway: every read checks the age
against the shorter of the stored and the current retention (content/service.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import keys
from chalicelib.lifecycle.jobs import DONE, MORE, Job, Jobs

KIND = "content_retention"
INLINE_SECONDS = 10.0

# (tenant_id, cursor, out_of_time) -> (objects deleted, cursor or None when done)
Purge = Callable[[str, str | None, Callable[[], bool]], tuple[int, str | None]]


class ContentRetention:
    def __init__(self, purge: Purge) -> None:
        self._purge = purge

    def advance(self, job: Job, out_of_time: Callable[[], bool], save: Callable[[], None]) -> str:
        doc = job.doc
        deleted, cursor = self._purge(job.tenant_id, doc.get("cursor"), out_of_time)
        doc["deleted"] = int(doc.get("deleted") or 0) + deleted
        if cursor is None:
            doc.pop("cursor", None)
            return DONE
        doc["cursor"] = cursor
        return MORE


def start(
    jobs: Jobs, tenant_id: str, retention_days: int, inline_seconds: float = INLINE_SECONDS
) -> dict[str, Any]:
    """Start the purge for a retention just lowered to `retention_days`; the job's view."""
    doc = {"started_at": keys.iso_ms(datetime.now(UTC)), "retention_days": retention_days}
    job = jobs.create(tenant_id, KIND, doc)
    if jobs.advance(job, inline_seconds) == MORE:
        jobs.start(job)
    return job.view()
