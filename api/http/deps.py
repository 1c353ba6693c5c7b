"""What the routers get from the app: the store, the catalogue, the settings, the caller, and the
parsing of the parameters many endpoints share (as-of dates, CRSs, pages, bounding boxes)."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zeren.api.auth import Principal, TokenRegistry
from zeren.api.service.actors import Actor
from zeren.api.settings import Settings
from zeren.geo.crs import InputCRS
from zeren.api.service.lookup import input_crs
from zeren.api.service.workspace import Workspace
from zeren.layers.catalogue import Catalogue
from zeren.layers.errors import ValidationError
from zeren.layers.store import Store

EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2199, 12, 31)
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="zeren"'}

bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="A token made by `zeren token new` (`Authorization: Bearer zrn_...`). "
                                "Reads are public; every write needs one.")


@dataclass
class AppState:
    """What the lifespan puts on ``app.state.zeren``: the settings, the workspace (store + catalogue) the use
    cases work on, and the tokens."""

    settings: Settings
    workspace: Workspace
    tokens: TokenRegistry

    @property
    def store(self) -> Store:
        return self.workspace.store

    @property
    def catalogue(self) -> Catalogue:
        return self.workspace.catalogue

    def refresh(self) -> str | None:
        """Reload what changed in the store since the last look (writes by other workers, CLI imports)."""
        return self.workspace.refresh()


def state(request: Request) -> AppState:
    return request.app.state.zeren


# -- the caller -----------------------------------------------------------------------------------
def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal | None:
    """The caller, None when no token was sent; a token that is sent must be valid (401 otherwise)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    if credentials is None:
        raise HTTPException(401, "the Authorization header must be `Bearer <token>`", headers=WWW_AUTHENTICATE)
    principal = request.app.state.zeren.tokens.authenticate(credentials.credentials)
    if principal is None:
        raise HTTPException(401, "the token is not valid (unknown or revoked); ask an admin for a new one",
                            headers=WWW_AUTHENTICATE)
    return principal


def optional_principal(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                       ) -> Principal | None:
    return authenticate(request, credentials)


def require_writer(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise HTTPException(401, "this change needs a token: send `Authorization: Bearer <token>`",
                            headers=WWW_AUTHENTICATE)
    return principal


def require_admin(principal: Annotated[Principal, Depends(require_writer)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, f"only an admin may do this; this token is for planner {principal.planner_id}")
    return principal


def audit_reader(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    """A read that only admins may make (the audit log): its own words, since no change is being made."""
    if principal is None:
        raise HTTPException(401, "reading the audit log needs an admin token: send `Authorization: Bearer <token>` "
                                 "(make one with `zeren token new --role admin`)", headers=WWW_AUTHENTICATE)
    if not principal.is_admin:
        raise HTTPException(403, f"reading the audit log needs an admin token; this token is for planner "
                                 f"{principal.planner_id}")
    return principal


def writer_actor(principal: Annotated[Principal, Depends(require_writer)]) -> Actor:
    return principal.as_actor()


def admin_actor(principal: Annotated[Principal, Depends(require_admin)]) -> Actor:
    return principal.as_actor()


Caller = Annotated[Principal | None, Depends(optional_principal)]
WriterActor = Annotated[Actor, Depends(writer_actor)]
AdminActor = Annotated[Actor, Depends(admin_actor)]
Writer = Annotated[Principal, Depends(require_writer)]
Admin = Annotated[Principal, Depends(require_admin)]
AuditReader = Annotated[Principal, Depends(audit_reader)]


# -- shared parameters ----------------------------------------------------------------------------
def parse_as_of(value: str | None, field: str = "as_of") -> dt.date | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        day = dt.date.fromisoformat(text)
        if len(text) != 10:
            raise ValueError
    except ValueError:
        raise ValidationError(f"{field}: {value[:40]!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-06-30") \
            from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValidationError(f"{field}: {day} is out of range; give a date between {EARLIEST_DATE} and {LATEST_DATE}")
    return day


def day_in_force(request: Request, as_of: str | None) -> dt.date | None:
    """The ``as_of`` date, or a 422 when no stored zone edition is in force on it (rather than an empty answer)."""
    day = parse_as_of(as_of)
    request.app.state.zeren.catalogue.index.require_in_force(day)
    return day


def parse_input_crs(value: str | None) -> InputCRS:
    """The CRS a client's coordinates are in (parsed once per distinct string, then cached)."""
    return input_crs(value)


def parse_bbox(value: str | None, field: str = "bbox") -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in WGS84 (6 numbers = 3D, the heights ignored)."""
    if value is None or not value.strip():
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValidationError(f"{field}: {value[:80]!r} is not minlon,minlat,maxlon,maxlat (four numbers)") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise ValidationError(f"{field}: give four finite numbers minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise ValidationError(f"{field}: lon must be within [-180, 180] and lat within [-90, 90] "
                              f"(order: minlon,minlat,maxlon,maxlat)")
    if miny > maxy:
        raise ValidationError(f"{field}: minlat {miny} is above maxlat {maxy} (order: minlon,minlat,maxlon,maxlat)")
    if minx > maxx:
        raise ValidationError(f"{field}: minlon {minx} is east of maxlon {maxx}; boxes across the antimeridian "
                              f"are not supported")
    return minx, miny, maxx, maxy


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page(request: Request,
         limit: Annotated[int | None, Query(ge=1, le=10_000_000, description="Items per page; over the server's "
                                                                             "page-size cap (1,000 by default) the "
                                                                             "cap is used.", examples=[10])] = None,
         offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.", examples=[0])] = 0) -> Page:
    settings = request.app.state.zeren.settings
    if limit is None:
        limit = settings.default_page_size
    # Over the cap, the cap is used (as OGC API - Features asks); the answer's links and counts show it.
    return Page(limit=min(limit, settings.max_page_size), offset=offset)


Paging = Annotated[Page, Depends(page)]
