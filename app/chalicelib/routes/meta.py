"""Public, unauthenticated routes about the API itself."""

from __future__ import annotations

from typing import Any

from chalicelib import openapi, runtime
from chalicelib.api import Api, RequestContext

api = Api(__name__, runtime.authenticate)


@api.route(
    "/openapi.json",
    methods=["GET"],
    summary="This API's OpenAPI 3 document",
    public=True,
    response={"type": "object"},
    errors=(),
)
def get_openapi(ctx: RequestContext) -> dict[str, Any]:
    return openapi.document(runtime.settings().public_url)
