"""Sending: POST /mail, POST /mail/bulk, GET /mail/bulk/{id} through Chalice's test client with
real tokens from moto's Cognito, the customer's role assumed in moto's STS, moto's SESv2
SendEmail, and storage on DynamoDB Local.

What reaches SES is read twice: moto keeps each message (GET {moto}/moto-api/data.json), and
a botocore hook on boto3's default session (the one wiring.aws_client builds clients from;
`AwsWire` in tests/fakes.py) captures every SendEmail call's parameters, so the headers moto
ignores (List-Unsubscribe) and the tags are checked as SES would get them.

Emulator gaps, written down: moto has no SESv2 GetAccount (the send rate falls back to the
default and says so) and no bulk/template API (SESami does not use them). Pacing, the time
budget and SES refusals in the middle of a batch are tested on the service with a fake SES and
a fake clock; the adapter's translation of SES errors with botocore's Stubber.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from chalice.test import Client
from chalicelib.core import keys
from chalicelib.core.errors import InvalidRequest, ServiceUnavailable
from chalicelib.core.headers import check_header
from chalicelib.core.tables import AGGREGATE_SK, AccountModel, MessageModel, SuppressionModel
from chalicelib.sending.batches import Claim, RecipientResult
from chalicelib.sending.store import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Replay,
    SendingStore,
)
from chalicelib.tenant_aws.ses import OutgoingEmail, SendRate, SesRefused, SesV2
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.api_fixtures import MOTO_ACCOUNT, client, make_role, sign_in
from tests.conftest import load_event
from tests.fakes import AwsWire, FakeEpochClock, FakeSes

DOMAIN = "example.com"  # verified in moto's SES
SENDER = f"News <news@{DOMAIN}>"
CRLF_WORDS = ("=?utf-8?q?hi=0D=0ABcc:_x@evil.example?=", "=?UTF-8?B?aGkNCkJjYzogeA==?=")


# ---------------------------------------------------------------------------- fixtures


SEND = "sesv2.SendEmail"


@pytest.fixture(scope="module")
def wire() -> Iterator[AwsWire]:
    """Every SendEmail's parameters as botocore sends them; can answer for SES (throttled)."""
    with AwsWire(SEND).installed() as wire:
        yield wire


@pytest.fixture(scope="module", autouse=True)
def sender_identity(moto: str, wire: AwsWire) -> None:
    """The sender's verified domain in moto's SES."""
    client(moto, "sesv2").create_email_identity(EmailIdentity=DOMAIN)


@pytest.fixture
def sent(wire: AwsWire) -> Iterator[list[dict[str, Any]]]:
    wire.calls[SEND].clear()
    yield wire.calls[SEND]
    wire.clear()


class Runner:
    """Bulk workers started by the API: recorded, and run inline unless `hold`."""

    def __init__(self, hold: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.hold = hold

    def start(self, event: dict[str, Any]) -> None:
        from chalicelib.core import wiring

        self.events.append(dict(event))
        if not self.hold:
            wiring.run_bulk_slice(event, None)


@pytest.fixture(autouse=True)
def runner() -> Iterator[Runner]:
    from chalicelib.core import wiring

    runner = Runner()
    wiring.use(bulk_runner=runner)
    yield runner
    wiring.use(bulk_runner=None)


class Tenant:
    def __init__(self, api: Client, moto: str, pool: dict[str, str], *, connect: bool = True):
        self.api, self.moto = api, moto
        self.token = sign_in(moto, pool)
        self.id = self.post_get("GET", "/account").json_body["tenant_id"]
        if connect:
            AccountModel(MOTO_ACCOUNT).delete()  # moto has one account: the last tenant takes it
            role = {"role_arn": make_role(moto)}
            assert self.post_get("PUT", "/account", role).status_code == 200

    def post_get(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        all_headers = {"Content-Type": "application/json", "Authorization": self.token}
        all_headers.update(headers or {})
        raw = None if body is None else json.dumps(body)
        return getattr(self.api.http, method.lower())(path, headers=all_headers, body=raw)

    def mail(self, body: dict[str, Any], key: str | None = None) -> Any:
        return self.post_get("POST", "/mail", body, {"Idempotency-Key": key} if key else None)

    def suppress(self, address: str, reason: str = "BOUNCE") -> None:
        now = keys.iso_ms(datetime.now(UTC))
        SuppressionModel(
            keys.tenant_pk(self.id), address, reason=reason, reasons={reason}, created_at=now
        ).save()


@pytest.fixture
def tenant(api: Client, moto: str, pool: dict[str, str]) -> Tenant:
    """A signed-in tenant whose account (moto's one) is connected; overrides conftest's."""
    return Tenant(api, moto, pool)


_SHARED: list[Tenant] = []


@pytest.fixture
def shared(api: Client, moto: str, pool: dict[str, str]) -> Tenant:
    """One connected tenant for the tests that only get refused (signing in costs a second)."""
    if not _SHARED or _SHARED[0].moto != moto:
        _SHARED[:] = [Tenant(api, moto, pool)]
    _SHARED[0].api = api
    return _SHARED[0]


def mail(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": SENDER,
        "to": ["Alice <alice@example.org>"],
        "subject": "Hello",
        "text": "Hi Alice",
        "html": "<p>Hi Alice</p>",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def moto_messages(moto: str) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{moto}/moto-api/data.json") as response:  # noqa: S310
        data = json.load(response)
    return {m["id"]: m for m in data["ses"]["Message"]}


def tags_of(params: dict[str, Any]) -> dict[str, str]:
    return {t["Name"]: t["Value"] for t in params.get("EmailTags", [])}


# ---------------------------------------------------------------------------- POST /mail


def test_send_goes_through_ses_and_is_recorded_at_once(
    tenant: Tenant, sent: list[dict[str, Any]], moto: str
) -> None:
    body = mail(
        cc=[{"address": "bob@example.org", "name": "Bøb Ünicode"}],
        bcc="carol@example.org",
        reply_to="support@example.com",
        tags={"campaign": "nov-2026"},
    )
    response = tenant.mail(body)
    assert response.status_code == 200, response.json_body
    out = response.json_body
    assert out["status"] == "sent" and out["recorded"] is True and out["skipped"] == []
    assert out["configuration_set"] == "sesami-events"

    (params,) = sent
    assert params["ConfigurationSetName"] == "sesami-events"
    assert tags_of(params) == {"sesami-tenant": tenant.id, "campaign": "nov-2026"}
    assert params["Destination"]["CcAddresses"] == [
        "=?utf-8?b?QsO4YiDDnG5pY29kZQ==?= <bob@example.org>"
    ]
    assert params["Destination"]["BccAddresses"] == ["carol@example.org"]
    assert params["ReplyToAddresses"] == ["support@example.com"]
    assert params["Content"]["Simple"]["Body"]["Html"]["Data"] == "<p>Hi Alice</p>"

    received = moto_messages(moto)[out["message_id"]]
    assert received["subject"] == "Hello" and received["source"] == SENDER

    agg = MessageModel.get(keys.message_pk(tenant.id, out["message_id"]), AGGREGATE_SK)
    assert (agg.status, agg.events, agg.subject) == ("SENT", 0, "Hello")
    assert agg.body["destination"] == ["alice@example.org", "bob@example.org", "carol@example.org"]
    assert agg.body["tags"]["sesami-tenant"] == [tenant.id]
    assert set(agg.body["recipients"]) == set(agg.body["destination"])


def test_the_real_send_event_later_applies_exactly_once(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    from chalicelib.core import wiring
    from chalicelib.core.tables import CounterModel

    out = tenant.mail(mail()).json_body
    envelope = load_event("send")
    envelope.update(account=MOTO_ACCOUNT, id=str(uuid.uuid4()))
    detail_mail = envelope["detail"]["mail"]
    now = datetime.now(UTC)
    detail_mail.update(
        messageId=out["message_id"], destination=["alice@example.org"], timestamp=keys.iso_ms(now)
    )
    assert wiring.ingest([envelope]).counts() == {"stored": 1}
    assert wiring.ingest([envelope]).counts() == {"duplicate": 1}
    agg = MessageModel.get(keys.message_pk(tenant.id, out["message_id"]), AGGREGATE_SK)
    assert (agg.status, agg.events) == ("SENT", 1)
    assert agg.body["tags"]["campaign"] == ["nov-newsletter"]  # SES's tags merged in
    counter = CounterModel.get(keys.counter_pk(tenant.id, 0), keys.counter_sk(now))
    assert counter.SENT == 1


def test_a_send_event_that_wins_the_race_is_kept(tenant: Tenant, settings: Any) -> None:
    from chalicelib.core import wiring

    envelope = load_event("send")
    envelope.update(account=MOTO_ACCOUNT, id=str(uuid.uuid4()))
    message_id = f"race-{uuid.uuid4().hex}"
    envelope["detail"]["mail"]["messageId"] = message_id
    # Sent now: mail from before the account was connected (bound_at) is not the tenant's.
    envelope["detail"]["mail"]["timestamp"] = datetime.now(UTC).isoformat()
    assert wiring.ingest([envelope]).counts() == {"stored": 1}
    recorded = SendingStore(settings).record_sent(
        tenant.id, message_id, source=SENDER, subject="x", destination=["a@example.org"], tags={}
    )
    assert recorded is False
    agg = MessageModel.get(keys.message_pk(tenant.id, message_id), AGGREGATE_SK)
    assert agg.events == 1 and agg.body["destination"] == ["alice@example.com"]


BAD = [
    (mail(**{"from": "not-an-address"}), "from"),
    (mail(to=["alice@"]), "to[0]"),
    (mail(to=["alice@localhost"]), "to[0]"),
    (mail(subject="Hi\r\nBcc: victim@example.org"), "subject"),
    (mail(subject="Hi\nthere"), "subject"),
    (mail(subject=CRLF_WORDS[0]), "subject"),
    (mail(subject=f"Hello {CRLF_WORDS[1]}"), "subject"),
    (mail(**{"from": {"address": f"a@{DOMAIN}", "name": "A\r\nBcc: v@example.org"}}), "from"),
    (mail(**{"from": f"{CRLF_WORDS[1]} <a@{DOMAIN}>"}), "from"),
    (mail(to=[f"{CRLF_WORDS[0]} <alice@example.org>"]), "to[0]"),
    (mail(cc=[{"address": "b@example.org", "name": "B\rX"}]), "cc[0]"),
    (mail(reply_to=[f'"R\nX" <r@{DOMAIN}>']), "reply_to[0]"),
    (mail(tags={"campaign": "a\r\nb"}), "tags.campaign"),
    (mail(tags={"campaign": CRLF_WORDS[0]}), "tags.campaign"),
    (mail(tags={"camp\naign": "x"}), "tags"),
    (mail(tags={"campaign": "has space"}), "tags.campaign"),
    (mail(tags={"sesami-tenant": "other"}), "tags.sesami-tenant"),
    (mail(tags={f"t{i}": "v" for i in range(49)}), "tags"),
    (
        mail(
            to=[f"r{i}@example.org" for i in range(30)], cc=[f"c{i}@example.org" for i in range(21)]
        ),
        "to",
    ),
    (mail(to=None), "to"),
    (mail(to=[f"r{i}@example.org" for i in range(51)]), "to"),
    (mail(html=None, text=None), "html"),
    (mail(html="x" * (10 * 1024 * 1024), text="y"), "html"),
    (mail(subject="s" * 999), "subject"),
    (mail(subject=None), "subject"),
    (mail(configuration_set="no spaces"), "configuration_set"),
    (mail(skip_suppressed="yes"), "skip_suppressed"),
    (mail(bodyy="typo"), "bodyy"),
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_input_is_a_400_naming_the_field_and_sends_nothing(
    shared: Tenant, sent: list[dict[str, Any]], body: dict[str, Any], field: str
) -> None:
    response = shared.mail(body)
    assert response.status_code == 400, response.json_body
    error = response.json_body["error"]
    assert error["code"] == "invalid_request" and error["details"] == {"field": field}
    dumped = json.dumps(body)
    if any(mark in dumped for mark in ("\\r", "\\n", *CRLF_WORDS)):
        assert "line breaks" in error["message"], error
    assert sent == []


def test_missing_token_is_a_401_on_every_mail_route(api: Client) -> None:
    for method, path in (("POST", "/mail"), ("POST", "/mail/bulk"), ("GET", "/mail/bulk/x")):
        response = getattr(api.http, method.lower())(path, body=json.dumps(mail()))
        assert response.status_code == 401
        assert response.json_body["error"]["code"] == "unauthorized"


def test_a_tenant_without_a_connected_account_cannot_send(
    api: Client, moto: str, pool: dict[str, str], sent: list[dict[str, Any]]
) -> None:
    response = Tenant(api, moto, pool, connect=False).mail(mail())
    assert response.status_code == 409
    assert response.json_body["error"]["code"] == "account_not_connected"
    assert sent == []


def test_a_sender_outside_the_verified_identities_is_refused_naming_what_to_verify(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    """Before SES, which would refuse it with MessageRejected (the 422 of the adapter tests)."""
    response = tenant.mail(mail(**{"from": "someone@unverified.example.net"}))
    assert response.status_code == 400
    error = response.json_body["error"]
    assert error["details"]["field"] == "from"
    assert error["details"]["identity"] == "unverified.example.net"
    assert "verify the domain unverified.example.net" in error["message"]
    bulk_body = bulk(**{"from": "news@unverified.example.net"})
    refused = tenant.post_get("POST", "/mail/bulk", bulk_body)
    assert refused.status_code == 400 and refused.json_body["error"]["details"]["field"] == "from"
    assert sent == []
    # A verified domain covers its subdomains (SES's rule): SESami lets it through. moto's SES
    # lacks that rule and refuses it itself (the 422 of SES's own refusal): an emulator gap.
    subdomain = tenant.mail(mail(**{"from": f"news@mail.{DOMAIN}"}))
    assert subdomain.json_body["error"]["code"] == "ses_refused"


def test_persistent_throttling_is_retried_then_a_503(
    tenant: Tenant, wire: AwsWire, sent: list[dict[str, Any]], backoff: list[tuple[int, float]]
) -> None:
    wire.attempts.clear()
    wire.inject(SEND, 429, "TooManyRequestsException")
    response = tenant.mail(mail())
    assert response.status_code == 503
    assert "retry later" in response.json_body["error"]["message"]
    assert len(sent) == 1, sent
    # botocore standard mode; wiring.aws_client sets max_attempts=4, which counts retries.
    assert wire.attempts[SEND] == 5
    assert [attempt for attempt, _ in backoff] == [1, 2, 3, 4]  # computed, not slept


# ---------------------------------------------------------------------------- suppression


def test_suppressed_recipients_refuse_the_send_and_are_listed(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    tenant.suppress("bounced@example.org")
    tenant.suppress("complained@example.org", "COMPLAINT")
    body = mail(to=["Bounced@Example.org", "alice@example.org"], bcc=["complained@example.org"])
    response = tenant.mail(body)
    assert response.status_code == 400
    error = response.json_body["error"]
    assert error["code"] == "recipients_suppressed"
    listed = {s["address"]: s["reason"] for s in error["details"]["suppressed"]}
    assert listed == {"bounced@example.org": "BOUNCE", "complained@example.org": "COMPLAINT"}
    assert sent == []


def test_skip_suppressed_sends_to_the_rest_and_lists_the_skipped(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    tenant.suppress("bounced@example.org")
    body = mail(to=["bounced@example.org", "alice@example.org"], skip_suppressed=True)
    response = tenant.mail(body)
    assert response.status_code == 200
    assert [s["address"] for s in response.json_body["skipped"]] == ["bounced@example.org"]
    assert response.json_body["recipients"] == ["alice@example.org"]
    assert sent[0]["Destination"] == {"ToAddresses": ["alice@example.org"]}


def test_nothing_is_sent_when_every_recipient_is_suppressed(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    tenant.suppress("alice@example.org")
    response = tenant.mail(mail(skip_suppressed=True))
    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "recipients_suppressed"
    assert sent == []


# ---------------------------------------------------------------------------- idempotency


def test_same_key_and_body_replays_without_a_second_send(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    first = tenant.mail(mail(), key="order-42")
    again = tenant.mail(mail(), key="order-42")
    assert first.status_code == again.status_code == 200
    assert again.json_body == first.json_body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(sent) == 1


def test_same_key_with_another_body_is_a_409(tenant: Tenant, sent: list[dict[str, Any]]) -> None:
    assert tenant.mail(mail(), key="k-1").status_code == 200
    response = tenant.mail(mail(subject="Other"), key="k-1")
    assert response.status_code == 409
    assert response.json_body["error"]["code"] == "idempotency_key_reused"
    assert len(sent) == 1


def test_keys_are_per_tenant_and_a_failed_request_frees_its_key(
    api: Client, moto: str, pool: dict[str, str], sent: list[dict[str, Any]]
) -> None:
    first = Tenant(api, moto, pool)
    assert first.mail(mail(), key="shared").status_code == 200
    second = Tenant(api, moto, pool)
    second.suppress("alice@example.org")
    assert second.mail(mail(), key="shared").status_code == 400  # suppressed: key released
    SuppressionModel(keys.tenant_pk(second.id), "alice@example.org").delete()
    response = second.mail(mail(), key="shared")
    assert response.status_code == 200 and "Idempotent-Replayed" not in response.headers
    assert len(sent) == 2


def test_a_bad_idempotency_key_is_a_400(shared: Tenant) -> None:
    response = shared.mail(mail(), key="x" * 256)
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == {"field": "Idempotency-Key"}


def test_an_abandoned_or_expired_key_can_be_claimed_again(settings: Any) -> None:
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    store, tid = SendingStore(settings, clock=lambda: now[0]), uuid.uuid4().hex
    assert store.claim(tid, "k", "body-1") is None
    with pytest.raises(IdempotencyKeyInUse):
        store.claim(tid, "k", "body-1")
    now[0] += timedelta(minutes=16)  # past the lease: the first request died
    assert store.claim(tid, "k", "body-1") is None
    with pytest.raises(IdempotencyKeyReused):
        store.claim(tid, "k", "body-2")
    store.complete(tid, "k", 200, {"message_id": "m"})
    assert store.claim(tid, "k", "body-1") == Replay(200, {"message_id": "m"})
    now[0] += timedelta(hours=25)  # expired, though TTL has not deleted it yet
    assert store.claim(tid, "k", "body-2") is None


# ---------------------------------------------------------------------------- bulk


def bulk(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": SENDER,
        "template": {
            "subject": "Hello {{first_name}}",
            "html": "<p>Hi {{ first_name }}, your code is {{code}}</p>",
            "text": "Hi {{first_name}}, your code is {{code}}",
        },
        "recipients": [
            {"to": "alice@example.org", "variables": {"first_name": "Alice", "code": 1}},
            {"to": "Bob <bob@example.org>", "variables": {"first_name": "<b>Bob</b>", "code": 2}},
            {"to": "bounced@example.org", "variables": {"first_name": "B", "code": 3}},
        ],
        "tags": {"campaign": "welcome"},
    }
    body.update(changes)
    return body


def _wait_until_settled(tenant: Tenant, batch_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        view = tenant.post_get("GET", f"/mail/bulk/{batch_id}").json_body
        if view["status"] in ("done", "incomplete") or time.monotonic() > deadline:
            return view
        time.sleep(0.1)


def test_bulk_renders_sends_with_one_click_unsubscribe_and_is_readable_later(
    tenant: Tenant, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local stack's way: no worker function configured, the worker runs in a thread."""
    from chalicelib.core import wiring
    from chalicelib.sending.worker import ThreadRunner

    wiring.use(bulk_runner=None)
    assert isinstance(wiring.bulk_runner(), ThreadRunner)
    tenant.suppress("bounced@example.org")
    response = tenant.post_get("POST", "/mail/bulk", bulk())
    assert response.status_code == 202, response.json_body
    queued = response.json_body
    assert queued["status"] == "queued" and queued["progress"] == {"total": 3, "processed": 1}
    assert [s["address"] for s in queued["skipped"]] == ["bounced@example.org"]
    assert queued["skipped"][0]["reason"] == "BOUNCE"
    out = _wait_until_settled(tenant, queued["batch_id"])
    assert out["status"] == "done", out
    assert out["counts"]["sent"] == 2 and out["counts"]["suppressed"] == 1
    assert out["progress"] == {"total": 3, "processed": 3}
    assert out["send_rate"]["source"] == "default" and out["send_rate"]["per_second"] == 14
    assert "GetAccount is unavailable" in out["send_rate"]["note"]
    by_address = {r["address"]: r for r in out["results"]}
    assert by_address["bounced@example.org"]["status"] == "suppressed"
    assert by_address["bounced@example.org"]["reason"] == "BOUNCE"

    alice, bob = sent
    assert alice["Content"]["Simple"]["Subject"]["Data"] == "Hello Alice"
    bob_body = bob["Content"]["Simple"]["Body"]
    assert bob_body["Html"]["Data"] == "<p>Hi &lt;b&gt;Bob&lt;/b&gt;, your code is 2</p>"
    assert bob_body["Text"]["Data"] == "Hi <b>Bob</b>, your code is 2"
    assert bob["Destination"] == {"ToAddresses": ["Bob <bob@example.org>"]}
    for params, address in ((alice, "alice@example.org"), (bob, "bob@example.org")):
        headers = {h["Name"]: h["Value"] for h in params["Content"]["Simple"]["Headers"]}
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = re.fullmatch(r"<(.+)/unsubscribe/([^/>]+)>", headers["List-Unsubscribe"])
        assert link and link.group(1) == wiring.settings().public_url
        assert wiring.signer().verify("unsubscribe", link.group(2)) == {
            "t": tenant.id,
            "r": address,
        }
        assert tags_of(params) == {
            "sesami-tenant": tenant.id,
            "sesami-batch": out["batch_id"],
            "campaign": "welcome",
        }
    message_id = by_address["alice@example.org"]["message_id"]
    agg = MessageModel.get(keys.message_pk(tenant.id, message_id), AGGREGATE_SK)
    assert agg.subject == "Hello Alice" and agg.body["destination"] == ["alice@example.org"]


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_a_big_batch_is_queued_then_sent_in_slices_each_recipient_once(
    tenant: Tenant,
    sent: list[dict[str, Any]],
    runner: Runner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.sending import worker as sending_worker

    import app

    monkeypatch.setattr(sending_worker, "MAX_PER_INVOCATION", 10)
    runner.hold = True
    tenant.suppress("r5@example.org")
    tenant.suppress("r33@example.org")
    began = time.monotonic()
    response = tenant.post_get("POST", "/mail/bulk", bulk(recipients=_recipients(40)))
    assert response.status_code == 202 and time.monotonic() - began < 5
    assert sent == []  # nothing inside the request
    batch_id = response.json_body["batch_id"]
    assert runner.events == [{"tenant_id": tenant.id, "batch_id": batch_id, "next": 0}]
    view = tenant.post_get("GET", f"/mail/bulk/{batch_id}").json_body
    assert view["status"] == "queued" and view["counts"]["queued"] == 38
    assert [s["address"] for s in response.json_body["skipped"]] == [
        "r5@example.org",
        "r33@example.org",
    ]

    runs = 0
    while runner.events:
        event = runner.events.pop(0)
        before = len(sent)
        outcome = app.bulk_worker(event, Context(60_000))
        runs += 1
        assert outcome["outcome"] == "sent" and len(sent) - before <= 10
        # Lambda delivers the same event again: the slice is claimed, nothing more is sent.
        assert app.bulk_worker(event, Context(60_000))["outcome"] == "duplicate"
        assert len(sent) == before + outcome["sent"]
        view = tenant.post_get("GET", f"/mail/bulk/{batch_id}").json_body
        if runner.events:
            assert view["status"] == "sending"
            left = [i for i in range(outcome["next"], 40) if i not in (5, 33)]
            assert view["counts"]["queued"] == len(left), view["counts"]
    assert runs == 4
    destinations = [c["Destination"]["ToAddresses"][0] for c in sent]
    expected = [f"r{i}@example.org" for i in range(40) if i not in (5, 33)]
    assert destinations == expected  # each exactly once, in order
    assert view["status"] == "done"
    assert view["progress"] == {"total": 40, "processed": 40}
    assert view["counts"]["sent"] == 38 and view["counts"]["suppressed"] == 2
    assert len({r["message_id"] for r in view["results"] if r["status"] == "sent"}) == 38
    assert app.bulk_worker(event, Context(60_000))["outcome"] in ("duplicate", "finished")
    assert len(sent) == 38


def test_another_tenant_cannot_read_a_batch(
    api: Client, moto: str, pool: dict[str, str], tenant: Tenant, runner: Runner
) -> None:
    runner.hold = True
    batch_id = tenant.post_get("POST", "/mail/bulk", bulk()).json_body["batch_id"]
    other = Tenant(api, moto, pool, connect=False)
    response = other.post_get("GET", f"/mail/bulk/{batch_id}")
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "not_found"
    assert tenant.post_get("GET", "/mail/bulk/not-an-id").status_code == 404


def test_bulk_idempotency_replays_the_batch(tenant: Tenant, sent: list[dict[str, Any]]) -> None:
    key = {"Idempotency-Key": "bulk-1"}
    first = tenant.post_get("POST", "/mail/bulk", bulk(), key)
    again = tenant.post_get("POST", "/mail/bulk", bulk(), key)
    assert again.status_code == 202
    assert again.json_body["batch_id"] == first.json_body["batch_id"]
    assert again.json_body["status"] == "done"
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(sent) == 3
    other = tenant.post_get("POST", "/mail/bulk", bulk(tags={"campaign": "x"}), key)
    assert other.status_code == 409


def _recipients(n: int) -> list[dict[str, Any]]:
    return [
        {"to": f"r{i}@example.org", "variables": {"first_name": "R", "code": i}} for i in range(n)
    ]


BAD_BULK = [
    (
        bulk(recipients=[{"to": "a@example.org", "variables": {"code": 1}}]),
        "recipients[0].variables",
    ),
    (
        bulk(
            recipients=[
                {"to": "a@example.org", "variables": {"first_name": "A\r\nBcc: x", "code": 1}}
            ]
        ),
        "recipients[0].variables.first_name",
    ),
    (
        bulk(
            template={"subject": "=?utf-8?q?{{first_name}}?=", "text": "{{code}}"},
            recipients=[{"to": "a@example.org", "variables": {"first_name": "=0D=0A", "code": 1}}],
        ),
        "recipients[0].variables",
    ),
    (bulk(recipients=_recipients(1001)), "recipients"),
    (bulk(recipients=[]), "recipients"),
    (bulk(recipients=_recipients(1) * 2), "recipients[1].to"),
    (bulk(recipients=[{"to": "nope", "variables": {}}]), "recipients[0].to"),
    (bulk(template={"subject": "Hi\nthere", "text": "x"}), "template.subject"),
    (bulk(template={"subject": "Hi"}), "template.html"),
    (bulk(template={"subject": "Hi", "text": "x", "footer": "y"}), "template.footer"),
    (bulk(tags={"campaign": "a\nb"}), "tags.campaign"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BULK, ids=[f for _, f in BAD_BULK])
def test_bad_bulk_input_is_a_400_naming_the_field(
    shared: Tenant, sent: list[dict[str, Any]], body: dict[str, Any], field: str
) -> None:
    response = shared.post_get("POST", "/mail/bulk", body)
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["details"] == {"field": field}
    assert sent == []


# ---------------------------------------------------------------------------- property tests

_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _encoded(text: str, charset: str, q: bool) -> str:
    raw = text.encode(charset, "replace")
    if q:
        payload = "".join(chr(b) if chr(b).isalnum() else f"={b:02X}" for b in raw)
        return f"=?{charset}?q?{payload}?="
    import base64

    return f"=?{charset}?b?{base64.b64encode(raw).decode()}?="


header_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("ab <>\"'=?_:\r\n\t\x00\x85\u2028ø"), max_size=30),
    st.builds(
        _encoded,
        st.text(alphabet=st.sampled_from("ab \r\n:\x00é"), max_size=12),
        st.sampled_from(["utf-8", "UTF-8", "latin-1"]),
        st.booleans(),
    ),
)


def _no_break(value: str) -> bool:
    if any(ch in value for ch in _LINE_BREAKS):
        return False
    try:
        parts = decode_header(value)
    except Exception:  # the stdlib gives up: nothing it would decode into a break
        return True
    decoded = "".join(
        p.decode(c or "latin-1", "replace") if isinstance(p, bytes) else p for p, c in parts
    )
    return not any(ch in decoded for ch in _LINE_BREAKS)


@given(text=header_text)
@examples(max_examples=400, deadline=None)
def test_check_header_never_accepts_a_line_break_raw_or_encoded(text: str) -> None:
    try:
        check_header(text, "field")
    except InvalidRequest:
        return
    assert _no_break(text)


def _with(field: str, text: str) -> dict[str, Any]:
    if field == "subject":
        return mail(subject=text or "x")
    if field == "from_name":
        return mail(**{"from": {"address": f"news@{DOMAIN}", "name": text}})
    if field == "to_name":
        return mail(to=[{"address": "alice@example.org", "name": text}])
    if field == "reply_to":
        return mail(reply_to=f"{text} <r@{DOMAIN}>")
    if field == "tag_name":
        return mail(tags={text: "v"})
    return mail(tags={"t": text})


def _header_values(params: dict[str, Any]) -> list[str]:
    simple = params["Content"]["Simple"]
    values = [params["FromEmailAddress"], simple["Subject"]["Data"]]
    values += [a for group in params["Destination"].values() for a in group]
    values += params.get("ReplyToAddresses", [])
    values += [v for t in params.get("EmailTags", []) for v in (t["Name"], t["Value"])]
    values += [v for h in simple.get("Headers", []) for v in (h["Name"], h["Value"])]
    return values


@given(
    field=st.sampled_from(["subject", "from_name", "to_name", "reply_to", "tag_name", "tag"]),
    text=header_text,
)
@examples(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_header_text_is_refused_or_reaches_ses_without_a_line_break(
    tenant: Tenant, wire: AwsWire, field: str, text: str
) -> None:
    wire.calls[SEND].clear()
    response = tenant.mail(_with(field, text))
    assert response.status_code in (200, 400), response.json_body
    if response.status_code == 400:
        assert wire.calls[SEND] == []
        return
    (params,) = wire.calls[SEND]
    for value in _header_values(params):
        assert _no_break(value), value


@given(name=header_text)
@examples(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_bulk_variable_in_the_subject_is_refused_or_safe(
    tenant: Tenant, wire: AwsWire, name: str
) -> None:
    wire.calls[SEND].clear()
    body = bulk(
        template={"subject": "=?utf-8?q?Hi_{{first_name}}?= {{first_name}}", "text": "x"},
        recipients=[{"to": "alice@example.org", "variables": {"first_name": name}}],
    )
    response = tenant.post_get("POST", "/mail/bulk", body)
    assert response.status_code in (202, 400), response.json_body
    for params in wire.calls[SEND]:
        for value in _header_values(params):
            assert _no_break(value), value


# ---------------------------------------------------------------------------- service, fakes


class Fakes:
    """The service and the worker over a fake SES and clock; workers started are recorded."""

    def __init__(self, settings: Any, ses: FakeSes, clock: FakeEpochClock) -> None:
        from chalicelib.core.signing import Signer
        from chalicelib.sending.service import MailService
        from chalicelib.sending.worker import BulkWorker

        self.tenant = _tenant_model()
        self.runner = Runner(hold=True)
        store, signer = SendingStore(settings), Signer(b"k" * 32)
        self.service = MailService(settings, store, lambda tenant: ses, signer, runner=self.runner)
        self.worker = BulkWorker(
            store,
            lambda tenant: ses,
            signer,
            self.runner,
            "https://sesami.example",
            tenant_for=lambda tid: self.tenant,
            clock=clock,
            sleep=clock.sleep,
        )

    def post(self, n: int) -> str:
        out = self.service.send_bulk(self.tenant, bulk(recipients=_recipients(n)), None)
        assert out.status == 202
        return str(out.body["batch_id"])

    def view(self, batch_id: str) -> dict[str, Any]:
        return dict(self.service.batch(self.tenant, batch_id))

    def statuses(self, batch_id: str) -> list[str]:
        return [r["status"] for r in self.view(batch_id)["results"]]


def _tenant_model() -> Any:
    from chalicelib.core.tables import TenantModel

    return TenantModel(
        uuid.uuid4().hex,
        external_id="x",
        created_at=datetime.now(UTC),
        role_arn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/sesami/R",
    )


def test_a_worker_is_paced_and_gives_back_what_its_budget_cannot_reach(settings: Any) -> None:
    clock, ses = FakeEpochClock(), FakeSes(rate=2.0)
    fakes = Fakes(settings, ses, clock)
    batch_id = fakes.post(5)
    outcome = fakes.worker.run(fakes.runner.events[0], remaining_ms=11_200)  # 1.2 s of budget
    assert clock.sleeps == [0.5, 0.5]  # three sends at 0, 0.5 and 1.0 s
    assert outcome["slice"] == [0, 3] and outcome["next"] == 3
    assert fakes.statuses(batch_id) == ["sent"] * 3 + ["queued"] * 2
    view = fakes.view(batch_id)
    assert view["status"] == "sending"
    assert view["send_rate"] == {"per_second": 2.0, "source": "ses", "note": None}
    assert fakes.runner.events[-1]["next"] == 3
    fakes.worker.run(fakes.runner.events[-1], remaining_ms=60_000)
    assert fakes.statuses(batch_id) == ["sent"] * 5 and fakes.view(batch_id)["status"] == "done"
    assert len(ses.sent) == 5 and len(fakes.runner.events) == 2


def test_a_refused_message_fails_alone_a_refused_account_stops_the_batch(settings: Any) -> None:
    refuse = {
        "r1@example.org": SesRefused("bad", ses_code="MessageRejected", per_message=True),
        "r3@example.org": SesRefused(
            "paused", ses_code="SendingPausedException", per_message=False
        ),
    }
    fakes = Fakes(settings, FakeSes(100.0, refuse), FakeEpochClock())
    batch_id = fakes.post(5)
    fakes.worker.run(fakes.runner.events[0])
    assert fakes.statuses(batch_id) == ["sent", "failed", "sent", "failed", "not_sent"]
    assert fakes.view(batch_id)["status"] == "incomplete" and len(fakes.runner.events) == 1


def test_ses_unavailable_in_a_batch_stops_it(settings: Any) -> None:
    refuse: dict[str, Exception] = {"r0@example.org": ServiceUnavailable("down")}
    fakes = Fakes(settings, FakeSes(100.0, refuse), FakeEpochClock())
    batch_id = fakes.post(3)
    fakes.worker.run(fakes.runner.events[0])
    assert fakes.statuses(batch_id) == ["failed", "not_sent", "not_sent"]


def test_a_dead_workers_slice_is_unknown_never_sent_again(settings: Any) -> None:
    """A worker killed inside its slice (timeout) leaves its claim open; once its deadline has
    passed, the Lambda retry takes over after the slice: the unrecorded ones are unknown."""
    clock, ses = FakeEpochClock(), FakeSes(rate=100.0)
    fakes = Fakes(settings, ses, clock)
    batch_id = fakes.post(6)
    store, tid = SendingStore(settings), fakes.tenant.tenant_id
    doc = store.batch_summary(tid, batch_id)
    assert doc is not None
    assert doc is not None
    dead = doc.but(next=3, claim=Claim(start=0, end=3, deadline=1.0))
    assert store.replace_summary(tid, batch_id, doc, dead)
    assert not store.replace_summary(tid, batch_id, doc, dead)  # the compare-and-swap
    store.record_result(tid, batch_id, 0, RecipientResult("r0@example.org", "sent"))
    assert fakes.statuses(batch_id) == ["sent", "unknown", "unknown"] + ["queued"] * 3
    outcome = fakes.worker.run(fakes.runner.events[0])  # the retry of the dead invocation
    assert outcome["slice"] == [3, 6]
    assert [e.to[0] for e in ses.sent] == ["r3@example.org", "r4@example.org", "r5@example.org"]
    assert fakes.statuses(batch_id) == ["sent", "unknown", "unknown"] + ["sent"] * 3
    assert fakes.view(batch_id)["status"] == "incomplete"


def test_a_live_claim_keeps_other_invocations_out(settings: Any) -> None:
    fakes = Fakes(settings, FakeSes(rate=100.0), FakeEpochClock())
    batch_id = fakes.post(2)
    store, tid = SendingStore(settings), fakes.tenant.tenant_id
    doc = store.batch_summary(tid, batch_id)
    assert doc is not None
    assert doc is not None
    live = doc.but(next=2, claim=Claim(start=0, end=2, deadline=4e9))
    assert store.replace_summary(tid, batch_id, doc, live)
    assert fakes.worker.run(fakes.runner.events[0])["outcome"] == "claimed"
    assert fakes.statuses(batch_id) == ["sending", "sending"]


def test_the_lambda_runner_invokes_the_worker_asynchronously() -> None:
    from chalicelib.sending.worker import LambdaRunner

    client = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    event = {"tenant_id": "t", "batch_id": "b", "next": 0}
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": "sesami-bulk_worker",
                "InvocationType": "Event",
                "Payload": json.dumps(event).encode(),
            },
        )
        LambdaRunner(client, "sesami-bulk_worker").start(event)
        stub.assert_no_pending_responses()


# ---------------------------------------------------------------------------- adapter


def _stubbed() -> tuple[SesV2, Stubber]:
    ses = boto3.client(
        "sesv2", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    return SesV2(ses), Stubber(ses)


EMAIL = OutgoingEmail(sender=SENDER, subject="s", html=None, text="t", to=("a@example.org",))


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("MessageRejected", 400, "per_message"),
        ("SendingPausedException", 400, "account"),
        ("AccountSuspendedException", 400, "account"),
        ("TooManyRequestsException", 429, "unavailable"),
        ("InternalFailure", 500, "unavailable"),
    ],
)
def test_adapter_translates_ses_errors(code: str, status: int, expected: str) -> None:
    adapter, stub = _stubbed()
    stub.add_client_error("send_email", code, "why", http_status_code=status)
    with stub, pytest.raises((SesRefused, ServiceUnavailable)) as caught:
        adapter.send(EMAIL)
    if expected == "unavailable":
        assert isinstance(caught.value, ServiceUnavailable)
    else:
        assert isinstance(caught.value, SesRefused)
        assert caught.value.per_message is (expected == "per_message")


def test_adapter_reads_the_send_rate_and_refuses_an_unsafe_header() -> None:
    adapter, stub = _stubbed()
    stub.add_response("get_account", {"SendQuota": {"MaxSendRate": 50.0}})
    with stub:
        assert adapter.send_rate() == SendRate(50.0, "ses")
    with pytest.raises(InvalidRequest):  # invariant 8 holds even for a caller that skips input
        adapter.send(OutgoingEmail(sender=SENDER, subject="a\r\nb", html=None, text="t"))
