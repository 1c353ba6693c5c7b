"""What the routers get from the app: the store, the catalogue, the settings, the caller, and the
parsing of the parameters many endpoints share (as-of dates, CRSs, pages, bounding boxes)."""
from __future__ import annotations

import collections
import datetime as dt
import math
import re
import time
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable

import anyio

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zeren.api.auth import Principal, TokenRegistry
from zeren.api.service.actors import Actor
from zeren.api.service.budget import Deadline, DeadlineExceeded
from zeren.api.settings import Settings
from zeren.geo.crs import InputCRS, epsg_code, is_crs_name
from zeren.geo.errors import UnknownCRSError
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


class FailedAuthLimiter:
    """At most ``per_minute`` rejected tokens per client address in any 60 seconds; past that the client's
    requests with a token get 429 with ``Retry-After`` until the oldest failure is a minute old. Behind a
    reverse proxy every client has the proxy's address, so the limit is then shared. 0 disables it."""

    WINDOW = 60.0
    MAX_CLIENTS = 10_000  # addresses remembered at once (the oldest are forgotten first)

    def __init__(self, per_minute: int):
        self.per_minute = int(per_minute)
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, ()) if now - t < self.WINDOW]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds the client must wait, or None when it may try a token now."""
        if self.per_minute <= 0:
            return None
        now = _now()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.per_minute:
                return None
            return max(1, math.ceil(self.WINDOW - (now - times[-self.per_minute])))

    def failed(self, client: str) -> None:
        if self.per_minute <= 0:
            return
        now = _now()
        with self._lock:
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times[-self.per_minute:]
            if len(self._failures) > self.MAX_CLIENTS:
                self._failures.pop(next(iter(self._failures)))


class RateLimiter:
    """At most ``limit`` events per client per ``window`` seconds (in this process), a sliding window."""

    MAX_CLIENTS = 100_000  # past this many remembered clients, the idle ones are forgotten

    def __init__(self, limit: int, window: float):
        self.limit, self.window = int(limit), float(window)
        self._seen: dict[str, collections.deque] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> float | None:
        """None when the client may go on (counted), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > self.MAX_CLIENTS:
                self._seen = {k: q for k, q in self._seen.items() if q and q[-1] > now - self.window}
            seen = self._seen.setdefault(client, collections.deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                return seen[0] + self.window - now
            seen.append(now)
            return None


@dataclass
class AppState:
    """What the lifespan puts on ``app.state.zeren``: the settings, the workspace (store + catalogue) the use
    cases work on, and the tokens."""

    settings: Settings
    workspace: Workspace
    tokens: TokenRegistry
    # in-process batches (ZEREN_BATCH_IN_PROCESS): at most ``settings.batch_workers`` compute at once, even
    # after the server gave up waiting for one (an abandoned thread keeps its slot until its next deadline check)
    batch_slots: threading.BoundedSemaphore = field(init=False)
    batch_limiter: Any = None  # an anyio.CapacityLimiter, made by the lifespan (it needs the event loop)
    batch_pool: Any = None  # the BatchPool of worker processes (None with ZEREN_BATCH_IN_PROCESS)
    auth_failures: "FailedAuthLimiter" = field(init=False)
    anonymous_writes: RateLimiter = field(init=False)  # one limit over every write that takes no token

    def __post_init__(self):
        self.batch_slots = threading.BoundedSemaphore(self.settings.batch_workers)
        self.auth_failures = FailedAuthLimiter(self.settings.auth_failures_per_minute)
        self.anonymous_writes = RateLimiter(self.settings.anonymous_write_limit,
                                            self.settings.anonymous_write_window_seconds)

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


async def run_batch(request: Request, job: Callable[..., bytes], body: bytes, params: dict) -> tuple[bytes, str | None]:
    """``job(workspace, body, deadline, **params)`` (a top-level function: it is sent to another process by
    name) in a batch worker process (:class:`~zeren.api.service.batch_pool.BatchPool`), so the server
    process only moves bytes; returns (answer bytes, content encoding or None: the worker gzips large answers
    for clients that accept it). Past ``ZEREN_REQUEST_TIMEOUT`` (waiting included) 503 with ``Retry-After``
    and the worker is replaced; a full queue: 503 at once. With ``ZEREN_BATCH_IN_PROCESS`` the job runs in a
    thread here instead (at most ``ZEREN_BATCH_WORKERS`` at once; the deadline is checked between chunks)."""
    zs: AppState = request.app.state.zeren
    gzip_ok = "gzip" in request.headers.get("accept-encoding", "").lower()
    if zs.batch_pool is not None:
        return await zs.batch_pool.run(job, body, params=params, marks=zs.workspace.marks,
                                       timeout=zs.settings.request_timeout, compress=gzip_ok)
    deadline = Deadline(zs.settings.request_timeout)

    def guarded():
        if not zs.batch_slots.acquire(timeout=max(0.0, deadline.at - _now())):
            deadline.check()  # raises: the wait took the whole deadline
        try:
            deadline.check()
            return job(zs.workspace, body, deadline, **params)
        finally:
            zs.batch_slots.release()

    with anyio.move_on_after(zs.settings.request_timeout) as scope:
        return await anyio.to_thread.run_sync(guarded, limiter=zs.batch_limiter, abandon_on_cancel=True), None
    if scope.cancelled_caught:
        deadline.cancel()
    raise DeadlineExceeded(f"the request took longer than the server's limit of {zs.settings.request_timeout:g} s "
                           f"and was abandoned; send a smaller batch or try again later")


def _now() -> float:
    import time

    return time.monotonic()


# -- the caller -----------------------------------------------------------------------------------
def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal | None:
    """The caller, None when no token was sent; a token that is sent must be valid (401 otherwise)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    if credentials is None:
        raise HTTPException(401, "the Authorization header must be `Bearer <token>`", headers=WWW_AUTHENTICATE)
    return check_token(request, credentials.credentials)


def check_token(request: Request, token: str) -> Principal:
    """The principal of ``token``; 401 when it is not valid, and 429 (``Retry-After``) for a client that sent
    too many invalid tokens in the last minute (``ZEREN_AUTH_FAILURES_PER_MINUTE``)."""
    zs: AppState = request.app.state.zeren
    client = request.client.host if request.client else "unknown"
    wait = zs.auth_failures.retry_after(client)
    if wait is not None:
        raise HTTPException(429, f"too many invalid tokens from this address; try again in {wait} s",
                            headers={"Retry-After": str(wait)})
    principal = zs.tokens.authenticate(token)
    if principal is None:
        zs.auth_failures.failed(client)
        raise HTTPException(401, "the token is not valid (unknown or revoked); ask an admin for a new one",
                            headers=WWW_AUTHENTICATE)
    return principal


def limit_anonymous_write(request: Request) -> None:
    """The dependency of every route that writes without a token (a resident's feedback, a rating): at most
    ``ZEREN_ANONYMOUS_WRITE_LIMIT`` such writes per client address per ``ZEREN_ANONYMOUS_WRITE_WINDOW``
    seconds, all routes together (counted per server process); more get 429 with ``Retry-After``."""
    zs: AppState = request.app.state.zeren
    client = request.client.host if request.client else "unknown"
    wait = zs.anonymous_writes.check(client)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(429, f"too many writes without a token from this client; try again in {seconds} s",
                            headers={"Retry-After": str(seconds)})


# ``dependencies=[AnonymousWrite]`` on a route; ``responses=ANONYMOUS_WRITE_RESPONSES`` documents the 429
AnonymousWrite = Depends(limit_anonymous_write)
ANONYMOUS_WRITE_RESPONSES = {429: {"model": None, "description": "Too many writes without a token from this client "
                                                                 "(ZEREN_ANONYMOUS_WRITE_LIMIT); see Retry-After."}}


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
# The one date form every date parameter and body field takes (declared as the OpenAPI ``pattern`` of every
# ``format: date``, see app._polish_openapi): ASCII YYYY-MM-DD with a year the store can hold. ISO week and
# ordinal dates (``2025-W26-1``, ``2025-181``), which ``date.fromisoformat`` also reads, are refused.
DATE_PATTERN = r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class DateOutOfRange(ValidationError):
    """A well-formed date outside EARLIEST_DATE..LATEST_DATE."""


def parse_as_of(value: str | None, field: str = "as_of") -> dt.date | None:
    """``value`` as a date; None when the parameter was not given. Given but empty (``as_of=``, ``"end": ""``)
    is refused: leave the parameter out for the default."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        raise ValidationError(f"{field}: empty; give a date as YYYY-MM-DD, e.g. 2025-06-30, or leave {field} out")
    try:
        if not _DATE_SHAPE.fullmatch(text):
            raise ValueError
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field}: {value[:40]!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-06-30") \
            from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise DateOutOfRange(f"{field}: {day} is out of range; give a date between {EARLIEST_DATE} and "
                             f"{LATEST_DATE}")
    return day


def day_in_force(request: Request, as_of: str | None) -> dt.date | None:
    """The ``as_of`` date, or a 422 when no stored zone edition is in force on it (rather than an empty answer)."""
    day = parse_as_of(as_of)
    request.app.state.zeren.catalogue.index.require_in_force(day)
    return day


DEFINITIONS_WHERE = "POST /assign or POST /projects"


def parse_input_crs(value: str | None, *, definitions: bool = True) -> InputCRS:
    """The CRS a client's coordinates are in (parsed once per distinct string, then cached). With
    ``definitions=False`` (interactive GETs) only names and EPSG codes are accepted: a PROJ string or WKT
    costs PROJ up to ~200 ms per new text, so those are taken only by the batch endpoints, in their threads."""
    if not definitions and value is not None and value.strip() and not is_crs_name(value):
        raise UnknownCRSError(f"crs: unknown CRS {value[:60]!r}: not a CRS name or EPSG code; here give wgs84, cgcs2000, "
                              f"gcj02, bd09 or EPSG:n (PROJ strings and WKT are accepted by {DEFINITIONS_WHERE})")
    return input_crs(value)


async def parse_input_crs_async(value: str | None) -> InputCRS:
    """:func:`parse_input_crs` for ``async`` routes (``/lookup``): names at once; an EPSG code in a worker
    thread (the first use of a code costs PROJ up to ~50 ms, then it is cached), so the event loop never waits
    on PROJ; definitions refused."""
    text = (value or "wgs84").strip()
    if is_crs_name(text) and epsg_code(text) is None:
        return parse_input_crs(text, definitions=False)
    return await anyio.to_thread.run_sync(lambda: parse_input_crs(text, definitions=False))


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
