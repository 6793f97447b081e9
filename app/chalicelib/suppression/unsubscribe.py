"""Unsubscribe links (public: the signed token is the credential).

`POST /unsubscribe/{token}` is RFC 8058 one-click: mail providers POST `List-Unsubscribe=One-Click`
form-encoded (some send multipart or nothing); the body is not needed, so any is accepted.
`GET /unsubscribe/{token}` only shows a page whose button POSTs: mail scanners follow links, and a
GET that unsubscribed would unsubscribe people who never clicked.

The token is `signer().sign("unsubscribe", {"t": tenant, "r": key})`, made by the bulk sender with
the recipient's canonical key (core/addresses.py); the page shows it with its domain in Unicode.
The service is imported inside the handlers: importing `app.py` must not load PynamoDB.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.core import addresses, wiring
from chalicelib.core.api import Api, RequestContext
from chalicelib.core.errors import InvalidRequest

# What mail providers and browsers POST here. Api.route has no content_types parameter, so this
# module's blueprint supplies it (Chalice answers other types with a 415 before the view runs).
BODY_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
    "application/json",
]


class _AnyBodyBlueprint(Blueprint):
    def route(self, path: str, **kwargs: Any) -> Callable[..., Any]:
        kwargs.setdefault("content_types", list(BODY_TYPES))
        return super().route(path, **kwargs)


# Anonymous: counted per source address (quotas: unsubscribe_per_ip_per_minute).
api = Api(__name__, wiring.authenticate, per_ip="unsubscribe")
api.blueprint = _AnyBodyBlueprint(__name__)

HTML_HEADERS: dict[str, str | list[str]] = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    # The token is in the URL: it must not leak to other sites, indexes or frames.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def page(title: str, body: str, status: int = 200) -> Response:
    return Response(
        body=_PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers=dict(HTML_HEADERS),
    )


@api.route(
    "/unsubscribe/{token}",
    methods=["GET"],
    summary="Confirmation page for an unsubscribe link; its button POSTs (a GET changes nothing)",
    public=True,
    content_type="text/html",
    errors=(400,),
)
def unsubscribe_page(ctx: RequestContext, token: str) -> Response:
    try:
        _, address = wiring.suppression_service().unsubscribe_target(token)
    except InvalidRequest:
        return page(
            "This link does not work",
            "<p>This unsubscribe link is not valid. Use the link from the most recent message "
            "you received, or reply to it and ask to be removed.</p>",
            status=400,
        )
    shown = html.escape(addresses.for_display(address))
    return page(
        "Unsubscribe",
        f"<p>Stop sending mail to <strong>{shown}</strong>?</p>"
        # An empty action posts back to this very URL, wherever the API is mounted.
        '<form method="post" action="">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


@api.route(
    "/unsubscribe/{token}",
    methods=["POST"],
    summary="One-click unsubscribe (RFC 8058; body List-Unsubscribe=One-Click, form-encoded)",
    public=True,
    content_type="text/html",
    errors=(400,),
)
def unsubscribe(ctx: RequestContext, token: str) -> Response:
    service = wiring.suppression_service()
    address = service.unsubscribe(token)
    tenant_id, _ = service.unsubscribe_target(token)
    wiring.suppression_changed(tenant_id, "suppression.added", address, "UNSUBSCRIBED", "recipient")
    return page(
        "You are unsubscribed",
        f"<p><strong>{html.escape(addresses.for_display(address))}</strong> will not receive "
        "these messages again.</p>",
    )
