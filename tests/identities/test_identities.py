"""Verified identities: GET /identities through the API on moto's SESv2, the adapter and the page's
DNS records on botocore's Stubber (moto answers every identity verified, without DKIM tokens or
MAIL FROM: an emulator gap), and the send-time sender check with its per-tenant cache, its calls
counted."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from chalicelib.core.errors import InvalidRequest, ServiceUnavailable
from chalicelib.core.signing import Signer
from chalicelib.core.tables import TenantModel
from chalicelib.identities.service import IdentityService
from chalicelib.tenant_aws.ses import IdentitySummary, SesV2Identities

from tests.sending import test_mail
from tests.sending.test_mail import DOMAIN, Tenant

wire, sender_identity, sent = test_mail.wire, test_mail.sender_identity, test_mail.sent
runner, tenant = test_mail.runner, test_mail.tenant


def _tenant() -> TenantModel:
    return TenantModel(
        "t-identities", external_id="x", created_at=datetime.now(UTC), region="eu-west-1"
    )


def test_the_identities_page_lists_the_accounts_identities(tenant: Tenant) -> None:
    response = tenant.post_get("GET", "/identities")
    assert response.status_code == 200, response.json_body
    page = response.json_body
    (identity,) = [i for i in page["items"] if i["identity"] == DOMAIN]
    assert identity["type"] == "DOMAIN" and identity["verification_status"] == "SUCCESS"
    assert identity["sendable"] is True
    assert page["sandbox"] is None  # moto has no SESv2 GetAccount: SES did not say
    assert page["next"] is None


def _stubbed() -> tuple[SesV2Identities, Stubber]:
    client = boto3.client(
        "sesv2", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    return SesV2Identities(client), Stubber(client)


PENDING_DOMAIN = {
    "IdentityType": "DOMAIN",
    "VerificationStatus": "PENDING",
    "VerifiedForSendingStatus": False,
    "DkimAttributes": {
        "SigningEnabled": True,
        "Status": "PENDING",
        "Tokens": ["tok1", "tok2", "tok3"],
        "SigningAttributesOrigin": "AWS_SES",
        "NextSigningKeyLength": "RSA_2048_BIT",
        "CurrentSigningKeyLength": "RSA_2048_BIT",
    },
    "MailFromAttributes": {
        "MailFromDomain": "bounce.news.example",
        "MailFromDomainStatus": "PENDING",
        "BehaviorOnMxFailure": "USE_DEFAULT_VALUE",
    },
}


def test_a_pending_domain_shows_the_dns_records_to_add_and_the_sandbox() -> None:
    adapter, stub = _stubbed()
    stub.add_response(
        "list_email_identities",
        {
            "EmailIdentities": [
                {
                    "IdentityType": "DOMAIN",
                    "IdentityName": "news.example",
                    "SendingEnabled": True,
                    "VerificationStatus": "PENDING",
                },
                {
                    "IdentityType": "EMAIL_ADDRESS",
                    "IdentityName": "ada@other.example",
                    "SendingEnabled": True,
                    "VerificationStatus": "PENDING",
                },
            ]
        },
        {"PageSize": 20},
    )
    stub.add_response("get_email_identity", PENDING_DOMAIN, {"EmailIdentity": "news.example"})
    stub.add_response(
        "get_email_identity",
        {
            "IdentityType": "EMAIL_ADDRESS",
            "VerificationStatus": "PENDING",
            "DkimAttributes": {"Status": "NOT_STARTED", "SigningEnabled": False},
        },
        {"EmailIdentity": "ada@other.example"},
    )
    stub.add_response("get_account", {"ProductionAccessEnabled": False, "SendingEnabled": True})
    service = IdentityService(lambda t: adapter, Signer(b"k" * 32))
    with stub:
        page = service.list(_tenant(), None, None)
    assert page["sandbox"] is True and page["region"] == "eu-west-1"
    domain, address = page["items"]
    assert domain["sendable"] is False and domain["dkim"]["status"] == "PENDING"
    assert domain["mail_from"] == {
        "domain": "bounce.news.example",
        "status": "PENDING",
        "behavior_on_mx_failure": "USE_DEFAULT_VALUE",
    }
    records = {(r["type"], r["name"]): r for r in domain["dns_records"]}
    for token in ("tok1", "tok2", "tok3"):
        record = records[("CNAME", f"{token}._domainkey.news.example")]
        assert record["value"] == f"{token}.dkim.amazonses.com" and record["done"] is False
    assert records[("MX", "bounce.news.example")]["value"] == (
        "10 feedback-smtp.eu-west-1.amazonses.com"
    )
    assert records[("TXT", "bounce.news.example")]["value"] == "v=spf1 include:amazonses.com ~all"
    assert address["dns_records"] == [] and "verification email" in address["next_step"]


def test_the_adapter_translates_a_missing_permission_and_throttling() -> None:
    adapter, stub = _stubbed()
    stub.add_client_error("list_email_identities", "AccessDeniedException", "no", 403)
    stub.add_client_error("list_email_identities", "TooManyRequestsException", "slow", 429)
    with stub:
        with pytest.raises(Exception, match="ses:ListEmailIdentities"):
            adapter.page(20, None)
        with pytest.raises(ServiceUnavailable):
            adapter.page(20, None)


class FakeIdentities:
    """ListEmailIdentities as the check sees it, counting calls."""

    def __init__(self, verified: list[str], fail: bool = False) -> None:
        self.verified, self.fail, self.calls = verified, fail, 0

    def page(self, size: int, token: str | None) -> tuple[list[IdentitySummary], str | None]:
        self.calls += 1
        if self.fail:
            raise ServiceUnavailable("SES did not answer")
        return [IdentitySummary(v, "DOMAIN", "SUCCESS", True) for v in self.verified], None


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_the_sender_check_is_cached_per_tenant_and_names_what_to_verify() -> None:
    ses, clock = FakeIdentities(["example.com", "ada@other.example"]), Clock()
    service = IdentityService(lambda t: ses, clock=clock)  # type: ignore[arg-type, return-value]
    tenant = _tenant()
    for _ in range(100):
        service.check_sender(tenant, "news@mail.example.com")  # a subdomain: covered
        service.check_sender(tenant, "Ada@Other.example")
        clock.now += 0.5
    assert ses.calls == 1  # 200 checks within a minute: one ListEmailIdentities
    with pytest.raises(InvalidRequest) as refused:
        service.check_sender(tenant, "x@unverified.example")
    assert refused.value.details == {
        "field": "from",
        "identity": "unverified.example",
        "address": "x@unverified.example",
        "region": "eu-west-1",
    }
    assert ses.calls == 2  # a miss looks once more (the identity may be new) before refusing
    with pytest.raises(InvalidRequest):
        service.check_sender(tenant, "x@unverified.example")
    assert ses.calls == 2  # ...but not again within REFRESH_SECONDS
    ses.verified.append("unverified.example")
    clock.now += 61
    service.check_sender(tenant, "x@unverified.example")
    assert ses.calls == 3


def test_the_sender_check_lets_the_send_through_when_ses_cannot_be_asked() -> None:
    ses = FakeIdentities([], fail=True)
    service = IdentityService(lambda t: ses)  # type: ignore[arg-type, return-value]
    service.check_sender(_tenant(), "anyone@example.net")  # SES itself still refuses it
    assert service.stats.unchecked == 1


def test_a_listing_page_cursor_is_bound_to_the_tenant(tenant: Tenant) -> None:
    from chalicelib.core import wiring

    cursor = wiring.signer().sign("identities", {"t": "someone-else", "n": "abc"})
    response = tenant.post_get("GET", f"/identities?next={cursor}")
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == {"field": "next"}
