"""Cognito hardening in the operator stack: TOTP MFA, admins' MFA enforced by the API, threat
protection on the Plus plan, and the pool's email sent through the operator's SES (Cognito's own
email has a small daily quota that anonymous sign-ups and resets could use up for everyone)."""

from __future__ import annotations

from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    Deployment,
    import_infra,
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import (  # noqa: E402
    USER_POOL,
    plain,
)

identity = import_infra("identity")
SES_IDENTITY = "arn:aws:ses:eu-west-1:444455556666:identity/sesami.example"


def _deploy(tmp: Any, **config: str) -> Deployment:
    package = write_package(tmp, package_template())
    return run_program(stack_config(package, **config))


def test_totp_is_offered_by_default_and_admins_are_not_forced(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    deployed = _deploy(tmp_path_factory.mktemp("p"))
    pool = deployed.state(USER_POOL)
    assert pool["mfaConfiguration"] == "OPTIONAL"
    assert plain(pool["softwareTokenMfaConfiguration"]) == {"enabled": True}
    assert "userPoolAddOns" not in pool and "emailConfiguration" not in pool
    assert deployed.environment("api")["SESAMI_ADMIN_MFA_REQUIRED"] == "false"


def test_hardened_pool_requires_admin_mfa_protects_and_mails_through_ses(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    deployed = _deploy(
        tmp_path_factory.mktemp("p"),
        adminMfaRequired="true",
        threatProtection="enforced",
        cognitoEmailIdentityArn=SES_IDENTITY,
        cognitoEmailFrom="SESami <no-reply@sesami.example>",
    )
    pool = deployed.state(USER_POOL)
    assert pool["userPoolTier"] == "PLUS"
    assert plain(pool["userPoolAddOns"]) == {"advancedSecurityMode": "ENFORCED"}
    email = plain(pool["emailConfiguration"])
    assert email["emailSendingAccount"] == "DEVELOPER" and email["sourceArn"] == SES_IDENTITY
    assert deployed.environment("api")["SESAMI_ADMIN_MFA_REQUIRED"] == "true"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"mfa": "SOMETIMES"}, "cognitoMfa"),
        ({"mfa": "OFF", "admin_mfa_required": True}, "adminMfaRequired"),
        ({"threat_protection": "maximal"}, "threatProtection"),
        ({"email_identity_arn": SES_IDENTITY}, "go together"),
        ({"email_identity_arn": "arn:aws:iam::1:role/x", "email_from": "a@b.c"}, "SES identity"),
    ],
)
def test_bad_hardening_config_is_refused_naming_it(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        identity.IdentityArgs(pool_name="p", **args)


def test_self_sign_up_on_cognitos_own_email_is_warned_about(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **kw: warned.append(message))
    _deploy(tmp_path_factory.mktemp("p"))  # the defaults: selfSignUp true, Cognito's email
    assert len(warned) == 1 and "cognitoEmailIdentityArn" in warned[0]
    warned.clear()
    _deploy(
        tmp_path_factory.mktemp("p"),
        cognitoEmailIdentityArn=SES_IDENTITY,
        cognitoEmailFrom="SESami <no-reply@sesami.example>",
    )
    _deploy(tmp_path_factory.mktemp("p"), selfSignUp="false")
    assert warned == []


def test_the_email_warning_is_for_self_sign_up_without_an_ses_identity() -> None:
    assert identity.email_warning(identity.IdentityArgs(pool_name="p")) is not None
    closed = identity.IdentityArgs(pool_name="p", self_sign_up=False)
    through_ses = identity.IdentityArgs(
        pool_name="p", email_identity_arn=SES_IDENTITY, email_from="a@sesami.example"
    )
    assert identity.email_warning(closed) is None and identity.email_warning(through_ses) is None
