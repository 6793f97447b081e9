"""Public, unauthenticated routes about the API itself."""

from __future__ import annotations

from typing import Any

from chalicelib.core import openapi, wiring
from chalicelib.core.api import Api, RequestContext

api = Api(__name__, wiring.authenticate)


@api.route(
    "/openapi.json",
    methods=["GET"],
    summary="This API's OpenAPI 3 document",
    public=True,
    response={"type": "object"},
    errors=(),
)
def get_openapi(ctx: RequestContext) -> dict[str, Any]:
    return openapi.document(wiring.settings().public_url)
