"""The setup checklist (`GET /verify-sts`): whether the customer's account is ready, item by
item. Every item is `ok`, `failed` (with what to do) or `not_checked` (with why); nothing
unverified is ever reported `ok`, and whatever a check raises lands in its own item.

Every call it makes in the customer's account goes through the tenant gateway and is within what
the onboarding role grants (tests/api/test_permission_parity.py proves it).

Bounded (invariant 11): the confused-deputy probe (an AssumeRole without the external ID) is
remembered per tenant and role for PROBE_TTL, so repeated checklists do not call STS each time;
the canary is sent at most once per CANARY_EVERY per tenant, claimed by a conditional write on
the tenant, so concurrent requests on any instance send one.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.core import aws, dynamo, keys
from chalicelib.core.errors import RequestError
from chalicelib.core.settings import DEFAULT_CONFIGURATION_SET
from chalicelib.core.tables import EventModel, TenantModel
from chalicelib.tenants.accounts import (
    CANARY_RECIPIENT,
    FORWARDING_RULE_NAME,
    SES_EVENT_TYPES,
    PlatformInfo,
    RoleAccess,
)

log = logging.getLogger("sesami.accounts")

PROBE_TTL = timedelta(minutes=10)
CANARY_EVERY = timedelta(minutes=10)
_MAX_PROBES = 1_000


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Check:
    id: str
    title: str
    status: str = "not_checked"  # ok | failed | not_checked
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def ok(self, message: str, **details: Any) -> Check:
        self.status, self.message, self.details = "ok", message, details
        return self

    def failed(self, message: str, **details: Any) -> Check:
        self.status, self.message, self.details = "failed", message, details
        return self

    def skipped(self, why: str) -> Check:
        self.status, self.message = "not_checked", why
        return self


class TenantAccounts(Protocol):
    """The gateway into tenants' accounts (chalicelib.tenant_aws.gateway.Gateway)."""

    def for_tenant(self, tenant: TenantModel) -> Any: ...


class Verifier:
    """Runs the setup checklist. Every item is `ok`, `failed` (with what to do) or
    `not_checked` (with why); nothing unverified is ever reported `ok`."""

    def __init__(
        self,
        platform: PlatformInfo,
        roles: RoleAccess,
        accounts: TenantAccounts,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._p, self._roles, self._accounts, self._clock = platform, roles, accounts, clock
        # (tenant, role ARN) -> (whether the role opened without the external ID, when)
        self._probes: dict[tuple[str, str], tuple[bool, datetime]] = {}

    def run(self, tenant: TenantModel, *, canary: bool = False) -> dict[str, Any]:
        checks = [
            Check("role_assumable", "SESami can assume the role with your external ID"),
            Check("role_requires_external_id", "The role refuses SESami without the external ID"),
            Check("ses_account", "SES production access and sending quota"),
            Check(
                "configuration_set",
                "The configuration set publishes all ten event types to EventBridge",
            ),
            Check(
                "forwarding_rule", "A rule on your default bus forwards aws.ses events to SESami"
            ),
            Check("last_event", "Events from your account reach SESami"),
            Check("canary", "A test email to the SES mailbox simulator is delivered and tracked"),
        ]
        by_id = {c.id: c for c in checks}
        if not tenant.role_arn:
            for c in checks:
                c.skipped("no AWS account is connected yet: PUT /account first")
            return self._result(checks)
        tenant_aws = self._accounts.for_tenant(tenant)
        assumed: list[Any] = []

        def assume(check: Check) -> None:
            assumed.append(tenant_aws.credentials())
            check.ok(f"assumed {tenant.role_arn}")

        self._guard(by_id["role_assumable"], assume)
        creds = assumed[0] if assumed else None
        self._guard(
            by_id["role_requires_external_id"],
            lambda c: self._check_refusal(c, tenant.tenant_id, tenant.role_arn),
        )
        self._guard(by_id["last_event"], lambda c: self._check_last_event(c, tenant))
        if creds is None:
            for cid in ("ses_account", "configuration_set", "forwarding_rule", "canary"):
                by_id[cid].skipped("needs the role, which SESami could not assume")
            return self._result(checks)
        config_set = tenant.configuration_set or DEFAULT_CONFIGURATION_SET
        # Built on first use, inside the checks: a client that cannot be built fails its item.
        sesv2 = functools.cache(lambda: tenant_aws.client("sesv2"))
        events = functools.cache(lambda: tenant_aws.client("events"))
        self._guard(by_id["ses_account"], lambda c: self._check_account(c, sesv2()))
        self._guard(
            by_id["configuration_set"], lambda c: self._check_config_set(c, sesv2(), config_set)
        )
        self._guard(by_id["forwarding_rule"], lambda c: self._check_rule(c, events()))
        self._guard(
            by_id["canary"],
            lambda c: self._check_canary(c, tenant, sesv2(), config_set, send=canary),
        )
        return self._result(checks)

    @staticmethod
    def _result(checks: Iterable[Check]) -> dict[str, Any]:
        items = [c.__dict__ for c in checks]
        return {
            "ok": all(c["status"] == "ok" for c in items),
            "checks": items,
        }

    @staticmethod
    def _guard(check: Check, run: Callable[[Check], object]) -> None:
        """Run one check; whatever it raises lands in its own item, never in the response: an
        API the endpoint does not implement is `not_checked`, an access error is `failed` with
        the missing permission, anything else `failed` with the error."""
        try:
            run(check)
        except Exception as exc:
            failed = aws.failure(exc)
            kind = failed.kind if failed else None
            if kind is aws.Kind.NOT_IMPLEMENTED:  # an emulator (moto: a bare HTTP 404 page)
                assert failed is not None
                check.skipped(f"the AWS endpoint does not implement this API ({failed.code})")
            elif kind is aws.Kind.ACCESS_DENIED:
                check.failed(
                    f"the role lacks a permission this check needs ({exc}); re-run the "
                    "customer-onboarding stack, which grants it"
                )
            elif isinstance(exc, RequestError):  # SESami's own: its message is for the caller
                check.failed(exc.message)
            else:
                log.warning("setup check %s failed unexpectedly", check.id, exc_info=True)
                check.failed(f"{type(exc).__name__}: {exc}")

    def _check_refusal(self, check: Check, tenant_id: str, role_arn: str) -> None:
        if self._p.skip_external_id_refusal_check:
            check.skipped(
                "disabled on this stack (SESAMI_INSECURE_SKIP_EXTERNAL_ID_CHECK): the local STS "
                "emulator ignores external IDs"
            )
            return
        now = self._clock()
        known = self._probes.get((tenant_id, role_arn))
        if known is not None and now - known[1] < PROBE_TTL:
            unsafe, at = known
        else:
            try:
                unsafe = self._roles.assume_without_external_id(role_arn)
            except Exception as exc:
                check.skipped(f"could not run the check: {exc}")
                return
            if len(self._probes) >= _MAX_PROBES:
                self._probes.clear()
            self._probes[(tenant_id, role_arn)] = (unsafe, now)
            at = now
        when = f" (probed at {at:%H:%M:%S} UTC; probed again {PROBE_TTL.seconds // 60} min later)"
        if unsafe:
            check.failed(
                "the role can be assumed without the external ID (confused-deputy risk): add the "
                "sts:ExternalId condition to its trust policy" + when,
                probed_at=at.isoformat(),
            )
        else:
            check.ok(
                "AssumeRole without the external ID was refused" + when, probed_at=at.isoformat()
            )

    @staticmethod
    def _check_account(check: Check, sesv2: Any) -> None:
        account = sesv2.get_account()
        quota = account.get("SendQuota", {})
        details = {
            "production_access": bool(account.get("ProductionAccessEnabled")),
            "max_24_hour_send": quota.get("Max24HourSend"),
            "max_send_rate": quota.get("MaxSendRate"),
            "sent_last_24_hours": quota.get("SentLast24Hours"),
            "sending_enabled": account.get("SendingEnabled"),
        }
        if not account.get("SendingEnabled", True):
            check.failed("sending is disabled for this SES account", **details)
        elif not account.get("ProductionAccessEnabled"):
            check.failed(
                "the SES account is in the sandbox: it can only send to verified addresses. "
                "Request production access in the SES console.",
                **details,
            )
        else:
            check.ok("production access, sending enabled", **details)

    @staticmethod
    def _check_config_set(check: Check, sesv2: Any, name: str) -> None:
        sesv2.get_configuration_set(ConfigurationSetName=name)
        destinations = sesv2.get_configuration_set_event_destinations(
            ConfigurationSetName=name
        ).get("EventDestinations", [])
        published: set[str] = set()
        for d in destinations:
            if d.get("Enabled") and d.get("EventBridgeDestination"):
                published |= set(d.get("MatchingEventTypes", []))
        missing = sorted(SES_EVENT_TYPES - published)
        if missing:
            check.failed(
                f"configuration set {name} does not publish {', '.join(missing)} to EventBridge; "
                "re-run the customer-onboarding stack",
                missing=missing,
            )
        else:
            check.ok(f"configuration set {name} publishes all ten event types to EventBridge")

    def _check_rule(self, check: Check, events: Any) -> None:
        bus, name = self._p.event_bus_arn, FORWARDING_RULE_NAME
        rerun = "; re-run the customer-onboarding stack"
        try:
            rule = events.describe_rule(Name=name, EventBusName="default")
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code != "ResourceNotFoundException":
                raise
            check.failed(f"your default event bus has no rule named {name}{rerun}", rule=name)
            return
        try:
            pattern = json.loads(rule.get("EventPattern") or "{}")
        except ValueError:
            pattern = {}
        sources = pattern.get("source") if isinstance(pattern, dict) else None
        if rule.get("State") != "ENABLED":
            check.failed(f"rule {name} is {rule.get('State') or 'not enabled'}{rerun}", rule=name)
            return
        if not isinstance(sources, list) or "aws.ses" not in sources:
            check.failed(f"rule {name} does not match aws.ses events{rerun}", rule=name)
            return
        targets = events.list_targets_by_rule(Rule=name, EventBusName="default")
        if not any(t.get("Arn") == bus for t in targets.get("Targets", [])):
            check.failed(f"rule {name} does not target {bus}{rerun}", rule=name)
            return
        check.ok(f"rule {name} forwards aws.ses events to {bus}", rule=name)

    def _check_last_event(self, check: Check, tenant: TenantModel) -> None:
        newest: str | None = None
        for shard in range(int(tenant.write_shards or 1)):
            for row in EventModel.query(
                keys.events_pk(tenant.tenant_id, shard), scan_index_forward=False, limit=1
            ):
                newest = max(newest or "", row.at())
        if newest:
            check.ok(f"last event received at {newest}", last_event_at=newest)
        else:
            check.failed(
                "no SES event has reached SESami from this account yet: send a test email "
                "(or run this checklist with canary=true) and check again"
            )

    def _check_canary(
        self, check: Check, tenant: TenantModel, sesv2: Any, config_set: str, *, send: bool
    ) -> None:
        from chalicelib.core.tables import AGGREGATE_SK, MessageModel

        now, last = self._clock(), tenant.canary_sent_at
        wait = ""
        if send and last is not None and now - last < CANARY_EVERY:
            send = False
            wait = (
                f"; a canary is sent at most every {CANARY_EVERY.seconds // 60} minutes: the "
                f"next one from {last + CANARY_EVERY:%H:%M:%S} UTC"
            )
        if tenant.canary_message_id and not send:
            try:
                agg = MessageModel.get(
                    keys.message_pk(tenant.tenant_id, tenant.canary_message_id), AGGREGATE_SK
                )
                check.ok(
                    f"canary {tenant.canary_message_id} reached status {agg.status}",
                    message_id=tenant.canary_message_id,
                    status=agg.status,
                )
            except MessageModel.DoesNotExist:
                check.failed(
                    f"canary {tenant.canary_message_id} sent at {tenant.canary_sent_at} has not "
                    "produced an event yet: check the configuration set and the forwarding rule",
                    message_id=tenant.canary_message_id,
                )
            check.message += wait
            return
        if not send:
            check.skipped("optional: run with canary=true to send a test email" + wait)
            return
        source = None
        identities = sesv2.list_email_identities().get("EmailIdentities", [])
        for identity in identities:
            verified = identity.get("VerificationStatus", "SUCCESS") == "SUCCESS"
            if verified and identity.get("SendingEnabled", True):
                name = identity["IdentityName"]
                source = name if "@" in name else f"sesami-canary@{name}"
                break
        if source is None:
            check.failed("no verified sending identity in this SES account to send the canary from")
            return
        if not self._claim_canary(tenant, now, last):
            check.skipped("a canary was sent moments ago: run the checklist again in a minute")
            return
        try:
            sent = self._send_canary(sesv2, source, config_set)
        except BaseException:
            self._unclaim_canary(tenant, now, last)
            raise
        tenant.update(actions=[TenantModel.canary_message_id.set(sent["MessageId"])])
        check.skipped(
            f"canary {sent['MessageId']} sent to {CANARY_RECIPIENT}; run the checklist again in "
            "a minute to see its Delivery"
        ).details = {"message_id": sent["MessageId"]}

    @staticmethod
    def _claim_canary(tenant: TenantModel, now: datetime, last: datetime | None) -> bool:
        """One canary per CANARY_EVERY per tenant, whichever instance asks: the time of the
        last one (older than CANARY_EVERY, checked by the caller) moves to now only if no other
        request moved it since it was read (a conditional write)."""
        unchanged = (
            TenantModel.canary_sent_at.does_not_exist()
            if last is None
            else TenantModel.canary_sent_at == last
        )
        return dynamo.write_if(
            "canary claim",
            lambda: tenant.update(
                actions=[TenantModel.canary_sent_at.set(now)], condition=unchanged
            ),
        )

    @staticmethod
    def _unclaim_canary(tenant: TenantModel, now: datetime, last: datetime | None) -> None:
        """The canary was not sent: the next checklist may send one at once."""
        action = (
            TenantModel.canary_sent_at.set(last)
            if last is not None
            else TenantModel.canary_sent_at.remove()
        )
        try:
            dynamo.write_if(
                "canary unclaim",
                lambda: tenant.update(
                    actions=[action], condition=TenantModel.canary_sent_at == now
                ),
            )
        except Exception:
            log.warning("could not release the canary claim of %s", tenant.tenant_id)

    @staticmethod
    def _send_canary(sesv2: Any, source: str, config_set: str) -> dict[str, Any]:
        sent: dict[str, Any] = sesv2.send_email(
            FromEmailAddress=source,
            Destination={"ToAddresses": [CANARY_RECIPIENT]},
            Content={
                "Simple": {
                    "Subject": {"Data": "SESami canary"},
                    "Body": {"Text": {"Data": "SESami setup check."}},
                }
            },
            ConfigurationSetName=config_set,
            EmailTags=[{"Name": "sesami", "Value": "canary"}],
        )
        return sent
