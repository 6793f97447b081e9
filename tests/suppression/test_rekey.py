"""The re-keying command (ops/canonical_addresses.py, suppression/rekey.py) on DynamoDB Local:
entries and tombstones stored under another spelling move to the canonical key, merged with what
is there; a second run changes nothing; a concurrent write makes it start again, never lost."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import SuppressionModel
from chalicelib.sending.store import SendingStore
from chalicelib.suppression import rekey as rekey_module
from chalicelib.suppression.entries import entry_view
from chalicelib.suppression.rekey import rekey
from chalicelib.suppression.store import SuppressionService

from ops.canonical_addresses import main

T1, T2, T3, T4 = (f"2026-0{m}-01T00:00:00.000Z" for m in (1, 2, 3, 4))
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def put(pk: str, address: str, reason: str, created_at: str, **fields: Any) -> None:
    fields.setdefault("occurrences", 1)
    SuppressionModel(
        pk, address, reason=reason, reasons={reason}, created_at=created_at, **fields
    ).save()


def stored(pk: str) -> dict[str, SuppressionModel]:
    return {i.address: i for i in SuppressionModel.query(pk)}


@pytest.fixture
def tid(settings: Any) -> str:
    """A tenant whose list holds what the API stored before addresses had one key."""
    tid = uuid.uuid4().hex
    live, removed = keys.tenant_pk(tid), keys.removed_pk(tid)
    # One address under two spellings: a bounce ingest wrote (ASCII), a manual add (Unicode).
    put(live, "ann@xn--bcher-kva.de", "BOUNCE", T1, created_by="ses-event", occurrences=2,
        bounce_type="Permanent", bounce_subtype="General", source_message_id="m-1")  # fmt: skip
    manual = {"at": T2, "by": "ops@example.com", "action": "added", "why": "asked by phone"}
    put(live, "ann@bücher.de", "MANUAL", T2, created_by="ops@example.com", note="asked by phone",
        history=[manual], revision=1)  # fmt: skip
    # Only under the Unicode spelling: an unsubscribe link.
    put(live, "bob@bücher.de", "UNSUBSCRIBED", T3, created_by="recipient", revision=1,
        history=[{"at": T3, "by": "recipient", "action": "unsubscribed", "why": "x"}])  # fmt: skip
    # Two tombstones of one address.
    put(removed, "cy@bücher.de", "MANUAL", T1, removed_at=T3, removed_by="a@example.com")
    put(removed, "cy@xn--bcher-kva.de", "BOUNCE", T2, removed_at=T4, removed_by="b@example.com")
    put(live, "dee@example.com", "COMPLAINT", T1)  # already canonical: untouched
    return tid


def test_rekeys_and_merges_entries_and_tombstones(tid: str) -> None:
    out: list[Any] = []
    counts = rekey([tid], clock=lambda: NOW, report=out.append)
    assert counts == {"merged": 2, "moved": 1, "spellings": 3}
    live = stored(keys.tenant_pk(tid))
    assert sorted(live) == ["ann@xn--bcher-kva.de", "bob@xn--bcher-kva.de", "dee@example.com"]

    ann = live["ann@xn--bcher-kva.de"]
    assert (ann.reason, ann.reasons, ann.occurrences) == ("BOUNCE", {"BOUNCE", "MANUAL"}, 3)
    assert (ann.created_at, ann.created_by, ann.bounce_type) == (T1, "ses-event", "Permanent")
    assert ann.note == "asked by phone" and ann.source_message_id == "m-1"
    history = entry_view(ann, full=True)["history"]
    assert [(h["at"], h["action"]) for h in history] == [
        (T1, "added"),  # the bounce's origin, made from its fields
        (T2, "added"),  # the manual add
        (keys.iso_ms(NOW), "rekeyed"),
    ]
    assert "ann@bücher.de" in history[-1]["why"]
    assert live["bob@xn--bcher-kva.de"].reasons == {"UNSUBSCRIBED"}
    assert live["dee@example.com"].revision is None  # not rewritten

    [cy] = stored(keys.removed_pk(tid)).values()
    assert (cy.address, cy.removed_at, cy.removed_by) == (
        "cy@xn--bcher-kva.de",
        T4,
        "b@example.com",
    )
    assert (cy.reason, cy.reasons, cy.created_at) == ("MANUAL", {"MANUAL", "BOUNCE"}, T1)
    assert [r.pk for r in out] == [keys.tenant_pk(tid), keys.tenant_pk(tid), keys.removed_pk(tid)]

    # Sending now sees them under every spelling.
    found = SendingStore(None).suppressed(tid, ["Ann@Bücher.de", "BOB@xn--bcher-kva.de"])  # type: ignore[arg-type]
    assert sorted(found) == ["ann@xn--bcher-kva.de", "bob@xn--bcher-kva.de"]


def test_a_second_run_changes_nothing(tid: str) -> None:
    rekey([tid], clock=lambda: NOW)
    before = {a: i.attribute_values for a, i in stored(keys.tenant_pk(tid)).items()}
    assert rekey([tid], clock=lambda: NOW) == {}
    after = {a: i.attribute_values for a, i in stored(keys.tenant_pk(tid)).items()}
    assert after == before


def test_a_dry_run_reports_and_writes_nothing(tid: str) -> None:
    before = sorted(stored(keys.tenant_pk(tid)))
    counts = rekey([tid], dry_run=True)
    assert counts == {"merged": 2, "moved": 1, "spellings": 3}
    assert sorted(stored(keys.tenant_pk(tid))) == before


def test_a_concurrent_ingest_write_is_kept(tid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest adds to `occurrences` without touching `revision`: the merge's condition sees it,
    and the retry re-reads, so the count is never lost."""
    original = rekey_module._write
    raced: list[str] = []

    def racing(merged: Any, target: Any, sources: Any) -> None:
        if target is not None and not raced:
            raced.append(target.address)
            SuppressionModel(target.pk, target.address).update(
                actions=[SuppressionModel.occurrences.add(1)]
            )
        original(merged, target, sources)

    monkeypatch.setattr(rekey_module, "_write", racing)
    rekey([tid], clock=lambda: NOW)
    assert raced == ["ann@xn--bcher-kva.de"]
    assert stored(keys.tenant_pk(tid))["ann@xn--bcher-kva.de"].occurrences == 4  # 2 + 1 + 1


def test_the_api_shows_the_merged_entry_under_any_spelling(tid: str, app_settings: Any) -> None:
    rekey([tid], clock=lambda: NOW)
    from chalicelib.core import wiring

    service = SuppressionService(wiring.signer())
    for spelling in ("ann@bücher.de", "ANN@XN--BCHER-KVA.DE", "Ann <ann@Bücher.de>"):
        view = service.get(tid, spelling)
        assert view["address"] == "ann@xn--bcher-kva.de" and view["suppressed"] is True


def test_the_command_scans_every_tenant_and_is_safe_twice(
    tid: str, app_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 0
    first = capsys.readouterr().out.splitlines()
    line = f"{keys.tenant_pk(tid)} ann@bücher.de -> ann@xn--bcher-kva.de"
    assert any(x.startswith("rekeyed") and x.endswith(line) for x in first), first
    assert sorted(stored(keys.tenant_pk(tid))) == [
        "ann@xn--bcher-kva.de",
        "bob@xn--bcher-kva.de",
        "dee@example.com",
    ]
    assert main(["--tenant", tid]) == 0
    assert capsys.readouterr().out.strip() == "nothing to re-key"


def test_the_scan_leaves_what_is_not_an_address_alone(tid: str, app_settings: Any) -> None:
    # The suppression table also holds the list's version counters (sort key "SV"), which a
    # re-key would have "canonicalised" to "sv" (found when the send-time cache was merged).
    from chalicelib.core.tables import SuppressionVersionModel
    from chalicelib.suppression.rekey import misplaced

    SuppressionVersionModel(keys.suppression_version_pk(tid, 0), version=3).save()
    assert not [pk for pk, _ in misplaced() if pk.startswith(f"{keys.tenant_pk(tid)}#SV")]
    assert SuppressionVersionModel.get(keys.suppression_version_pk(tid, 0), "SV").version == 3


def test_the_command_dry_run_for_one_tenant(tid: str, app_settings: Any) -> None:
    from ops.canonical_addresses import run

    out = io.StringIO()
    assert run([tid], dry_run=True, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[-1] == "merged=2 moved=1 spellings=3"
    assert any(line.startswith("would move") and "bob@bücher.de" in line for line in lines)
    assert "bob@bücher.de" in stored(keys.tenant_pk(tid))


def test_a_rekey_raises_the_list_version_so_a_cached_miss_is_not_used(tid: str) -> None:
    # The send-time cache holds "not suppressed" for the canonical key of bob@bücher.de (whose
    # only entry is under the Unicode spelling); the re-key makes it suppressed: the version
    # must move, or the cached answer would let the next send through.
    from chalicelib.sending.suppression_cache import CachedSuppressionCheck

    check = CachedSuppressionCheck(SendingStore(None), None)  # type: ignore[arg-type]
    assert check.suppressed(tid, ["bob@xn--bcher-kva.de"]) == {}
    assert check.suppressed(tid, ["bob@xn--bcher-kva.de"]) == {}
    assert check.stats.local_hits == 1  # the miss is cached
    rekey([tid], clock=lambda: NOW)
    refused = check.suppressed(tid, ["bob@xn--bcher-kva.de"])
    assert refused["bob@xn--bcher-kva.de"].reason == "UNSUBSCRIBED"
