"""The operator's quota tool (`python -m ops.quotas`): a tenant's own limits are checked, stored
on the tenant, and applied by the quotas from the tenant's next request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalicelib.core.settings import Settings
from chalicelib.core.tables import TenantModel
from chalicelib.quotas.limiter import Quotas
from chalicelib.quotas.limits import Limits, QuotaExceeded

from ops.quotas import main, show, update
from tests.support import TestTenant

pytestmark = pytest.mark.ddb_local

DEFAULTS = Limits.from_settings(Settings())


def test_set_unset_and_clear_a_tenant_s_limits(tenant: TestTenant) -> None:
    tid = tenant.tenant_id
    before = show(tid, DEFAULTS)
    assert before["overrides"] == {} and before["effective"]["requests_per_minute"] == 1_200
    after = update(tid, DEFAULTS, set_={"requests_per_minute": 2, "bulk_batches": 5})
    assert after["overrides"] == {"requests_per_minute": 2, "bulk_batches": 5}
    assert after["effective"]["sends_per_minute"] == 3_000  # the rest stay the defaults
    assert TenantModel.get(tid).quotas == {"requests_per_minute": 2, "bulk_batches": 5}
    assert update(tid, DEFAULTS, set_={}, unset=["bulk_batches"])["overrides"] == {
        "requests_per_minute": 2
    }
    assert update(tid, DEFAULTS, set_={}, unset=["requests_per_minute"])["overrides"] == {}
    assert TenantModel.get(tid).quotas is None


def test_an_override_applies_from_the_tenant_s_next_request(tenant: TestTenant) -> None:
    quotas = Quotas(DEFAULTS, None)

    class Member:
        def __init__(self) -> None:
            self.tenant = TenantModel.get(tenant.tenant_id)  # read per request, as the API does
            self.key_name: str | None = None

    quotas.admit(Member())
    update(tenant.tenant_id, DEFAULTS, set_={"requests_per_minute": 2})
    quotas.admit(Member())
    with pytest.raises(QuotaExceeded) as caught:
        quotas.admit(Member())
    assert caught.value.details["allowed"] == 2  # type: ignore[index]


@pytest.mark.parametrize(
    "argv",
    [
        ["set", "{t}", "requests_per_minute=0"],
        ["set", "{t}", "requests_per_minute=lots"],
        ["set", "{t}", "auth_per_ip_per_minute=5"],
        ["unset", "{t}", "no_such_limit"],
        ["show", "no-such-tenant"],
    ],
)
def test_bad_input_writes_nothing_and_exits_2(
    tenant: TestTenant, argv: list[str], capsys: pytest.CaptureFixture[str], app_settings: Any
) -> None:
    assert main([a.format(t=tenant.tenant_id) for a in argv]) == 2
    assert "error:" in capsys.readouterr().err
    assert TenantModel.get(tenant.tenant_id).quotas is None


def test_the_command_line_prints_the_result(
    tenant: TestTenant, capsys: pytest.CaptureFixture[str], app_settings: Any
) -> None:
    assert main(["set", tenant.tenant_id, "sends_per_minute=10000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["effective"]["sends_per_minute"] == 10_000
    assert main(["clear", tenant.tenant_id]) == 0
    assert json.loads(capsys.readouterr().out)["overrides"] == {}
