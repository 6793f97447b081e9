"""SES as the sending service sees it: one small interface, the SESv2 adapter, and pacing.

    class Ses(Protocol):
        def send(self, email: OutgoingEmail) -> str          # SES's message ID
        def send_rate(self) -> SendRate                       # for pacing bulk sends

`SesV2` takes a boto3 `sesv2` client built for the tenant's account (assumed role) in its
constructor. Its client retries throttling and 5xx in botocore's standard mode (see
`runtime.aws_client`); what still fails leaves as SESami's errors:

    ServiceUnavailable (503)   throttling, 5xx or no connection, after botocore's retries
    SesRefused (422)           SES refused this message (`per_message`) or this account's
                               sending (paused, quota, unverified identity, missing permission)

Emulator gap: moto implements SendEmail (Simple content; it accepts `Headers` and ignores them)
but not GetAccount, so `send_rate` falls back to `DEFAULT_MAX_SEND_RATE` and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.core import aws
from chalicelib.core.errors import (
    ApiNotAvailable,
    RequestError,
    RoleAccessDenied,
    ServiceUnavailable,
    SesamiError,
)
from chalicelib.core.headers import check_header

DEFAULT_MAX_SEND_RATE = 14.0  # messages per second: SES's usual production starting quota
# Refusals about one message; anything else SES refuses concerns the whole account.
_PER_MESSAGE = {"MessageRejected", "BadRequestException", "InvalidParameterValue"}
_REFUSALS = {
    "MessageRejected": "SES rejected the message",
    "MailFromDomainNotVerifiedException": "the MAIL FROM domain is not verified in SES",
    "AccountSuspendedException": "SES has suspended sending for this AWS account",
    "SendingPausedException": "sending is paused for this account or configuration set",
    "LimitExceededException": "the SES sending quota of this account is used up",
    "NotFoundException": "SES could not find a resource the request names "
    "(is the configuration set created?)",
    "AccessDeniedException": "the role SESami assumes may not send with SES "
    "(re-run the customer-onboarding stack)",
    "AccessDenied": "the role SESami assumes may not send with SES "
    "(re-run the customer-onboarding stack)",
}


class SesRefused(RequestError):
    status, code = 422, "ses_refused"

    def __init__(self, message: str, *, ses_code: str, per_message: bool) -> None:
        super().__init__(message, details={"ses_code": ses_code})
        self.per_message = per_message


@dataclass(frozen=True)
class OutgoingEmail:
    """One message as SES will get it. Addresses are in header form (`Name <a@b>`)."""

    sender: str
    subject: str
    html: str | None
    text: str | None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    configuration_set: str | None = None

    def header_values(self) -> list[tuple[str, str]]:
        """(field, value) of everything that becomes a header line."""
        values = [("from", self.sender), ("subject", self.subject)]
        for field, group in (("to", self.to), ("cc", self.cc), ("bcc", self.bcc)):
            values += [(field, a) for a in group]
        values += [("reply_to", a) for a in self.reply_to]
        values += [("headers", part) for pair in self.headers for part in pair]
        values += [("tags", part) for pair in self.tags for part in pair]
        return values


@dataclass(frozen=True)
class SendRate:
    per_second: float
    source: str  # "ses" (the account's SendQuota.MaxSendRate) or "default"
    note: str | None = None

    def view(self) -> dict[str, Any]:
        return {"per_second": self.per_second, "source": self.source, "note": self.note}


class Ses(Protocol):
    def send(self, email: OutgoingEmail) -> str: ...

    def send_rate(self) -> SendRate: ...


class SesV2:
    """The production adapter over a boto3 `sesv2` client."""

    def __init__(self, client: Any, default_rate: float = DEFAULT_MAX_SEND_RATE) -> None:
        self._client = client
        self._default_rate = default_rate

    def send(self, email: OutgoingEmail) -> str:
        for field, value in email.header_values():
            check_header(value, field)  # invariant 8, at the last step before SES
        body: dict[str, Any] = {}
        if email.html is not None:
            body["Html"] = {"Data": email.html, "Charset": "UTF-8"}
        if email.text is not None:
            body["Text"] = {"Data": email.text, "Charset": "UTF-8"}
        simple: dict[str, Any] = {"Subject": {"Data": email.subject, "Charset": "UTF-8"}}
        simple["Body"] = body
        if email.headers:
            simple["Headers"] = [{"Name": n, "Value": v} for n, v in email.headers]
        destination = {
            name: list(group)
            for name, group in (
                ("ToAddresses", email.to),
                ("CcAddresses", email.cc),
                ("BccAddresses", email.bcc),
            )
            if group
        }
        params: dict[str, Any] = {
            "FromEmailAddress": email.sender,
            "Destination": destination,
            "Content": {"Simple": simple},
            "EmailTags": [{"Name": n, "Value": v} for n, v in email.tags],
        }
        if email.reply_to:
            params["ReplyToAddresses"] = list(email.reply_to)
        if email.configuration_set:
            params["ConfigurationSetName"] = email.configuration_set
        try:
            response = self._client.send_email(**params)
        except aws.errors() as exc:
            raise self._translate(exc) from exc
        return str(response["MessageId"])

    @staticmethod
    def _translate(exc: Exception) -> RequestError:
        failed = aws.failure(exc)
        assert failed is not None
        if failed.retryable:
            if not failed.status:  # no connection, read timeout: after retries
                return ServiceUnavailable(
                    f"SES could not be reached ({failed.code}); nothing was sent, retry later",
                    details={"retryable": True},
                )
            return ServiceUnavailable(
                f"SES is throttling or unavailable ({failed.code}) and retries did not help; "
                "nothing was sent, retry later",
                details={"ses_code": failed.code, "retryable": True},
            )
        why = _REFUSALS.get(failed.code, "SES refused the request")
        return SesRefused(
            f"{why}: {failed.message}",
            ses_code=failed.code,
            per_message=failed.code in _PER_MESSAGE,
        )

    def send_rate(self) -> SendRate:
        try:
            quota = self._client.get_account().get("SendQuota", {})
            rate = float(quota.get("MaxSendRate") or 0)
        except aws.errors() as exc:
            failed = aws.failure(exc)
            code = failed.code if failed else type(exc).__name__
            return SendRate(
                self._default_rate,
                "default",
                f"SES GetAccount is unavailable ({code}); paced at the default "
                f"{self._default_rate:g} messages per second",
            )
        if rate <= 0:
            return SendRate(self._default_rate, "default", "SES reported no MaxSendRate")
        return SendRate(rate, "ses")


# ---------------------------------------------------------------- account suppression list


@dataclass(frozen=True)
class SesSuppressed:
    address: str  # as SES spells it
    reason: str  # BOUNCE | COMPLAINT
    updated_at: datetime


class AccountSuppressionList(Protocol):
    """What the sync needs from the SES account-level suppression list."""

    def entries(self) -> Iterator[SesSuppressed]: ...

    def put(self, address: str, reason: str) -> None: ...

    def delete(self, address: str) -> None: ...


class SesV2SuppressionList:
    """Production adapter: the SESv2 client of the tenant's account (assumed role)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def entries(self) -> Iterator[SesSuppressed]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"PageSize": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self._call("ListSuppressedDestinations", **kwargs)
            for s in page.get("SuppressedDestinationSummaries", []):
                reason = str(s.get("Reason", "")).upper()
                yield SesSuppressed(
                    s["EmailAddress"],
                    reason if reason in ("BOUNCE", "COMPLAINT") else "BOUNCE",
                    s["LastUpdateTime"],
                )
            token = page.get("NextToken")
            if not token:
                return

    def put(self, address: str, reason: str) -> None:
        self._call("PutSuppressedDestination", EmailAddress=address, Reason=reason)

    def delete(self, address: str) -> None:
        with contextlib.suppress(_AlreadyGone):  # already gone: what a delete is for
            self._call("DeleteSuppressedDestination", EmailAddress=address)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        method = getattr(self._client, _snake(operation))
        try:
            return method(**kwargs)
        except aws.errors() as exc:
            failed = aws.failure(exc)
            assert failed is not None
            if failed.kind is aws.Kind.NOT_IMPLEMENTED:
                raise ApiNotAvailable(
                    f"this AWS endpoint does not implement SESv2 {operation} ({failed.code})"
                ) from None
            if failed.kind is aws.Kind.ACCESS_DENIED:
                raise RoleAccessDenied(
                    f"the role lacks ses:{operation}; re-run the customer-onboarding stack, "
                    "which grants it"
                ) from None
            if failed.kind is aws.Kind.NOT_FOUND:
                raise _AlreadyGone(operation) from None
            if failed.status:
                raise ServiceUnavailable(f"SES refused {operation}: {failed.code}") from None
            raise ServiceUnavailable(f"SES did not answer {operation}: {failed.message}") from None


class _AlreadyGone(SesamiError):
    pass


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


# ---------------------------------------------------------------- identities


@dataclass(frozen=True)
class IdentitySummary:
    name: str  # a domain or an address, as SES spells it
    kind: str  # DOMAIN | EMAIL_ADDRESS | MANAGED_DOMAIN
    verification: str  # PENDING | SUCCESS | FAILED | TEMPORARY_FAILURE | NOT_STARTED
    sending_enabled: bool


@dataclass(frozen=True)
class IdentityDetail:
    summary: IdentitySummary
    verified_for_sending: bool
    dkim: dict[str, Any]  # Status, SigningEnabled, SigningAttributesOrigin, Tokens, key lengths
    mail_from: dict[str, Any] | None  # MailFromDomain, MailFromDomainStatus, BehaviorOnMxFailure


class SesV2Identities:
    """The account's SES identities (ListEmailIdentities, GetEmailIdentity) and whether the account
    is still in the sandbox (GetAccount), over the tenant's `sesv2` client (assumed role).

    Emulator gap: moto answers every identity VerificationStatus SUCCESS, DKIM NOT_STARTED without
    tokens and no MAIL FROM attributes; pending domains and their records are tested with
    botocore's Stubber (tests/test_identities.py)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def page(self, size: int, token: str | None) -> tuple[list[IdentitySummary], str | None]:
        kwargs: dict[str, Any] = {"PageSize": size}
        if token:
            kwargs["NextToken"] = token
        answer = _call(self._client, "ListEmailIdentities", **kwargs)
        items = [
            IdentitySummary(
                str(i["IdentityName"]),
                str(i.get("IdentityType", "")),
                str(i.get("VerificationStatus") or "NOT_STARTED"),
                bool(i.get("SendingEnabled", False)),
            )
            for i in answer.get("EmailIdentities", [])
        ]
        return items, answer.get("NextToken") or None

    def detail(self, summary: IdentitySummary) -> IdentityDetail:
        answer = _call(self._client, "GetEmailIdentity", EmailIdentity=summary.name)
        mail_from = answer.get("MailFromAttributes")
        return IdentityDetail(
            IdentitySummary(
                summary.name,
                str(answer.get("IdentityType") or summary.kind),
                str(answer.get("VerificationStatus") or summary.verification),
                summary.sending_enabled,
            ),
            bool(answer.get("VerifiedForSendingStatus", False)),
            dict(answer.get("DkimAttributes") or {}),
            dict(mail_from) if mail_from else None,
        )

    def in_sandbox(self) -> bool | None:
        """True while the account is in the SES sandbox; None when SES does not say."""
        try:
            answer = _call(self._client, "GetAccount")
        except ApiNotAvailable:
            return None
        access = answer.get("ProductionAccessEnabled")
        return None if access is None else not bool(access)


def _call(client: Any, operation: str, **kwargs: Any) -> Any:
    """One SESv2 read in the tenant's account, its failures as SESami's errors."""
    try:
        return getattr(client, _snake(operation))(**kwargs)
    except aws.errors() as exc:
        failed = aws.failure(exc)
        assert failed is not None
        if failed.kind is aws.Kind.NOT_IMPLEMENTED:
            raise ApiNotAvailable(
                f"this AWS endpoint does not implement SESv2 {operation}"
            ) from None
        if failed.kind is aws.Kind.ACCESS_DENIED:
            raise RoleAccessDenied(
                f"the role lacks ses:{operation}; re-run the customer-onboarding stack, which "
                "grants it"
            ) from None
        if failed.kind is aws.Kind.NOT_FOUND:
            from chalicelib.core.errors import NotFound

            raise NotFound(f"SES has no such identity ({failed.message})") from None
        raise ServiceUnavailable(
            f"SES did not answer {operation} ({failed.code}); retry later",
            details={"retryable": True},
        ) from None
