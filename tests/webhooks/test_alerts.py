"""Reputation alerts: crossing the line above the minimum volume fires once (also when several
evaluations race); a rate oscillating around the line does not flap; auto-pause refuses sends
(single and bulk, 423 naming the alert) until an admin resumes; alerts reach the endpoints as
alert.* webhooks and the admins by email (moto's SES in SESami's account)."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client
from chalicelib.core import keys
from chalicelib.core.tables import AccountModel, CounterModel
from chalicelib.webhooks.alerts import AlertService
from chalicelib.webhooks.store import WebhookStore
from pynamodb.expressions.update import Action

from tests.api_fixtures import MOTO_ACCOUNT, call, client, make_role, sign_in
from tests.conftest import load_event
from tests.support import for_account
from tests.webhooks.support import hooks_for, receiver

pytestmark = pytest.mark.ddb_local


def count(tenant_id: str, *, sent: int = 0, bounced: int = 0, complained: int = 0) -> None:
    """Move the tenant's hourly counters as ingest does (the current hour, shard 0)."""
    now = datetime.now(UTC)
    actions: list[Action] = [CounterModel.SENT.add(sent)]
    if bounced:
        actions += [CounterModel.BOUNCED.add(bounced), CounterModel.BOUNCED_PERMANENT.add(bounced)]
    if complained:
        actions.append(CounterModel.COMPLAINED.add(complained))
    CounterModel(keys.counter_pk(tenant_id, 0), keys.counter_sk(now)).update(actions=actions)


class Told:
    def __init__(self) -> None:
        self.published: list[Any] = []
        self.emails: list[tuple[str, str, str]] = []

    def publish(self, tenant_id: str, messages: Any) -> int:
        self.published += list(messages)
        return 1

    def tell(self, tenant_id: str, subject: str, text: str) -> None:
        self.emails.append((tenant_id, subject, text))


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
def alerts(app_settings: Any, told: Told) -> AlertService:
    return AlertService(WebhookStore(), told.publish, told.tell)


def _states(changes: list[dict[str, Any]]) -> list[str]:
    return [c["state"] for c in changes]


def test_crossing_the_line_above_the_minimum_volume_fires_once(
    alerts: AlertService, told: Told, tenant: Any
) -> None:
    tid = tenant.tenant_id
    count(tid, sent=100, bounced=10)  # 10 %, but only 100 recipients: too little to judge
    assert alerts.evaluate(tid) == []
    count(tid, sent=200, bounced=6)  # 16 of 300: 5.3 %
    [fired] = alerts.evaluate(tid)
    assert fired["rule"] == "bounce_rate" and fired["state"] == "firing"
    assert fired["value"] == pytest.approx(16 / 300, abs=1e-6) and fired["volume"] == 300
    assert alerts.evaluate(tid) == []  # still above: nothing new
    assert [m.type for m in told.published] == ["alert.fired"]
    data = json.loads(told.published[0].body)["data"]
    assert data["alert_id"] == fired["alert_id"] and data["threshold"] == 0.05
    assert len(told.emails) == 1 and "bounce rate" in told.emails[0][1]
    view = alerts.view(tid)
    bounce = next(r for r in view["rules"] if r["name"] == "bounce_rate")
    assert bounce["state"] == "firing" and bounce["alert_id"] == fired["alert_id"]
    assert view["history"][0]["event"] == "firing" and view["sending_paused"] is None


def test_racing_evaluations_fire_it_once(alerts: AlertService, told: Told, tenant: Any) -> None:
    tid = tenant.tenant_id
    count(tid, sent=1_000, complained=3)  # 0.3 % complaints
    results: list[list[dict[str, Any]]] = []
    threads = [
        threading.Thread(target=lambda: results.append(alerts.evaluate(tid))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r) for r in results) == 1
    assert [m.type for m in told.published] == ["alert.fired"] and len(told.emails) == 1


def test_a_rate_oscillating_around_the_line_does_not_flap(
    alerts: AlertService, told: Told, tenant: Any
) -> None:
    tid = tenant.tenant_id
    seen: list[str] = []
    count(tid, sent=1_000, bounced=51)  # 5.1 %: fires
    seen += _states(alerts.evaluate(tid))
    for sent, bounced in ((41, 0), (0, 4), (42, 0), (0, 4), (30, 0)):  # 4.9 %, 5.2 %, 4.9 %, ...
        count(tid, sent=sent, bounced=bounced)
        seen += _states(alerts.evaluate(tid))
    assert seen == ["firing"]  # above 4 % (0.8 of the line) it stays firing, quietly
    count(tid, sent=500)  # 59 of 1,613: 3.7 %: under the resolve line
    seen += _states(alerts.evaluate(tid))
    count(tid, sent=0, bounced=10)  # 69 of 1,613: 4.3 %: under the line, above resolve: no
    seen += _states(alerts.evaluate(tid))
    assert seen == ["firing", "ok"]
    assert [m.type for m in told.published] == ["alert.fired", "alert.resolved"]


def test_a_tenant_may_move_its_lines_and_turn_a_rule_off(
    alerts: AlertService, told: Told, tenant: Any
) -> None:
    from chalicelib.core.errors import InvalidRequest, NotFound

    tid = tenant.tenant_id
    alerts.set_rule(tid, "bounce_rate", {"threshold": 0.02, "min_volume": 50})
    alerts.set_rule(tid, "complaint_rate", {"enabled": False})
    count(tid, sent=60, bounced=2, complained=5)  # 3.3 % bounces, 8 % complaints
    assert [c["rule"] for c in alerts.evaluate(tid)] == ["bounce_rate"]
    with pytest.raises(InvalidRequest):
        alerts.set_rule(tid, "bounce_rate", {"threshold": 3})
    with pytest.raises(InvalidRequest):
        alerts.set_rule(tid, "bounce_rate", {"window": 3})
    with pytest.raises(NotFound):
        alerts.set_rule(tid, "open_rate", {})


def test_ingest_cues_an_evaluation_that_fires_as_a_signed_webhook(
    app_settings: Any, tenant: Any
) -> None:
    """The whole path: bounces ingested -> the cue on the queue -> the evaluation -> alert.fired
    delivered to the endpoint (and the admins emailed)."""
    hooks = hooks_for(tenant.tenant_id)
    told = Told()
    service = AlertService(WebhookStore(), hooks.notifier.publish, told.tell)
    hooks.h.worker._evaluate = service.evaluate  # type: ignore[assignment]
    service.set_rule(tenant.tenant_id, "bounce_rate", {"min_volume": 3})
    # The recorded events are from the past, outside the window: this hour's counters are set
    # here; the ingested bounce is what cues the evaluation.
    count(tenant.tenant_id, sent=5, bounced=3)
    with receiver() as hook:
        hooks.endpoint(hook.url, event_types=["alert.*"])
        hooks.ingest(tenant, for_account(load_event("bounce_permanent_multi"), tenant.account_id))
        hooks.h.run()
    [request] = hook.requests
    payload = json.loads(request.body)
    assert payload["type"] == "alert.fired" and payload["data"]["rule"] == "bounce_rate"
    assert len(told.emails) == 1


def test_the_admins_are_emailed_through_sesamis_own_ses(
    app_settings: Any, moto: str, tenant: Any
) -> None:
    from chalicelib.core import aws
    from chalicelib.core.tables import UserModel
    from chalicelib.webhooks.mail import AdminMailer

    client(moto, "sesv2").create_email_identity(EmailIdentity="alerts@sesami.example")
    now = datetime.now(UTC)
    for sub, role in (("a1", "admin"), ("v1", "viewer")):
        UserModel(
            f"{tenant.tenant_id}-{sub}",
            tenant_id=tenant.tenant_id,
            email=f"{sub}@example.org",
            role=role,
            created_at=now,
        ).save()
    mailer = AdminMailer(
        lambda: aws.client("sesv2", region="us-east-1", endpoint=moto),
        "alerts@sesami.example",
        WebhookStore().admin_addresses,
    )
    assert mailer.tell(tenant.tenant_id, "SESami alert: bounce rate above its line", "5 %") == 1
    with urllib.request.urlopen(f"{moto}/moto-api/data.json") as response:  # noqa: S310
        sent = json.load(response)["ses"]["Message"]
    mine = [m for m in sent if m.get("source") == "alerts@sesami.example"]
    assert [m["destinations"]["ToAddresses"] for m in mine][-1] == ["a1@example.org"]
    assert (
        AdminMailer(None, "", WebhookStore().admin_addresses).tell(tenant.tenant_id, "s", "t") == 0
    )


# ---------------------------------------------------------------------------- auto-pause


DOMAIN = "example.com"


def _connected(api: Client, moto: str, pool: dict[str, str]) -> tuple[str, str]:
    client(moto, "sesv2").create_email_identity(EmailIdentity=DOMAIN)
    token = sign_in(moto, pool)
    tenant_id = call(api, "GET", "/account", token).json_body["tenant_id"]
    AccountModel(MOTO_ACCOUNT).delete()  # moto has one account: the last tenant takes it
    assert call(api, "PUT", "/account", token, {"role_arn": make_role(moto)}).status_code == 200
    return token, tenant_id


MAIL = {"from": f"news@{DOMAIN}", "to": "ann@example.org", "subject": "Hi", "text": "Hello"}


def test_auto_pause_refuses_sends_until_an_admin_resumes(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    from chalicelib.core import wiring

    token, tid = _connected(api, moto, pool)
    assert call(api, "POST", "/mail", token, MAIL).status_code == 200
    rule = call(api, "PUT", "/alerts/bounce_rate", token, {"auto_pause": True, "min_volume": 10})
    assert rule.status_code == 200, rule.json_body
    count(tid, sent=20, bounced=4)  # 20 %
    [fired] = wiring.alerts().evaluate(tid)
    assert fired["sending_paused"] is True

    refused = call(api, "POST", "/mail", token, MAIL)
    assert refused.status_code == 423, refused.json_body
    error = refused.json_body["error"]
    assert error["code"] == "sending_paused" and fired["alert_id"] in error["message"]
    assert error["details"]["alert"]["rule"] == "bounce_rate"
    bulk = {
        "from": f"news@{DOMAIN}",
        "subject": "Hi {{name}}",
        "text": "Hello {{name}}",
        "recipients": [{"to": "bob@example.org", "variables": {"name": "Bob"}}],
    }
    assert call(api, "POST", "/mail/bulk", token, bulk).status_code == 423
    shown = call(api, "GET", "/alerts", token).json_body
    assert shown["sending_paused"]["alert_id"] == fired["alert_id"]

    resumed = call(api, "POST", "/alerts/resume", token)
    assert resumed.status_code == 200 and resumed.json_body["sending_paused"] is None
    assert resumed.json_body["history"][0]["event"] == "resumed"
    assert call(api, "POST", "/mail", token, MAIL).status_code == 200


def test_a_paused_tenants_running_bulk_batch_stops_at_its_next_slice(app_settings: Any) -> None:
    """The worker's sender refuses too: the recipient is failed, the batch stopped with why."""
    from chalicelib.tenant_aws.ses import OutgoingEmail, SesRefused
    from chalicelib.webhooks.pause import SendingPaused, guard

    built: list[bool] = []
    paused = {"alert_id": "al_bounce_rate_1", "rule": "bounce_rate", "value": 0.2}
    ses = guard(paused, lambda: built.append(True))  # type: ignore[arg-type,return-value]
    with pytest.raises(SendingPaused) as refused:
        ses.send(OutgoingEmail(sender="a@example.com", subject="s", html=None, text="t"))
    assert isinstance(refused.value, SesRefused) and not refused.value.per_message
    assert refused.value.status == 423 and built == []  # the tenant's account is not touched
