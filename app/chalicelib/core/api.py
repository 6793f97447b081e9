"""How every route is declared: authentication, JSON in and out, and the one place where domain
errors become HTTP responses.

    @api.route("/account", methods=["PUT"], permission=Permission.ADMIN)   # verified caller
    def put_account(ctx: RequestContext) -> dict: ...

    @api.route("/openapi.json", methods=["GET"], public=True)

Every error body has one shape: `{"error": {"code", "message", "details"}}`. A route that is not
`public=True` verifies the caller's credential itself (invariant 5) and checks the permission
the route declares (invariant 9; core/permissions.py) before its body runs: a denied call is a
403 naming the permission. Every authenticated request is counted against its tenant's quotas
(and its API key's), and a public route of an `Api(per_ip=...)` against its source address's
(invariant 11; chalicelib/quotas): over a limit is a 429 naming it, with `Retry-After`. A route
that sends (`charges_sends=True`) has its request counted with its recipients, in one count,
by the service just before it sends (`ctx.quota.sends(n)`). Each route
also declares its documentation (summary, parameters, body and response schemas); `openapi.py`
builds `GET /openapi.json` from these declarations, so the document cannot miss a route.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalice.app import Blueprint, Request, Response

from chalicelib.core import dynamo
from chalicelib.core.errors import (
    Forbidden,
    InvalidRequest,
    RequestError,
    ServiceUnavailable,
    Unauthorized,
)
from chalicelib.core.permissions import Permission

log = logging.getLogger("sesami.api")


class InternalError(RequestError):
    status, code = 500, "internal_error"


JSON: dict[str, str | list[str]] = {"Content-Type": "application/json"}
# Public routes, by (method, path): every other route must authenticate. Tests and the
# infrastructure read this to put every other route behind the Cognito authorizer.
PUBLIC_ROUTES: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Param:
    """A query or path parameter, for the OpenAPI document. `schema` is JSON Schema."""

    name: str
    schema: dict[str, Any]
    where: str = "query"  # query | path | header
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class RouteDoc:
    method: str
    path: str
    summary: str
    public: bool
    status: int
    params: tuple[Param, ...]
    body: dict[str, Any] | None
    response: dict[str, Any] | None
    errors: tuple[int, ...]
    content_type: str
    # Other media types the success response may have (e.g. text/csv), with their schemas.
    other_content: dict[str, dict[str, Any]] = field(default_factory=dict)
    permission: Permission | None = None


# Every declared route's documentation, in declaration order.
ROUTE_DOCS: list[RouteDoc] = []


def as_request_error(exc: Exception) -> RequestError | None:
    """The one map from what a route raised to what its caller is told: a RequestError as it is
    (its class carries the status); a DynamoDB failure (throttling, timeouts) a 503 the caller
    may retry, on every route alike; anything else None (a bug: a 500)."""
    if isinstance(exc, RequestError):
        return exc
    if dynamo.is_storage_failure(exc):
        log.warning("storage failure: %s: %s", type(exc).__name__, exc)
        return ServiceUnavailable(
            "SESami's storage is busy or unavailable; nothing was lost, retry shortly",
            details={"retryable": True},
        )
    return None


def error_response(exc: RequestError) -> Response:
    body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
    headers = dict(JSON)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="sesami"'
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return Response(body=json.dumps(body), status_code=exc.status, headers=headers)


class Principal(Protocol):
    """Who is calling (chalicelib.tenants.membership.Membership): a person or an API key."""

    @property
    def role(self) -> str: ...

    def refusal(self, permission: Permission) -> tuple[str, dict[str, Any]] | None:
        """None when the principal has `permission`; else why not: (message, details)."""
        ...


def require(principal: Principal, permission: Permission) -> None:
    """The one permission check: a 403 naming what is missing."""
    refused = principal.refusal(permission)
    if refused is not None:
        message, details = refused
        raise Forbidden(message, details={"permission": permission.value, **details})


class Charge(Protocol):
    """One request's quota charge (chalicelib.quotas.limiter.Admission)."""

    def sends(self, count: int) -> None: ...

    def settle(self) -> None: ...


class Gate(Protocol):
    """The quotas (chalicelib.quotas.limiter.Quotas)."""

    def admit(self, principal: Any, *, sends_later: bool = False) -> Charge: ...

    def admit_anonymous(self, group: str, source_ip: str | None) -> None: ...


def _wired_gate() -> Gate:
    from chalicelib.core import wiring

    return wiring.quotas()


def _settle(charge: Charge) -> None:
    """Count the request of a route that did not send; the answer stands whatever happens."""
    try:
        charge.settle()
    except Exception:
        log.exception("could not settle a request's quota charge")


def source_ip(request: Request) -> str | None:
    """The caller's address as API Gateway saw it (never a header the caller can set)."""
    identity = (request.context or {}).get("identity") or {}
    value = identity.get("sourceIp")
    return value if isinstance(value, str) else None


@dataclass
class RequestContext:
    request: Request
    membership: Any  # chalicelib.tenants.membership.Membership; None on public routes
    quota: Charge | None = None  # the request's quota charge; None on public routes

    @property
    def tenant(self) -> Any:
        return self.membership.tenant

    def json_body(self) -> dict[str, Any]:
        raw = self.request.raw_body
        if not raw:
            raise InvalidRequest("the request needs a JSON object body")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object")
        try:  # JSON may escape a lone UTF-16 surrogate (\ud800), which no UTF-8 text can hold
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(
                "the body contains an unpaired surrogate escape (\\ud800-\\udfff): not text"
            ) from None
        return body

    def query(self, name: str) -> str | None:
        params = self.request.query_params
        value = params.get(name) if params else None
        return value if value is None else str(value)


def parse_limit(raw: str | None, *, default: int, maximum: int) -> int:
    """A page's `limit` query parameter: a whole number from 1 to `maximum`; `default` when it is
    absent or empty; anything else a 400 naming the field."""
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {maximum}", details={"field": "limit"}
        )
    return int(raw)


Authenticate = Callable[[Request], Any]


class Api:
    """A Blueprint whose routes authenticate unless declared public, and count against quotas:
    private routes per tenant (and API key), public ones per source address when `per_ip`
    names their group (chalicelib.quotas.limits.ANONYMOUS_GROUPS)."""

    def __init__(
        self,
        import_name: str,
        authenticate: Authenticate,
        *,
        per_ip: str | None = None,
        gate: Callable[[], Gate] = _wired_gate,
    ) -> None:
        self.blueprint = Blueprint(import_name)
        self._authenticate = authenticate
        self._per_ip, self._gate = per_ip, gate

    def route(
        self,
        path: str,
        *,
        methods: list[str],
        summary: str,
        public: bool = False,
        status: int = 200,
        params: tuple[Param, ...] = (),
        body: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        errors: tuple[int, ...] = (400,),
        content_type: str = "application/json",
        other_content: dict[str, dict[str, Any]] | None = None,
        permission: Permission | None = None,
        charges_sends: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if public == (permission is not None):
            raise TypeError(
                f"{methods} {path}: a route is either public or declares its permission"
            )
        if not public:
            errors = tuple(sorted({*errors, 403, 429}))
        elif self._per_ip:
            errors = tuple(sorted({*errors, 429}))
        per_ip = self._per_ip if public else None

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def view(**params: Any) -> Response:
                request = self.blueprint.current_request
                charge: Charge | None = None
                try:
                    membership = None
                    if per_ip:
                        self._gate().admit_anonymous(per_ip, source_ip(request))
                    if not public:
                        membership = self._authenticate(request)
                        charge = self._gate().admit(membership, sends_later=charges_sends)
                    if permission is not None and membership is not None:
                        require(membership, permission)
                    result = fn(RequestContext(request, membership, charge), **params)
                except Exception as exc:
                    known = as_request_error(exc)
                    if known is not None:
                        return error_response(known)
                    # A bug, not the caller's fault: logged with its traceback, answered in the
                    # one error shape without internals.
                    log.exception("unhandled error in %s %s", request.method, path)
                    return error_response(InternalError("internal error; it has been logged"))
                finally:
                    if charge is not None:
                        _settle(charge)
                if isinstance(result, Response):
                    return result
                return Response(
                    body=json.dumps(result, default=str), status_code=status, headers=dict(JSON)
                )

            if public:
                PUBLIC_ROUTES.update((m, path) for m in methods)
            path_params = tuple(
                Param(name[1:-1], {"type": "string"}, where="path", required=True)
                for name in path.split("/")
                if name.startswith("{")
            )
            for method in methods:
                ROUTE_DOCS.append(
                    RouteDoc(
                        method,
                        path,
                        summary,
                        public,
                        status,
                        path_params + params,
                        body,
                        response,
                        errors,
                        content_type,
                        dict(other_content or {}),
                        permission,
                    )
                )
            # A route without a body ignores the Content-Type a client sends (Chalice would
            # answer an unknown one with an undocumented 415; the fuzzing found it on a GET).
            kinds = {} if body is not None else {"content_types": ["*/*"]}
            self.blueprint.route(path, methods=methods, **kinds)(view)
            return fn

        return decorator
