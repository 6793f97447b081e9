"""SESami's REST API in API Gateway, built from the Chalice app's own routes.

The OpenAPI body is Chalice's (`SwaggerGenerator`, as `chalice deploy` makes it: Lambda proxy
integration of every route with the API function), plus the app's Lambda authorizer on every
route that is not in `chalicelib.core.api.PUBLIC_ROUTES`. No route list is kept here: a route
added to the app is private at the gateway unless the app declares it public. The app verifies
every credential itself as well (invariant 5); the gateway is the outer line.

The authorizer is the one the app declares with `@app.authorizer` (app.py; its logic is
chalicelib.tenants.authorizer): a TOKEN authorizer on the Authorization header that accepts a
Cognito ID or access token or an SESami API key (`sk_...`), checked by the same code as the
app's. API Gateway caches its answer per header value for the app's `ttl_seconds` (60 at most,
checked here); a revoked key is refused by the app on its next request whatever the cache says.
A missing header is a 401 without invoking it; its own failure (JWKS or DynamoDB down) a 503.

The gateway's own refusals (401, 403, unknown route, throttling) answer in the app's error shape.

Throttling (invariant 11, the outer line; the app's quotas, chalicelib/quotas, are per tenant):
the stage has a rate and a burst for all its methods (`throttleRate`, `throttleBurst`), and the
expensive methods have lower ones of their own (`METHOD_THROTTLES`). Gateway throttling counts
every caller together, so it caps what SESami spends, not what one tenant may take; that is
the per-tenant quotas' job. A method's throttle cannot depend on the query string: GET /events
is throttled as a whole (its CSV export, `format=csv`, is the reason).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import re
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from chalice.app import BuiltinAuthConfig, Chalice
from chalice.deploy.swagger import SwaggerGenerator
from target import Target

APP_DIR = Path(__file__).resolve().parent.parent / "app"

AUTHORIZER = "sesami"
STAGE = "api"
MAX_AUTHORIZER_TTL_SECONDS = 60


@dataclass(frozen=True)
class Throttle:
    rate: float  # requests per second, steady
    burst: int  # requests at once (the token bucket's size)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"a throttle needs a positive rate and burst, got {self}")


# API Gateway's default account limit in a region is 10,000 requests/s with a 5,000 burst, shared
# by every API in it: the stage takes a share, and what is dear takes less.
STAGE_THROTTLE = Throttle(rate=500.0, burst=1_000)
METHOD_THROTTLES: dict[tuple[str, str], Throttle] = {
    # 1,000 recipients a request, stored then sent by the bulk worker
    ("POST", "/mail/bulk"): Throttle(rate=5.0, burst=10),
    # pages merge several partitions; ?format=csv reads up to 5 MB of the range
    ("GET", "/events"): Throttle(rate=50.0, burst=100),
    # a checklist calls STS, SES and EventBridge in the customer's account
    ("GET", "/verify-sts"): Throttle(rate=5.0, burst=10),
    # the checklist after sending the test email from the customer's account
    ("POST", "/verify-sts/canary"): Throttle(rate=1.0, burst=5),
    # reads SES's whole suppression list and writes SESami's
    ("POST", "/suppression-list/sync"): Throttle(rate=2.0, burst=5),
    # each sign-up makes the user pool send an email
    ("POST", "/auth/sign-up"): Throttle(rate=5.0, burst=20),
}


def method_path(method: str, path: str) -> str:
    """Pure: API Gateway's `{resource_path}/{http_method}`, without the leading slash."""
    return f"{path.lstrip('/')}/{method.upper()}"


# Gateway responses (API Gateway's own refusals) in the app's error shape.
GATEWAY_ERRORS = {
    "UNAUTHORIZED": (401, "unauthorized"),
    "ACCESS_DENIED": (403, "forbidden"),
    # API Gateway answers a path it does not know with 403 "Missing Authentication Token".
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found"),
    "THROTTLED": (429, "too_many_requests"),
    # The authorizer could not decide (the pool's JWKS or DynamoDB unreachable): retryable.
    "AUTHORIZER_FAILURE": (503, "service_unavailable"),
    "DEFAULT_4XX": (None, "invalid_request"),
    "DEFAULT_5XX": (None, "internal_error"),
}


def load_app() -> tuple[Chalice, frozenset[tuple[str, str]]]:
    """The Chalice app and its public routes, as Lambda imports them (importing `app` is light:
    it declares routes and touches no AWS)."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    module = importlib.import_module("app")
    if Path(module.__file__ or "").resolve() != APP_DIR / "app.py":
        raise ImportError(f"`app` resolved to {module.__file__}, not {APP_DIR / 'app.py'}")
    api = importlib.import_module("chalicelib.core.api")
    return module.app, frozenset(api.PUBLIC_ROUTES)


def gateway_responses() -> dict[str, Any]:
    """Pure: `x-amazon-apigateway-gateway-responses` in `{"error": {code, message, details}}`."""
    out: dict[str, Any] = {}
    for kind, (status, code) in GATEWAY_ERRORS.items():
        template = (
            f'{{"error": {{"code": "{code}", "message": $context.error.messageString, '
            '"details": null}}'
        )
        response: dict[str, Any] = {
            "responseTemplates": {"application/json": template},
            "responseParameters": {
                "gatewayresponse.header.Content-Type": "'application/json'",
            },
        }
        if status is not None:
            response["statusCode"] = str(status)
        if kind == "UNAUTHORIZED":
            response["responseParameters"]["gatewayresponse.header.WWW-Authenticate"] = (
                "'Bearer realm=\"sesami\"'"
            )
        out[kind] = response
    return out


def lambda_uri(function_arn: str, region: str) -> str:
    """Pure: the `invocations` URI API Gateway calls a Lambda function by."""
    partition = function_arn.split(":")[1]
    return (
        f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}"
        "/invocations"
    )


def app_authorizer(app: Chalice) -> BuiltinAuthConfig:
    """The one authorizer the app declares (`@app.authorizer`), with a short result TTL."""
    declared = list(app.builtin_auth_handlers)
    if len(declared) != 1:
        raise ValueError(f"the app must declare exactly one @app.authorizer, not {len(declared)}")
    (config,) = declared
    ttl = config.ttl_seconds
    if ttl is None or not 0 <= ttl <= MAX_AUTHORIZER_TTL_SECONDS:
        # Unset, API Gateway would cache for 300 s.
        raise ValueError(
            f"the authorizer's ttl_seconds must be 0-{MAX_AUTHORIZER_TTL_SECONDS}, not {ttl}"
        )
    return config


def authorizer_definition(config: BuiltinAuthConfig, function_uri: str) -> dict[str, Any]:
    """Pure: the security definition of a Lambda TOKEN authorizer (Chalice's own shape)."""
    return {
        "in": "header",
        "type": "apiKey",
        "name": config.header,
        "x-amazon-apigateway-authtype": "custom",
        "x-amazon-apigateway-authorizer": {
            "type": "token",
            "authorizerUri": function_uri,
            "authorizerResultTtlInSeconds": config.ttl_seconds,
            "identitySource": f"method.request.header.{config.header}",
        },
    }


def openapi_body(
    app: Chalice,
    *,
    public_routes: Collection[tuple[str, str]],
    function_arn: str,
    authorizer_arn: str,
    region: str,
) -> dict[str, Any]:
    """Pure: the REST API's OpenAPI (Swagger 2.0) body.

    Every route of `app` is a Lambda proxy integration with `function_arn`; each one not in
    `public_routes` ((METHOD, path) pairs) requires the app's authorizer, run by the function
    `authorizer_arn`."""
    declared = {(m.upper(), p) for p, views in app.routes.items() for m in views}
    unknown = set(public_routes) - declared
    if unknown:
        raise ValueError(f"public routes the app does not declare: {sorted(unknown)}")
    generator = SwaggerGenerator(
        region, {"api_handler_arn": function_arn, "api_handler_name": app.app_name}
    )
    body = copy.deepcopy(generator.generate_swagger(app))
    definition = authorizer_definition(app_authorizer(app), lambda_uri(authorizer_arn, region))
    body.setdefault("securityDefinitions", {})[AUTHORIZER] = definition
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            if method == "options":  # CORS preflight carries no credentials
                continue
            if (method.upper(), path) in public_routes:
                operation.pop("security", None)
            else:
                operation["security"] = [{AUTHORIZER: []}]
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    return body


def secured_routes(body: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Pure: each (METHOD, path) of a body with its `security` requirement ([] when public)."""
    return {
        (method.upper(), path): operation.get("security", [])
        for path, operations in body["paths"].items()
        for method, operation in operations.items()
        if method != "options"
    }


@dataclass(frozen=True)
class ApiArgs:
    name: str
    app: Chalice
    public_routes: Collection[tuple[str, str]]
    # The API function (or its SnapStart alias): spelled from its name, so that the function
    # can take the API's URL into its environment without a cycle.
    function_arn: str
    # The authorizer function, spelled from its name like the API function.
    authorizer_arn: str
    target: Target
    endpoint_type: str = "REGIONAL"
    tracing: bool = False
    throttle: Throttle = STAGE_THROTTLE
    method_throttles: Mapping[tuple[str, str], Throttle] = field(
        default_factory=lambda: dict(METHOD_THROTTLES)
    )


class SesamiApi(pulumi.ComponentResource):
    rest_api: aws.apigateway.RestApi
    deployment: aws.apigateway.Deployment
    stage: aws.apigateway.Stage
    throttles: dict[str, aws.apigateway.MethodSettings]  # by method path ("*/*": the stage's)
    base_url: pulumi.Output[str]  # from the API's ID alone: usable before the stage exists

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sesami:api:Api", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        body = pulumi.Output.from_input(
            json.dumps(
                openapi_body(
                    args.app,
                    public_routes=args.public_routes,
                    function_arn=args.function_arn,
                    authorizer_arn=args.authorizer_arn,
                    region=args.target.region,
                ),
                sort_keys=True,
            )
        )
        self.rest_api = aws.apigateway.RestApi(
            f"{name}-api",
            name=args.name,
            description="SESami's REST API and dashboard (routes from the Chalice app)",
            body=body,
            put_rest_api_mode="overwrite",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(
                types=args.endpoint_type
            ),
            opts=child,
        )
        self.deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.rest_api.id,
            # A new deployment whenever the body changes; the stage moves to it.
            triggers={"body": body.apply(lambda b: hashlib.sha256(b.encode()).hexdigest())},
            opts=child,
        )
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.rest_api.id,
            deployment=self.deployment.id,
            stage_name=STAGE,
            xray_tracing_enabled=args.tracing,
            opts=child,
        )
        declared = {(m.upper(), p) for p, views in args.app.routes.items() for m in views}
        unknown = set(args.method_throttles) - declared
        if unknown:
            raise ValueError(f"throttles for routes the app does not declare: {sorted(unknown)}")
        limits = {"*/*": args.throttle} | {
            method_path(m, p): t for (m, p), t in sorted(args.method_throttles.items())
        }
        self.throttles = {}
        for path, throttle in limits.items():
            slug = "all" if path == "*/*" else re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
            self.throttles[path] = aws.apigateway.MethodSettings(
                f"{name}-throttle-{slug}",
                rest_api=self.rest_api.id,
                stage_name=self.stage.stage_name,
                method_path=path,
                settings=aws.apigateway.MethodSettingsSettingsArgs(
                    throttling_rate_limit=throttle.rate,
                    throttling_burst_limit=throttle.burst,
                ),
                opts=child,
            )
        self.base_url = self.rest_api.id.apply(lambda api_id: args.target.api_url(api_id, STAGE))
        self.register_outputs(
            {"url": self.stage.invoke_url, "execution_arn": self.rest_api.execution_arn}
        )
