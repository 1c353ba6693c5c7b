"""The API's settings: read from the environment in ONE place (:meth:`Settings.from_env`) and passed to
:func:`api.app.create_app`. Nothing else in ``api/`` reads the environment.

Environment variables (all optional):

=========================== ===========================================================================
``ZEREN_STORE``             GeoPackage file or ``postgresql://`` URL (default ``./zeren.gpkg``)
``ZEREN_TOKENS_FILE``       JSON or CSV file of hashed tokens (see :mod:`api.auth`)
``ZEREN_TOKENS``            hashed tokens inline: ``<sha256>:<role>[:<planner_id>[:<name>]]``, comma-separated,
                            or the same JSON list as the file
``ZEREN_MAX_BODY_BYTES``    request body cap in bytes (default 20 MiB); larger bodies get 413
``ZEREN_MAX_FEATURES``      features per ``POST /assign`` batch (default 10,000); more get 413
``ZEREN_MAX_PAGE_SIZE``     largest ``limit`` of a paginated list (default 1,000)
``ZEREN_DEFAULT_PAGE_SIZE`` ``limit`` when none is given (default 100)
``ZEREN_CORS_ORIGINS``      comma-separated origins allowed by CORS (default none; ``*`` allows any)
``ZEREN_FRAME_ANCESTORS``   CSP ``frame-ancestors`` sources allowed to embed pages (default ``'self'``)
``ZEREN_PUBLIC_URL``        base URL used in links (OGC API ``next`` links...) when behind a proxy
``ZEREN_RELOAD_SECONDS``    how often each worker checks the store for changes made elsewhere (default 2;
                            0 disables)
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
DEFAULT_PAGE_SIZE = 100


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
    default_page_size: int = DEFAULT_PAGE_SIZE
    cors_origins: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ("'self'",)
    public_url: str | None = None
    reload_seconds: float = 2.0
    title: str = "Zeren 责任 API"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("max_body_bytes", "max_features", "max_page_size", "default_page_size"):
            if int(getattr(self, name)) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.default_page_size > self.max_page_size:
            raise SettingsError("default_page_size must not exceed max_page_size")
        if self.reload_seconds < 0:
            raise SettingsError("reload_seconds must not be negative")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise SettingsError(f"ZEREN_PUBLIC_URL must start with http:// or https://, got {self.public_url!r}")
        for source in self.frame_ancestors:
            if any(c in source for c in ";,\r\n"):
                raise SettingsError(f"ZEREN_FRAME_ANCESTORS: {source!r} is not one CSP source")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Settings from the environment (``environ`` defaults to ``os.environ``), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict = {}

        def text(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        def number(name: str, kind=int):
            value = text(name)
            if value is None:
                return None
            try:
                return kind(value.replace("_", ""))
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a number") from None

        for key, var in (("store", "ZEREN_STORE"), ("tokens_file", "ZEREN_TOKENS_FILE"), ("tokens", "ZEREN_TOKENS"),
                         ("public_url", "ZEREN_PUBLIC_URL")):
            if text(var) is not None:
                values[key] = text(var)
        for key, var, kind in (("max_body_bytes", "ZEREN_MAX_BODY_BYTES", int),
                               ("max_features", "ZEREN_MAX_FEATURES", int),
                               ("max_page_size", "ZEREN_MAX_PAGE_SIZE", int),
                               ("default_page_size", "ZEREN_DEFAULT_PAGE_SIZE", int),
                               ("reload_seconds", "ZEREN_RELOAD_SECONDS", float)):
            value = number(var, kind)
            if value is not None:
                values[key] = value
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
        from api.auth import format_token_entries, parse_token_entries

        env = {
            "ZEREN_STORE": self.store,
            "ZEREN_MAX_BODY_BYTES": str(self.max_body_bytes),
            "ZEREN_MAX_FEATURES": str(self.max_features),
            "ZEREN_MAX_PAGE_SIZE": str(self.max_page_size),
            "ZEREN_DEFAULT_PAGE_SIZE": str(self.default_page_size),
            "ZEREN_CORS_ORIGINS": ",".join(self.cors_origins),
            "ZEREN_FRAME_ANCESTORS": " ".join(self.frame_ancestors),
            "ZEREN_RELOAD_SECONDS": str(self.reload_seconds),
        }
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

    @property
    def csp(self) -> str:
        return "frame-ancestors " + (" ".join(self.frame_ancestors) or "'none'")


def _split(text: str, separators: str) -> tuple[str, ...]:
    for sep in separators[1:]:
        text = text.replace(sep, separators[0])
    return tuple(part.strip() for part in text.split(separators[0]) if part.strip())
