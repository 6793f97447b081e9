"""Invariant 13: SESami never connects to an address a tenant supplies without checking every
address the host resolves to, and it connects to the address it checked. The matrix below is
refused when an endpoint is created (the API answers 400) and again at every delivery, where
the host is resolved once more, once."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chalicelib.webhooks import outbound
from chalicelib.webhooks.outbound import Policy, UrlRefused

from tests.webhooks.support import LOOPBACK, receiver

PRODUCTION = Policy()


def resolving(mapping: dict[str, list[str]]) -> outbound.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError(f"{host}: Name or service not known")
        return mapping[host]

    return resolve


NAMES = resolving(
    {
        "internal.example.com": ["10.0.0.1"],
        "split.example.com": ["93.184.215.14", "192.168.0.7"],
        "metadata.example.com": ["169.254.169.254"],
        "v6-local.example.com": ["fd00:ec2::254"],
        "hooks.example.com": ["93.184.215.14", "2606:4700:4700::1111"],
    }
)

REFUSED = [
    ("http://127.0.0.1/", "only https"),
    ("https://127.0.0.1/", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "only https"),
    ("https://169.254.169.254/latest/meta-data", "metadata"),
    ("https://internal.example.com/hook", "private"),
    ("https://split.example.com/hook", "private"),
    ("https://metadata.example.com/", "metadata"),
    ("https://v6-local.example.com/", "metadata"),
    ("https://[::1]/", "loopback"),
    ("https://0x7f000001/", "non-standard form"),
    ("https://2130706433/", "non-standard form"),
    ("https://0177.0.0.1/", "non-standard form"),
    ("https://127.1/", "non-standard form"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[::ffff:a00:1]/", "private"),
    ("https://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("https://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fc00::1]/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://172.16.0.1/", "private"),
    ("https://224.0.0.1/", "multicast"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://nowhere.example.com/", "does not resolve"),
    ("https://user:secret@hooks.example.com/", "credentials"),
    ("ftp://hooks.example.com/", "only https"),
    ("javascript:alert(1)", "only https"),
    ("https:///path-only", "no host"),
    ("https://hooks.example.com:99999/", "not a URL"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[u for u, _ in REFUSED])
def test_a_url_that_reaches_inside_is_refused_at_creation(url: str, why: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        outbound.resolve(outbound.check_url(url, PRODUCTION), PRODUCTION, NAMES)
    assert why in refused.value.message
    assert refused.value.status == 400


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[u for u, _ in REFUSED])
def test_the_same_urls_are_refused_at_delivery_without_connecting(url: str, why: str) -> None:
    exchange = outbound.post(url, b"{}", {}, policy=PRODUCTION, resolver=NAMES)
    assert exchange.status is None and exchange.address is None
    assert exchange.error is not None and why in exchange.error


def test_public_names_and_addresses_are_accepted() -> None:
    for url in (
        "https://hooks.example.com/sesami?token=abc",
        "https://93.184.215.14/hook",
        "https://[2606:4700:4700::1111]/hook",
    ):
        target = outbound.check_url(url, PRODUCTION)
        assert outbound.resolve(target, PRODUCTION, NAMES)
    assert outbound.check_url("https://Hooks.Example.com/a?b=c", PRODUCTION).path == "/a?b=c"


def test_the_loopback_setting_lets_loopback_through_and_nothing_else() -> None:
    assert outbound.check_url("http://127.0.0.1:9000/hooks", LOOPBACK).port == 9000
    for url in (
        "https://10.0.0.1/",
        "https://169.254.169.254/",
        "https://0x7f000001/",
        "https://93.184.215.14/",  # public: the local stack never sends off the machine
        "https://hooks.example.com/",
    ):
        with pytest.raises(UrlRefused):
            outbound.resolve(outbound.check_url(url, LOOPBACK), LOOPBACK, NAMES)


def test_the_setting_is_refused_in_production() -> None:
    from chalicelib.core.errors import ConfigurationError
    from chalicelib.core.settings import Settings

    with pytest.raises(ConfigurationError):
        Settings(stage="prod", webhooks_to_loopback=True)
    assert Settings.from_env({}).webhooks_to_loopback is False


def test_delivery_connects_to_the_address_it_checked_and_resolves_once() -> None:
    """DNS rebinding: the name resolves to a checked address first and to another one after;
    the request goes to the first, with the name in its Host header, and DNS is asked once."""
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.0.0.1"]

    with receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        url = f"http://rebind.test:{port}/hooks"
        exchange = outbound.post(url, b"{}", {}, policy=LOOPBACK, resolver=rebinding)
    assert exchange.status == 200 and exchange.address == "127.0.0.1"
    assert calls == ["rebind.test"]
    assert hook.requests[0].headers["Host"] == f"rebind.test:{port}"


def test_a_name_that_now_resolves_inside_is_refused_at_delivery() -> None:
    with receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        inside = resolving({"hooks.example.com": ["127.0.0.1"]})
        url = f"https://hooks.example.com:{port}/hooks"
        exchange = outbound.post(url, b"{}", {}, policy=PRODUCTION, resolver=inside)
    assert exchange.status is None and "loopback" in (exchange.error or "")
    assert hook.requests == []


def test_a_redirect_to_loopback_is_never_followed() -> None:
    with receiver() as target, receiver([(200, "inside")]) as inner:
        target.script = [(302, "")]
        target.extra_headers["Location"] = inner.url
        exchange = outbound.post(target.url, b"{}", {}, policy=LOOPBACK)
    assert exchange.status == 302
    assert len(target.requests) == 1 and inner.requests == []


def test_only_the_first_bytes_of_an_answer_are_read() -> None:
    with receiver([(500, "x" * 100_000)]) as hook:
        exchange = outbound.post(hook.url, b"{}", {}, policy=LOOPBACK)
    assert exchange.status == 500 and len(exchange.body) == outbound.MAX_BODY_BYTES


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt() -> None:
    # The receiver answers long after the timeout (wide margins: a loaded machine may take a
    # while to even accept the connection, which is why the request count is at most one).
    with receiver(delay=5.0) as hook:
        exchange = outbound.post(hook.url, b"{}", {}, policy=LOOPBACK, timeout=1.0)
    assert exchange.status is None and "no answer within" in (exchange.error or "")
    assert len(hook.requests) <= 1  # one attempt is one request: never retried inside it


# ---------------------------------------------------------------------------- TLS


def _certificate(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `name` signed by it (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject: str, issuer: Any, key: Any, sign_key: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(sign_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SESami test CA")])
    ca = build("SESami test CA", ca_name, ca_key, ca_key, True)
    cert = build(name, ca_name, key, ca_key, False)
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    ca, cert, key = _certificate(tmp_path, "hooks.test")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = ssl.create_default_context(cafile=str(ca))
    try:
        yield server.server_address[1], client
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_against_the_host_name_on_the_checked_address(
    tls_receiver: tuple[int, ssl.SSLContext],
) -> None:
    port, trust = tls_receiver
    names = resolving({"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    good = outbound.post(
        f"https://hooks.test:{port}/", b"{}", {}, policy=LOOPBACK, resolver=names, tls=trust
    )
    assert good.status == 204 and good.address == "127.0.0.1"
    wrong = outbound.post(
        f"https://other.test:{port}/", b"{}", {}, policy=LOOPBACK, resolver=names, tls=trust
    )
    assert wrong.status is None and "certificate" in (wrong.error or "").lower()
