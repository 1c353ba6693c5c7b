"""Health and the service's front door."""
from __future__ import annotations

from fastapi import APIRouter, Request

from zeren.api.http.deps import state
from zeren.api.http.models import Health, errors
from zeren.layers.errors import StoreError

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, summary="Is the service up, and is its store reachable?",
            responses=errors(503))
def health(request: Request) -> dict:
    """Checks the store with a cheap query (503 when it is unreachable) and counts what is loaded."""
    zs = state(request)
    try:
        zs.store.change_marks()  # touches the store
    except StoreError:
        raise
    except Exception as exc:  # sqlite3 / psycopg errors: the store is not usable
        raise StoreError(f"the store does not answer: {exc}") from exc
    cat = zs.catalogue
    engine = "postgis" if zs.store.location.startswith(("postgresql://", "postgres://")) else "geopackage"
    return {"status": "ok", "engine": engine, "zones": len(cat.index), "planners": len(cat.planners),
            "appointments": len(cat.appointments), "version": request.app.version}


@router.get("/", summary="Links to the API's parts", response_model=dict)
def root(request: Request) -> dict:
    base = str(request.base_url).rstrip("/")
    return {"title": request.app.title, "version": request.app.version,
            "links": {"docs": f"{base}/docs", "openapi": f"{base}/openapi.json", "ogc": f"{base}/ogc",
                      "lookup_example": f"{base}/lookup?lon=104.0530&lat=30.6695",
                      "maps": f"{base}/maps/coverage"}}
