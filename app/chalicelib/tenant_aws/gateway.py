"""The one way into a tenant's AWS account: `gateway.for_tenant(tenant)`.

Sending, the SES suppression sync and the setup checklist all act in the customer's account
through this: credentials from the role the customer created (credentials.py: in-process, then
Momento, then STS with the tenant's external ID), and clients built once per
(service, region, credentials) with SESami's one retry policy (core/aws.py). The adapters here
(ses.py) translate AWS's errors into SESami's.

    tenant_aws = gateway.for_tenant(tenant)
    tenant_aws.ses().send(email)                 # SESv2 SendEmail, header-checked
    tenant_aws.suppression_list().entries()      # SES's account-level suppression list
    tenant_aws.identities().page(20, None)       # SES identities, their DKIM and MAIL FROM
    tenant_aws.client("events")                  # a raw client, for the checklist's reads

`wrap_ses` lets the local stack put its SES simulator around every tenant's sender (moto's SES
publishes no events); nothing else may change what this module returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.core import aws
from chalicelib.core.errors import Conflict
from chalicelib.tenant_aws.ses import Ses, SesV2, SesV2Identities, SesV2SuppressionList

if TYPE_CHECKING:
    from chalicelib.core.tables import TenantModel
    from chalicelib.tenant_aws.credentials import AwsCredentials, TenantCredentials

MAX_CLIENTS = 64  # credentials rotate hourly: the oldest clients are dropped first
SesWrapper = Callable[[Any, Ses], Ses]
ClientFactory = Callable[..., Any]


class TenantAws:
    """One tenant's AWS account as SESami acts in it."""

    def __init__(self, gateway: Gateway, tenant: TenantModel) -> None:
        if not tenant.role_arn:
            raise Conflict("no AWS account is connected yet: PUT /account first")
        self._gateway, self.tenant = gateway, tenant
        self.region = tenant.region or gateway.default_region

    def credentials(self) -> AwsCredentials:
        """Assumed-role credentials (RoleAccessDenied when STS refuses the role)."""
        t = self.tenant
        assert t.role_arn is not None
        return self._gateway.roles.get(t.tenant_id, t.role_arn, t.external_id)

    def client(self, service: str) -> Any:
        return self._gateway.client(service, self.credentials(), self.region)

    def ses(self) -> Ses:
        ses: Ses = SesV2(self.client("sesv2"))
        wrapper = self._gateway.ses_wrapper
        return wrapper(self.tenant, ses) if wrapper is not None else ses

    def suppression_list(self) -> SesV2SuppressionList:
        return SesV2SuppressionList(self.client("sesv2"))

    def identities(self) -> SesV2Identities:
        return SesV2Identities(self.client("sesv2"))


class Gateway:
    def __init__(
        self,
        roles: TenantCredentials,
        *,
        default_region: str,
        endpoint: str | None = None,
        ses_wrapper: SesWrapper | None = None,
        client_factory: ClientFactory = aws.client,
    ) -> None:
        self.roles, self.default_region, self.ses_wrapper = roles, default_region, ses_wrapper
        self._endpoint, self._factory = endpoint, client_factory
        self._clients: dict[tuple[str, str, str], Any] = {}

    def for_tenant(self, tenant: TenantModel) -> TenantAws:
        """The tenant's account; a 409 when the tenant has connected none."""
        return TenantAws(self, tenant)

    def client(self, service: str, credentials: AwsCredentials, region: str) -> Any:
        key = (service, region, credentials.access_key_id)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= MAX_CLIENTS:
                self._clients.pop(next(iter(self._clients)))
            client = self._clients[key] = self._factory(
                service, region=region, endpoint=self._endpoint, credentials=credentials
            )
        return client
