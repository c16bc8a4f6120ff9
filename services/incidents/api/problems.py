"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

Routes raise :class:`ApiProblem`; the handlers installed by :func:`install_problem_handlers`
also render FastAPI's request validation errors (422), unknown routes and methods (404,
405), the incidents service's typed domain errors and anything unexpected (500).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.incidents.api.pg_reads import UNAVAILABLE

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://outagedesk.dev/problems/"

# Domain error code → HTTP status (codes of services.incidents.errors and the lifecycle).
CODE_STATUS: Mapping[str, int] = {
    "not_found": 404,
    "version_mismatch": 412,
    "invalid_transition": 409,
    "conflict": 409,
    "invalid_request": 422,
}


class Problem(BaseModel):
    """A problem details object (RFC 9457) with OutageDesk's ``code`` extension."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": TYPE_BASE + "invalid_transition",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "cannot go from 'closed' to 'dispatched'; allowed: ",
                    "instance": "/api/v1/incidents/INC-1/crew",
                    "code": "invalid_transition",
                    "allowed": [],
                }
            ]
        }
    )

    type: str = Field(description="URI identifying the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str = Field(description="Machine-readable error code")
    allowed: list[str] | None = Field(
        default=None, description="On 409: the transitions the incident allows now"
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="On 422: each invalid field"
    )


class ApiProblem(Exception):
    """Raise in a route to answer a problem; ``allowed`` is rendered for 409."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        allowed: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.allowed = list(allowed) if allowed is not None else None
        self.headers = dict(headers or {})


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str | None = None,
    *,
    allowed: Sequence[str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem+json response for ``status`` and ``code``."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
    }
    if allowed is not None:
        body["allowed"] = list(allowed)
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # ctx may hold exception objects, which are not JSON; keep the documented parts only.
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": e.get("type")}
        for e in exc.errors()
    ]


def domain_error_response(request: Request, exc: Exception) -> JSONResponse:
    """A typed domain error (it has ``code``; 409 ones have ``allowed``) as a problem."""
    code = str(getattr(exc, "code", "invalid_request"))
    status = int(getattr(exc, "status", 0) or CODE_STATUS.get(code, 400))
    allowed = getattr(exc, "allowed", None)
    return problem_response(
        request,
        status,
        code,
        str(exc),
        allowed=list(allowed) if allowed is not None and status == 409 else None,
    )


def unavailable_response(request: Request, exc: BaseException) -> JSONResponse:
    """The 503 problem for a database that is busy (pool exhausted) or unreachable."""
    # back-pressure, not a server bug: a warning, and the client is told to retry
    log.warning("database unavailable", path=request.url.path, error=type(exc).__name__)
    return problem_response(
        request, 503, "database_unavailable", "the database is busy or unreachable; retry",
        headers={"Retry-After": "1"},
    )  # fmt: skip


def install_problem_handlers(app: FastAPI, domain_errors: Iterable[type[Exception]] = ()) -> None:
    """Render every error of ``app`` as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            request, exc.status, exc.code, exc.detail, allowed=exc.allowed, headers=exc.headers
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(
            request, 422, "invalid_request", "the request is invalid",
            errors=_validation_errors(exc),
        )  # fmt: skip

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(
            request, exc.status_code, code, str(exc.detail), headers=exc.headers
        )

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        return domain_error_response(request, exc)

    async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        return unavailable_response(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the traceback as plain text: rendering it with locals can take seconds per error
        trace = "".join(traceback.format_exception(exc))
        log.error("unhandled API error", path=request.url.path, error=repr(exc), trace=trace)
        return problem_response(request, 500, "internal_error", "internal server error")

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for error_type in domain_errors:
        app.add_exception_handler(error_type, on_domain)
    for db_error in (sa_exc.TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError,
                     *UNAVAILABLE):  # fmt: skip
        app.add_exception_handler(db_error, on_database_unavailable)
    app.add_exception_handler(Exception, on_unexpected)


_DESCRIPTIONS: Mapping[int, str] = {
    400: "Bad request (for example an invalid cursor)",
    401: "Missing, expired or invalid bearer token",
    403: "The token's roles do not allow this",
    404: "No such resource",
    409: "Invalid transition; `allowed` lists the ones the incident allows",
    412: "If-Match does not name the current version",
    422: "The request is invalid; `errors` lists each field",
    428: "If-Match is required",
    503: "Not available yet",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring each status as a :class:`Problem`."""
    return {s: {"model": Problem, "description": _DESCRIPTIONS.get(s, HTTPStatus(s).phrase)}
            for s in statuses}  # fmt: skip


def move_problems_to_problem_json(openapi: dict[str, Any]) -> None:
    """FastAPI documents extra responses as ``application/json``; errors are problem+json."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content")
                if not str(status).startswith(("4", "5")) or not content:
                    continue
                if "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
