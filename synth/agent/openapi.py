"""The API's OpenAPI document made to match what the server sends, and the error answers
made to match the document.

- Every error is `{"detail": "<why, in words>"}` (schema `Error`): request validation
  included, which FastAPI would send as a list of objects.
- Each operation documents every status it can answer (`STATUSES`), and has a unique
  operationId (`<method>_<path>`: one function serving GET and POST got one id twice).
- Strings in request bodies exclude NUL, which the strict body reader refuses.
- A 405 lists in `Allow` every method the path serves (Starlette names only the first
  route's).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "why, in words"}},
}
NO_NUL = "^[^\\u0000]*$"

DESCRIPTIONS = {
    "400": "The body is not UTF-8 JSON, or nests deeper than 64 levels",
    "401": "No or bad credentials (writes always; reads with server.read_auth)",
    "404": "No such check, environment, run, artifact, deploy, silence or configured hook",
    "412": "The checks failed (the gate answer is the body)",
    "413": "The body is over server.max_body_bytes",
    "422": "A field is invalid, or holds NaN, Infinity, NUL or a lone surrogate",
    "503": "The store is unavailable or the agent is stopping",
}
_WRITE = ("400", "401", "413", "422", "503")
_READ = ("401", "422", "503")
_HOOK = ("400", "401", "404", "413", "422", "503")
# What each operation can answer beyond its success; by "METHOD path".
STATUSES: dict[str, tuple[str, ...]] = {
    "GET /healthz": (),
    "GET /readyz": (),  # its 503 is documented below with the readiness body
    "GET /metrics": ("401",),
    "GET /v1/checks": ("401",),
    "GET /v1/runs": _READ,
    "GET /v1/report": (*_READ, "400"),
    "GET /v1/runs/{run_id}": (*_READ, "404"),
    "GET /v1/runs/{run_id}/artifacts/{name}": (*_READ, "404"),
    "POST /v1/runs": (*_WRITE, "404"),
    "POST /v1/deploys": (*_WRITE, "404"),
    "GET /v1/deploys/{deploy_id}": (*_READ, "404"),
    "GET /v1/baselines": _READ,
    "POST /v1/baselines": _WRITE,
    "GET /v1/cluster": _READ,
    "POST /v1/reload": _WRITE,
    "GET /v1/silences": _READ,
    "POST /v1/silences": _WRITE,
    "DELETE /v1/silences/{silence_id}": (
        "400",
        "401",
        "404",
        "413",
        "503",
    ),  # 422: the new config was rejected
    "POST /v1/hooks/github": _HOOK,
    "POST /v1/hooks/argocd": _HOOK,
    "POST /v1/hooks/flagger": (*_HOOK, "412"),
    "GET /v1/hooks/argo-rollouts": _HOOK,
    "POST /v1/hooks/argo-rollouts": _HOOK,
}


def install(app: FastAPI) -> None:
    """Serve the corrected document and answer errors in its shapes."""
    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def describe_validation(errors: Any) -> str:
    """`field: problem; …` for pydantic/FastAPI validation errors."""
    problems = []
    for error in errors:
        path = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "(body)"
        problems.append(f"{path}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": describe_validation(exc.errors())}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    allowed: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            allowed |= set(getattr(route, "methods", None) or ())
    allow = ", ".join(sorted(allowed))
    return JSONResponse(
        {"detail": f"method {request.method} not allowed; this path serves {allow}"},
        status_code=405,
        headers={"Allow": allow},
    )


def _document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    for schema in schemas.values():
        _exclude_nul(schema)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            key = f"{method.upper()} {path}"
            operation["operationId"] = f"{method}_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
            responses = operation.setdefault("responses", {})
            for status in STATUSES.get(key, _WRITE if method == "post" else _READ):
                responses[status] = {
                    "description": DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
            if key == "GET /readyz":
                ready = responses["200"]
                responses["503"] = {"description": "Not ready", "content": ready.get("content", {})}
    app.openapi_schema = document
    return document


def _exclude_nul(schema: Any) -> None:
    """Add the NUL exclusion to every string in a body schema (keys of maps included)."""
    if isinstance(schema, list):
        for item in schema:
            _exclude_nul(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "enum", "format", "const"} & set(schema):
        schema["pattern"] = NO_NUL
    if schema.get("type") == "object" and "additionalProperties" in schema:
        schema.setdefault("propertyNames", {"pattern": NO_NUL})
    for value in schema.values():
        if isinstance(value, dict | list):
            _exclude_nul(value)
