"""Verified identities: what the customer's SES account may send from (GET /identities), and the
check that refuses a send from anything else before SES does (POST /mail, POST /mail/bulk).

Everything goes through the tenant gateway (`gateway.for_tenant(t).identities()`), with the
customer's role: ListEmailIdentities, GetEmailIdentity per listed identity (DKIM and MAIL FROM
attributes) and GetAccount (the sandbox), exactly what the onboarding role grants for this.

The send-time check uses ListEmailIdentities only, cached per tenant for `CACHE_SECONDS`: a warm
instance checks a sender without calling SES. An address is sendable when it is a verified
identity itself, or its domain or a parent domain is (SES: a verified domain covers its
subdomains and addresses). A sender missing from the cached list makes one fresh listing (at
most once per `REFRESH_SECONDS` per tenant) before it is refused, so an identity verified a minute
ago is not refused from a stale cache. If SES cannot be asked (throttled, the role lacks the
permission), the check lets the send through: SES still refuses an unverified sender itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.core import api
from chalicelib.core.errors import InvalidRequest, SesamiError
from chalicelib.core.tables import TenantModel
from chalicelib.tenant_aws.ses import IdentityDetail, IdentitySummary, SesV2Identities

log = logging.getLogger("sesami.identities")

CACHE_SECONDS = 60.0
REFRESH_SECONDS = 5.0
MAX_LISTED = 10_000  # SES's identity quota per account and Region
PAGE = 1_000  # ListEmailIdentities' largest page
MAX_TENANTS_CACHED = 10_000
MAIL_FROM_MX = "feedback-smtp.{region}.amazonses.com"

IdentitiesFor = Callable[[TenantModel], SesV2Identities]


@dataclass
class _Cached:
    verified: frozenset[str]
    at: float


@dataclass
class Stats:
    checks: int = 0
    listings: int = 0  # full listings for the check (one or more ListEmailIdentities)
    list_calls: int = 0  # ListEmailIdentities calls made by the check
    unchecked: int = 0  # sends let through because SES could not be asked
    refused: int = 0


class IdentityService:
    def __init__(
        self,
        identities_for: IdentitiesFor,
        signer: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._for, self._signer, self._clock = identities_for, signer, clock
        self._ttl = cache_seconds
        self._cache: dict[str, _Cached] = {}
        self.stats = Stats()

    # ------------------------------------------------------------------ GET /identities

    def list(self, tenant: TenantModel, limit: str | None, cursor: str | None) -> dict[str, Any]:
        size = _limit(limit)
        ses = self._for(tenant)
        token = self._token_of(tenant, cursor)
        page, next_token = ses.page(size, token)
        region = tenant.region or "us-east-1"
        items = [_view(ses.detail(s), region) for s in page]
        # What the listing showed is fresh: the sender check may use it.
        verified = {i["identity"] for i in items if i["sendable"]}
        if cursor is None and next_token is None:
            self._cache[tenant.tenant_id] = _Cached(frozenset(verified), self._clock())
        return {
            "region": region,
            "sandbox": ses.in_sandbox(),
            "items": items,
            "next": self._cursor(tenant, next_token) if next_token else None,
        }

    def _cursor(self, tenant: TenantModel, token: str) -> str:
        return str(self._signer.sign("identities", {"t": tenant.tenant_id, "n": token}))

    def _token_of(self, tenant: TenantModel, cursor: str | None) -> str | None:
        if not cursor:
            return None
        data = self._signer.verify("identities", cursor, field="next")
        if data.get("t") != tenant.tenant_id or not isinstance(data.get("n"), str):
            raise InvalidRequest("next is not a valid token", details={"field": "next"})
        return str(data["n"])

    # ------------------------------------------------------------------ the send-time check

    def check_sender(self, tenant: TenantModel, address: str) -> None:
        """Refuse (400) a sender outside the account's verified identities, naming what to
        verify. Lets the send through when SES cannot be asked."""
        self.stats.checks += 1
        address = address.lower()
        cached = self._cache.get(tenant.tenant_id)
        now = self._clock()
        if cached is None or now - cached.at > self._ttl:
            cached = self._refresh(tenant)
            if cached is None:
                return
        if _covered(address, cached.verified):
            return
        if now - cached.at > REFRESH_SECONDS:  # maybe verified since: look once more
            cached = self._refresh(tenant)
            if cached is None or _covered(address, cached.verified):
                return
        self.stats.refused += 1
        domain = address.rpartition("@")[2]
        region = tenant.region or "us-east-1"
        raise InvalidRequest(
            f"{address} is not a verified identity of your SES account in {region}: verify the "
            f"domain {domain} (or the address itself) in SES, then send again (GET /identities "
            "shows the DNS records a pending domain needs)",
            details={"field": "from", "identity": domain, "address": address, "region": region},
        )

    def _refresh(self, tenant: TenantModel) -> _Cached | None:
        ses = self._for(tenant)
        verified: set[str] = set()
        token: str | None = None
        self.stats.listings += 1
        try:
            for _ in range(MAX_LISTED // PAGE):
                page, token = ses.page(PAGE, token)
                self.stats.list_calls += 1
                verified.update(
                    s.name.lower()
                    for s in page
                    if s.verification == "SUCCESS" and s.sending_enabled
                )
                if not token:
                    break
        except SesamiError as exc:
            self.stats.unchecked += 1
            log.warning(
                "could not list %s's SES identities; sender not checked: %s", tenant.tenant_id, exc
            )
            return None
        if len(self._cache) >= MAX_TENANTS_CACHED:
            self._cache.pop(next(iter(self._cache)))
        cached = self._cache[tenant.tenant_id] = _Cached(frozenset(verified), self._clock())
        return cached


def _covered(address: str, verified: frozenset[str]) -> bool:
    """SES: an address may send if it is verified, or its domain or a parent domain is."""
    if address in verified:
        return True
    labels = address.rpartition("@")[2].split(".")
    return any(".".join(labels[i:]) in verified for i in range(len(labels) - 1))


def _limit(raw: str | None) -> int:
    return api.parse_limit(raw, default=20, maximum=50)


def _view(detail: IdentityDetail, region: str) -> dict[str, Any]:
    s: IdentitySummary = detail.summary
    dkim = detail.dkim
    mail_from = detail.mail_from or {}
    verified = s.verification == "SUCCESS"
    view: dict[str, Any] = {
        "identity": s.name,
        "type": s.kind,
        "verification_status": s.verification,
        "sending_enabled": s.sending_enabled,
        "sendable": verified and s.sending_enabled,
        "dkim": {
            "status": dkim.get("Status"),
            "signing_enabled": dkim.get("SigningEnabled"),
            "signing_attributes_origin": dkim.get("SigningAttributesOrigin"),
            "current_signing_key_length": dkim.get("CurrentSigningKeyLength"),
            "next_signing_key_length": dkim.get("NextSigningKeyLength"),
            "last_key_generation": _text(dkim.get("LastKeyGenerationTimestamp")),
        },
        "mail_from": (
            {
                "domain": mail_from.get("MailFromDomain"),
                "status": mail_from.get("MailFromDomainStatus"),
                "behavior_on_mx_failure": mail_from.get("BehaviorOnMxFailure"),
            }
            if mail_from
            else None
        ),
        "dns_records": [],
    }
    if s.kind != "EMAIL_ADDRESS":
        view["dns_records"] = _records(s.name, dkim, mail_from, region)
    elif not verified:
        view["next_step"] = f"open the verification email SES sent to {s.name} and follow its link"
    return view


def _records(
    domain: str, dkim: dict[str, Any], mail_from: dict[str, Any], region: str
) -> list[dict[str, Any]]:
    """The DNS records a domain needs (Easy DKIM's three CNAMEs, or BYODKIM's TXT, and the custom
    MAIL FROM domain's MX and SPF), each with whether SES sees it done."""
    records: list[dict[str, Any]] = []
    dkim_done = dkim.get("Status") == "SUCCESS"
    origin = dkim.get("SigningAttributesOrigin") or "AWS_SES"
    for token in dkim.get("Tokens") or []:
        if origin == "EXTERNAL":  # BYODKIM: the token is the selector; the key is the customer's
            records.append(
                {
                    "type": "TXT",
                    "name": f"{token}._domainkey.{domain}",
                    "value": "v=DKIM1; k=rsa; p=<your public key>",
                    "purpose": "DKIM (your own key)",
                    "done": dkim_done,
                }
            )
        else:
            records.append(
                {
                    "type": "CNAME",
                    "name": f"{token}._domainkey.{domain}",
                    "value": f"{token}.dkim.amazonses.com",
                    "purpose": "DKIM (verifies the domain)",
                    "done": dkim_done,
                }
            )
    if mail_from.get("MailFromDomain"):
        name = str(mail_from["MailFromDomain"])
        done = mail_from.get("MailFromDomainStatus") == "SUCCESS"
        records.append(
            {
                "type": "MX",
                "name": name,
                "value": f"10 {MAIL_FROM_MX.format(region=region)}",
                "purpose": "custom MAIL FROM (bounces)",
                "done": done,
            }
        )
        records.append(
            {
                "type": "TXT",
                "name": name,
                "value": "v=spf1 include:amazonses.com ~all",
                "purpose": "custom MAIL FROM (SPF)",
                "done": done,
            }
        )
    return records


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
