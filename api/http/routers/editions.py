"""Boundary editions over HTTP: the list, the diff between two, carry-over of appointments (admin), and a
boundary import scoped as on the command line (admin). Each route parses, calls one use case of
zeren.api.service (boundaries, editions), and answers its result as JSON (the shape of ``--json``)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, Request

from zeren.api.http.deps import AdminActor, parse_as_of
from zeren.api.http.models import errors
from zeren.api.jsonable import jsonable, records
from zeren.api.service import boundaries, editions
from zeren.api.service.budget import WorkBudget
from zeren.geo.kinds import ALL_KINDS
from zeren.layers.errors import ValidationError, ZerenError

router = APIRouter(tags=["editions"])

Kind = Annotated[Literal[ALL_KINDS], Query(description=f"Zone kind: {', '.join(ALL_KINDS)}.",  # type: ignore
                                           examples=["subdistrict"])]
Year = Annotated[int, Query(ge=boundaries.EARLIEST_EDITION, le=boundaries.LATEST_EDITION, examples=[2025],
                            description="An edition (a year).")]
Flag = lambda text: Annotated[bool, Query(description=text)]  # noqa: E731
MinShare = Annotated[float, Query(gt=0, le=1, allow_inf_nan=False, examples=[0.5],
                                  description="A successor must be made of more than this share of the old zone's "
                                              "ground (default 0.5).")]

# what an uploaded boundary file is, by its Content-Type
UPLOAD_SUFFIXES = {"application/geo+json": ".geojson", "application/json": ".geojson", "application/zip": ".zip",
                   "application/x-zip-compressed": ".zip", "application/geopackage+sqlite3": ".gpkg",
                   "application/x-sqlite3": ".gpkg", "text/csv": ".csv"}


@router.get("/editions", summary="Boundary editions: kind, edition, first day, zones written, in force",
            responses=errors(422))
def list_editions(
    request: Request,
    kind: Annotated[Literal[ALL_KINDS] | None, Query(description="Only this kind.",  # type: ignore[valid-type]
                                                     examples=["subdistrict"])] = None,
    as_of: Annotated[str | None, Query(max_length=40, description="Count the zones in force on this date "
                                                                  "(default today).", examples=["2025-06-30"],
                                       json_schema_extra={"format": "date"})] = None,
) -> dict:
    table = editions.list_editions(request.app.state.zeren.workspace, kind, parse_as_of(as_of))
    return {"editions": records(table)}


@router.get("/editions/diff", summary="What changed between two editions of a kind",
            responses=errors(404, 422),
            description="The answer of `zeren editions diff --json`: per code `added`, `removed`, `changed` (IoU, "
                        "area change in m², Hausdorff distance in m) or `unchanged`; for removed zones their "
                        "`successors` by share of their ground; the `dangling_appointments` (on zones no longer in "
                        "force, with the `successor_code` they would carry over to, or null); and the open "
                        "projects whose lead changes. The map: `/maps/editions/diff`.")
def diff(request: Request, kind: Kind,
         from_: Annotated[int, Query(alias="from", ge=1900, le=2199, examples=[2024], description="The older edition.")],
         to: Year, min_share: MinShare = editions.DEFAULT_MIN_SHARE) -> dict:
    result = editions.diff_editions(request.app.state.zeren.workspace, kind, from_, to, min_share=min_share)
    return jsonable(result.as_dict())


@router.post("/editions/carry-over", summary="Carry appointments over to the zones that replaced theirs (admin)",
             responses=errors(401, 403, 404, 409, 422),
             description="Proposes (and with `apply=true` creates, in one audited transaction) appointments on the "
                         "successors of zones the edition retired; ambiguous cases are listed under `unresolved`, "
                         "never guessed. Same as `zeren editions carry-over`.")
def carry_over(request: Request, admin: AdminActor, kind: Kind, to: Year,
               apply: Flag("Create the proposed appointments (default: only propose them).") = False,
               min_share: MinShare = editions.DEFAULT_MIN_SHARE) -> dict:
    result = editions.carry_over(request.app.state.zeren.workspace, kind, to, apply=apply, actor=admin,
                                 min_share=min_share)
    return jsonable(result.as_dict())


@router.post("/zones/import", summary="Import a boundary file as an edition, scoped as on the command line (admin)",
             responses=errors(400, 401, 403, 409, 413, 422),
             description="The body is the file itself: GeoJSON (`application/geo+json`), a zipped Shapefile "
                         "(`application/zip`), a GeoPackage (`application/geopackage+sqlite3`) or a CSV "
                         "(`text/csv`). The same use case as `zeren import-layer`: zones not in the file stay in "
                         "force unless `within` (repeatable) or `retire_missing` declares the file complete; "
                         "`dry_run=true` answers the plan and writes nothing.",
             openapi_extra={"requestBody": {"required": True, "content": {
                 t: {"schema": {"type": "string", "format": "binary"}} for t in
                 ("application/geo+json", "application/zip", "application/geopackage+sqlite3", "text/csv")}}})
async def import_zones(
    request: Request, admin: AdminActor, kind: Kind, edition: Year,
    valid_from: Annotated[str | None, Query(max_length=40, examples=["2025-01-01"],
                                            json_schema_extra={"format": "date"},
                                            description="First day in force (default 1 January).")] = None,
    within: Annotated[list[str] | None, Query(max_length=20, description="Codes of the zones the file is complete "
                                                                         "inside (e.g. a district).")] = None,
    retire_missing: Flag("The file is complete for the whole kind: zones it leaves out are retired.") = False,
    dry_run: Flag("Answer the plan (added, changed, unchanged, retired) and write nothing.") = False,
    skip_rejected: Flag("Import the good features even if some are rejected.") = False,
    crs: Annotated[str | None, Query(max_length=2000, description="CRS when the file states none.")] = None,
    layer: Annotated[str | None, Query(max_length=200, description="Layer of a multi-layer file.")] = None,
    code_field: Annotated[str, Query(max_length=100, description="Field with the zone code.")] = "code",
    name_field: Annotated[str, Query(max_length=100, description="Field with the Chinese name.")] = "name",
    parent_field: Annotated[str, Query(max_length=100, description="Field with the parent zone's code.")] = "parent_code",
    name_en_field: Annotated[str, Query(max_length=100, description="Field with the English name.")] = "name_en",
    population_field: Annotated[str, Query(max_length=100, description="Field with the population.")] = "population",
) -> dict:
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    suffix = UPLOAD_SUFFIXES.get(media)
    if suffix is None:
        raise ValidationError(f"Content-Type {media or '(none)'!r}: send the file as one of "
                              f"{', '.join(sorted(set(UPLOAD_SUFFIXES)))}")
    body = await request.body()
    if not body:
        raise ValidationError("the body is empty: send the boundary file itself")
    day = parse_as_of(valid_from, "valid_from")
    ws = request.app.state.zeren.workspace
    settings = request.app.state.zeren.settings
    # boundaries are larger than sites: one zone may use the whole request's vertex budget
    budget = WorkBudget(settings.max_vertices, settings.max_vertices, feature_setting="ZEREN_MAX_VERTICES")

    def work() -> dict:
        folder = FilePath(tempfile.mkdtemp(prefix="zeren-upload-"))
        try:
            path = folder / f"upload{suffix}"
            path.write_bytes(body)
            plan = boundaries.import_layer(ws, boundaries.LayerImport(
                path=path, kind=kind, edition=edition, valid_from=day, layer=layer, crs=crs, code_field=code_field,
                name_field=name_field, parent_field=parent_field, name_en_field=name_en_field,
                population_field=population_field, within=tuple(within or ()), retire_missing=retire_missing,
                skip_rejected=skip_rejected, dry_run=dry_run, source=f"POST /zones/import ({media})"),
                actor=admin, budget=budget)
            return jsonable(plan.as_dict())
        except (ZerenError, ValueError) as exc:  # name the upload, not the server's temporary folder
            exc.args = tuple(str(a).replace(str(path), "the uploaded file") if isinstance(a, str) else a
                             for a in exc.args)
            if getattr(exc, "problems", None):
                exc.problems = [str(p).replace(str(path), "the uploaded file") for p in exc.problems]
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return await anyio.to_thread.run_sync(work)
