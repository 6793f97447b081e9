"""The web dashboard, served by the API function itself so that it works the same on the local
stack and behind API Gateway (every URL it uses is relative to the page). It is a static page and
a few static files; everything it shows comes from the API with the user's token.

Chart.js comes from npm: `make install` copies node_modules/chart.js/dist/chart.umd.js next to the
dashboard's own files (the copy is not in the repository), and `chalice package` ships it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from chalice.app import Response

from chalicelib.core import wiring
from chalicelib.core.api import Api, RequestContext
from chalicelib.core.errors import NotFound

api = Api(__name__, wiring.authenticate)

FILES = Path(__file__).resolve().parent / "dashboard"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9]+)+$")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
# The page runs only its own scripts and talks only to this API: no inline script, no third party.
# Frames only from this API: a stored message's HTML and template previews (GET /frames/{token},
# sandboxed, with a CSP of their own: content/display.py).
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; frame-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@cache
def _files() -> dict[str, Path]:
    """The files the dashboard may serve, listed once per instance: a name that is not here is a
    404 without touching the disk, and nothing a caller sends grows this."""
    found: dict[str, Path] = {}
    for folder in (FILES / "vendor", FILES):  # the dashboard's own names win
        if folder.is_dir():
            found.update(
                (path.name, path)
                for path in folder.iterdir()
                if path.is_file() and _NAME.match(path.name) and path.suffix in _TYPES
            )
    return found


@cache
def _read(name: str) -> str:
    return _files()[name].read_text(encoding="utf-8")


def _file(name: str, cache_control: str) -> Response:
    if name not in _files():
        hint = " (run `make install` to copy Chart.js from npm)" if name == "chart.umd.js" else ""
        raise NotFound(f"no dashboard file {name!r}{hint}", details={"name": name})
    headers: dict[str, str | list[str]] = {
        "Content-Type": _TYPES[Path(name).suffix],
        "Cache-Control": cache_control,
        **SECURITY_HEADERS,
    }
    return Response(body=_read(name), status_code=200, headers=headers)


@api.route(
    "/",
    methods=["GET"],
    summary="The web dashboard (a page that uses this API)",
    public=True,
    response={"type": "string"},
    errors=(),
    content_type="text/html",
)
def index(ctx: RequestContext) -> Response:
    # Behind API Gateway the page lives at /<stage>/: without the slash its relative URLs would
    # miss the stage, so the bare stage URL redirects.
    path = str((ctx.request.context or {}).get("path") or "/")
    if not path.endswith("/"):
        return Response(body="", status_code=308, headers={"Location": f"{path}/"})
    return _file("index.html", "no-cache")


@api.route(
    "/static/{name}",
    methods=["GET"],
    summary="The dashboard's scripts, styles and Chart.js",
    public=True,
    response={"type": "string"},
    errors=(404,),
    content_type="text/*",
)
def static(ctx: RequestContext, name: str) -> Response:
    return _file(name, "public, max-age=300")
