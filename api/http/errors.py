"""From domain errors to HTTP answers: ONE table (:data:`ERROR_STATUS`), one JSON shape for every error.

Every error answer is ``{"detail": "<what is wrong and what to do>", "error": "<class>", "problems": [...]}``
(``problems`` lists each bad field/row when there are several). The routers raise domain errors
(``layers.errors.*``, ``geo.errors.GeoInputError``) and never build error responses themselves.
"""
from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zeren.api.service.budget import DeadlineExceeded, ServerBusy, Unavailable, WorkBudgetExceeded
from zeren.geo.errors import GeoInputError
from zeren.layers.errors import (ConflictError, ForbiddenError, InputFileError, NotFoundError, StoreError,
                                 ValidationError, ZerenError)

log = logging.getLogger("zeren.api")


class PayloadTooLarge(ZerenError):
    """A request body over the configured cap."""


class TooManyFeatures(ZerenError):
    """A batch with more features than the configured cap."""


class TextInputError(ValidationError):
    """Text that cannot be stored or sent back: a NUL character or a lone UTF-16 surrogate (422, naming the field)."""


class BadRequest(ZerenError, ValueError):
    """A request that cannot be read at all (not JSON, not UTF-8...)."""


def _driver_errors() -> tuple:
    """The database drivers' "cannot reach / busy" errors: the store is unavailable (503), not a bug (500)."""
    import sqlite3

    found: list = [sqlite3.OperationalError]
    try:
        import psycopg

        found.append(psycopg.OperationalError)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(found)


# The one table. Order matters: the first class the error is an instance of wins.
ERROR_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (PayloadTooLarge, 413),
    (TooManyFeatures, 413),
    (WorkBudgetExceeded, 413),
    (DeadlineExceeded, 503),
    (ServerBusy, 503),
    (Unavailable, 503),
    (BadRequest, 400),
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (ConflictError, 409),
    (ValidationError, 422),
    (InputFileError, 422),
    (GeoInputError, 422),
    (StoreError, 503),
    *((cls, 503) for cls in _driver_errors()),
    (ZerenError, 400),
)


def status_for(exc: BaseException) -> int:
    for cls, status in ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(detail: str, error: str, problems=()) -> dict:
    return {"detail": detail, "error": error, "problems": [str(p) for p in problems]}


def _headline(exc: BaseException) -> str:
    text = str(exc)
    problems = getattr(exc, "problems", None)
    if problems:
        text = text.split("\n  - ", 1)[0]
    return text


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status == 503:
        log.warning("store unavailable: %s", exc)
        if not isinstance(exc, ZerenError):  # a driver's message may name hosts or files: keep it in the log
            return JSONResponse(error_body("the store is unavailable (busy or unreachable); try again shortly",
                                           "StoreError"), status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(error_body(_headline(exc), type(exc).__name__, getattr(exc, "problems", None) or ()),
                        status_code=status, headers={"Retry-After": "5"} if status == 503 else None)


def _shown(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            ctx = (err.get("ctx") or {}).get("error")
            problems.append(f"body: not valid JSON ({ctx or msg})")
            continue
        shown = f" (got {_shown(err['input'])})" if "input" in err and err.get("type") != "missing" else ""
        problems.append(f"{loc}: {msg}{shown}")
    detail = "the request is not valid: " + "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
    # OGC API - Features asks for 400 on invalid parameters; everywhere else it is 422
    status = 400 if request.url.path.startswith("/ogc") else 422
    return JSONResponse(error_body(detail, "RequestValidationError", problems), status_code=status)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    names = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge",
             422: "ValidationError", 429: "TooManyRequests"}
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # RFC 9110: a 405 lists what the resource does support
        allowed = allowed_methods(request) or [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not supported here; use {', '.join(allowed)}" if allowed else detail
    return JSONResponse(error_body(detail, names.get(exc.status_code, "HTTPError")), status_code=exc.status_code,
                        headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI documents on this path (Starlette's own ``Allow`` names only the first route that
    matched, and GET and POST on one path are two routes here); Starlette's answer for undocumented paths."""
    import re

    app = request.app
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = []
        for template, ops in app.openapi().get("paths", {}).items():
            parts = re.split(r"(\{[^{}/]+\})", template)
            regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
            methods = {m.upper() for m in ops if m in {"get", "put", "post", "delete", "patch"}}
            table.append((re.compile(regex), methods))
        app.state.allowed_methods = table
    path = request.url.path
    for regex, methods in table:
        if regex.fullmatch(path):
            return sorted(methods)
    return []


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal error; the server log has the details", "InternalError"),
                        status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    for cls in {cls for cls, _ in ERROR_STATUS} | {ZerenError, GeoInputError}:
        app.add_exception_handler(cls, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
