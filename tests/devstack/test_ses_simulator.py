"""The local stack's stand-in for SES's event publishing (mailbox simulator rules), through the
real ingest."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import AGGREGATE_SK, MessageModel, SuppressionModel
from chalicelib.ingest.pipeline import ingest_envelopes
from chalicelib.tenant_aws.ses import OutgoingEmail

from devstack.ses_simulator import SimulatedSes, simulated_events
from tests.fakes import FakeSes
from tests.support import TestTenant


def send(t: TestTenant, to: str) -> str:
    delivered: list[Any] = []
    ses = SimulatedSes(
        FakeSes(),
        t.account_id,
        lambda envs: delivered.append(ingest_envelopes(envs, tenants=t.directory, store=t.store)),
        delay=0,
    )
    email = OutgoingEmail(
        sender="shop@example.net",
        subject="Hi",
        html=None,
        text="x",
        to=(to,),
        tags=(("campaign", "test"),),
        configuration_set="sesami-events",
    )
    message_id = ses.send(email)
    assert delivered and all(o.value == "stored" for o in delivered[0].outcomes)
    return message_id


def status(t: TestTenant, message_id: str) -> str:
    pk = keys.message_pk(t.tenant_id, message_id)
    return str(MessageModel.get(pk, AGGREGATE_SK, consistent_read=True).status)


@pytest.mark.parametrize(
    ("local", "expected", "suppressed"),
    [
        ("success", "DELIVERED", None),
        ("bounce", "BOUNCED", "BOUNCE"),
        ("complaint", "COMPLAINED", "COMPLAINT"),
        ("ooto", "DELIVERED", None),
        ("suppressionlist", "BOUNCED", "BOUNCE"),
    ],
)
def test_mailbox_simulator_outcomes(
    tenant: TestTenant, local: str, expected: str, suppressed: str | None
) -> None:
    address = f"{local}@simulator.amazonses.com"
    message_id = send(tenant, address)
    assert status(tenant, message_id) == expected
    entries = {
        e.address: e.reason for e in SuppressionModel.query(keys.tenant_pk(tenant.tenant_id))
    }
    assert entries.get(address) == suppressed


def test_other_recipients_are_delivered_and_sometimes_engage(tenant: TestTenant) -> None:
    email = OutgoingEmail(
        sender="shop@example.net", subject="Hi", html=None, text="x", to=("ann@example.com",)
    )
    kinds = set()
    for seed in range(30):
        events = simulated_events(
            email, f"m{seed}", tenant.account_id, at=datetime.now(UTC), rng=random.Random(seed)
        )
        kinds |= {e["detail"]["eventType"] for e in events}
        assert [e["detail"]["eventType"] for e in events][:2] == ["Send", "Delivery"]
    assert {"Open", "Click"} <= kinds
