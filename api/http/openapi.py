"""What the OpenAPI declares beyond what FastAPI generates, so that it says what the server does (issue 13, 8):

* **Security only where a token is needed.** FastAPI marks every route that *looks* at a token as needing one.
  Here a route that needs one (writes, admin reads: the ``require_writer`` / ``audit_reader`` dependencies)
  declares ``[{"bearer": []}]``; a public read that shows more to a token (``optional_principal``) declares
  ``[{}, {"bearer": []}]`` (anonymous or bearer), and public routes that never read a token declare none.
* **Every error status a route can answer, with the error body**: 401 (with ``WWW-Authenticate``) and 429
  (failed-token rate limit, with ``Retry-After``) where a token is read; 403 where a role is checked; 413 and
  400 where a body is read (body cap, unreadable body); 422 (400 under ``/ogc``) where parameters or a body
  are read (NUL characters are refused before any route); ``Retry-After`` on every 503 (declared by the
  routes that read the store or run under the request deadline).
* **Dates**: every ``format: date`` gets the pattern :data:`~zeren.api.http.deps.DATE_PATTERN` (YYYY-MM-DD in
  the years the store holds), the only form :func:`~zeren.api.http.deps.parse_as_of` takes.

Rules for new routes (so this module keeps describing them): take the caller through the ``deps`` aliases
(``Caller``, ``Writer``, ``Admin``, ``WriterActor``, ``AdminActor``, ``AuditReader``); parse dates with
``parse_as_of`` and declare them ``json_schema_extra={"format": "date"}``; declare ``pattern``/``minimum``/
``maximum``/``enum`` for every rule the route enforces; raise domain errors (``errors.ERROR_STATUS``).
"""
from __future__ import annotations

from typing import Any

from zeren.api.http.deps import DATE_PATTERN

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_TEXT = {
    400: "The request cannot be read (not JSON, not UTF-8, a bad Content-Length); under `/ogc` also an invalid "
         "parameter, as OGC API - Features asks.",
    401: "No token, or a token that is not valid (`WWW-Authenticate: Bearer`).",
    403: "The token's role may not do this.",
    404: "No such zone, planner, appointment, project or case.",
    409: "The change contradicts the store (e.g. an illegal workflow step).",
    413: "Body, batch or geometry over the server's limits; the message names the limit.",
    422: "Invalid input; `detail` and `problems` name each bad field.",
    429: "Too many invalid tokens (or writes) from this address; wait `Retry-After` seconds.",
    503: "The store is unavailable or the request took longer than the server's limit; retry after "
         "`Retry-After` seconds.",
}
HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer realm=\"zeren\"`", "required": True,
                               "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "required": True,
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    503: {"Retry-After": {"description": "Seconds to wait.", "required": True,
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}
WRITE_METHODS = {"post", "put", "patch", "delete"}
NO_NUL = r"^[^\x00]*$"  # text parameters and body fields: a NUL character is refused (422) on both stores


def _ci(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def crs_patterns() -> tuple[str, str]:
    """(names and EPSG codes: what interactive GETs take; those or a PROJ string, WKT or AUTHORITY:code: what
    the batch endpoints take), from :mod:`zeren.geo.crs`' own alias table."""
    from zeren.geo.crs import _ALIASES

    names = "|".join(_ci(a) for a in sorted(_ALIASES, key=len, reverse=True))
    short = rf"^ *({names}|({_ci('epsg')}:)?[0-9]{{1,9}})? *$"  # empty: the default, wgs84
    return short, rf"^ *({names}|({_ci('epsg')}:)?[0-9]{{1,9}}|[A-Za-z]+:[0-9]{{1,9}}|\+proj=[^\x00]+|" \
                  rf"[A-Z_]+\[[^\x00]+\])? *$"


NUMBER = r"-?[0-9]{1,3}(\.[0-9]{1,15})?"
BBOX_PATTERN = rf"^({NUMBER},{NUMBER},{NUMBER},{NUMBER}(,{NUMBER},{NUMBER})?)?$"  # empty: no box
_DAY = DATE_PATTERN[1:-1]
_INSTANT = rf"{_DAY}(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,6}})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?"
OGC_DATETIME_PATTERN = rf"^(({_INSTANT}|\.\.)?(/({_INSTANT}|\.\.)?)?)$"  # an instant or start/end (OGC API)


def route_auth(app) -> dict[tuple[str, str], tuple[str, bool]]:
    """``(METHOD, path) -> ("required" | "optional", checks_role)`` for every route that reads a token, found
    from the dependencies each route declares."""
    from fastapi import routing

    from zeren.api.http import deps

    def calls(dependant):
        yield dependant.call
        for sub in dependant.dependencies:
            yield from calls(sub)

    found = {}
    for ctx in routing.iter_route_contexts(app.routes):
        if not isinstance(getattr(ctx, "original_route", None), routing.APIRoute):
            continue
        used = set(calls(ctx.dependant))
        if deps.optional_principal not in used:
            continue
        required = bool(used & {deps.require_writer, deps.audit_reader})
        role = bool(used & {deps.require_admin, deps.audit_reader}) or any(m.lower() in WRITE_METHODS
                                                                           for m in ctx.methods)
        for method in ctx.methods:
            found[(method.lower(), ctx.path_format)] = ("required" if required else "optional", role)
    return found


def _error(status: int, existing: dict | None) -> dict:
    answer = dict(existing or {})
    answer.setdefault("description", ERROR_TEXT[status])
    content = answer.setdefault("content", {})
    if not content or all(m == "application/json" for m in content):
        content["application/json"] = {"schema": ERROR_REF}
    if status in HEADERS:
        answer["headers"] = {**HEADERS[status], **answer.get("headers", {})}
    return answer


def _texts(node: Any) -> None:
    """Every free text (a string with no pattern, enum or format) refuses NUL: say so."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(node):
            node["pattern"] = NO_NUL
        for key, value in node.items():
            if key not in {"examples", "example", "default"}:
                _texts(value)
    elif isinstance(node, list):
        for value in node:
            _texts(value)


def _request_schemas(schema: dict) -> set[str]:
    """Names of the component schemas a request body can contain (answers are left as they are)."""
    schemas = schema.get("components", {}).get("schemas", {})
    found: set[str] = set()

    def refs(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    refs(schemas.get(name))
            for value in node.values():
                refs(value)
        elif isinstance(node, list):
            for value in node:
                refs(value)

    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            if isinstance(op, dict):
                refs(op.get("requestBody"))
    return found


def _parameters(path: str, method: str, op: dict) -> None:
    short, batch = crs_patterns()
    for param in op.get("parameters", []):
        sch = param.get("schema") or {}
        target = next((s for s in sch.get("anyOf", []) if s.get("type") == "string"), sch)
        if param.get("name") == "crs" and target.get("type") == "string":
            target["pattern"] = short if method == "get" else batch
        elif param.get("name") == "bbox" and target.get("type") == "string":
            target["pattern"] = BBOX_PATTERN
        elif param.get("name") == "datetime" and path.startswith("/ogc") and target.get("type") == "string":
            target["pattern"] = OGC_DATETIME_PATTERN
    _texts(op.get("parameters", []))


def _dates(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("format") == "date" and node.get("type", "string") == "string":
            node["pattern"] = DATE_PATTERN
            node.pop("maxLength", None)
        for value in node.values():
            _dates(value)
    elif isinstance(node, list):
        for value in node:
            _dates(value)


def declare(app, schema: dict) -> dict:
    """``schema`` (FastAPI's, already polished) with security, error answers and date patterns declared."""
    auth = route_auth(app)
    for path, ops in schema.get("paths", {}).items():
        ogc = path.startswith("/ogc")
        for method, op in ops.items():
            if not isinstance(op, dict) or method not in {"get", "put", "post", "patch", "delete"}:
                continue
            responses = op.setdefault("responses", {})
            statuses: set[int] = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            how = auth.get((method, path))
            if how is None and op.get("security") == [{}, {"bearer": []}]:  # routes that read it themselves
                how = ("optional", False)
            if how is None:
                op.pop("security", None)
            else:
                required, role = how
                op["security"] = [{"bearer": []}] if required == "required" else [{}, {"bearer": []}]
                statuses |= {401, 429} | ({403} if role else set())
            if op.get("requestBody"):
                statuses |= {400, 413}
            if op.get("parameters") or op.get("requestBody"):
                statuses.add(400 if ogc else 422)
            for status in sorted(statuses):
                if status in ERROR_TEXT:
                    responses[str(status)] = _error(status, responses.get(str(status)))
            op["responses"] = dict(sorted(responses.items()))
            _parameters(path, method, op)
            _dates(op.get("parameters", []))
            _texts(op.get("requestBody"))
    components = schema.get("components", {}).get("schemas", {})
    for name in _request_schemas(schema):
        crs = (components.get(name) or {}).get("properties", {}).get("crs")
        if crs is not None and crs.get("type") == "string":  # a position in a body: as the interactive GETs
            crs["pattern"] = crs_patterns()[0]
        _dates(components.get(name))
        _texts(components.get(name))
    # a method a path does not have: 405 with `Allow` listing the documented methods (RFC 9110), on every path
    schema.setdefault("components", {}).setdefault("responses", {})["MethodNotAllowed"] = {
        "description": "The path does not take this method; `Allow` lists the ones it takes.",
        "headers": {"Allow": {"description": "The path's methods, e.g. `GET, POST`.", "required": True,
                              "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": ERROR_REF}}}
    info = schema.setdefault("info", {})
    info["description"] = info.get("description", "") + (
        "\n* Any other method on a path answers 405 with `Allow` (components/responses/MethodNotAllowed); a client "
        "that sent too many invalid tokens gets 429 with `Retry-After`.\n")
    scheme = schema.get("components", {}).get("securitySchemes", {}).get("bearer")
    if scheme is not None:
        scheme["description"] = ("A token made by `zeren token new` (`Authorization: Bearer zrn_...`). Writes and "
                                 "the audit log need one; public reads take one (optional) to show private "
                                 "fields to admins.")
    return schema
