"""Tenant deletion on DynamoDB Local: a confirmation first, then a background job that removes
everything of the tenant from every table (a scan of every test table finds nothing left but
the receipt) and nothing of another tenant, resumes after its worker dies, and sweeps what a
writer still running added after the first pass."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import dynamo, keys, wiring
from chalicelib.core.errors import Gone, InvalidRequest
from chalicelib.core.permissions import role_of
from chalicelib.core.tables import EventModel, TemplateModel, TenantModel, UserModel
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from chalicelib.lifecycle.audit import AuditLog
from chalicelib.lifecycle.deletion import STEPS, TenantDeletion
from chalicelib.lifecycle.erasure import Erasure
from chalicelib.lifecycle.jobs import Jobs
from chalicelib.lifecycle.service import Lifecycle
from chalicelib.sending.store import SendingStore
from chalicelib.suppression.entries import normalize_address
from chalicelib.tenants.membership import Caller, Membership

from tests.lifecycle.support import (
    click_of,
    event,
    items_of,
    personal_link,
    store_batch,
    store_webhooks,
    unique,
)
from tests.support import TestTenant, make_tenant


@dataclass
class Pool:
    deleted: list[str] = field(default_factory=list)

    def delete_user(self, username: str) -> bool:
        self.deleted.append(username)
        return True


@dataclass
class Runner:
    started: list[dict[str, Any]] = field(default_factory=list)

    def start(self, event: dict[str, Any]) -> None:
        self.started.append(event)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    slept: float = 0.0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.slept += seconds


@dataclass
class Setup:
    life: Lifecycle
    jobs: Jobs
    runner: Runner
    pool: Pool
    clock: Clock
    content_deleted: list[str]


@pytest.fixture
def setup(app_settings: Any) -> Setup:
    signer, clock, pool, runner = wiring.signer(), Clock(), Pool(), Runner()
    audit = AuditLog(signer)
    content_deleted: list[str] = []

    def delete_content(tenant_id: str) -> int:  # chalicelib.content's S3 store, recorded
        content_deleted.append(tenant_id)
        return 3

    deletion = TenantDeletion(
        signer,
        audit,
        lambda: pool,
        365,
        clock=clock,
        sleep=clock.sleep,
        settle_seconds=420,
        delete_content=delete_content,
    )
    jobs = Jobs(runner, {"deletion": deletion, "erasure": Erasure(audit)})
    life = Lifecycle(wiring.account_service(), audit, jobs, deletion, normalize_address)
    return Setup(life, jobs, runner, pool, clock, content_deleted)


def populated(settings: Any) -> TestTenant:
    """A tenant with something in every table."""
    t = make_tenant(settings)
    someone = unique("someone")
    mid = f"0100{uuid.uuid4().hex}"
    send = event("send", mid, t.account_id, alice=someone)
    outcomes = ingest_envelopes(
        [
            send,
            event("delivery", mid, t.account_id, alice=someone),
            click_of(send, personal_link(someone)),
            event("complaint", mid, t.account_id, frank=someone),
        ],
        tenants=t.directory,
        store=t.store,
    ).outcomes
    assert set(outcomes) == {Outcome.STORED}
    store = SendingStore(settings)
    store.record_sent(
        t.tenant_id,
        f"p-{uuid.uuid4().hex}",
        source="a@x.net",
        subject="s",
        destination=[someone],
        tags={},
    )
    batch = uuid.uuid4().hex
    store_batch(
        store, t.tenant_id, batch, status="finished", recipients=[(someone, someone, someone, {})]
    )
    store.claim(t.tenant_id, "key-1", "f" * 64)
    t.store.quarantine({"x": 1, "n": uuid.uuid4().hex}, "bad", tenant_id=t.tenant_id)
    for n in range(2):
        UserModel(
            f"sub-{uuid.uuid4().hex}",
            tenant_id=t.tenant_id,
            email=f"user{n}-{t.tenant_id[:6]}@example.net",
            role="admin",
            created_at=datetime.now(UTC),
        ).save()
    wiring.suppression_service().add(t.tenant_id, unique("manual"), "asked", "admin")
    gone = unique("removed")
    wiring.suppression_service().add(t.tenant_id, gone, "asked", "admin")
    wiring.suppression_service().remove(t.tenant_id, gone, "fixed", "admin")
    AuditLog(wiring.signer()).record(t.tenant_id, actor="admin", action="account.disconnected")
    template = uuid.uuid4().hex[:12]  # a stored template: its head and its draft
    TemplateModel(keys.templates_pk(t.tenant_id), f"H#{template}", name="Welcome").save()
    TemplateModel(keys.template_pk(t.tenant_id, template), "D", subject="Hi {{name}}").save()
    store_webhooks(t.tenant_id, someone)  # endpoints, a deleted one, deliveries, alerts
    return t


def member(t: TestTenant, role: str = "admin") -> Membership:
    tenant = dynamo.get(TenantModel, t.tenant_id)
    assert tenant is not None
    return Membership(tenant, role_of(role), Caller(sub="sub-admin", email="admin@example.net"))


def run_to_end(s: Setup, budget: float = 60.0) -> None:
    while s.runner.started:
        s.jobs.run(s.runner.started.pop(0), remaining_ms=(budget + 10) * 1000)


def test_deletion_removes_everything_of_the_tenant_and_nothing_of_another(
    setup: Setup, app_settings: Any
) -> None:
    t, other = populated(app_settings), populated(app_settings)
    mine = items_of(app_settings, t.tenant_id)
    assert mine.tables() >= {
        "tenants", "users", "accounts", "events", "messages", "counters",
        "suppression", "quarantine", "sending", "lifecycle", "templates", "webhooks",
    }  # fmt: skip
    theirs = sorted(
        json.dumps(i, sort_keys=True) for _, i in items_of(app_settings, other.tenant_id).items
    )
    confirmation = setup.life.deletion_confirmation(member(t))["confirmation"]
    job = setup.life.delete_tenant(member(t), confirmation)
    assert job["state"] == "running" and setup.runner.started
    run_to_end(setup)
    left = items_of(app_settings, t.tenant_id).items
    assert [(table, item["pk"]["S"]) for table, item in left] == [
        ("lifecycle", keys.receipt_pk(t.tenant_id))
    ]
    receipt = json.loads(left[0][1]["doc"]["S"])
    assert receipt["counts"]["events"] > 0 and receipt["counts"]["users"] == 2
    assert receipt["counts"]["templates"] == 1  # the draft (the head goes with it)
    # Two delivery logs (one of a deleted endpoint), a rule, its history, two endpoint items
    # (one a mark of the deleted endpoint): the scan above found none of them left.
    assert receipt["counts"]["webhooks"] == 6
    assert setup.content_deleted.count(t.tenant_id) >= 1  # the stored content, by its prefix
    assert other.tenant_id not in setup.content_deleted
    assert receipt["requested_by_sub"] == "sub-admin"
    assert sorted(setup.pool.deleted) == sorted(
        f"user{n}-{t.tenant_id[:6]}@example.net" for n in range(2)
    )
    after = sorted(
        json.dumps(i, sort_keys=True) for _, i in items_of(app_settings, other.tenant_id).items
    )
    assert after == theirs


def test_deletion_needs_a_fresh_confirmation_of_this_tenant_and_admin(
    setup: Setup, app_settings: Any
) -> None:
    t, other = make_tenant(app_settings), make_tenant(app_settings)
    with pytest.raises(InvalidRequest, match="confirmation is required"):
        setup.life.delete_tenant(member(t), None)
    theirs = setup.life.deletion_confirmation(member(other))["confirmation"]
    with pytest.raises(InvalidRequest, match="not a valid token"):
        setup.life.delete_tenant(member(t), theirs)
    mine = setup.life.deletion_confirmation(member(t))["confirmation"]
    setup.clock.now += timedelta(minutes=11)
    with pytest.raises(InvalidRequest, match="expired"):
        setup.life.delete_tenant(member(t), mine)
    assert TenantModel.get(t.tenant_id).deletion_started_at is None and not setup.runner.started


def test_once_started_the_tenant_answers_410_and_its_events_are_refused(
    setup: Setup, app_settings: Any
) -> None:
    t = populated(app_settings)
    user = UserModel(
        f"sub-{uuid.uuid4().hex}",
        tenant_id=t.tenant_id,
        email="u@x.net",
        role="admin",
        created_at=datetime.now(UTC),
    )
    user.save()
    setup.life.delete_tenant(member(t), setup.life.deletion_confirmation(member(t))["confirmation"])
    service = wiring.tenant_service()
    caller = Caller(sub=user.sub, email="u@x.net")
    with pytest.raises(Gone):
        service.membership(caller)
    assert service.membership(caller, deleting=True).tenant.tenant_id == t.tenant_id
    # An invited user who never signed in is not bound to it either.
    invited = Caller(sub=f"sub-{uuid.uuid4().hex}", email="i@x.net", tenant_id=t.tenant_id)
    with pytest.raises(Gone):
        service.membership(invited)
    assert dynamo.get(UserModel, invited.sub) is None
    later = event("send", f"m-{uuid.uuid4().hex}", t.account_id, alice=unique("late"))
    later["detail"]["mail"]["timestamp"] = datetime.now(UTC).isoformat()
    report = ingest_envelopes([later], tenants=t.directory, store=t.store)  # cached binding
    assert report.outcomes == [Outcome.UNKNOWN_ACCOUNT]
    progress = setup.life.deletion_progress(member(t))
    assert progress["kind"] == "deletion" and progress["step"] == STEPS[0]


def test_a_write_after_the_first_pass_is_swept_and_a_dead_worker_taken_over(
    setup: Setup, app_settings: Any
) -> None:
    t = populated(app_settings)
    setup.life.delete_tenant(member(t), setup.life.deletion_confirmation(member(t))["confirmation"])
    first = setup.runner.started.pop()
    # The first slice dies after a step (its lease is left held)...
    job = setup.jobs.get(t.tenant_id, first["job_id"])
    assert job is not None
    no_more_time = iter([False, True])

    def save() -> None:
        assert setup.jobs.save(job)

    outcome = setup.jobs._handlers["deletion"].advance(job, lambda: next(no_more_time, True), save)
    assert outcome == "more" and job.doc["step"] != STEPS[0]
    # ... a bulk slice that was already running records one more result ...
    late_pk = keys.batch_pk(t.tenant_id, "late")
    from chalicelib.core.tables import BatchModel

    BatchModel(
        late_pk,
        "R#0000",
        doc={"address": "x@y.z"},
        expires_at=datetime.now(UTC),
        tenant_key=keys.tenant_index_key(t.tenant_id, late_pk),
    ).save()
    late_row = EventModel(
        keys.events_pk(t.tenant_id, 0),
        "2026-11-30T00:00:00.000Z#late#00",
        event_key="late",
        event_type="Send",
        status="SENT",
        occurred_at="2026-11-30T00:00:00.000Z",
        message_id="late",
    )
    late_row.save()
    # ... and the job is resumed from where it was, past the settling time.
    assert setup.jobs.resume_if_stalled(setup.jobs.get(t.tenant_id, first["job_id"]))  # type: ignore[arg-type]
    run_to_end(setup, budget=1.0)
    assert [
        i for _, i in items_of(app_settings, t.tenant_id).items if "RECEIPT" not in json.dumps(i)
    ] == []
    assert setup.clock.slept >= 400  # it waited out the writers that may still run


def test_the_deletion_api_flow(api: Any, moto: str, pool: dict[str, str]) -> None:
    from tests.api_fixtures import call, sign_in

    wiring.use(bulk_runner=Runner())  # nothing runs in the background of the test process
    token = sign_in(moto, pool)
    assert call(api, "GET", "/account", token).status_code == 200
    asked = call(api, "POST", "/tenant/deletion", token)
    assert asked.status_code == 200, asked.json_body
    confirmation = asked.json_body["confirmation"]
    refused = call(api, "DELETE", "/tenant", token, {"confirmation": confirmation + "x"})
    assert refused.status_code == 400
    started = call(api, "DELETE", "/tenant", token, {"confirmation": confirmation})
    assert started.status_code == 202 and started.json_body["kind"] == "deletion"
    assert call(api, "GET", "/account", token).status_code == 410
    progress = call(api, "GET", "/tenant/deletion", token)
    assert (
        progress.status_code == 200 and progress.json_body["job_id"] == started.json_body["job_id"]
    )
    trail = call(api, "GET", "/audit", token)
    assert trail.status_code == 410  # everything but the progress is closed


def test_members_cannot_erase_disconnect_or_delete(
    api: Any, moto: str, pool: dict[str, str]
) -> None:
    from tests.api_fixtures import call, sign_in

    token = sign_in(moto, pool)
    tenant_id = call(api, "GET", "/account", token).json_body["tenant_id"]
    member_token = sign_in(moto, pool)
    sub = call(api, "GET", "/account", member_token)  # creates the user's own tenant ...
    assert sub.status_code == 200
    # ... then make them a member of the first tenant.
    for user in UserModel.scan(UserModel.tenant_id == sub.json_body["tenant_id"]):
        user.update(actions=[UserModel.tenant_id.set(tenant_id), UserModel.role.set("member")])
    for method, path in [
        ("DELETE", "/account"),
        ("DELETE", "/recipients/a%40example.com"),
        ("POST", "/tenant/deletion"),
        ("DELETE", "/tenant"),
        ("GET", "/audit"),
    ]:
        response = call(
            api, method, path, member_token, {"confirmation": "x"} if path == "/tenant" else None
        )
        assert response.status_code == 403, (method, path, response.json_body)
