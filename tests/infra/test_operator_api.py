"""The operator stack's REST API: built from the Chalice app's routes, every private route behind
the app's Lambda authorizer (JWT or API key, a short result TTL), the public ones exactly
`chalicelib.core.api.PUBLIC_ROUTES`, Lambda proxy integration with the API function. Runs the
program under Pulumi's mocks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from chalice.app import AuthResponse, Chalice

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    STACK,
    Deployment,
    app_and_public_routes,
    import_infra,
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import (  # noqa: E402
    API_DEPLOYMENT,
    API_STAGE,
    METHOD_SETTINGS,
    PERMISSION,
    REST_API,
    REST_API_ID,
    plain,
)

gateway = import_infra("gateway")
AUTHORIZER: dict[str, list[str]] = {"sesami": []}
PROBE_FUNCTION = "arn:aws:lambda:eu-west-1:444455556666:function:f"
PROBE_AUTHORIZER = "arn:aws:lambda:eu-west-1:444455556666:function:auth"
# Spelled out here, not imported: what may ever be reached without a token. The dashboard's
# pages and sign-in routes, the OpenAPI document and RFC 8058 unsubscribing.
PUBLIC_PREFIXES = ("/auth/", "/static/", "/unsubscribe/", "/frames/")
PUBLIC_EXACT = {"/", "/openapi.json"}
# A few routes that must never be public, whatever the app declares.
PRIVATE = {("GET", "/events"), ("POST", "/mail"), ("PUT", "/account"), ("GET", "/account")}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    package = write_package(tmp_path_factory.mktemp("package"), package_template())
    return run_program(stack_config(package))


def _operations(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in body["paths"].items()
        for method, operation in operations.items()
        if method != "options"
    }


def test_every_route_of_the_app_is_in_the_api_and_nothing_else(deployed: Deployment) -> None:
    app, _ = app_and_public_routes()
    declared = {(m, p) for p, views in app.routes.items() for m in views}
    assert declared, "the app declares no route"
    assert set(_operations(deployed.api_body())) == declared


def test_private_routes_need_the_authorizer_and_public_ones_are_exactly_public_routes(
    deployed: Deployment,
) -> None:
    _, public = app_and_public_routes()
    operations = _operations(deployed.api_body())
    open_routes = {route for route, op in operations.items() if not op.get("security")}
    assert open_routes == set(public)
    for route, operation in operations.items():
        if route not in public:
            assert operation["security"] == [AUTHORIZER], route


def test_public_routes_are_only_the_dashboard_openapi_unsubscribe_and_frames() -> None:
    _, public = app_and_public_routes()
    assert ("GET", "/openapi.json") in public
    assert ("POST", "/unsubscribe/{token}") in public
    for _, path in public:
        assert path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES), path
    assert not PRIVATE & set(public)


def test_the_authorizer_is_the_apps_lambda_on_the_authorization_header_with_a_short_ttl(
    deployed: Deployment,
) -> None:
    app, _ = app_and_public_routes()
    (declared,) = app.builtin_auth_handlers
    definition = deployed.api_body()["securityDefinitions"]["sesami"]
    assert definition["x-amazon-apigateway-authtype"] == "custom"
    assert (definition["type"], definition["name"], definition["in"]) == (
        "apiKey",
        "Authorization",
        "header",
    )
    authorizer = definition["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "token"
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    function = deployed.function("authorizer")
    assert function["handler"] == declared.handler_string == "app.authorizer"
    assert authorizer["authorizerUri"] == (
        f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{function['arn']}"
        "/invocations"
    )
    # A revoked key is refused by the app at once; the gateway may cache its answer this long.
    assert authorizer["authorizerResultTtlInSeconds"] == declared.ttl_seconds
    assert 0 < declared.ttl_seconds <= 60
    # The only one: no Cognito user pool authorizer is left beside it.
    assert set(deployed.api_body()["securityDefinitions"]) == {"sesami"}


def test_api_gateway_may_invoke_the_authorizer_for_this_apis_authorizers_only(
    deployed: Deployment,
) -> None:
    permission = deployed.state(PERMISSION, "authorizer-invoke")
    assert permission["function"] == deployed.function("authorizer")["name"]
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["sourceArn"] == f"{deployed.state(REST_API)['executionArn']}/authorizers/*"


def _probe_app(ttl: int | None = 30) -> Chalice:

    app = Chalice(app_name="probe")

    @app.authorizer(ttl_seconds=ttl)
    def auth(request: Any) -> AuthResponse:
        return AuthResponse(routes=["*"], principal_id="p")

    return app


def test_an_app_without_one_authorizer_with_a_short_ttl_is_refused() -> None:
    from chalice.app import Chalice

    for app, problem in (
        (Chalice(app_name="probe"), "exactly one"),
        (_probe_app(ttl=None), "ttl_seconds"),
        (_probe_app(ttl=300), "ttl_seconds"),
    ):
        with pytest.raises(ValueError, match=problem):
            gateway.openapi_body(
                app,
                public_routes=set(),
                function_arn=PROBE_FUNCTION,
                authorizer_arn=PROBE_AUTHORIZER,
                region="eu-west-1",
            )


def test_a_route_added_to_the_app_is_private_unless_declared_public() -> None:
    app = _probe_app()

    @app.route("/new", methods=["GET"])
    def new() -> dict[str, str]:
        return {}

    @app.route("/open", methods=["GET"])
    def open_route() -> dict[str, str]:
        return {}

    body = gateway.openapi_body(
        app,
        public_routes={("GET", "/open")},
        function_arn=PROBE_FUNCTION,
        authorizer_arn=PROBE_AUTHORIZER,
        region="eu-west-1",
    )
    assert gateway.secured_routes(body) == {("GET", "/new"): [AUTHORIZER], ("GET", "/open"): []}


def test_a_public_route_the_app_does_not_declare_is_refused() -> None:
    with pytest.raises(ValueError, match="/gone"):
        gateway.openapi_body(
            _probe_app(),
            public_routes={("GET", "/gone")},
            function_arn=PROBE_FUNCTION,
            authorizer_arn=PROBE_AUTHORIZER,
            region="eu-west-1",
        )


def test_every_route_is_a_lambda_proxy_integration_with_the_api_function(
    deployed: Deployment,
) -> None:
    function_arn = deployed.function("api")["arn"]
    for route, operation in _operations(deployed.api_body()).items():
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy", route
        assert integration["httpMethod"] == "POST", route
        assert integration["uri"] == (
            f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{function_arn}"
            "/invocations"
        ), route


def test_gateway_refusals_answer_in_the_apps_error_shape(deployed: Deployment) -> None:
    responses = deployed.api_body()["x-amazon-apigateway-gateway-responses"]
    assert responses["UNAUTHORIZED"]["statusCode"] == "401"
    assert responses["AUTHORIZER_FAILURE"]["statusCode"] == "503"  # retryable
    for kind, response in responses.items():
        template = response["responseTemplates"]["application/json"]
        rendered = template.replace("$context.error.messageString", '"m"')
        assert set(json.loads(rendered)["error"]) == {"code", "message", "details"}, kind


def test_api_gateway_may_invoke_the_api_function_only_from_the_api_stage(
    deployed: Deployment,
) -> None:
    permission = deployed.state(PERMISSION, "api-invoke")
    rest_api = deployed.state(REST_API)
    assert permission["function"] == deployed.function("api")["name"]
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["sourceArn"] == f"{rest_api['executionArn']}/api/*"
    assert "qualifier" not in permission


def test_stage_api_serves_a_deployment_redone_whenever_the_body_changes(
    deployed: Deployment,
) -> None:
    rest_api = deployed.state(REST_API)
    deployment = deployed.state(API_DEPLOYMENT)
    stage = deployed.state(API_STAGE)
    assert rest_api["name"] == f"sesami-{STACK}"
    assert rest_api["endpointConfiguration"] == {"types": "REGIONAL"}
    assert deployment["restApi"] == stage["restApi"] == REST_API_ID
    assert stage["stageName"] == "api"
    assert stage["deployment"] == "dpl0y1"
    body = plain(rest_api["body"])
    assert deployment["triggers"] == {"body": hashlib.sha256(body.encode()).hexdigest()}


def test_outputs_name_the_api_the_dashboard_and_the_operator_account(
    deployed: Deployment,
) -> None:
    url = f"https://{REST_API_ID}.execute-api.eu-west-1.amazonaws.com/api"
    assert deployed.outputs["api_url"] == url
    assert deployed.outputs["dashboard_url"] == url + "/"
    assert deployed.outputs["operator_account_id"] == "444455556666"
    # The functions' public URL (unsubscribe links) is the same address.
    assert deployed.environment("api")["SESAMI_PUBLIC_URL"] == url


# --- Throttling -----------------------------------------------------------------------------------


def _throttles(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Method path -> its throttling settings, of the API's one stage."""
    out = {}
    for resource in deployment.mocks.of_type(METHOD_SETTINGS):
        state = resource.state
        assert state["restApi"] == REST_API_ID and state["stageName"] == "api"
        out[state["methodPath"]] = state["settings"]
    return out


def test_the_stage_is_throttled_as_a_whole(deployed: Deployment) -> None:
    stage = _throttles(deployed)["*/*"]
    assert stage["throttlingRateLimit"] == gateway.STAGE_THROTTLE.rate == 500.0
    assert stage["throttlingBurstLimit"] == gateway.STAGE_THROTTLE.burst == 1_000


def test_the_expensive_methods_have_lower_throttles_of_their_own(deployed: Deployment) -> None:
    throttles = _throttles(deployed)
    expensive = {
        "mail/bulk/POST",
        "events/GET",
        "verify-sts/GET",
        "verify-sts/canary/POST",
        "suppression-list/sync/POST",
    }
    assert expensive <= set(throttles)
    stage = throttles["*/*"]
    for path in expensive:
        assert 0 < throttles[path]["throttlingRateLimit"] < stage["throttlingRateLimit"], path
        assert 0 < throttles[path]["throttlingBurstLimit"] < stage["throttlingBurstLimit"], path
    app, _ = app_and_public_routes()
    paths = {gateway.method_path(m, p) for p, views in app.routes.items() for m in views}
    assert set(throttles) - {"*/*"} <= paths  # each names a method the API has


def test_stage_throttling_follows_the_stack_config(tmp_path: Path) -> None:
    package = write_package(tmp_path, package_template())
    custom = run_program(stack_config(package, throttleRate="120.5", throttleBurst="240"))
    stage = _throttles(custom)["*/*"]
    assert (stage["throttlingRateLimit"], stage["throttlingBurstLimit"]) == (120.5, 240)


def test_a_throttle_for_a_route_the_app_does_not_have_is_refused() -> None:
    assert gateway.method_path("GET", "/mail/bulk/{batch_id}") == "mail/bulk/{batch_id}/GET"
    with pytest.raises(ValueError, match="positive"):
        gateway.Throttle(rate=0, burst=1)
