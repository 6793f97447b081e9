"""The user pool's admin API, as SESami's team management needs it (production adapter of
`membership.UserDirectory`). Only SESami writes the tenant attributes (invariant 4)."""

from __future__ import annotations

import contextlib
from typing import Any

from chalicelib.core.errors import Conflict
from chalicelib.tenants.auth import TENANT_ATTRIBUTE, TENANT_ROLE_ATTRIBUTE


class CognitoUserDirectory:
    """Production adapter: Cognito's admin API on SESami's user pool."""

    def __init__(self, client: Any, user_pool_id: str) -> None:
        self._client = client
        self._pool = user_pool_id

    def set_tenant(self, username: str, tenant_id: str, role: str) -> None:
        self._client.admin_update_user_attributes(
            UserPoolId=self._pool,
            Username=username,
            UserAttributes=[
                {"Name": TENANT_ATTRIBUTE, "Value": tenant_id},
                {"Name": TENANT_ROLE_ATTRIBUTE, "Value": role},
            ],
        )

    def invite(self, email: str, tenant_id: str, role: str) -> None:
        try:
            self._client.admin_create_user(
                UserPoolId=self._pool,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": TENANT_ATTRIBUTE, "Value": tenant_id},
                    {"Name": TENANT_ROLE_ATTRIBUTE, "Value": role},
                ],
                DesiredDeliveryMediums=["EMAIL"],
            )
        except self._client.exceptions.UsernameExistsException:
            raise Conflict(
                f"{email} already has a SESami login; a user belongs to one tenant"
            ) from None

    def resend_invitation(self, email: str) -> None:
        self._client.admin_create_user(
            UserPoolId=self._pool,
            Username=email,
            MessageAction="RESEND",
            DesiredDeliveryMediums=["EMAIL"],
        )

    def delete_user(self, username: str) -> bool:
        """A login that goes: an invitee's whose invitation was cancelled, every user's of a
        deleted tenant. False: there was no such user."""
        try:
            self._client.admin_delete_user(UserPoolId=self._pool, Username=username)
        except self._client.exceptions.UserNotFoundException:
            return False
        return True

    def sign_out(self, username: str) -> None:
        """Revoke the user's refresh tokens (their ID tokens are refused by SESami at once)."""
        with contextlib.suppress(self._client.exceptions.UserNotFoundException):
            self._client.admin_user_global_sign_out(UserPoolId=self._pool, Username=username)

    def has_totp(self, username: str) -> bool:
        """Whether the user has an authenticator app (TOTP) as an MFA method."""
        user = self._client.admin_get_user(UserPoolId=self._pool, Username=username)
        return "SOFTWARE_TOKEN_MFA" in (user.get("UserMFASettingList") or [])
