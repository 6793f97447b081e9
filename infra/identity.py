"""SESami's Cognito user pool and the dashboard's app client.

Security invariant 4: no app client may write an attribute that binds a user to a tenant. Those
attributes (`chalicelib.tenants.auth.CUSTOM_ATTRIBUTES`) are set only by SESami's admin API calls
(AdminCreateUser / AdminUpdateUserAttributes), which ignore client write permissions. moto does not
enforce WriteAttributes, so the tests assert this on the program's arguments."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.tenants.auth import CUSTOM_ATTRIBUTES

# Standard attributes a signed-in user may edit about themselves. Never a custom attribute:
# every custom attribute SESami declares is a tenant binding.
SELF_SERVICE_ATTRIBUTES = ("email", "name", "given_name", "family_name", "locale", "zoneinfo")
READABLE_STANDARD_ATTRIBUTES = (*SELF_SERVICE_ATTRIBUTES, "email_verified")
AUTH_FLOWS = ("ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")


# ON (MFA for everyone at once) would need the dashboard to enrol users at their first sign-in
# (Cognito's MFA_SETUP challenge), which it does not do; admins can be required to use MFA.
MFA_MODES = ("OFF", "OPTIONAL")
THREAT_PROTECTION = {"off": None, "audit": "AUDIT", "enforced": "ENFORCED"}


@dataclass(frozen=True)
class IdentityArgs:
    pool_name: str
    deletion_protection: bool = True
    # The API's "create tenant" flow lets a signed-up user without a tenant become its admin.
    self_sign_up: bool = True
    # TOTP (authenticator app) MFA: OPTIONAL lets each user turn it on (Account page).
    mfa: str = "OPTIONAL"
    # SESami refuses admin actions to an admin without TOTP MFA (enforced by the app: Cognito
    # cannot require MFA of some users only).
    admin_mfa_required: bool = False
    # Cognito threat protection (compromised credentials, adaptive authentication): needs the
    # Plus feature plan, which this switches the pool to. off | audit | enforced.
    threat_protection: str = "off"
    # Cognito's own email has a small daily quota that anonymous sign-ups and password resets
    # could use up for everyone: give a verified SES identity of the operator's account to send
    # through it instead (its sending authorization must allow cognito-idp.amazonaws.com).
    email_identity_arn: str | None = None
    email_from: str | None = None

    def __post_init__(self) -> None:
        if self.mfa not in MFA_MODES:
            raise ValueError(f"cognitoMfa must be one of {', '.join(MFA_MODES)}, got {self.mfa!r}")
        if self.admin_mfa_required and self.mfa == "OFF":
            raise ValueError("adminMfaRequired needs cognitoMfa OPTIONAL or ON")
        if self.threat_protection not in THREAT_PROTECTION:
            raise ValueError(
                f"threatProtection must be one of {', '.join(THREAT_PROTECTION)}, "
                f"got {self.threat_protection!r}"
            )
        if bool(self.email_identity_arn) != bool(self.email_from):
            raise ValueError("cognitoEmailIdentityArn and cognitoEmailFrom go together")
        if self.email_identity_arn and ":ses:" not in self.email_identity_arn:
            raise ValueError("cognitoEmailIdentityArn must be an SES identity ARN")


def custom_attribute_names() -> tuple[str, ...]:
    """The attributes as Cognito spells them in tokens and client permissions."""
    return tuple(f"custom:{name}" for name in CUSTOM_ATTRIBUTES)


def client_write_attributes() -> list[str]:
    """Pure: what the dashboard client may write. Excludes every tenant binding (invariant 4)."""
    forbidden = set(CUSTOM_ATTRIBUTES) | set(custom_attribute_names())
    return [a for a in SELF_SERVICE_ATTRIBUTES if a not in forbidden]


def client_read_attributes() -> list[str]:
    """Pure: the dashboard reads the tenant binding (it is in the ID token anyway)."""
    return [*READABLE_STANDARD_ATTRIBUTES, *custom_attribute_names()]


def user_pool_args(args: IdentityArgs) -> dict[str, Any]:
    """Pure: the aws.cognito.UserPool arguments."""
    return {
        "name": args.pool_name,
        "username_attributes": ["email"],
        "auto_verified_attributes": ["email"],
        "user_attribute_update_settings": aws.cognito.UserPoolUserAttributeUpdateSettingsArgs(
            # A changed address keeps the old one until the new one is verified.
            attributes_require_verification_before_updates=["email"],
        ),
        "password_policy": aws.cognito.UserPoolPasswordPolicyArgs(
            minimum_length=12,
            require_uppercase=True,
            require_lowercase=True,
            require_numbers=True,
            require_symbols=True,
            temporary_password_validity_days=7,
        ),
        "schemas": [
            aws.cognito.UserPoolSchemaArgs(
                name=name,
                attribute_data_type="String",
                # Mutable so SESami's admin API can bind and re-bind users; not developer-only
                # because the app reads them from the ID token.
                mutable=True,
                developer_only_attribute=False,
                required=False,
                string_attribute_constraints=aws.cognito.UserPoolSchemaStringAttributeConstraintsArgs(
                    min_length="0", max_length="64"
                ),
            )
            for name in CUSTOM_ATTRIBUTES
        ],
        "admin_create_user_config": aws.cognito.UserPoolAdminCreateUserConfigArgs(
            allow_admin_create_user_only=not args.self_sign_up,
        ),
        "account_recovery_setting": aws.cognito.UserPoolAccountRecoverySettingArgs(
            recovery_mechanisms=[
                aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(
                    name="verified_email", priority=1
                )
            ]
        ),
        "deletion_protection": "ACTIVE" if args.deletion_protection else "INACTIVE",
        **_hardening(args),
    }


def email_warning(args: IdentityArgs) -> str | None:
    """Pure: what `pulumi up` warns about the pool's email, or None. Anyone may sign up, and
    every sign-up and password reset is mailed with Cognito's own email (a small daily quota
    for the whole pool) unless the operator's SES sends it."""
    if not args.self_sign_up or args.email_identity_arn:
        return None
    return (
        "selfSignUp is on and the user pool mails through Cognito's own email, whose small "
        "daily quota anonymous sign-ups and password resets can use up for every user; in "
        "production set cognitoEmailIdentityArn and cognitoEmailFrom (a verified SES identity "
        "of this account) or selfSignUp false"
    )


def _hardening(args: IdentityArgs) -> dict[str, Any]:
    """Pure: MFA, threat protection and the email sender of the pool."""
    out: dict[str, Any] = {
        "mfa_configuration": args.mfa,
        "software_token_mfa_configuration": aws.cognito.UserPoolSoftwareTokenMfaConfigurationArgs(
            enabled=args.mfa != "OFF"
        ),
    }
    mode = THREAT_PROTECTION[args.threat_protection]
    if mode is not None:
        out["user_pool_tier"] = "PLUS"
        out["user_pool_add_ons"] = aws.cognito.UserPoolUserPoolAddOnsArgs(
            advanced_security_mode=mode
        )
    if args.email_identity_arn:
        out["email_configuration"] = aws.cognito.UserPoolEmailConfigurationArgs(
            email_sending_account="DEVELOPER",
            source_arn=args.email_identity_arn,
            from_email_address=args.email_from,
        )
    return out


def app_client_args(user_pool_id: pulumi.Input[str], args: IdentityArgs) -> dict[str, Any]:
    """Pure: the dashboard's aws.cognito.UserPoolClient arguments (a public client)."""
    return {
        "name": f"{args.pool_name}-dashboard",
        "user_pool_id": user_pool_id,
        "generate_secret": False,
        "explicit_auth_flows": list(AUTH_FLOWS),
        "read_attributes": client_read_attributes(),
        "write_attributes": client_write_attributes(),
        "prevent_user_existence_errors": "ENABLED",
        "enable_token_revocation": True,
        "id_token_validity": 1,
        "access_token_validity": 1,
        "refresh_token_validity": 30,
        "token_validity_units": aws.cognito.UserPoolClientTokenValidityUnitsArgs(
            id_token="hours",  # noqa: S106 (time units, not secrets)
            access_token="hours",  # noqa: S106
            refresh_token="days",  # noqa: S106
        ),
    }


class SesamiIdentity(pulumi.ComponentResource):
    user_pool: aws.cognito.UserPool
    dashboard_client: aws.cognito.UserPoolClient

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:identity:Identity", name, None, opts)
        warning = email_warning(args)
        if warning:
            pulumi.log.warn(warning, resource=self)
        self.user_pool = aws.cognito.UserPool(
            f"{name}-users",
            **user_pool_args(args),
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        self.dashboard_client = aws.cognito.UserPoolClient(
            f"{name}-dashboard",
            **app_client_args(self.user_pool.id, args),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "user_pool_id": self.user_pool.id,
                "user_pool_arn": self.user_pool.arn,
                "dashboard_client_id": self.dashboard_client.id,
            }
        )
