"""Stored content: what SESami sent, kept in S3 (moto's, provisioned as the operator stack creates
the bucket) for the tenant's retention, shown on the message page (GET /messages/{id}) and in
the sandboxed frame (GET /frames/{token}); gone after retention (clock injected) and after
`delete_content` (erasure, tenant deletion)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.content.retention import TAG
from chalicelib.content.service import ALL, ContentService
from chalicelib.content.store import S3ContentStore, object_key
from chalicelib.core.signing import Signer
from chalicelib.core.tables import TenantModel

from tests.api_fixtures import client
from tests.sending import test_mail
from tests.sending.test_mail import SENDER, Tenant, mail

wire, sender_identity, sent = test_mail.wire, test_mail.sender_identity, test_mail.sent
runner = test_mail.runner

BUCKET = "sesami-test-content"
EVIL = (
    '<p style="color:red" onclick="steal()">Hello <b>Ada</b></p>'
    '<script>parent.postMessage("ran", "*")</script>'
    '<img src="https://tracker.example/pixel.gif"><a href="javascript:alert(1)">x</a>'
)


@pytest.fixture(scope="module")
def bucket(moto: str) -> str:
    from devstack import provision

    return provision.content_bucket(moto, BUCKET)


@pytest.fixture
def tenant(api: Any, moto: str, pool: dict[str, str], bucket: str) -> Tenant:
    from chalicelib.core import wiring

    wiring.use(replace(wiring.settings(), content_bucket=bucket))  # the api fixture resets it
    return Tenant(api, moto, pool)


def _sent(tenant: Tenant, **changes: Any) -> str:
    response = tenant.mail(mail(html=EVIL, **changes))
    assert response.status_code == 200, response.json_body
    return str(response.json_body["message_id"])


def test_a_sent_messages_content_is_on_its_page_and_in_a_sandboxed_frame(
    tenant: Tenant, moto: str
) -> None:
    message_id = _sent(tenant, reply_to="support@example.com")
    page = tenant.post_get("GET", f"/messages/{message_id}").json_body
    content = page["content"]
    assert content["status"] == "stored" and content["retention_days"] == 30
    assert content["subject"] == "Hello" and content["text"] == "Hi Alice"
    assert content["html"] == EVIL  # the API gives what was sent; the frame sanitises
    headers = {h["name"]: h["value"] for h in content["headers"]}
    assert headers["From"] == SENDER and headers["Reply-To"] == "support@example.com"
    stored = datetime.fromisoformat(content["stored_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(content["expires_at"].replace("Z", "+00:00"))
    assert expires - stored == timedelta(days=30)

    frame_url = content["html_frame"]["url"]
    frame = tenant.api.http.get(frame_url.split("127.0.0.1:8000", 1)[-1])
    assert frame.status_code == 200
    csp = frame.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "https:" not in csp
    body = frame.body.decode()
    assert "<b>Ada</b>" in body and 'style="color:red"' in body
    for gone in ("<script", "onclick", "javascript:", "postMessage"):
        assert gone not in body, gone
    remote = tenant.api.http.get(
        content["html_frame"]["url_with_remote_content"].split("127.0.0.1:8000", 1)[-1]
    )
    assert "img-src data: cid: https: http:" in remote.headers["Content-Security-Policy"]
    assert "script-src" not in remote.headers["Content-Security-Policy"]  # default-src 'none'

    s3 = client(moto, "s3")
    key = object_key(tenant.id, message_id)
    tags = s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    assert tags == [{"Key": TAG, "Value": "30"}]
    assert key.startswith(f"{tenant.id}/") and message_id not in key


def test_a_tampered_or_expired_frame_token_is_refused(tenant: Tenant) -> None:
    message_id = _sent(tenant)
    url = tenant.post_get("GET", f"/messages/{message_id}").json_body["content"]["html_frame"]
    path = url["url"].split("127.0.0.1:8000", 1)[-1]
    assert tenant.api.http.get(path[:-2] + "xx").status_code == 400
    from chalicelib.content.display import frame_token, read_frame_token

    signer = Signer(b"s" * 32)
    old = frame_token(signer, tenant.id, "content", {"m": message_id}, remote=False, now=0)
    with pytest.raises(Exception, match="expired"):
        read_frame_token(signer, old)


def test_retention_is_the_tenants_and_zero_keeps_nothing(tenant: Tenant, moto: str) -> None:
    assert tenant.post_get("GET", "/account/content").json_body["retention_days"] == 30
    changed = tenant.post_get("PUT", "/account/content", {"retention_days": 7})
    assert changed.status_code == 200 and changed.json_body["retention_days"] == 7
    week = _sent(tenant)
    assert tenant.post_get("GET", f"/messages/{week}").json_body["content"]["retention_days"] == 7
    tags = client(moto, "s3").get_object_tagging(Bucket=BUCKET, Key=object_key(tenant.id, week))
    assert tags["TagSet"] == [{"Key": TAG, "Value": "7"}]
    refused = tenant.post_get("PUT", "/account/content", {"retention_days": 5})
    assert refused.status_code == 400
    listed = client(moto, "s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{tenant.id}/")
    assert object_key(tenant.id, week) in [o["Key"] for o in listed["Contents"]]
    zero = tenant.post_get("PUT", "/account/content", {"retention_days": 0})
    assert zero.status_code == 200
    # 0 deletes what is stored (S3's rules would have kept each object for its own tag's days).
    purge = zero.json_body["purge"]
    assert purge["state"] == "finished" and purge["deleted"] >= 1
    assert tenant.post_get("GET", "/account/content").json_body["purge"] == purge
    off = _sent(tenant)
    assert tenant.post_get("GET", f"/messages/{off}").json_body["content"]["status"] == "off"
    listed = client(moto, "s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{tenant.id}/")
    assert listed["KeyCount"] == 0


def test_content_is_gone_after_its_retention(settings: Any, moto: str, bucket: str) -> None:
    from chalicelib.tenant_aws.ses import OutgoingEmail

    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    store = S3ContentStore(client(moto, "s3"), bucket)
    service = ContentService(store, Signer(b"s" * 32), clock=lambda: now[0])
    tenant = TenantModel(uuid.uuid4().hex, external_id="x", created_at=now[0])
    email = OutgoingEmail(sender=SENDER, subject="s", html="<p>h</p>", text="t", to=("a@x.org",))
    assert service.keep(tenant, "m-1", email)
    now[0] += timedelta(days=29, hours=23)
    assert service.view(tenant, "m-1")["status"] == "stored"
    now[0] += timedelta(hours=1)  # 30 days: whatever S3's lifecycle has done, it is not shown
    assert service.view(tenant, "m-1")["status"] == "expired"
    # A shorter retention hides older content at once.
    assert service.keep(tenant, "m-2", email)
    now[0] += timedelta(days=2)
    tenant.content_retention_days = 1
    assert service.view(tenant, "m-2")["status"] == "expired"


def test_a_lowered_retention_deletes_what_is_past_it_a_page_at_a_time(
    settings: Any, moto: str, bucket: str
) -> None:
    from chalicelib.lifecycle.content_retention import ContentRetention
    from chalicelib.lifecycle.jobs import DONE, MORE, Job
    from chalicelib.tenant_aws.ses import OutgoingEmail

    s3 = client(moto, "s3")
    now = [datetime.now(UTC)]
    store = S3ContentStore(s3, bucket, page_size=2)
    service = ContentService(store, Signer(b"s" * 32), clock=lambda: now[0])
    tenant = TenantModel(uuid.uuid4().hex, external_id="x", created_at=now[0])
    tenant.save()
    other = TenantModel(uuid.uuid4().hex, external_id="y", created_at=now[0])
    email = OutgoingEmail(sender=SENDER, subject="s", html=None, text="t", to=("a@x.org",))
    for i in range(5):
        assert service.keep(tenant, f"m-{i}", email)
    assert service.keep(other, "m-0", email)
    now[0] += timedelta(days=8)  # S3 dates the objects by its own clock: 8 days ago, here
    listing = Counter(s3, "list_objects_v2")
    handler = ContentRetention(service.purge_past_retention)
    job = Job(tenant.tenant_id, "j", "content_retention", "running", {}, 0)
    TenantModel(tenant.tenant_id).update(actions=[TenantModel.content_retention_days.set(14)])
    assert handler.advance(job, lambda: False, lambda: None) == DONE
    assert job.doc["deleted"] == 0  # 8 days old, kept 14
    TenantModel(tenant.tenant_id).update(actions=[TenantModel.content_retention_days.set(7)])
    listing.calls = 0
    job = Job(tenant.tenant_id, "j", "content_retention", "running", {}, 0)
    slices = [handler.advance(job, lambda: True, lambda: None)]  # one page a slice
    while slices[-1] == MORE:
        slices.append(handler.advance(job, lambda: True, lambda: None))
    assert slices == [MORE, MORE, DONE] and listing.calls == 3
    assert job.doc["deleted"] == 5 and "cursor" not in job.doc
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"{tenant.tenant_id}/")["KeyCount"] == 0
    assert service.view(other, "m-0")["status"] == "stored"  # another tenant's is untouched


class Counter:
    """Counts one method's calls on a boto3 client."""

    def __init__(self, s3: Any, name: str) -> None:
        self.calls = 0
        original = getattr(s3, name)

        def counted(**kwargs: Any) -> Any:
            self.calls += 1
            return original(**kwargs)

        setattr(s3, name, counted)


def test_delete_content_removes_messages_or_everything_of_a_tenant(
    settings: Any, moto: str, bucket: str
) -> None:
    from chalicelib.tenant_aws.ses import OutgoingEmail

    s3 = client(moto, "s3")
    service = ContentService(S3ContentStore(s3, bucket), Signer(b"s" * 32))
    tenant = TenantModel(uuid.uuid4().hex, external_id="x", created_at=datetime.now(UTC))
    other = TenantModel(uuid.uuid4().hex, external_id="y", created_at=datetime.now(UTC))
    email = OutgoingEmail(sender=SENDER, subject="s", html=None, text="t", to=("a@x.org",))
    for i in range(3):
        service.keep(tenant, f"m-{i}", email)
    service.keep(other, "m-0", email)
    assert service.delete_content(tenant.tenant_id, ["m-0"]) == 1
    assert service.view(tenant, "m-0")["status"] == "not_stored"
    assert service.view(tenant, "m-1")["status"] == "stored"
    assert service.delete_content(tenant.tenant_id, ALL) == 2
    left = s3.list_objects_v2(Bucket=bucket, Prefix=f"{tenant.tenant_id}/")
    assert left.get("KeyCount") == 0
    assert service.view(other, "m-0")["status"] == "stored"  # another tenant's is untouched


def test_bulk_messages_keep_their_rendered_content(tenant: Tenant) -> None:
    body = test_mail.bulk()
    response = tenant.post_get("POST", "/mail/bulk", body)
    assert response.status_code == 202, response.json_body
    batch = tenant.post_get("GET", f"/mail/bulk/{response.json_body['batch_id']}").json_body
    bob = next(r for r in batch["results"] if r["address"] == "bob@example.org")
    content = tenant.post_get("GET", f"/messages/{bob['message_id']}").json_body["content"]
    assert content["subject"] == "Hello <b>Bob</b>"
    assert content["html"] == "<p>Hi &lt;b&gt;Bob&lt;/b&gt;, your code is 2</p>"
    headers = {h["name"] for h in content["headers"]}
    assert {"List-Unsubscribe", "List-Unsubscribe-Post"} <= headers


def test_an_erased_recipients_mail_content_is_gone(tenant: Tenant, moto: str) -> None:
    # POST /mail recorded the message (no event yet): the erasure finds it and its content.
    message_id = _sent(tenant, to=[f"erase-{uuid.uuid4().hex[:8]}@example.org"])
    address = tenant.post_get("GET", f"/messages/{message_id}").json_body["content"]["headers"]
    to = next(h["value"] for h in address if h["name"] == "To")
    key = object_key(tenant.id, message_id)
    s3 = client(moto, "s3")
    assert s3.head_object(Bucket=BUCKET, Key=key)
    erased = tenant.post_get("DELETE", f"/recipients/{to}")
    assert erased.status_code in (200, 202), erased.json_body
    assert erased.json_body["counts"].get("stored_content") == 1
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=BUCKET, Key=key)
