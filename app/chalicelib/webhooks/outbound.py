"""The one way SESami connects to an address a tenant gave it (invariant 13): webhook URLs.

    check_url(url, policy)          the URL's shape: https only (http only with the local stack's
                                    loopback setting), no credentials, an unambiguous host
    resolve(target, policy, ...)    the host resolved ONCE; every address it resolves to checked
    post(url, body, headers, ...)   check, resolve, connect to an address that was checked (never
                                    resolving again: DNS rebinding), TLS verified against the
                                    host name, no redirects followed, a hard 10 s deadline for
                                    the whole exchange, at most `max_body` bytes of the answer read

Refused addresses: loopback, private (RFC 1918, IPv6 unique-local), link-local (and so the
169.254.169.254 metadata address; fd00:ec2::254, AWS's IPv6 one, is unique-local), carrier-grade
NAT (100.64.0.0/10), multicast, unspecified, reserved, anything else not globally routable, and
IPv4 addresses hidden inside IPv6 ones (mapped ::ffff:a.b.c.d, 6to4, NAT64, Teredo). A host
written as a number in another form than dotted decimal (`0x7f000001`, `2130706433`,
`0177.0.0.1`) is refused outright: resolvers read those as addresses, people do not.

`Policy(allow_loopback=True)` — the local stack's `SESAMI_INSECURE_WEBHOOKS_TO_LOOPBACK`, off by
default, refused in the `prod` stage and logged when on — lets loopback addresses and plain
http through, for the demo receiver, and then ONLY loopback: a developer's stack (or a test
fuzzing it) never sends a webhook off the machine.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chalicelib.core.errors import InvalidRequest

TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 4096
MAX_URL = 2048
MAX_ADDRESSES_TRIED = 3
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?")


class UrlRefused(InvalidRequest):
    code = "webhook_url_refused"


@dataclass(frozen=True)
class Policy:
    allow_loopback: bool = False


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lowercase, ASCII (IDNA); an IP literal without brackets
    port: int
    path: str  # path and query, what the request line carries


@dataclass(frozen=True)
class Exchange:
    """What one attempt got: the status (None when nothing answered), how long it took, the first
    bytes of the answer, what went wrong, and the address connected to."""

    status: int | None
    ms: float
    body: str
    error: str | None = None
    address: str | None = None


def _refuse(url: str, why: str) -> UrlRefused:
    return UrlRefused(f"webhook URL refused: {why}", details={"field": "url", "url": url[:200]})


def check_url(url: str, policy: Policy) -> Target:
    if not isinstance(url, str) or not url.strip():
        raise _refuse(str(url), "give an https:// URL")
    url = url.strip()
    if len(url) > MAX_URL:
        raise _refuse(url, f"longer than {MAX_URL} characters")
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise _refuse(url, "spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse(url, f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_loopback else ("https",)
    if scheme not in allowed:
        raise _refuse(url, "only https:// URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise _refuse(url, "credentials in the URL; put a token in the path or query instead")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse(url, "no host")
    literal = _literal(host)
    if literal is None:
        labels = host.split(".")
        if all(_NUMERIC_LABEL.fullmatch(label) for label in labels if label):
            raise _refuse(url, f"{host!r} is an IPv4 address in a non-standard form")
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise _refuse(url, f"{host!r} is not a valid host name") from None
        if not _HOST.fullmatch(host):
            raise _refuse(url, f"{host!r} is not a valid host name")
    else:
        reason = refusal(literal, policy)
        if reason:
            raise _refuse(url, f"{literal} is {reason}")
        host = str(literal)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def refusal(ip: IPAddress, policy: Policy) -> str | None:
    """Why SESami must not connect to `ip` (None: a public address it may connect to)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal(embedded, policy)
            return f"{inner} (inside {ip})" if inner else "an IPv4 address inside IPv6"
    if ip in _METADATA:
        return "the cloud metadata address"
    if ip.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    if policy.allow_loopback:
        return "not a loopback address (the local stack delivers to loopback only)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve(target: Target, policy: Policy, resolver: Resolver) -> list[IPAddress]:
    """Every address the host resolves to, each checked; one refused address refuses them all
    (a name that can point inside is not a name to connect to)."""
    literal = _literal(target.host)
    if literal is not None:
        reason = refusal(literal, policy)
        if reason:
            raise _refuse(target.host, f"{literal} is {reason}")
        return [literal]
    try:
        found = resolver(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise _refuse(target.host, f"{target.host} does not resolve ({exc})") from None
    addresses: list[IPAddress] = []
    for raw in found:
        ip = _literal(raw)
        if ip is None:
            raise _refuse(target.host, f"{target.host} resolved to {raw!r}, not an address")
        reason = refusal(ip, policy)
        if reason:
            raise _refuse(target.host, f"{target.host} resolves to {ip}, {reason}")
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise _refuse(target.host, f"{target.host} resolves to no address")
    return addresses


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to `address`, an address already checked, with the URL's host name for the Host
    header, SNI and certificate verification."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address, self._tls = address, tls
        self.connected = False

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host) if self._tls else sock
        self.connected = True

    def abort(self) -> None:
        """The deadline passed: unblock whatever the attempt is waiting on."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


_TLS: list[ssl.SSLContext] = []


def default_tls() -> ssl.SSLContext:
    if not _TLS:
        _TLS.append(ssl.create_default_context())
    return _TLS[0]


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    policy: Policy,
    resolver: Resolver = system_resolver,
    timeout: float = TIMEOUT_SECONDS,
    max_body: int = MAX_BODY_BYTES,
    tls: ssl.SSLContext | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Exchange:
    began = clock()
    deadline = began + timeout

    def ms() -> float:
        return round((clock() - began) * 1000, 1)

    try:
        target = check_url(url, policy)
        addresses = resolve(target, policy, resolver)
    except UrlRefused as exc:
        return Exchange(None, ms(), "", exc.message)
    error = "timed out"
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        context = (tls or default_tls()) if target.scheme == "https" else None
        conn = _PinnedConnection(target.host, target.port, str(address), remaining, context)
        watchdog = threading.Timer(remaining, conn.abort)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.request("POST", target.path, body=body, headers=dict(headers))
            answer = conn.getresponse()
            data = answer.read(max_body)
            text = data.decode("utf-8", "replace")
            return Exchange(answer.status, ms(), text, None, str(address))
        except Exception as exc:  # whatever the far end did, it is one failed attempt
            error = _describe(exc, clock() >= deadline)
            if conn.connected:
                break  # the request may have been seen: never send it to a second address
        finally:
            watchdog.cancel()
            conn.close()
    return Exchange(None, ms(), "", error)


def _describe(exc: Any, late: bool) -> str:
    if late or isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {TIMEOUT_SECONDS:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not valid for the host: {exc.verify_message}"
    return f"{type(exc).__name__}: {exc}"[:300]
