"""The send-time suppression check served from Momento (the real SDK against the local Momento
server), DynamoDB Local the source of truth: a suppression written by ingest or the API is
honoured by the next send, Momento down falls back to DynamoDB, and a bulk send reads DynamoDB
fewer times with the cache than without (DynamoDB requests counted at botocore's level)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from chalicelib.core import keys, tables
from chalicelib.core.signing import Signer
from chalicelib.core.tables import SuppressionModel, TenantModel
from chalicelib.ingest.pipeline import ingest_envelopes
from chalicelib.sending.hooks import Hooks
from chalicelib.sending.momento_cache import momento_dictionaries
from chalicelib.sending.service import MailService, RecipientsSuppressed
from chalicelib.sending.store import SendingStore
from chalicelib.sending.suppression_cache import CachedSuppressionCheck
from chalicelib.sending.worker import BulkWorker
from chalicelib.suppression.store import SuppressionService

from devstack.momento_local.server import MomentoLocalServer
from tests.aws_calls import recording
from tests.conftest import load_event
from tests.fakes import FakeEpochClock, FakeSes
from tests.sending.test_mail import SENDER, Runner
from tests.support import TestTenant, for_account, make_tenant

pytestmark = pytest.mark.ddb_local


@pytest.fixture
def momento() -> Iterator[MomentoLocalServer]:
    with MomentoLocalServer() as server:
        yield server


def _check(settings: Any, server: MomentoLocalServer) -> CachedSuppressionCheck:
    cache = momento_dictionaries(
        None, server.endpoint, f"sesami-test-{uuid.uuid4().hex[:6]}", timedelta(seconds=2)
    )
    return CachedSuppressionCheck(SendingStore(settings), cache)


class Sender:
    """MailService and BulkWorker over a fake SES, with the given suppression check."""

    def __init__(self, settings: Any, tenant: TestTenant, suppressed: Any) -> None:
        self.model = TenantModel.get(tenant.tenant_id)
        self.model.role_arn = "arn:aws:iam::123456789012:role/sesami/SESamiAccess"
        self.ses, self.runner = FakeSes(rate=1_000.0), Runner(hold=True)
        store, signer = SendingStore(settings), Signer(b"k" * 32)
        hooks = Hooks(suppressed=suppressed)
        self.service = MailService(
            settings, store, lambda t: self.ses, signer, runner=self.runner, hooks=hooks
        )
        clock = FakeEpochClock()
        self.worker = BulkWorker(
            store,
            lambda t: self.ses,
            signer,
            self.runner,
            "https://sesami.example",
            tenant_for=lambda tid: self.model,
            clock=clock,
            sleep=clock.sleep,
            hooks=hooks,
        )

    def send(self, to: str) -> Any:
        body = {"from": SENDER, "to": [to], "subject": "Hi", "text": "Hi"}
        return self.service.send(self.model, body, None)

    def bulk(self, addresses: list[str]) -> None:
        body = {
            "from": SENDER,
            "template": {"subject": "Hi {{n}}", "text": "Hi {{n}}"},
            "recipients": [{"to": a, "variables": {"n": str(i)}} for i, a in enumerate(addresses)],
        }
        self.service.send_bulk(self.model, body, None)
        while self.runner.events:
            self.worker.run(self.runner.events.pop(0), remaining_ms=900_000)


def _bounce(tenant: TestTenant) -> None:
    """A permanent bounce of bob@example.com and carol@example.com, through the real ingest."""
    envelope = for_account(load_event("bounce_permanent_multi"), tenant.account_id)
    envelope["detail"]["mail"]["messageId"] = uuid.uuid4().hex
    report = ingest_envelopes([envelope], tenants=tenant.directory, store=tenant.store)
    assert report.counts() == {"stored": 1}


def test_a_bounce_ingested_then_a_send_through_the_cache_is_refused(
    settings: Any, momento: MomentoLocalServer
) -> None:
    tenant = make_tenant(settings)
    check = _check(settings, momento)
    sender = Sender(settings, tenant, check.suppressed)
    assert sender.send("bob@example.com").status == 200  # not suppressed yet: now cached so
    assert sender.send("bob@example.com").status == 200
    assert check.stats.local_hits == 1 and momento.calls["DictionarySet"] >= 1
    _bounce(tenant)
    with pytest.raises(RecipientsSuppressed):
        sender.send("bob@example.com")
    # Another instance (its own memory, the same Momento) refuses too, from Momento.
    other = _check(settings, momento)
    other._cache = check._cache
    with pytest.raises(RecipientsSuppressed):
        Sender(settings, tenant, other.suppressed).send("carol@example.com")
    assert len(sender.ses.sent) == 2


def test_a_suppression_added_through_the_api_is_honoured_at_once(
    settings: Any, momento: MomentoLocalServer
) -> None:
    tenant = make_tenant(settings)
    check = _check(settings, momento)
    sender = Sender(settings, tenant, check.suppressed)
    assert sender.send("dan@example.org").status == 200
    service = SuppressionService(Signer(b"k" * 32))
    service.add(tenant.tenant_id, "dan@example.org", "asked by phone", "test")
    with pytest.raises(RecipientsSuppressed):
        sender.send("dan@example.org")
    service.remove(tenant.tenant_id, "dan@example.org", "fixed", "test")
    assert sender.send("dan@example.org").status == 200  # a removal is honoured too


def test_with_momento_stopped_the_check_falls_back_to_dynamodb_and_refuses(
    settings: Any, momento: MomentoLocalServer
) -> None:
    tenant = make_tenant(settings)
    check = _check(settings, momento)
    sender = Sender(settings, tenant, check.suppressed)
    assert sender.send("bob@example.com").status == 200
    momento.stop(0)
    _bounce(tenant)
    with pytest.raises(RecipientsSuppressed):
        sender.send("bob@example.com")
    assert check.stats.cache_errors >= 1
    # Still down, and a fresh instance with nothing in memory: DynamoDB answers.
    fresh = _check(settings, momento)
    with pytest.raises(RecipientsSuppressed):
        Sender(settings, tenant, fresh.suppressed).send("carol@example.com")


def _dynamodb_reads(settings: Any, run: Any) -> int:
    """DynamoDB requests on the suppression table made while `run` runs."""
    table = f"{settings.table_prefix}suppression"
    with recording() as aws:
        tables.configure(settings)  # PynamoDB builds its clients anew: the recording sees them
        run()
    tables.configure(settings)
    return sum(
        1
        for c in aws.calls
        if c.service == "dynamodb"
        and (c.params.get("TableName") == table or table in c.params.get("RequestItems", {}))
    )


def test_a_bulk_send_of_1000_reads_dynamodb_fewer_times_with_the_cache(
    settings: Any, momento: MomentoLocalServer
) -> None:
    tenant = make_tenant(settings)
    addresses = [f"r{i}@example.org" for i in range(1_000)]
    plain = Sender(settings, tenant, SendingStore(settings).suppressed)
    without = _dynamodb_reads(settings, lambda: plain.bulk(addresses))
    check = _check(settings, momento)
    cached = Sender(settings, tenant, check.suppressed)
    cold = _dynamodb_reads(settings, lambda: cached.bulk(addresses))
    warm = _dynamodb_reads(settings, lambda: cached.bulk(addresses))
    # Without: one BatchGet per 100 addresses, when queued and again when each slice is sent.
    # Without: one BatchGet per 100 keys (1,000 addresses and the erasure marker, which this
    # tenant lacks: no hash is looked up), when queued and again when each slice is sent.
    assert without == 22
    # With: the version (one BatchGet of its counters) each time; the entries once, cold.
    assert cold == 13 and warm == 2
    assert len(plain.ses.sent) == len(cached.ses.sent) / 2 == 1_000
    assert check.stats.list_reads == 1_000  # each address read from the list once


def test_a_miss_reads_the_list_strongly_consistent(
    settings: Any, momento: MomentoLocalServer
) -> None:
    # The answer is stored under a version read strongly consistent: an eventually consistent
    # list read could miss a suppression that version counts, and pin "not suppressed" under it.
    tenant = make_tenant(settings)
    # The erasure marker: the check then also reads the addresses' salted hashes (a 2nd BatchGet).
    erased_pk = keys.erased_pk(tenant.tenant_id)
    SuppressionModel(erased_pk, keys.ERASED_MARKER, reason="ERASED", created_at="2026").save()
    check = _check(settings, momento)
    table = f"{settings.table_prefix}suppression"
    with recording() as aws:
        tables.configure(settings)
        check.suppressed(tenant.tenant_id, ["erin@example.org"])
    tables.configure(settings)
    reads = [
        c.params["RequestItems"][table]
        for c in aws.calls
        if table in c.params.get("RequestItems", {})
    ]
    # The version's counters, then the entries with the marker, then the hashes.
    assert len(reads) == 3 and check.stats.list_reads == 1
    assert all(r.get("ConsistentRead") is True for r in reads)


def test_momento_holds_no_address_in_plain_text(settings: Any, momento: MomentoLocalServer) -> None:
    # Erasure cannot reach into Momento: fields are the addresses' salted hashes (the form
    # erasure keeps) and values carry no address; the refusal names the address it was asked.
    tenant = make_tenant(settings)
    SuppressionService(Signer(b"k" * 32)).add(tenant.tenant_id, "Fay@Example.org", "asked", "t")
    check = _check(settings, momento)
    asked = ["fay@example.org", "gus@example.org"]
    assert set(check.suppressed(tenant.tenant_id, asked)) == {"fay@example.org"}
    stored = [
        (field, value)
        for dictionaries in momento.store._dicts.values()
        for fields, _ in dictionaries.values()
        for field, value in fields.items()
    ]
    assert len(stored) == 2
    assert not [kv for kv in stored if any(b"example.org" in part for part in kv)]
    fresh = _check(settings, momento)
    fresh._cache = check._cache
    refused = fresh.suppressed(tenant.tenant_id, asked)  # from Momento alone
    assert fresh.stats.cache_hits == 2 and fresh.stats.list_reads == 0
    assert refused["fay@example.org"].address == "fay@example.org"
    assert refused["fay@example.org"].reason == "MANUAL"


def test_a_dictionary_expires_its_ttl_after_creation_however_often_written(
    momento: MomentoLocalServer,
) -> None:
    # A TTL refreshed by every write would keep a busy dictionary (and what it holds of an
    # erased address) forever, growing without bound.
    now = [1_000.0]
    momento.store._clock = lambda: now[0]
    cache = momento_dictionaries(None, momento.endpoint, "sesami-ttl", timedelta(seconds=2))
    assert cache is not None
    ttl = timedelta(hours=1)
    cache.set_fields("d", {"a": b"1"}, ttl)
    now[0] += 50 * 60
    cache.set_fields("d", {"b": b"2"}, ttl)
    assert cache.get_fields("d", ["a", "b"]) == {"a": b"1", "b": b"2"}
    now[0] += 11 * 60
    assert cache.get_fields("d", ["a", "b"]) == {}


def test_any_spelling_of_a_suppressed_address_is_refused_through_the_cache(
    settings: Any, momento: MomentoLocalServer
) -> None:
    # Invariant 12: the check keys by the canonical address, as the list is stored; a key of its
    # own (lower-cased only) would miss the entry and cache "not suppressed" for the spelling.
    tenant = make_tenant(settings)
    SuppressionService(Signer(b"k" * 32)).add(tenant.tenant_id, "ann@bücher.de", "asked", "t")
    check = _check(settings, momento)
    for spelling in ("Ann <Ann@Bücher.de>", "ANN@XN--BCHER-KVA.DE", "ann@bücher.de"):
        refused = check.suppressed(tenant.tenant_id, [spelling])
        assert set(refused) == {"ann@xn--bcher-kva.de"}, spelling
    assert check.stats.list_reads == 1 and check.stats.local_hits == 2
    other = _check(settings, momento)
    other._cache = check._cache
    assert set(other.suppressed(tenant.tenant_id, ["Ann@BÜCHER.de"])) == {"ann@xn--bcher-kva.de"}
    assert other.stats.cache_hits == 1
