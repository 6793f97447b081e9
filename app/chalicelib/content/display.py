"""Showing mail HTML in the dashboard without letting it run or phone home (public module: the
templates package shows its previews the same way).

An email's HTML is shown in an `<iframe sandbox>` (no `allow-scripts`, no `allow-same-origin`:
an opaque origin that can run nothing and reach neither the dashboard nor its token), loaded from
`GET /frames/{token}`, a public route whose credential is a short-lived signed token naming the
tenant and what to show (the dashboard's own token never goes into a URL). That answer carries
its own Content-Security-Policy:

    default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:; font-src data:;
    sandbox; frame-ancestors 'self'; base-uri 'none'; form-action 'none'

so no script runs even if the frame is opened on its own (`sandbox` in the CSP itself), and
nothing outside the document is fetched (tracking pixels, remote images, fonts and style sheets).
With `remote` (the viewer clicked "load remote content", which asks for a new token) images,
fonts and style sheets may come from the web (`https:` and `http:`: mail still links images over
http); scripts never. The HTML is also sanitised by
`nh3` (the Ammonia sanitiser): scripts, event handlers, forms, `javascript:` URLs and embedded
objects are dropped; inline `style` attributes are kept, since the CSP blocks what they could
load.
"""

from __future__ import annotations

import time
from typing import Any

FRAME_PURPOSE = "frame"
FRAME_TTL_SECONDS = 600
# Attributes mail HTML relies on for layout, on every element (nh3's defaults keep the rest).
_LAYOUT_ATTRIBUTES = {
    "style",
    "class",
    "align",
    "valign",
    "bgcolor",
    "width",
    "height",
    "border",
    "cellpadding",
    "cellspacing",
    "color",
    "dir",
    "lang",
    "title",
    "role",
}


def csp(remote: bool) -> str:
    outside = " https: http:" if remote else ""
    return (
        f"default-src 'none'; style-src 'unsafe-inline'{outside}; img-src data: cid:{outside}; "
        f"font-src data:{outside}; sandbox; frame-ancestors 'self'; base-uri 'none'; "
        "form-action 'none'"
    )


def sanitize(html_text: str) -> str:
    """Mail HTML made safe to display (see the module docstring)."""
    import nh3

    attributes = {tag: set(allowed) for tag, allowed in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = attributes.get("*", set()) | _LAYOUT_ATTRIBUTES
    return str(
        nh3.clean(
            html_text,
            attributes=attributes,
            link_rel="noopener noreferrer nofollow",
            strip_comments=True,
        )
    )


def frame_headers(remote: bool) -> dict[str, str | list[str]]:
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": csp(remote),
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Robots-Tag": "noindex, nofollow",
    }


def frame_document(html_text: str) -> str:
    """The sanitised HTML as a whole document (UTF-8; relative links resolve nowhere)."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"</head><body>{sanitize(html_text)}</body></html>"
    )


def frame_token(
    signer: Any,
    tenant_id: str,
    kind: str,
    ref: dict[str, Any],
    *,
    remote: bool,
    now: float | None = None,
) -> str:
    """A token for GET /frames/{token}: what to show (`kind` "content" or "template" with its
    reference), for whom, with or without remote loads, until when."""
    expires = int((time.time() if now is None else now) + FRAME_TTL_SECONDS)
    return str(
        signer.sign(
            FRAME_PURPOSE, {"t": tenant_id, "k": kind, "r": ref, "x": expires, "o": int(remote)}
        )
    )


def read_frame_token(signer: Any, token: str, now: float | None = None) -> dict[str, Any]:
    """{"tenant_id", "kind", "ref", "remote"} of a valid, unexpired token; else a 400."""
    from chalicelib.core.errors import InvalidRequest

    data = signer.verify(FRAME_PURPOSE, token)
    expires = data.get("x")
    current = time.time() if now is None else now
    if not isinstance(expires, int) or expires < current or not isinstance(data.get("t"), str):
        raise InvalidRequest("token has expired: reload the page", details={"field": "token"})
    return {
        "tenant_id": data["t"],
        "kind": data.get("k"),
        "ref": data.get("r") or {},
        "remote": bool(data.get("o")),
    }
