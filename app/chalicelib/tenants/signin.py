"""Sign-up, sign-in and sign-out against SESami's Cognito user pool, for the dashboard.

The dashboard talks only to SESami's API, so that it works the same behind API Gateway and on the
local stack. These calls are the user pool's public (unauthenticated) API with the dashboard's app
client, which has no secret; SESami never stores a password. Tokens come back to the browser, and
every other route verifies them as it verifies any API client's (invariant 5).

Cognito's errors become SESami's, each naming the problem: a wrong password and an unknown user
are the same 401, so that sign-in does not tell who has an account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chalicelib.core import aws
from chalicelib.core.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    RequestError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

# Challenges the dashboard answers: an invitee's first password, an authenticator app's code.
ANSWERED_CHALLENGES = frozenset({"NEW_PASSWORD_REQUIRED", "SOFTWARE_TOKEN_MFA"})
# A password as the pool's policy will judge it; the pool is the judge, this only bounds input.
MAX_PASSWORD = 256
MAX_CODE = 16


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_in: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id_token": self.id_token,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }


class UserPoolSignIn:
    """The user pool's public API for one app client (the dashboard's)."""

    def __init__(self, client: Any, client_id: str) -> None:
        self._client = client
        self._client_id = client_id

    def sign_up(self, email: str, password: str) -> dict[str, Any]:
        response = self._call(
            "sign_up",
            ClientId=self._client_id,
            Username=email,
            Password=password,
            UserAttributes=[{"Name": "email", "Value": email}],
        )
        delivery = response.get("CodeDeliveryDetails") or {}
        return {
            "email": email,
            "confirmed": bool(response.get("UserConfirmed")),
            "code_sent_to": delivery.get("Destination"),
        }

    def confirm(self, email: str, code: str) -> dict[str, Any]:
        self._call(
            "confirm_sign_up", ClientId=self._client_id, Username=email, ConfirmationCode=code
        )
        return {"email": email, "confirmed": True}

    def resend_code(self, email: str) -> dict[str, Any]:
        response = self._call("resend_confirmation_code", ClientId=self._client_id, Username=email)
        delivery = response.get("CodeDeliveryDetails") or {}
        return {"email": email, "code_sent_to": delivery.get("Destination")}

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        response = self._call(
            "initiate_auth",
            ClientId=self._client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
        return self._outcome(response)

    def new_password(self, email: str, session: str, password: str) -> dict[str, Any]:
        """Answer NEW_PASSWORD_REQUIRED: an invited user's first sign-in with the emailed
        temporary password."""
        response = self._challenge(
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=session,
            ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": password},
        )
        return self._outcome(response)

    def mfa_code(self, email: str, session: str, code: str) -> dict[str, Any]:
        """Answer SOFTWARE_TOKEN_MFA: the code of the user's authenticator app."""
        response = self._challenge(
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=session,
            ChallengeResponses={"USERNAME": email, "SOFTWARE_TOKEN_MFA_CODE": code},
        )
        return self._outcome(response)

    def mfa_setup(self, access_token: str, issuer: str = "SESami") -> dict[str, Any]:
        """Start adding an authenticator app: its secret, and the otpauth URI apps read."""
        response = self._call("associate_software_token", AccessToken=access_token)
        secret = str(response["SecretCode"])
        return {
            "secret_code": secret,
            "otpauth_uri": f"otpauth://totp/{issuer}?secret={secret}&issuer={issuer}",
        }

    def mfa_verify(self, access_token: str, code: str) -> dict[str, Any]:
        """Finish adding the app with one of its codes, and make it the user's MFA."""
        response = self._call(
            "verify_software_token",
            AccessToken=access_token,
            UserCode=code,
            FriendlyDeviceName="SESami dashboard",
        )
        if response.get("Status") != "SUCCESS":
            raise InvalidRequest("the code is not the one the app shows", details={"field": "code"})
        self._call(
            "set_user_mfa_preference",
            AccessToken=access_token,
            SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
        )
        return {"mfa": "totp", "enabled": True}

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        response = self._call(
            "initiate_auth",
            ClientId=self._client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )
        return self._outcome(response)

    def sign_out(self, access_token: str) -> dict[str, Any]:
        """Revoke every refresh token of the user (Cognito's global sign-out)."""
        self._call("global_sign_out", AccessToken=access_token)
        return {"signed_out": True}

    def forgot_password(self, email: str) -> dict[str, Any]:
        response = self._call("forgot_password", ClientId=self._client_id, Username=email)
        delivery = response.get("CodeDeliveryDetails") or {}
        return {"email": email, "code_sent_to": delivery.get("Destination")}

    def reset_password(self, email: str, code: str, password: str) -> dict[str, Any]:
        self._call(
            "confirm_forgot_password",
            ClientId=self._client_id,
            Username=email,
            ConfirmationCode=code,
            Password=password,
        )
        return {"email": email, "reset": True}

    @staticmethod
    def _outcome(response: dict[str, Any]) -> dict[str, Any]:
        challenge = response.get("ChallengeName")
        if challenge in ANSWERED_CHALLENGES:
            return {"challenge": challenge, "session": response.get("Session")}
        if challenge:
            raise Forbidden(
                f"the user pool asks for {challenge}, which the dashboard does not support",
                details={"challenge": challenge},
            )
        result = response["AuthenticationResult"]
        tokens = Tokens(
            id_token=result["IdToken"],
            access_token=result["AccessToken"],
            refresh_token=result.get("RefreshToken"),
            expires_in=int(result.get("ExpiresIn", 3600)),
        )
        return tokens.as_dict()

    def _challenge(self, **kwargs: Any) -> dict[str, Any]:
        """RespondToAuthChallenge. A session the pool does not know is the caller's: Cognito
        answers NotAuthorizedException ("Invalid session"), moto ResourceNotFoundException; both
        are a 401 (the pool itself was found: the sign-in that issued the session used it)."""
        try:
            return self._call("respond_to_auth_challenge", ClientId=self._client_id, **kwargs)
        except ServiceUnavailable as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            if details.get("cognito_error") != "ResourceNotFoundException":
                raise
            raise Unauthorized(
                "the sign-in session is not valid or has expired: sign in again",
                details={"field": "session"},
            ) from None

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except aws.errors() as exc:
            failed = aws.failure(exc)
            assert failed is not None
            if failed.code == "ParamValidationError":  # botocore checks lengths: bad input
                name = re.search(r"parameter (\w+)", failed.message)
                field = _FIELDS.get(name.group(1)) if name else None
                raise InvalidRequest(
                    f"the user pool refused the request: {failed.message}",
                    details={"field": field} if field else None,
                ) from None
            if not failed.status:  # no answer at all
                raise ServiceUnavailable(
                    f"the user pool cannot be reached: {failed.message}"
                ) from None
            raise translate(failed.code, failed.message) from None
        return response


# Cognito's parameter names → the request's field names, to name the field in a 400.
_FIELDS = {
    "Username": "email",
    "Password": "password",
    "ConfirmationCode": "code",
    "Session": "session",
    "AccessToken": "access_token",
    "UserCode": "code",
    "ChallengeResponses": "code",
}

# Cognito error code → (SESami error, message). Messages name the problem and what to do.
_ERRORS: dict[str, tuple[type[RequestError], str]] = {
    "NotAuthorizedException": (Unauthorized, "wrong email or password"),
    "UserNotFoundException": (Unauthorized, "wrong email or password"),
    "UserNotConfirmedException": (
        Forbidden,
        "this account is not confirmed yet: enter the code sent to your email",
    ),
    "PasswordResetRequiredException": (
        Forbidden,
        "a password reset is required: use 'forgot password' to choose a new one",
    ),
    "UsernameExistsException": (Conflict, "an account with this email already exists"),
    "AliasExistsException": (Conflict, "an account with this email already exists"),
    "InvalidPasswordException": (InvalidRequest, "the password does not meet the policy"),
    "CodeMismatchException": (InvalidRequest, "the code is not the one we sent"),
    "ExpiredCodeException": (InvalidRequest, "the code has expired: ask for a new one"),
    "InvalidParameterException": (InvalidRequest, "the user pool refused the request"),
    "TooManyRequestsException": (TooManyRequests, "too many requests: wait a moment"),
    "TooManyFailedAttemptsException": (TooManyRequests, "too many failed attempts: wait a while"),
    "LimitExceededException": (TooManyRequests, "too many attempts: wait a while"),
    "CodeDeliveryFailureException": (ServiceUnavailable, "the code could not be emailed"),
    "EnableSoftwareTokenMFAException": (InvalidRequest, "the code is not the one the app shows"),
    "SoftwareTokenMFANotFoundException": (
        InvalidRequest,
        "no authenticator app is being set up: start again",
    ),
}


def translate(code: str, detail: str) -> RequestError:
    """A Cognito error code (and its message) as SESami's error."""
    cls, message = _ERRORS.get(code, (ServiceUnavailable, "the user pool failed the request"))
    # The pool's own wording helps with policy and parameter errors; never with credentials.
    if cls is InvalidRequest and detail:
        message = f"{message}: {detail}"
    return cls(message, details={"cognito_error": code} if code else None)
