"""Zeren's settings, read from the environment in ONE place: :meth:`Settings.from_env` for the server (passed to
:func:`zeren.api.http.app.create_app`) and :func:`command_environment` for the command line. No other module
reads the environment.

Environment variables (all optional):

=========================== ===========================================================================
``ZEREN_STORE``             GeoPackage file or ``postgresql://`` URL (default ``./zeren.gpkg``)
``ZEREN_TOKENS_FILE``       JSON or CSV file of hashed tokens (see :mod:`api.auth`)
``ZEREN_TOKENS``            hashed tokens inline: ``<sha256>:<role>[:<planner_id>[:<name>]]``, comma-separated,
                            or the same JSON list as the file
``ZEREN_MAX_BODY_BYTES``    request body cap in bytes (default 20 MiB); larger bodies get 413
``ZEREN_MAX_FEATURES``      features per ``POST /assign`` batch (default 10,000); more get 413
``ZEREN_MAX_VERTICES``      vertices (positions) per request that takes geometry, all features together
                            (default 1,000,000); more get 413 before any geometry is built
``ZEREN_MAX_FEATURE_VERTICES`` vertices per feature (default 10,000: overlaying a site on the zones costs more
                            than linearly in its vertices, a 10,000-vertex star polygon takes seconds); more get 413
``ZEREN_REQUEST_TIMEOUT``   seconds a batch request (``POST /assign``, ``POST /projects``...) may work before it is
                            abandoned with 503 and ``Retry-After`` (default 30)
``ZEREN_BATCH_WORKERS``     batch worker processes per server process (default: cores - 1, at least 1; started on
                            first use, niced): ``POST /assign`` is parsed, computed and encoded there, so lookups
                            keep their latency; more batches wait their turn (within ``ZEREN_REQUEST_TIMEOUT``)
``ZEREN_BATCH_QUEUE``       batches that may wait for a free batch worker (default 8); more get 503 with
                            ``Retry-After`` at once
``ZEREN_BATCH_IN_PROCESS``  ``1``: batches run in threads of the server process instead (no worker processes;
                            for debugging and for comparing answers)
``ZEREN_MAX_HEADER_BYTES``  request line and headers cap of ``zeren serve`` (default 64 KiB); over it the client
                            gets 431 and the connection is closed
``ZEREN_AUTH_FAILURES_PER_MINUTE`` invalid tokens one client address may send in a minute (default 20; 0: no
                            limit); past it its requests with a token get 429 with ``Retry-After``
``ZEREN_MAX_PAGE_SIZE``     largest ``limit`` of a paginated list (default 1,000)
``ZEREN_DEFAULT_PAGE_SIZE`` ``limit`` when none is given (default 100)
``ZEREN_CORS_ORIGINS``      comma-separated origins allowed by CORS (default none; ``*`` allows any)
``ZEREN_FRAME_ANCESTORS``   CSP ``frame-ancestors`` sources allowed to embed pages (default ``'self'``)
``ZEREN_PUBLIC_URL``        base URL used in links (OGC API ``next`` links...) when behind a proxy
``ZEREN_RELOAD_SECONDS``    how often each worker checks the store for changes made elsewhere (default 1;
                            0 disables)
``ZEREN_BASEMAP``           basemap of the ``/maps`` pages: ``none`` (default: no tile requests, works on an
                            intranet), ``osm``, ``tianditu`` (needs ``ZEREN_TIANDITU_KEY``), ``amap``,
                            ``tencent`` or ``custom`` (needs ``ZEREN_TILE_URL``)
``ZEREN_TIANDITU_KEY``      Tianditu (天地图) browser key for ``ZEREN_BASEMAP=tianditu``
``ZEREN_TILE_URL``          tile URL template for ``ZEREN_BASEMAP=custom``, e.g. an intranet tile server
                            ``https://tiles.example.cn/{z}/{x}/{y}.png``
``ZEREN_MAP_ATTRIBUTION``   text shown in the maps' attribution corner (data sources, licences)
``ZEREN_APPROVAL_NUMBER``   map approval number (审图号, e.g. ``GS(2024)1234号``) shown on every map page
``ZEREN_MAP_MAX_INLINE_FEATURES`` zone layers with more features than this (default 5,000) are not put inside
                            the page: the page loads them from ``/maps/zones/{kind}.geojson``
``ZEREN_NETWORK_FILE``      walking network (street lines: GeoPackage/GeoJSON, or OSM .osm/.pbf) for
                            ``POST /life-circles/generate`` and ``GET /life-circles/check``; without it
                            life circles are GB 50180-2018 straight-line radii
``ZEREN_POIS_FILE``         facilities (OSM .osm/.pbf, or points with a ``category`` column) checked by
                            ``GET /life-circles/check``
``ZEREN_ANONYMOUS_WRITE_LIMIT`` writes without a token (``POST /feedback``, ``POST /feedback/{ref}/rating``: every
                            route that writes and takes no token, together) allowed per client address per window
                            (default 5); more get 429 with ``Retry-After`` (counted per server process).
                            ``ZEREN_FEEDBACK_RATE_LIMIT`` is its older name, read when the new one is unset
``ZEREN_ANONYMOUS_WRITE_WINDOW`` the window of that limit in seconds (default 60; older name
                            ``ZEREN_FEEDBACK_RATE_WINDOW``)
``ZEREN_FEEDBACK_MAX_DISTANCE_M`` feedback farther than this from every zone is refused as "in the sea or outside
                            the city" (default 50,000 m); nearer, it goes to the nearest zone's planner
``ZEREN_INDEX_CACHE``       folder where ``zeren assign`` keeps the zone index's batch structures (the point grid,
                            the led zones' segments) for the next run over the same zones (default
                            ``~/.cache/zeren/index``, or under ``$XDG_CACHE_HOME``; ``off`` keeps none). Only
                            a cache: deleting it is safe, a changed zone or appointment never reads a stale entry
``ZEREN_CHROMIUM``          the headless Chromium that prints ``GET /reports/...?format=pdf`` (default: chromium in
                            /usr/bin or on PATH; without one those answer 503 naming what is missing)
=========================== ===========================================================================
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Mapping

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_FEATURES = 10_000
DEFAULT_MAX_PAGE_SIZE = 1_000
DEFAULT_MAX_VERTICES = 1_000_000
DEFAULT_MAX_FEATURE_VERTICES = 10_000
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_BATCH_WORKERS = max(1, (os.cpu_count() or 2) - 1)  # a core left to the server process
DEFAULT_BATCH_QUEUE = 8
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_AUTH_FAILURES_PER_MINUTE = 20
DEFAULT_PAGE_SIZE = 100


MAP_ASSET_PREFIX = "/static/maps/"  # where the app mounts maps.asset_dir()
MAP_VARIABLES = (("basemap", "ZEREN_BASEMAP"), ("tianditu_key", "ZEREN_TIANDITU_KEY"), ("tile_url", "ZEREN_TILE_URL"),
                 ("map_attribution", "ZEREN_MAP_ATTRIBUTION"), ("approval_number", "ZEREN_APPROVAL_NUMBER"))
LIFE_CIRCLE_VARIABLES = (("network_file", "ZEREN_NETWORK_FILE"), ("pois_file", "ZEREN_POIS_FILE"))


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    store: str = "zeren.gpkg"
    tokens_file: str | None = None
    tokens: str | None = None  # ZEREN_TOKENS: hashed entries (see api.auth.parse_token_entries)
    extra_tokens: tuple = ()  # TokenEntry objects given in code (tests, `zeren serve --demo`)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_features: int = DEFAULT_MAX_FEATURES
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    max_vertices: int = DEFAULT_MAX_VERTICES
    max_feature_vertices: int = DEFAULT_MAX_FEATURE_VERTICES
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    batch_workers: int = DEFAULT_BATCH_WORKERS
    batch_queue: int = DEFAULT_BATCH_QUEUE
    batch_in_process: bool = False
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    auth_failures_per_minute: int = DEFAULT_AUTH_FAILURES_PER_MINUTE
    default_page_size: int = DEFAULT_PAGE_SIZE
    cors_origins: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ("'self'",)
    public_url: str | None = None
    reload_seconds: float = 1.0
    title: str = "Zeren 责任 API"
    # the /maps pages
    basemap: str = "none"
    tianditu_key: str | None = None
    tile_url: str | None = None
    map_attribution: str | None = None
    approval_number: str | None = None
    map_max_inline_features: int = 5000
    # life circles
    network_file: str | None = None
    pois_file: str | None = None
    # resident feedback (POST /feedback)
    anonymous_write_limit: int = 5  # one limit over every write that takes no token (api.http.deps)
    anonymous_write_window_seconds: float = 60.0
    feedback_max_distance_m: float = 50_000.0
    chromium: str | None = None  # ZEREN_CHROMIUM: the browser that prints PDF reports
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("max_body_bytes", "max_features", "max_page_size", "default_page_size", "max_vertices",
                     "max_feature_vertices", "batch_workers", "max_header_bytes"):
            if int(getattr(self, name)) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.default_page_size > self.max_page_size:
            raise SettingsError("default_page_size must not exceed max_page_size")
        if self.batch_queue < 0:
            raise SettingsError("ZEREN_BATCH_QUEUE must not be negative")
        if self.auth_failures_per_minute < 0:
            raise SettingsError("ZEREN_AUTH_FAILURES_PER_MINUTE must not be negative (0 disables the limit)")
        if not self.request_timeout > 0:
            raise SettingsError("ZEREN_REQUEST_TIMEOUT must be more than 0 seconds")
        if self.reload_seconds < 0:
            raise SettingsError("reload_seconds must not be negative")
        if self.anonymous_write_limit < 1 or self.anonymous_write_window_seconds <= 0 or \
                self.feedback_max_distance_m <= 0:
            raise SettingsError("ZEREN_ANONYMOUS_WRITE_LIMIT must be at least 1, ZEREN_ANONYMOUS_WRITE_WINDOW and "
                                "ZEREN_FEEDBACK_MAX_DISTANCE_M above 0")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise SettingsError(f"ZEREN_PUBLIC_URL must start with http:// or https://, got {self.public_url!r}")
        for source in self.frame_ancestors:
            if any(c in source for c in ";,\r\n"):
                raise SettingsError(f"ZEREN_FRAME_ANCESTORS: {source!r} is not one CSP source")
        self.map_settings()  # a basemap without its key or URL stops the start, with the variable named
        for name, var in (("network_file", "ZEREN_NETWORK_FILE"), ("pois_file", "ZEREN_POIS_FILE")):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise SettingsError(f"{var}={path!r}: no such file; give the path of an existing file or unset it")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Settings from the environment (``environ`` defaults to ``os.environ``), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict = {}

        def text(name: str) -> str | None:
            return _text(env, name)

        def number(name: str, kind=int):
            value = text(name)
            if value is None:
                return None
            try:
                return kind(value.replace("_", ""))
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a number") from None

        for key, var in (("store", "ZEREN_STORE"), ("tokens_file", "ZEREN_TOKENS_FILE"), ("tokens", "ZEREN_TOKENS"),
                         ("public_url", "ZEREN_PUBLIC_URL"), ("chromium", "ZEREN_CHROMIUM"), *MAP_VARIABLES,
                         *LIFE_CIRCLE_VARIABLES):
            if text(var) is not None:
                values[key] = text(var)
        for key, var, kind in (("max_body_bytes", "ZEREN_MAX_BODY_BYTES", int),
                               ("max_features", "ZEREN_MAX_FEATURES", int),
                               ("max_page_size", "ZEREN_MAX_PAGE_SIZE", int),
                               ("max_vertices", "ZEREN_MAX_VERTICES", int),
                               ("max_feature_vertices", "ZEREN_MAX_FEATURE_VERTICES", int),
                               ("request_timeout", "ZEREN_REQUEST_TIMEOUT", float),
                               ("batch_workers", "ZEREN_BATCH_WORKERS", int),
                               ("batch_queue", "ZEREN_BATCH_QUEUE", int),
                               ("max_header_bytes", "ZEREN_MAX_HEADER_BYTES", int),
                               ("auth_failures_per_minute", "ZEREN_AUTH_FAILURES_PER_MINUTE", int),
                               ("default_page_size", "ZEREN_DEFAULT_PAGE_SIZE", int),
                               ("reload_seconds", "ZEREN_RELOAD_SECONDS", float),
                               ("map_max_inline_features", "ZEREN_MAP_MAX_INLINE_FEATURES", int),
                               ("anonymous_write_limit", "ZEREN_FEEDBACK_RATE_LIMIT", int),  # older names first
                               ("anonymous_write_window_seconds", "ZEREN_FEEDBACK_RATE_WINDOW", float),
                               ("anonymous_write_limit", "ZEREN_ANONYMOUS_WRITE_LIMIT", int),
                               ("anonymous_write_window_seconds", "ZEREN_ANONYMOUS_WRITE_WINDOW", float),
                               ("feedback_max_distance_m", "ZEREN_FEEDBACK_MAX_DISTANCE_M", float)):
            value = number(var, kind)
            if value is not None:
                values[key] = value
        if text("ZEREN_BATCH_IN_PROCESS") is not None:
            flag = text("ZEREN_BATCH_IN_PROCESS").lower()
            if flag not in ("0", "1", "true", "false", "yes", "no"):
                raise SettingsError(f"ZEREN_BATCH_IN_PROCESS={flag!r}: give 1 or 0")
            values["batch_in_process"] = flag in ("1", "true", "yes")
        if text("ZEREN_CORS_ORIGINS") is not None:
            values["cors_origins"] = _split(text("ZEREN_CORS_ORIGINS"), ",")
        if text("ZEREN_FRAME_ANCESTORS") is not None:
            values["frame_ancestors"] = _split(text("ZEREN_FRAME_ANCESTORS"), " ,")
        values.update(overrides)
        if "max_page_size" in values and "default_page_size" not in values:
            values["default_page_size"] = min(DEFAULT_PAGE_SIZE, int(values["max_page_size"]))
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`from_env` give these settings back (for worker processes).

        ``extra_tokens`` are written into ``ZEREN_TOKENS`` (hashes only, never the tokens)."""
        from zeren.api.auth import format_token_entries, parse_token_entries

        env = {
            "ZEREN_STORE": self.store,
            "ZEREN_MAX_BODY_BYTES": str(self.max_body_bytes),
            "ZEREN_MAX_FEATURES": str(self.max_features),
            "ZEREN_MAX_PAGE_SIZE": str(self.max_page_size),
            "ZEREN_MAX_VERTICES": str(self.max_vertices),
            "ZEREN_MAX_FEATURE_VERTICES": str(self.max_feature_vertices),
            "ZEREN_REQUEST_TIMEOUT": str(self.request_timeout),
            "ZEREN_BATCH_WORKERS": str(self.batch_workers),
            "ZEREN_BATCH_QUEUE": str(self.batch_queue),
            "ZEREN_BATCH_IN_PROCESS": "1" if self.batch_in_process else "0",
            "ZEREN_MAX_HEADER_BYTES": str(self.max_header_bytes),
            "ZEREN_AUTH_FAILURES_PER_MINUTE": str(self.auth_failures_per_minute),
            "ZEREN_DEFAULT_PAGE_SIZE": str(self.default_page_size),
            "ZEREN_CORS_ORIGINS": ",".join(self.cors_origins),
            "ZEREN_FRAME_ANCESTORS": " ".join(self.frame_ancestors),
            "ZEREN_RELOAD_SECONDS": str(self.reload_seconds),
            "ZEREN_MAP_MAX_INLINE_FEATURES": str(self.map_max_inline_features),
            "ZEREN_ANONYMOUS_WRITE_LIMIT": str(self.anonymous_write_limit),
            "ZEREN_ANONYMOUS_WRITE_WINDOW": str(self.anonymous_write_window_seconds),
            "ZEREN_FEEDBACK_MAX_DISTANCE_M": str(self.feedback_max_distance_m),
        }
        for key, var in (*MAP_VARIABLES, *LIFE_CIRCLE_VARIABLES, ("chromium", "ZEREN_CHROMIUM")):
            if getattr(self, key) is not None:
                env[var] = str(getattr(self, key))
        tokens = format_token_entries(parse_token_entries(self.tokens or "", "ZEREN_TOKENS") + list(self.extra_tokens))
        if tokens:
            env["ZEREN_TOKENS"] = tokens
        if self.tokens_file:
            env["ZEREN_TOKENS_FILE"] = self.tokens_file
        if self.public_url:
            env["ZEREN_PUBLIC_URL"] = self.public_url
        return env

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def map_settings(self, **changes):
        """The :class:`maps.MapSettings` of the ``/maps`` pages (``changes`` on top, e.g. ``geojson_url``)."""
        from zeren.maps.settings import BASEMAPS, MapSettings

        if self.basemap not in BASEMAPS:
            raise SettingsError(f"ZEREN_BASEMAP={self.basemap!r} is not a basemap; use one of {', '.join(BASEMAPS)}")
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise SettingsError("ZEREN_BASEMAP=tianditu needs ZEREN_TIANDITU_KEY (a Tianditu browser key)")
        if self.basemap == "custom" and not self.tile_url:
            raise SettingsError("ZEREN_BASEMAP=custom needs ZEREN_TILE_URL, e.g. "
                                "https://tiles.example.cn/{z}/{x}/{y}.png")
        if self.map_max_inline_features < 1:
            raise SettingsError("ZEREN_MAP_MAX_INLINE_FEATURES must be at least 1")
        values = dict(basemap=self.basemap, tianditu_key=self.tianditu_key, tile_url=self.tile_url,
                      attribution=self.map_attribution, approval_number=self.approval_number,
                      asset_url_prefix=MAP_ASSET_PREFIX, max_inline_features=self.map_max_inline_features)
        values.update(changes)
        try:
            return MapSettings(**values)
        except ValueError as exc:
            raise SettingsError(f"map settings: {exc}") from None

    def work_budget(self):
        """The :class:`~zeren.api.service.budget.WorkBudget` of requests that take geometry."""
        from zeren.api.service.budget import WorkBudget

        return WorkBudget(self.max_vertices, self.max_feature_vertices)

    @property
    def csp(self) -> str:
        return "frame-ancestors " + (" ".join(self.frame_ancestors) or "'none'")


@dataclass(frozen=True)
class CommandEnvironment:
    """What the ``zeren`` commands take from the environment: the default store, the map settings of
    ``zeren map``, and who is running them (recorded in the audit log)."""

    store: str = "zeren.gpkg"
    basemap: str = "none"
    tianditu_key: str | None = None
    tile_url: str | None = None
    map_attribution: str | None = None
    approval_number: str | None = None
    os_user: str = "unknown"  # the account running the command: see os_user()
    index_cache: str | None = None  # folder of the batch structures ``zeren assign`` keeps (None: none kept)


def index_cache_dir(env: Mapping[str, str] | None = None) -> str | None:
    """The folder ``zeren assign`` keeps the zone index's batch structures in (``layers.index_cache``):
    ``ZEREN_INDEX_CACHE``, else ``$XDG_CACHE_HOME/zeren/index``, else ``~/.cache/zeren/index``; None when
    ``ZEREN_INDEX_CACHE`` is ``off`` (or ``0``, ``no``, ``none``) or no home folder is known."""
    env = os.environ if env is None else env
    given = _text(env, "ZEREN_INDEX_CACHE")
    if given is not None:
        return None if given.lower() in {"off", "0", "no", "none", "false"} else given
    base = _text(env, "XDG_CACHE_HOME")
    if base is None:
        home = _text(env, "HOME")
        if home is None:
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "zeren", "index")


def command_environment(environ: Mapping[str, str] | None = None) -> CommandEnvironment:
    env = os.environ if environ is None else environ

    def text(name: str) -> str | None:
        return _text(env, name)

    return CommandEnvironment(
        store=text("ZEREN_STORE") or "zeren.gpkg", basemap=text("ZEREN_BASEMAP") or "none",
        tianditu_key=text("ZEREN_TIANDITU_KEY"), tile_url=text("ZEREN_TILE_URL"),
        map_attribution=text("ZEREN_MAP_ATTRIBUTION"), approval_number=text("ZEREN_APPROVAL_NUMBER"),
        os_user=os_user(env), index_cache=index_cache_dir(env))


def os_user(env: Mapping[str, str] | None = None) -> str:
    """Who runs a command, for the audit log: the account of the process's real user id (which no variable
    can change), else (no user database, as on Windows) the login variables, else ``uid N``/``unknown``."""
    env = os.environ if env is None else env
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        pass
    for name in ("LOGNAME", "USER", "USERNAME"):
        value = _text(env, name)
        if value:
            return value
    return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def export_environment(settings: "Settings") -> None:
    """Put ``settings`` into this process's environment, for the uvicorn worker processes it starts."""
    os.environ.update(settings.to_env())


def _text(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value, stripped; None when unset or blank."""
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def _split(text: str, separators: str) -> tuple[str, ...]:
    for sep in separators[1:]:
        text = text.replace(sep, separators[0])
    return tuple(part.strip() for part in text.split(separators[0]) if part.strip())
