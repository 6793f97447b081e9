"""Show and set one tenant's quota limits (chalicelib/quotas/limits.py).

    python -m ops.quotas show <tenant>                       # defaults, overrides, what applies
    python -m ops.quotas set <tenant> requests_per_minute=5000 sends_per_minute=10000
    python -m ops.quotas unset <tenant> sends_per_minute     # back to the default
    python -m ops.quotas clear <tenant>                      # every limit back to the defaults

A tenant may have its own requests_per_minute, key_requests_per_minute (0: bounded by the
tenant's alone), sends_per_minute and bulk_batches; the anonymous routes' limits are the
service's (`SESAMI_QUOTA_*`, the stack's `quotas` config). An override is stored on the tenant
(`TenantModel.quotas`) and applies from the tenant's next request, on every instance: the
tenant is read on each request. Values are checked before anything is written.

Settings come from the environment, as the functions read them (SESAMI_TABLE_PREFIX,
SESAMI_DYNAMODB_ENDPOINT, AWS_REGION...); the defaults shown are this environment's
SESAMI_QUOTA_* (or the built-in ones), which should be the stack's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "app") not in sys.path:
    sys.path.insert(0, str(ROOT / "app"))

from chalicelib.quotas.limits import TENANT_LIMITS, Limits, parse_overrides  # noqa: E402


class UnknownTenant(LookupError):
    pass


def _tenant(tenant_id: str) -> Any:
    from chalicelib.core.tables import TenantModel

    try:
        return TenantModel.get(tenant_id, consistent_read=True)
    except TenantModel.DoesNotExist:
        raise UnknownTenant(f"no tenant {tenant_id!r}") from None


def show(tenant_id: str, defaults: Limits) -> dict[str, Any]:
    """The tenant's limits: the defaults, its own, and what applies."""
    raw = _tenant(tenant_id).quotas or {}
    own = parse_overrides(raw) if isinstance(raw, Mapping) else {}
    tenant_defaults = {k: v for k, v in defaults.view().items() if k in TENANT_LIMITS}
    return {
        "tenant_id": tenant_id,
        "defaults": tenant_defaults,
        "overrides": own,
        "effective": {**tenant_defaults, **own},
    }


def update(
    tenant_id: str, defaults: Limits, *, set_: Mapping[str, Any], unset: Iterable[str] = ()
) -> dict[str, Any]:
    """Set and remove the tenant's own limits (ValueError for a bad name or value)."""
    from chalicelib.core.tables import TenantModel

    changes = parse_overrides(set_)
    gone = set(unset)
    unknown = gone - set(TENANT_LIMITS)
    if unknown:
        raise ValueError(f"unknown limit {sorted(unknown)[0]!r}: one of {', '.join(TENANT_LIMITS)}")
    tenant = _tenant(tenant_id)
    current = parse_overrides(tenant.quotas) if isinstance(tenant.quotas, Mapping) else {}
    new = {k: v for k, v in {**current, **changes}.items() if k not in gone}
    action = TenantModel.quotas.set(new) if new else TenantModel.quotas.remove()
    tenant.update(actions=[action], condition=TenantModel.tenant_id.exists())
    return show(tenant_id, defaults)


def _assignments(pairs: Iterable[str]) -> dict[str, int]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"{pair!r}: give name=whole-number, e.g. requests_per_minute=5000")
        out[name.strip()] = int(value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.quotas", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("show", "the tenant's limits"),
        ("set", "set limits: name=value ..."),
        ("unset", "back to the default: name ..."),
        ("clear", "every limit back to the defaults"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("tenant")
        if name in ("set", "unset"):
            command.add_argument("limits", nargs="+")
    args = parser.parse_args(argv)

    from chalicelib.core import wiring

    defaults = Limits.from_settings(wiring.settings())
    try:
        if args.command == "show":
            result = show(args.tenant, defaults)
        elif args.command == "set":
            result = update(args.tenant, defaults, set_=_assignments(args.limits))
        elif args.command == "unset":
            result = update(args.tenant, defaults, set_={}, unset=args.limits)
        else:
            result = update(args.tenant, defaults, set_={}, unset=TENANT_LIMITS)
    except (ValueError, UnknownTenant) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
