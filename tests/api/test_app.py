"""The Chalice app as Lambda runs it: cheap to import, and the ingest function end to end."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.conftest import ROOT, load_event
from tests.support import TestTenant, for_account

_PROBE = """
import sys
sys.path[:0] = [{app!r}, {root!r}]
import botocore.client
created = []
original = botocore.client.ClientCreator.create_client
botocore.client.ClientCreator.create_client = lambda *a, **k: created.append(a) or original(*a, **k)
import app
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "momento", "pynamodb"))
print(len(created), ",".join(heavy))
"""


def test_importing_the_app_creates_no_client_and_loads_no_grpc_momento_or_pynamodb() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(app=str(ROOT / "app"), root=str(ROOT))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(" ", 1)
    assert out[0] == "0"
    assert out[1].strip() == ""


def test_ingest_function_stores_one_envelope(tenant: TestTenant, app_settings: Any) -> None:
    import app

    raw = for_account(load_event("send"), tenant.account_id)
    assert app.ingest(raw, None) == {"stored": 1}
    assert app.ingest(raw, None) == {"duplicate": 1}
    assert app.ingest(load_event("other_detail_type_advisor"), None) == {"ignored": 1}
