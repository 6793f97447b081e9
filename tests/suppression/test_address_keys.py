"""Invariant 12 through the API: once any spelling of an address is suppressed (by hand, by an
unsubscribe link, by an import from SES, by a bounce or an SES list-management unsubscribe),
every spelling is refused by POST /mail, skipped by POST /mail/bulk, and shown as suppressed.

Real tokens from moto's Cognito, the customer's role in moto's STS, moto's SESv2 SendEmail
(captured by the botocore hook of test_mail.py), storage on DynamoDB Local. moto has no SESv2
suppression-list API: the SES list is an in-memory fake of the adapter's interface."""

from __future__ import annotations

import copy
import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from chalicelib.core import addresses, wiring
from chalicelib.core.tables import AccountModel
from chalicelib.ingest.directory import TenantDirectory
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from chalicelib.ingest.store import EventStore
from chalicelib.suppression.store import SuppressionService
from chalicelib.suppression.sync import SuppressionSync
from chalicelib.tenant_aws.ses import SesSuppressed

from tests.api_fixtures import MOTO_ACCOUNT
from tests.conftest import load_event
from tests.fakes import AwsWire
from tests.sending.test_mail import (  # fixtures: SES capture, the sender's identity, bulk runs
    SENDER,
    Tenant,
    runner,
    sender_identity,
    sent,
    shared,
    wire,
)
from tests.support import BOUND_LONG_AGO, for_account

__all__ = ["runner", "sender_identity", "sent", "shared", "wire"]  # fixtures used by name

_COUNTER = itertools.count()


def spellings(local: str) -> list[str]:
    """Five spellings of one address at an internationalised domain."""
    return [
        f"{local}@bücher.de",
        f"{local}@xn--bcher-kva.de",
        f"{local.upper()}@BÜCHER.DE",
        f"{local.title()}@XN--BCHER-KVA.DE",
        f"Henry Example <{local}@Bücher.de>",
    ]


@pytest.fixture
def tenant(shared: Tenant) -> Tenant:
    """One connected tenant for the module (test_mail's `shared`); each case uses its own
    address. Its account's binding is moved back in time: the recorded events are older than
    the connection (ingest refuses mail sent before a binding)."""
    AccountModel(MOTO_ACCOUNT).update(actions=[AccountModel.bound_at.set(BOUND_LONG_AGO)])
    return shared


class FakeSesList:
    """The SES account-level suppression list (tenant_aws.ses.AccountSuppressionList)."""

    def __init__(self, entries: list[SesSuppressed]) -> None:
        self._entries = entries
        self.pushed: list[tuple[str, str]] = []
        self.deleted: list[str] = []

    def entries(self) -> Iterator[SesSuppressed]:
        yield from self._entries

    def put(self, address: str, reason: str) -> None:
        self.pushed.append((address, reason))

    def delete(self, address: str) -> None:
        self.deleted.append(address)


def sync(t: Tenant, ses: FakeSesList) -> dict[str, Any]:
    return SuppressionSync(SuppressionService(wiring.signer())).run(t.id, ses, "ops@example.com")


# ---------------------------------------------------------------------------- ways to suppress


def by_hand(t: Tenant, spelling: str) -> None:
    response = t.post_get(
        "PUT", "/suppression-list/" + quote(spelling, safe=""), {"reason": "asked by phone"}
    )
    assert response.status_code == 200, response.json_body


def by_unsubscribe_link(t: Tenant, spelling: str) -> None:
    token = wiring.signer().sign("unsubscribe", {"t": t.id, "r": spelling})
    response = t.api.http.post(
        f"/unsubscribe/{token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="List-Unsubscribe=One-Click",
    )
    assert response.status_code == 200


def by_ses_import(t: Tenant, spelling: str) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    ses = FakeSesList([SesSuppressed(spelling, "BOUNCE", at)])
    report = sync(t, ses)
    assert report["imported"] == 1, report


def _ingest(t: Tenant, envelope: dict[str, Any]) -> None:
    raw = for_account(envelope, MOTO_ACCOUNT)
    report = ingest_envelopes(
        [raw], tenants=TenantDirectory(0), store=EventStore(wiring.settings())
    )
    assert report.outcomes == [Outcome.STORED]


def by_bounce(t: Tenant, spelling: str) -> None:
    event = copy.deepcopy(load_event("bounce_permanent_multi"))
    detail = event["detail"]
    detail["mail"]["messageId"] = f"bounce-{uuid.uuid4().hex}"
    detail["mail"]["destination"] = [spelling]
    detail["bounce"]["bouncedRecipients"] = [{"emailAddress": spelling, "action": "failed"}]
    _ingest(t, event)


def by_list_unsubscribe(t: Tenant, spelling: str) -> None:
    event = copy.deepcopy(load_event("subscription"))
    event["detail"]["mail"]["messageId"] = f"subscription-{uuid.uuid4().hex}"
    event["detail"]["mail"]["destination"] = [spelling]
    _ingest(t, event)


Suppress = Callable[[Tenant, str], None]
# SES reports addresses in ASCII (it takes IDN domains only in punycode): ingest's spellings
# are the ASCII ones; the API and the SES list may carry any.
CASES: list[tuple[str, Suppress, int]] = [
    *((f"by hand, spelling {i}", by_hand, i) for i in range(5)),
    *((f"unsubscribe link, spelling {i}", by_unsubscribe_link, i) for i in (0, 2, 4)),
    *((f"SES import, spelling {i}", by_ses_import, i) for i in (0, 2, 3)),
    *((f"bounce, spelling {i}", by_bounce, i) for i in (1, 3, 4)),
    *((f"SES unsubscribeAll, spelling {i}", by_list_unsubscribe, i) for i in (1, 3)),
]


@pytest.mark.parametrize(("how", "suppress", "which"), CASES, ids=[c[0] for c in CASES])
def test_every_spelling_is_blocked_once_any_spelling_is_suppressed(
    tenant: Tenant, sent: list[dict[str, Any]], how: str, suppress: Suppress, which: int
) -> None:
    local = f"henry.{next(_COUNTER)}.{uuid.uuid4().hex[:6]}"
    canonical = f"{local}@xn--bcher-kva.de"
    every = spellings(local)
    suppress(tenant, every[which])
    for spelling in every:
        single = tenant.mail({"from": SENDER, "to": [spelling], "subject": "Hello", "text": "Hi"})
        assert single.status_code == 400, (spelling, single.json_body)
        error = single.json_body["error"]
        assert error["code"] == "recipients_suppressed"
        assert [s["address"] for s in error["details"]["suppressed"]] == [canonical]

        bulk = tenant.post_get(
            "POST",
            "/mail/bulk",
            {
                "from": SENDER,
                "template": {"subject": "Hi {{n}}", "text": "Hello {{n}}"},
                "recipients": [{"to": spelling, "variables": {"n": "H"}}],
            },
        )
        assert bulk.status_code == 202, bulk.json_body
        [skipped] = bulk.json_body["skipped"]
        assert addresses.key(skipped["address"]) == canonical and skipped["reason"]
        assert bulk.json_body["status"] == "done"  # everyone skipped: nothing to send

        entry = tenant.post_get("GET", "/suppression-list/" + quote(spelling, safe=""))
        assert entry.status_code == 200 and entry.json_body["address"] == canonical
        history = tenant.post_get("GET", "/recipients/" + quote(spelling, safe=""))
        assert history.json_body["recipient"] == canonical
        assert history.json_body["suppressed"] is True
    listed = tenant.post_get("GET", f"/suppression-list?q={quote(local + '@Bücher')}")
    assert [i["address"] for i in listed.json_body["items"]] == [canonical]
    assert sent == []  # nothing reached SES


def test_an_unsubscribe_link_sent_to_a_unicode_spelling_blocks_every_spelling(
    tenant: Tenant, wire: AwsWire, sent: list[dict[str, Any]]
) -> None:
    """The whole round trip: bulk mail to `Name <x@bücher.de>`, its List-Unsubscribe link
    clicked, then no spelling can be mailed."""
    local = f"reader.{uuid.uuid4().hex[:8]}"
    canonical = f"{local}@xn--bcher-kva.de"
    every = spellings(local)
    queued = tenant.post_get(
        "POST",
        "/mail/bulk",
        {
            "from": SENDER,
            "template": {"subject": "News", "text": "Hello"},
            "recipients": [{"to": every[4]}],
        },
    )
    assert queued.status_code == 202, queued.json_body
    [params] = sent
    assert params["Destination"]["ToAddresses"] == [f"Henry Example <{local}@xn--bcher-kva.de>"]
    headers = {h["Name"]: h["Value"] for h in params["Content"]["Simple"]["Headers"]}
    link = re.fullmatch(r"<.+(/unsubscribe/[^/>]+)>", headers["List-Unsubscribe"])
    assert link is not None
    token = link.group(1).rsplit("/", 1)[1]
    assert wiring.signer().verify("unsubscribe", token)["r"] == canonical

    page = tenant.api.http.get(link.group(1))
    assert f"{local}@bücher.de".encode() in page.body  # shown with its domain in Unicode
    clicked = tenant.api.http.post(
        link.group(1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="List-Unsubscribe=One-Click",
    )
    assert clicked.status_code == 200
    sent.clear()
    for spelling in every:
        response = tenant.mail({"from": SENDER, "to": [spelling], "subject": "Hi", "text": "x"})
        assert response.status_code == 400, spelling
    assert sent == []
    other = tenant.mail(
        {"from": SENDER, "to": [f"other.{local}@bücher.de"], "subject": "Hi", "text": "x"}
    )
    assert other.status_code == 200, other.json_body  # the control: not everything is refused
    assert other.json_body["recipients"] == [f"other.{local}@xn--bcher-kva.de"]


def test_the_sync_pushes_the_ascii_key_never_a_unicode_spelling(tenant: Tenant) -> None:
    local = f"push.{uuid.uuid4().hex[:8]}"
    by_hand(tenant, f"{local}@Bücher.de")
    ses = FakeSesList([])
    sync(tenant, ses)
    assert (f"{local}@xn--bcher-kva.de", "COMPLAINT") in ses.pushed
    assert all(a.isascii() for a, _ in ses.pushed)

    # SES holding only the Unicode spelling (pushed before keys were canonical): the ASCII
    # form is pushed as well, and nothing is imported twice.
    ses = FakeSesList([SesSuppressed(f"{local}@bücher.de", "COMPLAINT", datetime.now(UTC))])
    report = sync(tenant, ses)
    assert report["imported"] == 0
    assert (f"{local}@xn--bcher-kva.de", "COMPLAINT") in ses.pushed
