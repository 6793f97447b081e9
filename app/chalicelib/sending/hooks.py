"""What sending asks of other features, as plain callables the composition root (core/wiring.py)
fills in: sending imports none of those packages.

    template(tenant_id, template_id, version) -> MessageTemplate   stored templates (404/409/400)
    check_sender(tenant, from_address)          verified identities: a 400 naming what to verify
    suppressed(tenant_id, addresses)            the send-time suppression check (cached or not)
    keep_content(tenant, message_id, email)     stored content (never raises)

Left out, each does what sending did before it existed: no stored templates, no sender check,
the suppression list read straight from DynamoDB, no content kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.core.tables import TenantModel
from chalicelib.sending.store import Suppressed
from chalicelib.templates.mustache import MessageTemplate
from chalicelib.tenant_aws.ses import OutgoingEmail

Suppressions = Callable[[str, Iterable[str]], dict[str, Suppressed]]


def _no_check(tenant: TenantModel, address: str) -> None:
    return None


def _keep_nothing(tenant: TenantModel, message_id: str, email: OutgoingEmail) -> Any:
    return None


@dataclass(frozen=True)
class Hooks:
    suppressed: Suppressions
    template: Callable[[str, Any, Any], MessageTemplate] | None = None
    check_sender: Callable[[TenantModel, str], None] = _no_check
    keep_content: Callable[[TenantModel, str, OutgoingEmail], Any] = _keep_nothing
