"""moto in server mode for tests and the dev stack: STS, SES/SESv2, Cognito, EventBridge, IAM.

`MotoServer` wraps moto's `ThreadedMotoServer`: a WSGI server on a daemon thread of *this*
process, bound to 127.0.0.1 on a port the OS picks (port 0, so two sessions never race for one).
Point boto3 at `.endpoint` (or use `.client(name)`); any credentials are accepted.

moto keeps its state in process-wide backends: a `mock_aws()` started in the same process resets
what this server holds too (and `POST {endpoint}/moto-api/reset` wipes every backend of the
process). Keep server-mode and decorator-mode tests apart, and give each test its own resources.

Known gaps (see ARCHITECTURE.md): STS ignores ExternalId and trust policies, Cognito ignores
WriteAttributes, EventBridge cannot invoke Lambda targets. Cognito serves each pool's JWKS at
`{endpoint}/{pool_id}/.well-known/jwks.json`, signed with one fixed key (`kid` "dummy").
One gap is filled here: Cognito's ResendConfirmationCode (moto has none, see
`_fill_cognito_gaps`).

Run alone (`python -m devstack.moto_server [port]`) it prints its endpoint and serves until ^C.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from typing import Any

DEFAULT_REGION = "us-east-1"


class MotoServer:
    """A moto server on a loopback port: `start()` returns the endpoint URL, `stop()` ends it."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", quiet: bool = True) -> None:
        self.host = host
        self.quiet = quiet
        self._requested_port = port
        self._server: Any = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MotoServer is not running: call start() first")
        return self._port

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        if self._server is not None:
            return self.endpoint
        # Imported here: moto is a dev dependency and heavy; importing this module costs nothing.
        from moto.server import ThreadedMotoServer

        if self.quiet:
            # werkzeug logs one line per request to stderr; tests and `make dev` don't want them.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _fill_cognito_gaps()
        server = ThreadedMotoServer(ip_address=self.host, port=self._requested_port, verbose=False)
        server.start()  # returns once the socket is bound and listening
        self._port = server.get_host_and_port()[1]
        self._server = server
        return self.endpoint

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        self._port = None

    def client(self, service_name: str, region: str = DEFAULT_REGION) -> Any:
        """A boto3 client for `service_name` talking to this server, with throwaway credentials."""
        import boto3

        return boto3.client(
            service_name,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto accepts any)
        )

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _fill_cognito_gaps() -> None:
    """moto 5.2 has no Cognito ResendConfirmationCode: it answered HTTP 500, which botocore
    retries with backoff, so the dashboard's "send a new code" waited seconds for a 503 (found
    by the schemathesis run). Answered here as Cognito does: the code's delivery details for an
    unconfirmed user, UserNotFoundException for an unknown one, InvalidParameterException for a
    confirmed one. moto accepts any confirmation code, so no code is kept."""
    from moto.cognitoidp import exceptions, models, responses
    from moto.cognitoidp.utils import flatten_attrs
    from moto.core.responses import ActionResult

    cls: Any = responses.CognitoIdpResponse
    if hasattr(cls, "resend_confirmation_code"):
        return  # filled already, or moto implements it now

    def resend_confirmation_code(self: Any) -> Any:
        client_id = self._get_param("ClientId")
        username = self._get_param("Username")
        account, region = models.find_account_region_by_value(
            "client_id", client_id, fallback=(self.current_account, self.region)
        )
        for pool in models.cognitoidp_backends[account][region].user_pools.values():
            if client_id not in pool.clients:
                continue
            user = pool._get_user(username)
            if user is None:
                raise exceptions.UserNotFoundError("Username/client id combination not found.")
            if user.status == models.UserStatus.CONFIRMED:
                raise exceptions.InvalidParameterException("User is already confirmed.")
            email = str(flatten_attrs(user.attributes).get("email") or username)
            details = {"DeliveryMedium": "EMAIL", "AttributeName": "email"}
            details["Destination"] = f"{email[:1]}***@{email.rpartition('@')[2]}"
            return ActionResult({"CodeDeliveryDetails": details})
        raise exceptions.ResourceNotFoundError(client_id)

    cls.resend_confirmation_code = resend_confirmation_code


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    with MotoServer(int(args[0]) if args else 0) as server:
        print(server.endpoint, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
