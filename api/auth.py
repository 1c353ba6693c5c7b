"""Bearer tokens: who may write.

* A token is a random string (``zrn_`` + 43 URL-safe characters = 256 bits, made by ``zeren token new``).
  Only its SHA-256 hash is configured and kept: a plain hash (no salt, no slow KDF) is the right tool for
  high-entropy random tokens, which cannot be guessed or looked up in a dictionary; a slow hash is for
  passwords people choose. Do not configure human-chosen passwords as tokens.
* The presented token is hashed and compared with every configured hash using
  :func:`hmac.compare_digest` (constant time, and no early exit on a match).
* Roles: ``admin`` may do everything (and sees planners' private contacts); ``planner`` is bound to one
  planner id and may only change the status of, and add notes to, projects where that planner is the lead
  or a consulted planner.

Where tokens are configured (both are read; entries add up):

* ``ZEREN_TOKENS_FILE``: a JSON file, ``[{"sha256": "<64 hex>", "role": "admin", "name": "alice"},
  {"sha256": "...", "role": "planner", "planner_id": "P006"}]`` (or ``{"tokens": [...]}``), or a CSV file
  with the header ``sha256,role,planner_id,name``;
* ``ZEREN_TOKENS``: entries ``<sha256>:<role>[:<planner_id>[:<name>]]`` separated by commas or newlines
  (or the JSON list above).
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

ROLES = ("admin", "planner")
TOKEN_PREFIX = "zrn_"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PLANNER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_NAME = re.compile(r"^[^:,\s][^:,\r\n]{0,63}$")
MAX_TOKEN_LENGTH = 512


class TokenConfigError(ValueError):
    """A token entry that cannot be used; the message names where it came from."""


@dataclass(frozen=True)
class TokenEntry:
    sha256: str
    role: str
    planner_id: str | None = None
    name: str | None = None

    def __post_init__(self):
        if not isinstance(self.sha256, str) or not _HEX64.match(self.sha256.lower()):
            raise TokenConfigError("sha256 must be the 64 hex digits of the token's SHA-256 (never the token "
                                   "itself); make one with `zeren token new`")
        object.__setattr__(self, "sha256", self.sha256.lower())
        if self.role not in ROLES:
            raise TokenConfigError(f"role {self.role!r}: use one of {', '.join(ROLES)}")
        if self.role == "planner" and not (isinstance(self.planner_id, str) and _PLANNER_ID.match(self.planner_id)):
            raise TokenConfigError("a planner token needs planner_id (the planner's id, e.g. P006)")
        if self.role == "admin" and self.planner_id:
            raise TokenConfigError("an admin token has no planner_id")
        if self.name is not None and not _NAME.match(self.name):
            raise TokenConfigError(f"name {self.name!r}: up to 64 characters, no ':' ',' or line breaks")


@dataclass(frozen=True)
class Principal:
    """Who is calling, as established by a valid token."""

    role: str
    planner_id: str | None
    name: str | None  # the entry's name, when configured
    key: str  # first 8 hex digits of the token's hash: names an unnamed token without revealing it

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """How the caller appears in the audit log: ``admin:<name or key>`` or ``planner:<id>[ (<name>)]``."""
        if self.role == "planner":
            return f"planner:{self.planner_id}" + (f" ({self.name})" if self.name else "")
        return f"admin:{self.name or self.key}"

    def as_actor(self):
        """The :class:`zeren.api.service.actors.Actor` the use cases take."""
        from zeren.api.service.actors import Actor

        return Actor(self.actor, role=self.role, planner_id=self.planner_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _entry(raw: dict, where: str) -> TokenEntry:
    if not isinstance(raw, dict):
        raise TokenConfigError(f"{where}: expected an object with sha256, role, planner_id, name")
    unknown = sorted(set(raw) - {"sha256", "role", "planner_id", "name"})
    if unknown:
        raise TokenConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; use sha256, role, planner_id, name")
    try:
        return TokenEntry(sha256=str(raw.get("sha256") or ""), role=str(raw.get("role") or ""),
                          planner_id=(str(raw["planner_id"]).strip() or None) if raw.get("planner_id") else None,
                          name=(str(raw["name"]).strip() or None) if raw.get("name") else None)
    except TokenConfigError as exc:
        raise TokenConfigError(f"{where}: {exc}") from None


def _json_entries(text: str, source: str) -> list[TokenEntry]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenConfigError(f"{source}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and "tokens" in data:
        data = data["tokens"]
    if not isinstance(data, list):
        raise TokenConfigError(f"{source}: expected a JSON list of token entries (or {{\"tokens\": [...]}})")
    return [_entry(item, f"{source}, entry {i + 1}") for i, item in enumerate(data)]


def parse_token_entries(text: str, source: str = "ZEREN_TOKENS") -> list[TokenEntry]:
    """Entries from ``ZEREN_TOKENS``: ``sha256:role[:planner_id[:name]]`` separated by commas or newlines,
    or a JSON list."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith(("[", "{")):
        return _json_entries(text, source)
    entries = []
    for i, part in enumerate(p.strip() for p in re.split(r"[,\n]", text)):
        if not part:
            continue
        fields = part.split(":")
        if len(fields) < 2 or len(fields) > 4:
            raise TokenConfigError(f"{source}, entry {i + 1}: write <sha256>:<role>[:<planner_id>[:<name>]]")
        raw = {"sha256": fields[0], "role": fields[1]}
        if len(fields) > 2 and fields[2]:
            raw["planner_id"] = fields[2]
        if len(fields) > 3 and fields[3]:
            raw["name"] = fields[3]
        entries.append(_entry(raw, f"{source}, entry {i + 1}"))
    return entries


def format_token_entries(entries) -> str:
    """The ``ZEREN_TOKENS`` form of entries (inverse of :func:`parse_token_entries`)."""
    return ",".join(":".join([e.sha256, e.role, e.planner_id or "", e.name or ""]).rstrip(":") for e in entries)


def read_tokens_file(path: str | Path) -> list[TokenEntry]:
    """Entries from a JSON or CSV tokens file (``sha256,role,planner_id,name``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TokenConfigError(f"ZEREN_TOKENS_FILE={path}: cannot read it ({exc.strerror or exc})") from None
    if not text.strip():
        return []
    if text.lstrip().startswith(("[", "{")):
        return _json_entries(text, str(path))
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "sha256" not in reader.fieldnames or "role" not in reader.fieldnames:
        raise TokenConfigError(f"{path}: a CSV tokens file needs the header sha256,role,planner_id,name")
    return [_entry({k: v for k, v in row.items() if k and v not in (None, "")}, f"{path}, line {i + 2}")
            for i, row in enumerate(reader)]


class TokenRegistry:
    """The configured tokens, by hash. ``authenticate`` is constant time in the token's value."""

    def __init__(self, entries):
        self.entries = tuple(entries)
        seen = set()
        for e in self.entries:
            if e.sha256 in seen:
                raise TokenConfigError(f"the token hash {e.sha256[:8]}... is configured twice")
            seen.add(e.sha256)

    def __len__(self) -> int:
        return len(self.entries)

    def authenticate(self, token: str | None) -> Principal | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        presented = hash_token(token).encode("ascii")
        found = None
        for entry in self.entries:  # no early exit: the time does not depend on which entry matched
            if hmac.compare_digest(presented, entry.sha256.encode("ascii")):
                found = entry
        if found is None:
            return None
        return Principal(role=found.role, planner_id=found.planner_id, name=found.name, key=found.sha256[:8])

    @classmethod
    def from_settings(cls, settings) -> "TokenRegistry":
        entries = list(settings.extra_tokens)
        entries += parse_token_entries(settings.tokens or "", "ZEREN_TOKENS")
        if settings.tokens_file:
            entries += read_tokens_file(settings.tokens_file)
        return cls(entries)
