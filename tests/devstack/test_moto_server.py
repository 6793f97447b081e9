"""devstack.moto_server: moto's threaded server on a loopback port the OS picks."""

from __future__ import annotations

import socket

import pytest

from devstack.moto_server import MotoServer


def _accepts_connections(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_serves_aws_apis_on_loopback_until_stopped() -> None:
    server = MotoServer()
    endpoint = server.start()
    try:
        assert endpoint == server.endpoint == f"http://127.0.0.1:{server.port}"
        assert server.port > 0 and server.running
        identity = server.client("sts").get_caller_identity()
        assert identity["Account"] == "123456789012"
    finally:
        server.stop()
    assert not server.running
    assert not _accepts_connections(int(endpoint.rsplit(":", 1)[1]))
    server.stop()  # idempotent


def test_two_servers_get_distinct_ports() -> None:
    with MotoServer() as a, MotoServer() as b:
        assert a.port != b.port
        assert _accepts_connections(a.port) and _accepts_connections(b.port)


def test_endpoint_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = MotoServer().endpoint


def test_start_twice_keeps_one_server() -> None:
    with MotoServer() as server:
        assert server.start() == server.endpoint


def test_cognito_resend_confirmation_code_answers_as_cognito_does() -> None:
    """moto has no ResendConfirmationCode (HTTP 500, retried with backoff); MotoServer adds it."""
    with MotoServer() as server:
        idp = server.client("cognito-idp")
        pool = idp.create_user_pool(PoolName="p", UsernameAttributes=["email"])["UserPool"]["Id"]
        client = idp.create_user_pool_client(UserPoolId=pool, ClientName="c")["UserPoolClient"]
        client_id = client["ClientId"]
        idp.sign_up(ClientId=client_id, Username="ada@example.com", Password="Secret-2026-x")
        sent = idp.resend_confirmation_code(ClientId=client_id, Username="ada@example.com")
        assert sent["CodeDeliveryDetails"]["Destination"] == "a***@example.com"
        with pytest.raises(idp.exceptions.UserNotFoundException):
            idp.resend_confirmation_code(ClientId=client_id, Username="bob@example.com")
        idp.admin_confirm_sign_up(UserPoolId=pool, Username="ada@example.com")
        with pytest.raises(idp.exceptions.InvalidParameterException):
            idp.resend_confirmation_code(ClientId=client_id, Username="ada@example.com")
