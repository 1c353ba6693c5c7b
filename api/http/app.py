"""The Zeren web API: ``create_app(settings)`` builds the FastAPI app.

The lifespan opens the store once and builds the :class:`~layers.catalogue.Catalogue` (the zone index,
planners, appointments) once into ``app.state.zeren``; the routers stay thin and call geo/ and layers/.
Each worker also checks the store every ``reload_seconds`` and reloads what other workers or the CLI
changed, so several workers on one store agree within seconds (and at once for the worker that wrote).

Run it with ``zeren serve`` (uvicorn, uvloop, httptools), or ``uvicorn --factory zeren.api.http.app:app_from_env``.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import threading
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from zeren.api.http import errors
from zeren.api.auth import TokenRegistry
from zeren.api.http.deps import AppState
from zeren.api.http.errors import PayloadTooLarge, error_body
from zeren.api.settings import Settings

log = logging.getLogger("zeren.api")
VERSION = "0.1.0"

DESCRIPTION = """\
**Zeren 责任** answers, for any site and any date, *who is the responsible planner here (责任规划师), and whom
must a project also consult?* It keeps the zones (districts, subdistricts, communities, villages, life
circles, historic and key areas), the planners, their appointments and projects.

* Reads are public: `/lookup`, `/assign`, `/zones`, `/planners`, `/appointments`, `/projects`, `/ogc`,
  `/coverage`, `/life-circles`, and the map pages under `/maps` (made for an `<iframe>`).
* Writes need `Authorization: Bearer <token>` (`zeren token new`); `zeren serve --demo` prints a demo admin token.
* GeoJSON follows RFC 7946: lon/lat WGS84. Give points in another CRS with `crs=` (`cgcs2000`, `gcj02` for
  AMap/Tencent, `bd09` for Baidu, `EPSG:n`).
* Errors are `{"detail", "error", "problems"}` with 400/401/403/404/409/413/422/503.

The examples work on the demo city (Chengdu): try `GET /lookup?lon=104.0530&lat=30.6695`.
"""

TAGS = [
    {"name": "lookup", "description": "Who is responsible for a point, or for many sites at once."},
    {"name": "zones", "description": "Territories: districts, subdistricts, communities, overlays."},
    {"name": "editions", "description": "Boundary editions over time: list, diff, carry-over of appointments, "
                                        "scoped imports."},
    {"name": "planners", "description": "Responsible planners (public fields; private contacts for admins)."},
    {"name": "appointments", "description": "Who holds which zone, when. Ended, never deleted."},
    {"name": "projects", "description": "Projects with their frozen assignment and workflow 调研-评估-咨询-实施-反馈."},
    {"name": "audit", "description": "The append-only audit log (admins)."},
    {"name": "coverage", "description": "Is every unit covered by a responsible planner, once? Gaps, overlaps, "
                                        "coverage per district, planner workload."},
    {"name": "life circles", "description": "15-minute community life circles (15分钟社区生活圈): make them, check "
                                            "their daily services and who covers them."},
    {"name": "maps", "description": "Map pages (HTML, Leaflet, no CDN) to show in an `<iframe>`; index at `/maps`."},
    {"name": "feedback", "description": "Resident feedback (居民留言) routed to the site's planner: post (public), "
                                        "follow by reference, rate; planners list and answer their cases."},
    {"name": "reports", "description": "The annual evaluation (年度考核): a planner's year and the city's year, "
                                       "printable HTML or JSON."},
    {"name": "ogc", "description": "OGC API - Features (Part 1 Core, GeoJSON): for QGIS, GDAL and other GIS."},
    {"name": "tiles", "description": "Vector tiles (MVT) of the zones, with lead planners, for web maps and QGIS."},
    {"name": "service", "description": "Health and links."},
]


# -- middleware (pure ASGI: nothing on the hot path that BaseHTTPMiddleware would add) ---------------
class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: by Content-Length before reading, and by counting streamed bytes."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def _reject(self, send, text: str, status: int = 413) -> None:
        body = _json_bytes(error_body(text, "PayloadTooLarge" if status == 413 else "BadRequest"))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await self._reject(send, "Content-Length is not a number", 400)
                if declared > limit:
                    return await self._reject(send, f"the body ({declared:,} bytes) is over the {limit:,}-byte cap; "
                                                    f"split it into smaller requests")
        state = {"received": 0, "exceeded": False, "started": False, "replaced": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["exceeded"] = True
                    raise PayloadTooLarge(f"the body is over the {limit:,}-byte cap; split it into smaller requests")
            return message

        async def guarded_send(message):
            if state["replaced"]:
                return
            if message["type"] == "http.response.start":
                if state["exceeded"] and message.get("status") != 413:
                    state["replaced"] = True
                    state["started"] = True
                    return await self._reject(send, f"the body is over the {limit:,}-byte cap; split it into "
                                                    f"smaller requests")
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except PayloadTooLarge as exc:
            if state["started"]:
                raise
            await self._reject(send, str(exc))


class TextInputMiddleware:
    """422 (400 under ``/ogc``, as OGC API asks) for a NUL character in the path or a query parameter, naming
    the parameter: the GeoPackage store would keep it and PostgreSQL cannot (it was a 500 there). Bodies are
    checked where they are read (``routers._geojson.parse_json``). Costs one byte search per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            problem = None
            if "\x00" in scope.get("path", ""):
                problem = "path: contains a NUL character (%00)"
            elif b"%00" in query or b"\x00" in query:
                from urllib.parse import parse_qsl

                for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                    if "\x00" in name or "\x00" in value:
                        problem = f"query.{name.replace(chr(0), '%00')[:60]}: contains a NUL character (%00)"
                        break
            if problem is not None:
                status = 400 if scope.get("path", "").startswith("/ogc") else 422
                body = _json_bytes(error_body(f"the request is not valid: {problem}; send text without it",
                                              "RequestValidationError", [problem]))
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """``Content-Security-Policy: frame-ancestors ...`` (who may embed our pages) and ``nosniff`` everywhere."""

    def __init__(self, app, csp: str):
        self.app = app
        self.headers = [(b"content-security-policy", csp.encode("latin-1")),
                        (b"x-content-type-options", b"nosniff")]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if extra:
                    message = dict(message, headers=list(message.get("headers", ())) + extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _json_bytes(value) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False).encode("utf-8")


# -- lifespan ---------------------------------------------------------------------------------------
def _open(settings: Settings, tokens: TokenRegistry) -> AppState:
    from zeren.api.service.workspace import Workspace

    workspace = Workspace.open(settings.store)
    workspace.catalogue.warm()  # today's answers ready before the first request
    return AppState(settings=settings, workspace=workspace, tokens=tokens)


def _freeze_heap() -> None:
    """Move what is alive now (the catalogue: hundreds of thousands of objects) out of the garbage collector's
    sight. Otherwise every full collection, which a batch's many new objects trigger, walks all of them with
    the interpreter held: 130 ms during which no lookup is answered."""
    gc.collect()
    gc.freeze()


def _warm_tiles(state: AppState) -> None:
    """The tile layers of the kinds too large for inline map pages (their pages draw tiles), so the first tile
    request does not pay for them: at start-up before the server answers (a quarter of a second at 600,000
    zones), after a reload in a daemon thread (the old state serves meanwhile)."""
    import time

    from zeren.api.service.tiles import warm_tiled_kinds

    try:
        t = time.perf_counter()
        kinds = warm_tiled_kinds(state.workspace.catalogue, state.settings.map_max_inline_features)
        if kinds:
            log.info("tile layers ready in %.2f s: %s", time.perf_counter() - t, ", ".join(kinds))
    except Exception as exc:  # a tile request will build (and report) it instead
        log.warning("could not prepare the tile layers: %s", exc)


def _start_warming_tiles(state: AppState) -> None:
    threading.Thread(target=_warm_tiles, args=(state,), name="zeren-warm-tiles", daemon=True).start()


async def _watch(state: AppState, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            what = await anyio.to_thread.run_sync(state.refresh)
            if what:
                log.info("reloaded %s after a change in the store", what)
                _freeze_heap()
                _start_warming_tiles(state)
        except Exception as exc:  # keep serving what we have; say why we could not refresh
            log.warning("could not check the store for changes: %s", exc)


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    state = await anyio.to_thread.run_sync(_open, settings, app.state.tokens)
    state.batch_limiter = anyio.CapacityLimiter(settings.batch_workers)
    if not settings.batch_in_process:  # worker processes for batches, started on first use
        from zeren.api.service.batch_pool import BatchPool

        state.batch_pool = BatchPool(settings.store, settings.batch_workers, settings.batch_queue)
    app.state.zeren = state
    await anyio.to_thread.run_sync(_warm_tiles, state)  # ready when /health first answers
    _freeze_heap()
    watcher = asyncio.create_task(_watch(state, settings.reload_seconds)) if settings.reload_seconds > 0 else None
    try:
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
            try:
                await watcher
            except (asyncio.CancelledError, Exception):
                pass
        if state.batch_pool is not None:
            state.batch_pool.close()
        state.workspace.close()


# -- the factory ------------------------------------------------------------------------------------
SWAGGER_PREFIX = "/static/swagger"


def _install_offline_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI served by Zeren itself (pinned swagger-ui-bundle-v2), so it works offline."""
    app.mount(SWAGGER_PREFIX, StaticFiles(directory=str(swagger_ui_path)), name="swagger-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} — API docs / 接口文档",
                                   swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (``Settings.from_env()`` when not given). Tokens are read now, so a bad
    tokens file stops the start with a message instead of failing requests later."""
    from zeren import maps
    from zeren.api.http.routers import (appointments, assign, audit, coverage, editions, health, life_circles, lookup,
                                        ogc, planners, projects, zones)
    from zeren.api.http.idempotency import IdempotencyMiddleware
    from zeren.api.http.routers import maps as map_pages
    from zeren.api.settings import MAP_ASSET_PREFIX

    settings = settings if settings is not None else Settings.from_env()
    tokens = TokenRegistry.from_settings(settings)
    middleware = [Middleware(SecurityHeadersMiddleware, csp=settings.csp),
                  # map pages, their large layers and big GeoJSON answers; small answers (lookups) stay plain
                  Middleware(GZipMiddleware, minimum_size=8192, compresslevel=6),
                  Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
                  Middleware(TextInputMiddleware),
                  Middleware(IdempotencyMiddleware)]  # retried writing POSTs: the first answer again
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                                     allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
                                     allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                                     expose_headers=["Location", "Idempotent-Replayed"], max_age=600))
    # docs_url/redoc_url off: FastAPI's pages load Swagger UI from a CDN, which intranets cannot reach
    app = FastAPI(title=settings.title, version=VERSION, description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=lifespan, middleware=middleware, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.tokens = tokens
    errors.install(app)
    for module in (health, lookup, assign, zones, editions, planners, appointments, projects, audit, coverage,
                   life_circles, map_pages, ogc):
        app.include_router(module.router)
    from zeren.api.http.routers import embed, feedback, teams
    for module in (feedback, embed, teams):  # resident feedback, the find-my-planner page, teams
        app.include_router(module.router)
    from zeren.api.http.routers import reports
    app.include_router(reports.router)  # the annual evaluation (年度考核)
    from zeren.api.http.routers import tiles
    app.include_router(tiles.router)  # vector tiles (MVT) of the zones and their TileJSON
    for sub, folder in sorted(maps.asset_roots().items(), key=lambda kv: -len(kv[0])):  # longest first
        path = MAP_ASSET_PREFIX.rstrip("/") + (f"/{sub}" if sub else "")
        app.mount(path, StaticFiles(directory=str(folder)), name=f"maps-static-{sub or 'zeren'}")
    _install_offline_docs(app)
    _polish_openapi(app)
    return app


def _polish_openapi(app: FastAPI) -> None:
    """Two touches on the generated OpenAPI: each parameter's first schema example is copied up to the
    parameter (``example``, where Swagger UI's "Try it out" picks it; every example works on the demo city),
    and error answers are documented as ``application/json`` even on routes that answer GeoJSON."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                if not isinstance(op, dict):
                    continue
                for param in op.get("parameters", []):
                    examples = (param.get("schema") or {}).get("examples")
                    if "example" not in param and "examples" not in param and examples:
                        param["example"] = examples[0]
                for status, answer in op.get("responses", {}).items():
                    content = answer.get("content") or {}
                    if status[0] in "45" and "application/geo+json" in content:
                        content.setdefault("application/json", content.pop("application/geo+json"))
                    for media in content.values():  # our 422s have the one error shape, not FastAPI's
                        if media.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                            media["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
        schemas = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        from zeren.api.http.openapi import declare

        schema = declare(app, schema)  # security, error answers and date rules as the server applies them
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (``--factory zeren.api.http.app:app_from_env``): settings from the environment."""
    return create_app(Settings.from_env())
