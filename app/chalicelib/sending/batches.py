"""The records of a bulk batch, typed: what the batch is (`BulkJob` and its `JobRecipient`s), how
far it got (`BatchSummary` with the live slice's `Claim`) and what happened to each recipient
(`RecipientResult`). sending/store.py keeps them as JSON documents; this module is the one place
that turns them into documents and back.

The summary's document is compared whole in the worker's compare-and-swap, so `doc()` always
writes the same keys in the same order, and `from_doc(doc).doc() == doc` for every stored one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Final statuses of a recipient, then the two of one not sent yet.
FINAL = ("sent", "suppressed", "failed", "not_sent", "unknown")
STATUSES = (*FINAL, "queued", "sending")
# A batch whose worker has not moved for this long (no live claim) is shown as incomplete: the
# chain of invocations was lost (Lambda gave up on an event). Its unsent recipients are not_sent.
STALL_SECONDS = 3_600.0


@dataclass(frozen=True)
class Claim:
    """The slice [start, end) a worker took, and when Lambda will have ended it at the latest."""

    start: int
    end: int
    deadline: float
    done: bool = False

    def doc(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "deadline": self.deadline, "done": self.done}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Claim:
        return cls(doc["start"], doc["end"], doc["deadline"], doc["done"])


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    created_at: str
    configuration_set: str
    total: int
    next: int  # the first recipient no worker has claimed
    claim: Claim | None = None
    stopped: str | None = None  # why the batch stopped early, if it did
    status: str = "queued"  # queued | sending | finished (the view derives more, see worker)
    send_rate: dict[str, Any] | None = None
    updated: float = 0.0

    def doc(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "created_at": self.created_at,
            "configuration_set": self.configuration_set,
            "total": self.total,
            "next": self.next,
            "claim": self.claim.doc() if self.claim else None,
            "stopped": self.stopped,
            "status": self.status,
            "send_rate": self.send_rate,
            "updated": self.updated,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BatchSummary:
        claim = doc.get("claim")
        return cls(
            batch_id=doc["batch_id"],
            created_at=doc["created_at"],
            configuration_set=doc["configuration_set"],
            total=doc["total"],
            next=doc["next"],
            claim=Claim.from_doc(claim) if claim else None,
            stopped=doc.get("stopped"),
            status=doc.get("status", "queued"),
            send_rate=doc.get("send_rate"),
            updated=doc.get("updated", 0.0),
        )

    def but(self, **changes: Any) -> BatchSummary:
        return replace(self, **changes)

    def in_flight(self, now: float) -> bool:
        """Whether the batch still holds one of its tenant's bulk slots: not finished, and not
        stalled (a worker holds a live claim, or one moved it within STALL_SECONDS; past that,
        GET /mail/bulk/{id} calls it incomplete and nothing sends it any more)."""
        claim = self.claim
        if claim is not None and not claim.done and now <= claim.deadline:
            return True
        if self.status == "finished" or self.stopped:
            return False
        return now - float(self.updated or 0.0) <= STALL_SECONDS


@dataclass(frozen=True)
class RecipientResult:
    """One recipient's outcome (a stored result, or what the view derives for one)."""

    address: str
    status: str
    message_id: str | None = None
    error: str | None = None
    # A suppressed recipient: why and since when (the suppression entry's summary).
    reason: str | None = None
    reasons: tuple[str, ...] | None = None
    since: str | None = None

    def doc(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address, "status": self.status}
        for name in ("message_id", "error", "reason", "since"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.reasons is not None:
            out["reasons"] = list(self.reasons)
        return out

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RecipientResult:
        reasons = doc.get("reasons")
        return cls(
            address=doc["address"],
            status=doc["status"],
            message_id=doc.get("message_id"),
            error=doc.get("error"),
            reason=doc.get("reason"),
            reasons=tuple(reasons) if reasons is not None else None,
            since=doc.get("since"),
        )


@dataclass(frozen=True)
class JobRecipient:
    header: str  # `Name <address>` as it goes in To
    address: str  # as given to SES
    key: str  # the canonical key (suppression, unsubscribe token)
    variables: Mapping[str, str] = field(default_factory=dict)


def _source(stored: Any) -> str | None:
    """A template part as stored: its Mustache source, or (jobs stored before the Mustache
    renderer) the old split [literal, name, literal, ...], joined back into that source."""
    if stored is None or isinstance(stored, str):
        return stored
    return "".join(p if i % 2 == 0 else "{{" + p + "}}" for i, p in enumerate(stored))


@dataclass(frozen=True)
class BulkJob:
    """What a worker needs to send the batch: the template's Mustache sources (a snapshot: a
    stored template changed later does not change the batch), the recipients."""

    sender: str
    reply_to: tuple[str, ...]
    subject: str
    html: str | None
    text: str | None
    tags: tuple[tuple[str, str], ...]
    recipients: tuple[JobRecipient, ...]
    suppressed: frozenset[int]  # indexes of recipients skipped at once

    def to_json(self) -> str:
        # Recipients are stored as short lists: a batch of 1,000 is one document to read.
        return json.dumps(
            {
                "sender": self.sender,
                "reply_to": list(self.reply_to),
                "subject": self.subject,
                "html": self.html,
                "text": self.text,
                "tags": [list(t) for t in self.tags],
                "recipients": [
                    [r.header, r.address, r.key, dict(r.variables)] for r in self.recipients
                ],
                "suppressed": sorted(self.suppressed),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BulkJob:
        doc = json.loads(text)
        return cls(
            sender=doc["sender"],
            reply_to=tuple(doc["reply_to"]),
            subject=_source(doc["subject"]) or "",
            html=_source(doc["html"]),
            text=_source(doc["text"]),
            tags=tuple((str(n), str(v)) for n, v in doc["tags"]),
            recipients=tuple(
                JobRecipient(header, address, key, dict(variables))
                for header, address, key, variables in doc["recipients"]
            ),
            suppressed=frozenset(int(i) for i in doc["suppressed"]),
        )
