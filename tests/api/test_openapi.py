"""The OpenAPI document describes every route the app serves, and is a valid OpenAPI 3 document."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client
from openapi_spec_validator import validate


@pytest.fixture(scope="module", autouse=True)
def routes_declared() -> None:
    """The document and the public routes are filled in as the app's route modules are
    imported: every test here sees them all, whatever ran before it in the process."""
    import app  # noqa: F401


def test_every_route_is_in_the_document_and_nothing_else() -> None:
    from chalicelib.core import openapi

    import app

    served = {(m, p) for p, methods in app.app.routes.items() for m in methods}
    doc = openapi.document()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented


def test_document_is_valid_openapi_3() -> None:
    from chalicelib.core import openapi

    import app  # noqa: F401  (declares every route)

    validate(openapi.document("http://127.0.0.1:8000"))


def test_public_routes_are_exactly_the_intended_few() -> None:
    from chalicelib.core.api import PUBLIC_ROUTES

    intended = {
        ("GET", "/openapi.json"),
        ("GET", "/unsubscribe/{token}"),
        ("POST", "/unsubscribe/{token}"),
        # a stored message's HTML or a template preview in a sandboxed frame (signed token)
        ("GET", "/frames/{token}"),
        # the dashboard's page and files, and sign-up/sign-in in front of the user pool
        ("GET", "/"),
        ("GET", "/static/{name}"),
        *(
            ("POST", f"/auth/{action}")
            for action in (
                "sign-up",
                "confirm",
                "resend-code",
                "sign-in",
                "new-password",
                "mfa-code",  # the authenticator app's code at sign-in
                "mfa/setup",  # these two act on the access token they are given
                "mfa/verify",
                "refresh",
                "sign-out",
                "forgot-password",
                "reset-password",
            )
        ),
    }
    assert intended == PUBLIC_ROUTES


def test_openapi_json_is_served_without_a_token(app_settings: Any) -> None:
    import app

    with Client(app.app) as client:
        response = client.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json_body["openapi"].startswith("3.")
    assert "/account" in response.json_body["paths"]


def test_errors_of_a_page_are_documented_as_the_page_or_the_json_error_shape() -> None:
    """GET /unsubscribe/{token} answers a bad token with an HTML page (found by schemathesis:
    the document promised JSON)."""
    from chalicelib.core import openapi

    import app  # noqa: F401  (declares every route)

    doc = openapi.document()
    page_error = doc["paths"]["/unsubscribe/{token}"]["get"]["responses"]["400"]["content"]
    assert set(page_error) == {"text/html", "application/json"}
    api_error = doc["paths"]["/events"]["get"]["responses"]["400"]["content"]
    assert set(api_error) == {"application/json"}


def test_every_private_operation_documents_the_permission_it_needs() -> None:
    """Invariant 9: the permission is declared once, beside the route, and shows in the document
    with the roles and key scopes that have it; public operations need none."""
    from chalicelib.core import openapi
    from chalicelib.core.permissions import Permission

    import app  # noqa: F401  (declares every route)

    doc = openapi.document()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            public = op.get("security") == []
            if public:
                assert "x-sesami-permission" not in op, (method, path)
                continue
            assert Permission(op["x-sesami-permission"]), (method, path)
            assert "403" in op["responses"], (method, path)
            assert op["x-sesami-permission"] in op["description"], (method, path)
    removal = doc["paths"]["/suppression-list/{email}"]["delete"]
    assert removal["x-sesami-permission"] == "admin"
