"""A tenant's display settings: small choices of how the dashboard presents the same data.

- `overview_rate`: which open and click rates the overview leads with. `human` (the default)
  counts only opens and clicks a person made; `raw` counts every one, Apple's prefetches and
  security scanners included (see events/engagement.py). Both are always shown.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core.errors import InvalidRequest
from chalicelib.core.tables import TenantModel

OVERVIEW_RATES = ("human", "raw")
DEFAULT_OVERVIEW_RATE = "human"


def settings_of(tenant: TenantModel) -> dict[str, Any]:
    rate = tenant.overview_rate if tenant.overview_rate in OVERVIEW_RATES else None
    return {"overview_rate": rate or DEFAULT_OVERVIEW_RATE}


def update(tenant: TenantModel, body: dict[str, Any]) -> dict[str, Any]:
    """Apply the settings in `body` (each optional; an unknown one is a 400) and return them."""
    unknown = sorted(set(body) - {"overview_rate"})
    if unknown:
        raise InvalidRequest(f"unknown setting {unknown[0][:40]!r}", details={"field": unknown[0]})
    if "overview_rate" in body:
        rate = body["overview_rate"]
        if rate not in OVERVIEW_RATES:
            raise InvalidRequest(
                "overview_rate must be human or raw", details={"field": "overview_rate"}
            )
        tenant.update(actions=[TenantModel.overview_rate.set(rate)])
    return settings_of(tenant)
