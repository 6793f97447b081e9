"""The suppression list through the API (real tokens from moto's Cognito, DynamoDB Local), and
its sync with the SES account-level list.

moto does not implement the SESv2 suppression-list APIs (ListSuppressedDestinations,
PutSuppressedDestination, DeleteSuppressedDestination): the sync logic is tested with botocore's
Stubber on a real boto3 sesv2 client, and on moto the route must say "not available"."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.stub import Stubber
from chalice.test import Client
from chalicelib.core import keys, wiring
from chalicelib.core.errors import RoleAccessDenied
from chalicelib.core.keys import removed_pk
from chalicelib.core.tables import AccountModel, SuppressionModel
from chalicelib.ingest.directory import TenantDirectory
from chalicelib.ingest.pipeline import ingest_envelopes
from chalicelib.ingest.store import EventStore
from chalicelib.suppression.store import HISTORY_KEPT, SuppressionService
from chalicelib.suppression.sync import SuppressionSync
from chalicelib.tenant_aws.ses import SesV2SuppressionList

from tests.api_fixtures import MOTO_ACCOUNT, call, make_role, sign_in
from tests.conftest import load_event
from tests.support import BOUND_LONG_AGO, for_account

PRIVATE_ROUTES = [
    ("GET", "/suppression-list"),
    ("GET", "/suppression-list/a%40example.com"),
    ("PUT", "/suppression-list/a%40example.com"),
    ("DELETE", "/suppression-list/a%40example.com"),
    ("POST", "/suppression-list/sync"),
]


def user(api: Client, moto: str, pool: dict[str, str]) -> tuple[str, str, str]:
    """A signed-in user of a fresh tenant: (token, tenant_id, email)."""
    email = f"ops-{secrets.token_hex(4)}@example.com"
    token = sign_in(moto, pool, email)
    return token, call(api, "GET", "/account", token).json_body["tenant_id"], email


def url(address: str) -> str:
    return "/suppression-list/" + quote(address, safe="")


def put(api: Client, token: str, address: str, why: str = "asked us by phone") -> Any:
    return call(api, "PUT", url(address), token, {"reason": why})


def seed(tenant_id: str, address: str, reason: str) -> None:
    """An entry as ingest writes it (no history)."""
    SuppressionModel(
        keys.tenant_pk(tenant_id),
        address,
        reason=reason,
        reasons={reason},
        created_at="2026-01-02T03:04:05.000Z",
        created_by="ses-event",
    ).save()


def ingest_bounce(settings: Any, tenant_id: str) -> None:
    """Real ingest of a permanent bounce of bob@ and carol@example.com for this tenant."""
    account = "".join(secrets.choice("0123456789") for _ in range(12))
    AccountModel(account, tenant_id=tenant_id, bound_at=BOUND_LONG_AGO).save()
    envelope = for_account(load_event("bounce_permanent_multi"), account)
    ingest_envelopes([envelope], tenants=TenantDirectory(0), store=EventStore(settings))


def listing(api: Client, token: str, query: str = "") -> Any:
    response = call(api, "GET", f"/suppression-list?{query}", token)
    assert response.status_code == 200, response.json_body
    return response.json_body


def addresses(api: Client, token: str, query: str = "") -> list[str]:
    return [i["address"] for i in listing(api, token, query)["items"]]


# ---------------------------------------------------------------------------- auth


@pytest.mark.parametrize(("method", "path"), PRIVATE_ROUTES)
@pytest.mark.parametrize("token", [None, "not-a-jwt"])
def test_every_suppression_route_needs_a_valid_token(
    api: Client, method: str, path: str, token: str | None
) -> None:
    response = call(api, method, path, token, {"reason": "x"} if method == "PUT" else None)
    assert response.status_code == 401
    assert response.json_body["error"]["code"] == "unauthorized"


# ---------------------------------------------------------------------------- add


def test_put_adds_a_manual_entry_lower_cased_with_who_when_why(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, _, email = user(api, moto, pool)
    response = put(api, token, "John.Doe@Example.COM", "  asked us\r\nby phone ")
    assert response.status_code == 200, response.json_body
    entry = response.json_body
    assert entry["address"] == "john.doe@example.com" and entry["created"] is True
    assert (entry["reason"], entry["reasons"], entry["suppressed"]) == ("MANUAL", ["MANUAL"], True)
    assert entry["note"] == "asked us by phone"
    [change] = entry["history"]
    assert (change["by"], change["action"], change["why"]) == (email, "added", entry["note"])
    assert abs(datetime.fromisoformat(change["at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    [listed] = listing(api, token)["items"]
    assert listed["address"] == "john.doe@example.com" and listed["reason"] == "MANUAL"
    assert listed["last_change"] == change and "history" not in listed


def test_put_on_an_existing_entry_keeps_its_reason_and_records_the_note(
    api: Client, moto: str, pool: dict[str, str], settings: Any
) -> None:
    token, tenant_id, email = user(api, moto, pool)
    ingest_bounce(settings, tenant_id)
    response = put(api, token, "bob@example.com", "confirmed: mailbox is gone")
    entry = response.json_body
    assert response.status_code == 200 and entry["created"] is False
    assert entry["reason"] == "BOUNCE" and entry["reasons"] == ["BOUNCE", "MANUAL"]
    assert entry["bounce_type"] == "Permanent" and entry["occurrences"] == 1
    assert entry["note"] == "confirmed: mailbox is gone"
    origin, update = entry["history"]
    assert (origin["by"], origin["action"]) == ("ses-event", "added")
    assert "permanent bounce (Permanent/General): smtp; 550 5.1.1 user unknown" in origin["why"]
    assert (update["by"], update["action"], update["why"]) == (email, "updated", entry["note"])
    again = put(api, token, "bob@example.com", "second note").json_body
    assert [h["action"] for h in again["history"]] == ["added", "updated", "updated"]
    assert again["reason"] == "BOUNCE" and again["note"] == "second note"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("not-an-address", {"reason": "x"}, "email"),
        ("a%40b", {"reason": "x"}, "email"),
        ("a%0D%0Ab%40example.com", {"reason": "x"}, "email"),
        ("a%40example.com", {}, "reason"),
        ("a%40example.com", {"reason": "   "}, "reason"),
        ("a%40example.com", {"reason": 7}, "reason"),
        ("a%40example.com", {"reason": "x" * 501}, "reason"),
        ("a%40example.com", {"reason": "bell\x07"}, "reason"),
    ],
)
def test_put_refuses_bad_input_naming_the_field_and_stores_nothing(
    api: Client, moto: str, pool: dict[str, str], path: str, body: dict[str, Any], field: str
) -> None:
    token, _, _ = user(api, moto, pool)
    response = call(api, "PUT", f"/suppression-list/{path}", token, body)
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == {"field": field}
    assert listing(api, token)["items"] == []


def test_put_without_a_json_body_is_a_400(api: Client, moto: str, pool: dict[str, str]) -> None:
    token, _, _ = user(api, moto, pool)
    assert call(api, "PUT", url("a@example.com"), token).status_code == 400
    assert listing(api, token)["items"] == []


def test_history_keeps_the_last_fifty_changes(api: Client, moto: str, pool: dict[str, str]) -> None:
    _, tenant_id, _ = user(api, moto, pool)
    service = SuppressionService(wiring.signer())
    for n in range(HISTORY_KEPT + 5):
        service.add(tenant_id, "many@example.com", f"note {n}", "tester")
    history = service.get(tenant_id, "many@example.com")["history"]
    assert len(history) == HISTORY_KEPT
    assert history[-1]["why"] == f"note {HISTORY_KEPT + 4}" and history[0]["why"] == "note 5"


# ---------------------------------------------------------------------------- remove


def test_delete_removes_the_entry_and_keeps_a_tombstone_with_who_and_when(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id, email = user(api, moto, pool)
    put(api, token, "gone@example.com", "typo in a form")
    response = call(api, "DELETE", url("gone@example.com"), token, {"reason": "fixed the typo"})
    assert response.status_code == 200, response.json_body
    tomb = response.json_body
    assert tomb["suppressed"] is False and tomb["removed_by"] == email
    assert [(h["action"], h["by"], h["why"]) for h in tomb["history"]] == [
        ("added", email, "typo in a form"),
        ("removed", email, "fixed the typo"),
    ]
    # Sendable again: no entry where the sender looks, not in the list...
    with pytest.raises(SuppressionModel.DoesNotExist):
        SuppressionModel.get(keys.tenant_pk(tenant_id), "gone@example.com")
    assert addresses(api, token) == []
    # ...but who removed it and when stays visible.
    shown = call(api, "GET", url("gone@example.com"), token).json_body
    assert shown["suppressed"] is False and shown["removed_at"] == tomb["removed_at"]
    [removed] = listing(api, token, "removed=true")["items"]
    assert removed["address"] == "gone@example.com" and removed["removed_by"] == email


def test_adding_a_removed_address_again_continues_its_history(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, _, _ = user(api, moto, pool)
    put(api, token, "back@example.com", "first")
    call(api, "DELETE", url("back@example.com") + "?reason=mistake", token)
    entry = put(api, token, "back@example.com", "second").json_body
    assert entry["created"] is True and entry["suppressed"] is True
    assert [(h["action"], h["why"]) for h in entry["history"]] == [
        ("added", "first"),
        ("removed", "mistake"),
        ("added", "second"),
    ]
    assert listing(api, token, "removed=true")["items"] == []  # the tombstone is gone
    assert addresses(api, token) == ["back@example.com"]


def test_deleting_an_ingested_entry_keeps_its_origin_in_the_history(
    api: Client, moto: str, pool: dict[str, str], settings: Any
) -> None:
    token, tenant_id, email = user(api, moto, pool)
    ingest_bounce(settings, tenant_id)
    tomb = call(api, "DELETE", url("carol@example.com"), token).json_body
    assert [(h["by"], h["action"]) for h in tomb["history"]] == [
        ("ses-event", "added"),
        (email, "removed"),
    ]
    assert tomb["reason"] == "BOUNCE" and tomb["diagnostic_code"].startswith("smtp; 550")
    assert addresses(api, token) == ["bob@example.com"]


def test_delete_of_an_absent_address_is_a_404(api: Client, moto: str, pool: dict[str, str]) -> None:
    token, _, _ = user(api, moto, pool)
    assert call(api, "DELETE", url("never@example.com"), token).status_code == 404
    put(api, token, "once@example.com")
    assert call(api, "DELETE", url("once@example.com"), token).status_code == 200
    again = call(api, "DELETE", url("once@example.com"), token)
    assert again.status_code == 404 and again.json_body["error"]["code"] == "not_found"
    assert call(api, "GET", url("never@example.com"), token).status_code == 404


# ---------------------------------------------------------------------------- list


@pytest.fixture
def populated(api: Client, moto: str, pool: dict[str, str]) -> tuple[str, str]:
    token, tenant_id, _ = user(api, moto, pool)
    for address, reason in [
        ("alice@example.com", "BOUNCE"),
        ("alfred@example.com", "COMPLAINT"),
        ("albert@example.org", "BOUNCE"),
        ("bea@example.com", "COMPLAINT"),
        ("carl@example.com", "BOUNCE"),
        ("dora@example.com", "UNSUBSCRIBED"),
        ("al@example.net", "MANUAL"),
    ]:
        seed(tenant_id, address, reason)
    return token, tenant_id


def all_pages(api: Client, token: str, query: str, limit: int) -> tuple[list[str], int]:
    found: list[str] = []
    cursor, pages = None, 0
    while True:
        body = listing(api, token, f"{query}&limit={limit}" + (f"&next={cursor}" if cursor else ""))
        assert len(body["items"]) <= limit
        found += [i["address"] for i in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return found, pages


def test_list_pages_through_everything_in_address_order(
    api: Client, populated: tuple[str, str]
) -> None:
    token, _ = populated
    everything = addresses(api, token)
    assert everything == sorted(everything) and len(everything) == 7
    found, pages = all_pages(api, token, "", 2)
    assert found == everything and pages == 4
    found, pages = all_pages(api, token, "", 7)
    assert found == everything and pages == 1  # a full last page says there is no more


def test_list_prefix_search_is_case_insensitive(api: Client, populated: tuple[str, str]) -> None:
    token, _ = populated
    assert addresses(api, token, "q=AL") == [
        "al@example.net",
        "albert@example.org",
        "alfred@example.com",
        "alice@example.com",
    ]
    assert addresses(api, token, "q=alf") == ["alfred@example.com"]
    assert addresses(api, token, "q=zed") == []
    found, _ = all_pages(api, token, "q=al", 3)
    assert found == addresses(api, token, "q=al")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("BOUNCE", ["albert@example.org", "alice@example.com", "carl@example.com"]),
        ("complaint", ["alfred@example.com", "bea@example.com"]),
        ("UNSUBSCRIBED", ["dora@example.com"]),
        ("MANUAL", ["al@example.net"]),
    ],
)
def test_list_filters_by_reason_across_pages(
    api: Client, populated: tuple[str, str], reason: str, expected: list[str]
) -> None:
    token, _ = populated
    assert addresses(api, token, f"reason={reason}") == expected
    found, _ = all_pages(api, token, f"reason={reason}", 1)
    assert found == expected


def test_list_reason_filter_sees_every_reason_of_an_entry(
    api: Client, populated: tuple[str, str]
) -> None:
    token, _ = populated
    put(api, token, "carl@example.com", "also asked us to stop")  # BOUNCE, now MANUAL too
    assert addresses(api, token, "reason=MANUAL") == ["al@example.net", "carl@example.com"]


def test_list_combines_prefix_and_reason(api: Client, populated: tuple[str, str]) -> None:
    token, _ = populated
    assert addresses(api, token, "q=al&reason=BOUNCE") == [
        "albert@example.org",
        "alice@example.com",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("reason=SPAM", "reason"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("q=a%20b", "q"),
        ("removed=maybe", "removed"),
        ("next=garbage", "next"),
    ],
)
def test_list_refuses_bad_parameters(
    api: Client, moto: str, pool: dict[str, str], query: str, field: str
) -> None:
    token, _, _ = user(api, moto, pool)
    response = call(api, "GET", f"/suppression-list?{query}", token)
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == {"field": field}


def test_a_cursor_works_only_for_its_tenant_and_query(
    api: Client, moto: str, pool: dict[str, str], populated: tuple[str, str]
) -> None:
    token, _ = populated
    cursor = listing(api, token, "limit=2")["next"]
    assert cursor and listing(api, token, f"limit=2&next={cursor}")["items"]
    other, other_tenant, _ = user(api, moto, pool)
    seed(other_tenant, "zz@example.com", "BOUNCE")
    stolen = call(api, "GET", f"/suppression-list?limit=2&next={cursor}", other)
    assert stolen.status_code == 400 and stolen.json_body["error"]["details"] == {"field": "next"}
    body, mac = cursor.split(".")
    flipped = ("A" if body[0] != "A" else "B") + body[1:]  # the first byte of the payload
    for bad in (f"{flipped}.{mac}", f"{body}.{mac[:-2]}", cursor + "x"):
        assert call(api, "GET", f"/suppression-list?next={bad}", token).status_code == 400
    # The cursor is bound to its query (prefix, reason, removed); only the limit may change.
    assert call(api, "GET", f"/suppression-list?q=b&next={cursor}", token).status_code == 400
    assert (
        call(api, "GET", f"/suppression-list?reason=BOUNCE&next={cursor}", token).status_code == 400
    )
    assert (
        call(api, "GET", f"/suppression-list?removed=true&next={cursor}", token).status_code == 400
    )
    # A token of another purpose, for this very tenant, is not a cursor.
    forged = wiring.signer().sign("unsubscribe", {"t": populated[1], "q": None, "a": "a"})
    assert call(api, "GET", f"/suppression-list?next={forged}", token).status_code == 400


def test_a_second_tenant_cannot_see_or_change_the_first_tenants_entries(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    first, _, _ = user(api, moto, pool)
    second, _, _ = user(api, moto, pool)
    put(api, first, "private@example.com", "first tenant's customer")
    assert addresses(api, second) == [] and addresses(api, second, "q=private") == []
    assert call(api, "GET", url("private@example.com"), second).status_code == 404
    assert call(api, "DELETE", url("private@example.com"), second).status_code == 404
    # A PUT by the second tenant makes its own entry and leaves the first one alone.
    assert put(api, second, "private@example.com", "ours").json_body["created"] is True
    entry = call(api, "GET", url("private@example.com"), first).json_body
    assert entry["suppressed"] is True and entry["note"] == "first tenant's customer"
    assert len(entry["history"]) == 1


# ---------------------------------------------------------------------------- sync


def summary(address: str, reason: str, at: datetime) -> dict[str, Any]:
    return {"EmailAddress": address, "Reason": reason, "LastUpdateTime": at}


def sesv2() -> Any:
    return boto3.client("sesv2", region_name="us-east-1")


def synced(tenant_id: str, client: Any, **kwargs: Any) -> dict[str, Any]:
    sync = SuppressionSync(SuppressionService(wiring.signer()), **kwargs)
    return sync.run(tenant_id, SesV2SuppressionList(client), "ops@example.com")


def test_sync_imports_pushes_and_counts_what_both_have(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id, _ = user(api, moto, pool)
    seed(tenant_id, "both@example.com", "BOUNCE")
    seed(tenant_id, "ours-bounce@example.com", "BOUNCE")
    seed(tenant_id, "ours-complaint@example.com", "COMPLAINT")
    put(api, token, "ours-manual@example.com", "asked by phone")
    seed(tenant_id, "ours-unsub@example.com", "UNSUBSCRIBED")
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    client = sesv2()
    with Stubber(client) as stub:
        stub.add_response(
            "list_suppressed_destinations",
            {
                "SuppressedDestinationSummaries": [
                    summary("Theirs-Bounce@example.com", "BOUNCE", at),
                    summary("both@example.com", "BOUNCE", at),
                ],
                "NextToken": "page-2",
            },
            {"PageSize": 1000},
        )
        stub.add_response(
            "list_suppressed_destinations",
            {"SuppressedDestinationSummaries": [summary("theirs-cx@example.com", "COMPLAINT", at)]},
            {"PageSize": 1000, "NextToken": "page-2"},
        )
        for address, reason in [
            ("ours-bounce@example.com", "BOUNCE"),
            ("ours-complaint@example.com", "COMPLAINT"),
            ("ours-manual@example.com", "COMPLAINT"),
            ("ours-unsub@example.com", "COMPLAINT"),
        ]:
            stub.add_response(
                "put_suppressed_destination", {}, {"EmailAddress": address, "Reason": reason}
            )
        report = synced(tenant_id, client)
        stub.assert_no_pending_responses()
    assert report["status"] == "completed", report
    assert (report["imported"], report["pushed"], report["in_both"]) == (2, 4, 1)
    assert (report["errors"], report["removed_from_ses"]) == (0, 0)
    assert report["pushed_as"]["UNSUBSCRIBED"] == "COMPLAINT"
    imported = call(api, "GET", url("theirs-bounce@example.com"), token).json_body
    assert imported["reason"] == "BOUNCE" and imported["event_at"] == "2026-03-01T12:00:00.000Z"
    [change] = imported["history"]
    assert (change["by"], change["action"]) == ("ops@example.com", "imported")
    assert addresses(api, token, "reason=COMPLAINT") == [
        "ours-complaint@example.com",
        "theirs-cx@example.com",
    ]
    # Pushing did not change SESami's own reasons.
    assert addresses(api, token, "reason=MANUAL") == ["ours-manual@example.com"]


def test_sync_pushes_a_removal_to_ses_unless_ses_suppressed_it_again_later(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id, _ = user(api, moto, pool)
    for address in ("removed-late@example.com", "removed-early@example.com"):
        put(api, token, address, "x")
        call(api, "DELETE", url(address), token)
    now = datetime.now(UTC)
    client = sesv2()
    with Stubber(client) as stub:
        stub.add_response(
            "list_suppressed_destinations",
            {
                "SuppressedDestinationSummaries": [
                    # SES last touched it before SESami removed it: the removal wins.
                    summary("removed-late@example.com", "BOUNCE", now - timedelta(days=1)),
                    # SES suppressed it again after the removal (a new bounce): imported.
                    summary("removed-early@example.com", "BOUNCE", now + timedelta(minutes=5)),
                ]
            },
        )
        stub.add_response(
            "delete_suppressed_destination", {}, {"EmailAddress": "removed-late@example.com"}
        )
        report = synced(tenant_id, client)
        stub.assert_no_pending_responses()
    assert (report["removed_from_ses"], report["imported"], report["pushed"]) == (1, 1, 0)
    late = call(api, "GET", url("removed-late@example.com"), token).json_body
    assert late["suppressed"] is False
    assert [h["action"] for h in late["history"]] == ["added", "removed", "removed_from_ses"]
    early = call(api, "GET", url("removed-early@example.com"), token).json_body
    assert early["suppressed"] is True and early["reason"] == "BOUNCE"
    assert [h["action"] for h in early["history"]] == ["added", "removed", "imported"]


def test_sync_counts_per_address_errors_and_goes_on(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    _, tenant_id, _ = user(api, moto, pool)
    seed(tenant_id, "refused@example.com", "BOUNCE")
    seed(tenant_id, "fine@example.com", "BOUNCE")
    client = sesv2()
    with Stubber(client) as stub:
        stub.add_response("list_suppressed_destinations", {"SuppressedDestinationSummaries": []})
        stub.add_response(
            "put_suppressed_destination",
            {},
            {"EmailAddress": "fine@example.com", "Reason": "BOUNCE"},
        )
        stub.add_client_error(
            "put_suppressed_destination", "BadRequestException", "no", http_status_code=400
        )
        report = synced(tenant_id, client)
    assert (report["pushed"], report["errors"]) == (1, 1)
    assert report["failures"] == [
        {
            "address": "refused@example.com",
            "action": "push",
            "message": "SES refused PutSuppressedDestination: BadRequestException",
        }
    ]
    assert report["status"] == "completed" and "failures" in report["message"]


def test_sync_stops_at_its_time_budget_and_says_so(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    _, tenant_id, _ = user(api, moto, pool)
    seed(tenant_id, "a@example.com", "BOUNCE")
    seed(tenant_id, "b@example.com", "BOUNCE")
    ticks = iter(range(100))
    client = sesv2()
    with Stubber(client) as stub:
        stub.add_response("list_suppressed_destinations", {"SuppressedDestinationSummaries": []})
        stub.add_response(
            "put_suppressed_destination", {}, {"EmailAddress": "a@example.com", "Reason": "BOUNCE"}
        )
        report = synced(tenant_id, client, budget_seconds=1.5, monotonic=lambda: next(ticks))
        stub.assert_no_pending_responses()
    assert report["status"] == "incomplete" and report["pushed"] == 1
    assert "run the sync again" in report["message"]


def test_sync_reports_an_endpoint_without_the_api_as_not_available(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    _, tenant_id, _ = user(api, moto, pool)
    seed(tenant_id, "a@example.com", "BOUNCE")
    client = sesv2()
    with Stubber(client) as stub:
        stub.add_client_error(
            "list_suppressed_destinations", "404", "<h1>Not Found</h1>", http_status_code=404
        )
        report = synced(tenant_id, client)
    assert report["status"] == "not_available" and report["pushed"] == 0
    assert "not available on this endpoint" in report["message"]


def test_sync_with_a_role_that_cannot_list_is_refused(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    _, tenant_id, _ = user(api, moto, pool)
    client = sesv2()
    with Stubber(client) as stub:
        stub.add_client_error("list_suppressed_destinations", "AccessDeniedException", "no")
        with pytest.raises(RoleAccessDenied, match="ses:ListSuppressedDestinations"):
            synced(tenant_id, client)


def test_sync_route_on_the_local_stack_says_not_available(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    AccountModel(MOTO_ACCOUNT).delete()  # other tests bind moto's one account
    token, _, _ = user(api, moto, pool)
    put(api, token, "kept@example.com", "x")
    role = {"role_arn": make_role(moto), "region": "us-east-1"}
    assert call(api, "PUT", "/account", token, role).status_code == 200
    response = call(api, "POST", "/suppression-list/sync", token)
    assert response.status_code == 200, response.json_body
    report = response.json_body
    assert report["status"] == "not_available"
    assert "ListSuppressedDestinations" in report["message"]
    assert (report["imported"], report["pushed"], report["in_both"]) == (0, 0, 0)
    assert addresses(api, token) == ["kept@example.com"]


def test_sync_without_a_connected_account_is_a_409(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, _, _ = user(api, moto, pool)
    response = call(api, "POST", "/suppression-list/sync", token)
    assert response.status_code == 409 and "PUT /account" in response.json_body["error"]["message"]


def test_tombstones_live_in_the_tenants_own_partition(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id, _ = user(api, moto, pool)
    put(api, token, "t@example.com", "x")
    call(api, "DELETE", url("t@example.com"), token)
    tomb = SuppressionModel.get(removed_pk(tenant_id), "t@example.com")
    assert tomb.pk.startswith(keys.tenant_pk(tenant_id) + "#") and tomb.removed_at


def test_the_documented_reasons_and_limit_are_the_ones_the_service_enforces() -> None:
    from chalicelib.suppression import entries as suppression
    from chalicelib.suppression import routes

    assert routes.REASONS == suppression.REASONS
    assert routes.MAX_LIMIT == suppression.MAX_LIMIT
