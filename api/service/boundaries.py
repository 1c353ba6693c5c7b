"""Importing a boundary layer as a new edition of the zones *in the file*: nothing is retired silently.

``zeren import-layer FILE --kind K --edition YEAR`` and ``POST /zones/import`` both come here. For each zone
of the file (by code):

* a zone whose geometry and attributes did not change keeps its record (no new row: its history shows real
  changes only);
* a changed zone gets a new row from the edition's first day and its old row ends that day;
* a new code is added (a code retired earlier comes back as a new row);
* a re-import of the same edition corrects that edition's rows (their dates stay).

Zones of kind K *not* in the file stay in force, unless the file is declared complete for a scope:
``within`` (codes of coarser zones, e.g. a district: the zones of kind K inside them are retired from the
edition's first day when the file leaves them out) or ``retire_missing`` (the whole kind). The plan says
exactly what would be added, changed (with IoU, area change and Hausdorff distance against the old geometry),
kept and retired; a dry run computes it and writes nothing. An edition older than one already stored for the
same zones is refused. The plan is computed and applied in one store transaction.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from zeren.api.service.actors import Actor
from zeren.api.service.workspace import Workspace
from zeren.geo.crs import geometry_projector, metric_crs
from zeren.geo.editions import largest_overlap, same_geometry, shape_change
from zeren.geo.hierarchy import PARENT_KIND, derive_parent_codes, parent_kind
from zeren.geo.kinds import ALL_KINDS, BASE_KINDS, KIND_LABELS
from zeren.layers.errors import ConflictError, InputFileError, ValidationError
from zeren.layers.importer import SWAPPED_REASON, ImportReport, read_zone_layer
from zeren.layers.store import Store

EARLIEST_EDITION, LATEST_EDITION = 1900, 2199
_ATTRIBUTES = ("name", "name_en", "parent_code", "population", "attrs")
_SHOWN = 30  # lines per category in the text report (--json has them all)


@dataclass(frozen=True)
class LayerImport:
    """What the user asked: the file and how to read it, the edition, and the scope it is complete for."""

    path: Path
    kind: str
    edition: int
    valid_from: dt.date | None = None
    layer: str | None = None
    crs: str | None = None
    code_field: str = "code"
    name_field: str = "name"
    parent_field: str = "parent_code"
    name_en_field: str = "name_en"
    population_field: str = "population"
    within: tuple[str, ...] = ()
    retire_missing: bool = False
    skip_rejected: bool = False
    dry_run: bool = False
    source: str | None = None  # how the import log names the input (default: the path)

    @property
    def first_day(self) -> dt.date:
        return self.valid_from or dt.date(int(self.edition), 1, 1)


@dataclass
class EditionPlan:
    """What an import does (or, in a dry run, would do), zone by zone."""

    kind: str
    edition: int
    valid_from: dt.date
    scope: str  # "file" | "within" | "kind"
    within: list[dict] = field(default_factory=list)
    added: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)
    unchanged: list[dict] = field(default_factory=list)
    retired: list[dict] = field(default_factory=list)
    kept: int = 0  # zones of the kind in force, not in the file, outside the scope: they stay
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    import_id: int | None = None
    report: ImportReport | None = None
    # how to apply it (store rows); not part of the answer
    _add: gpd.GeoDataFrame | None = field(default=None, repr=False)
    _close: dict = field(default_factory=dict, repr=False)
    _drop: list = field(default_factory=list, repr=False)

    @property
    def written(self) -> bool:
        return self.import_id is not None

    @property
    def writes_anything(self) -> bool:
        return bool(len(self._add) if self._add is not None else 0) or bool(self._close) or bool(self._drop)

    def summary(self) -> dict:
        return {"added": len(self.added), "changed": len(self.changed), "unchanged": len(self.unchanged),
                "retired": len(self.retired), "kept_outside_scope": self.kept}

    def as_dict(self) -> dict:
        return {"kind": self.kind, "edition": int(self.edition), "valid_from": self.valid_from.isoformat(),
                "scope": self.scope, "within": self.within, "dry_run": self.dry_run,
                "written": self.written, "import_id": self.import_id, "summary": self.summary(),
                "added": self.added, "changed": self.changed, "unchanged": self.unchanged,
                "retired": self.retired, "notes": self.notes,
                "read": self.report.as_dict() if self.report is not None else None}

    def text(self) -> str:
        zh, en = KIND_LABELS.get(self.kind, (self.kind, self.kind))
        scope = {"file": "the zones in the file (nothing retired)",
                 "within": "complete within " + ", ".join(f"{w['code']} {w['name']}" for w in self.within),
                 "kind": f"complete for every {self.kind} (--retire-missing)"}[self.scope]
        head = "试运行，未写入 / dry run, nothing written" if self.dry_run else (
            f"已导入 / imported (import {self.import_id})" if self.written else "无变化，未写入 / no change, nothing written")
        s = self.summary()
        lines = [f"{zh} / {en} — 版本 / edition {self.edition}, 自 / from {self.valid_from}; 范围 / scope: {scope}",
                 f"{head}: 新增 / added {s['added']}, 变更 / changed {s['changed']}, 未变 / unchanged "
                 f"{s['unchanged']} (kept as they are), 撤销 / retired {s['retired']}"]
        for title, items, fmt in (("新增 / added", self.added, _fmt_zone), ("变更 / changed", self.changed, _fmt_changed),
                                  ("撤销 / retired", self.retired, _fmt_zone)):
            for item in items[:_SHOWN]:
                lines.append(f"  {title}: {fmt(item)}")
            if len(items) > _SHOWN:
                lines.append(f"  {title}: ... and {len(items) - _SHOWN} more (--json lists them all)")
        if self.kept:
            if self.scope == "file":
                lines.append(f"  保持 / still in force: {self.kept} {self.kind} zone(s) not in the file stay as they "
                             f"are; to retire those the file leaves out, declare it complete with --within CODE "
                             f"(inside a district) or --retire-missing (the whole kind)")
            else:
                lines.append(f"  保持 / still in force: {self.kept} {self.kind} zone(s) outside the scope")
        lines += [f"  注意 / note: {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt_zone(z: dict) -> str:
    extra = f" ({z['note']})" if z.get("note") else ""
    return f"{z['code']} {z['name']}{extra}"


def _fmt_changed(z: dict) -> str:
    if z.get("geometry_changed"):
        what = (f"IoU {z['iou']:.3f}, area {z['area_change_m2'] / 1e6:+,.3f} km², "
                f"boundary moved up to {z['hausdorff_m']:,.0f} m")
    else:
        what = "same boundary"
    attrs = f"; {', '.join(z['attributes_changed'])} changed" if z.get("attributes_changed") else ""
    return f"{z['code']} {z['name']}: {what}{attrs}{' (correction of this edition)' if z.get('correction') else ''}"


# -- reading ----------------------------------------------------------------------------------------
def read_layer(ws_store: Store | None, request: LayerImport) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """The file's zones, checked (EPSG:4326, MultiPolygons), and the read report."""
    if request.kind not in ALL_KINDS:
        raise ValidationError(f"--kind {request.kind!r}: use one of {', '.join(ALL_KINDS)}")
    bounds = None
    if ws_store is not None:
        existing = ws_store.zones()
        bounds = tuple(existing.total_bounds) if len(existing) else None
    return read_zone_layer(request.path, layer=request.layer, crs=request.crs, code_field=request.code_field,
                           name_field=request.name_field, parent_field=request.parent_field,
                           name_en_field=request.name_en_field, population_field=request.population_field,
                           data_bounds=bounds)


def check_read(zones: gpd.GeoDataFrame, report: ImportReport, request: LayerImport) -> None:
    """Refuse what cannot be imported: duplicate codes (always), rejected features (unless skipped), nothing."""
    problem = read_refusal(zones, report, request)
    if problem is not None:
        raise problem


def read_refusal(zones: gpd.GeoDataFrame, report: ImportReport, request: LayerImport) -> Exception | None:
    """The error ``check_read`` raises for this read (None when it can be imported). Its problems list every
    rejected feature, so a door that shows the error need not list them again."""
    duplicates = [r for r in report.rejected if r.reason.startswith("duplicate code")]
    if report.rejected and (duplicates or not request.skip_rejected or not report.accepted):
        shown = [f"{report.unit} {r.row} (code {r.code}): {r.reason}" for r in report.rejected]
        if duplicates:  # which of two rows is the zone cannot be guessed: never skipped
            advice = (f"{len(duplicates)} code(s) appear more than once, and a code names one zone: fix the codes "
                      f"(or --code-field); --skip-rejected does not skip duplicates")
        elif report.accepted:
            advice = f"Fix them, or pass --skip-rejected to import the other {report.accepted}"
        elif all(r.reason.startswith(SWAPPED_REASON) for r in report.rejected):
            advice = ("Every feature was rejected: each looks lat/lon swapped (the file's x holds latitudes and y "
                      "longitudes). Swap the coordinates and import again: re-export with x = longitude, or in QGIS "
                      "run Processing › Swap X and Y coordinates")
        else:
            advice = "Every feature was rejected; none can be imported: fix the file (or the CRS, --crs)"
        return ValidationError(f"{request.path}: {len(report.rejected)} of {report.read} feature(s) rejected; "
                               f"nothing was written. {advice}", shown)
    if not len(zones):
        return InputFileError(f"{request.path}: no feature to import")
    return None


# -- planning ---------------------------------------------------------------------------------------
def _value(v):
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def _attributes_changed(old: dict, new: dict) -> list[str]:
    out = []
    for a in _ATTRIBUTES:
        before, after = _value(old.get(a)), _value(new.get(a))
        if a == "attrs":
            before, after = before or {}, after or {}
        if before != after:
            out.append(a)
    return out


def _resolve_within(store: Store, codes, kind: str, day: dt.date) -> pd.DataFrame:
    """The zones named by ``within`` (kind, code, name; in force on ``day``, of a kind coarser than ``kind``)."""
    if not codes:
        return pd.DataFrame({"kind": [], "code": [], "name": []})
    in_force = store.zones(as_of=day, with_geometry=False)
    if kind in BASE_KINDS:
        order, k = [], kind
        while k in PARENT_KIND:
            k = PARENT_KIND[k]
            order.append(k)
    else:
        order = list(reversed(BASE_KINDS))
    found, problems = [], []
    for code in dict.fromkeys(str(c).strip() for c in codes):
        hit = None
        for k in order:
            rows = in_force[(in_force["kind"] == k) & (in_force["code"] == code)]
            if len(rows):
                hit = rows.iloc[[0]]
                break
        if hit is None:
            near = in_force[in_force["code"] == code]
            why = (f"it is a {near['kind'].iloc[0]}, not a zone that contains {kind} zones" if len(near) else
                   f"no zone with this code is in force on {day}")
            problems.append(f"--within {code}: {why}; give the code of a "
                            f"{' or '.join(order) or 'base zone'} in force (see `zeren editions` / GET /zones)")
        else:
            found.append(hit)
    if problems:
        raise ValidationError(f"{len(problems)} --within code(s) name no zone to scope the import to; nothing was "
                              f"written", problems)
    return pd.concat(found, ignore_index=True)[["kind", "code", "name"]]


def _inside(store: Store, frame: gpd.GeoDataFrame, kind: str, within: pd.DataFrame, day: dt.date,
            to_metric) -> np.ndarray:
    """Which zones of ``frame`` (of ``kind``) lie in the ``within`` zones: by the chain of parent codes, or,
    where a zone has none, by the zone of the within kind holding most of its area."""
    out = np.zeros(len(frame), dtype=bool)
    if not len(frame) or not len(within):
        return out
    targets = set(zip(within["kind"], within["code"]))
    in_force = store.zones(as_of=day, with_geometry=False)
    parent_of = {(k, c): p for k, c, p in zip(in_force["kind"], in_force["code"], in_force["parent_code"])
                 if p is not None}
    within_kinds = set(within["kind"])
    unresolved = []
    for i, pc in enumerate(frame["parent_code"].tolist()):
        k, seen, visited = kind, 0, set()
        while pc is not None and k in PARENT_KIND and seen < 8:
            k = PARENT_KIND[k]
            visited.add(k)
            if (k, pc) in targets:
                out[i] = True
                break
            pc, seen = parent_of.get((k, pc)), seen + 1
        if not out[i] and not within_kinds <= visited:  # the chain broke before the within zones' level
            unresolved.append(i)
    if unresolved:
        by_kind = within.groupby("kind")
        for wkind, group in by_kind:
            containers = store.zones(kind=wkind, as_of=day)
            best = largest_overlap(frame.geometry.to_numpy()[unresolved], containers.geometry.to_numpy(), to_metric)
            codes = np.where(best >= 0, containers["code"].to_numpy(dtype=object)[np.maximum(best, 0)], None)
            wanted = set(group["code"])
            for i, code in zip(unresolved, codes):
                if code in wanted:
                    out[i] = True
    return out


def _ref(row: dict, **extra) -> dict:
    return {"code": str(row["code"]), "name": str(row["name"]), **extra}


def plan_edition(store: Store, zones: gpd.GeoDataFrame, *, kind: str, edition: int, valid_from: dt.date,
                 within=(), retire_missing: bool = False, inherit=()) -> EditionPlan:
    """What importing ``zones`` (read and checked) as ``edition`` of ``kind`` from ``valid_from`` does to the
    store's zones. Reads the store; writes nothing. Raises ConflictError for an edition older than one stored.
    ``inherit``: optional attributes the file does not have (e.g. population): a zone keeps its stored value."""
    if not EARLIEST_EDITION <= int(edition) <= LATEST_EDITION:
        raise ValidationError(f"--edition {edition}: give a year between {EARLIEST_EDITION} and {LATEST_EDITION}")
    if retire_missing and within:
        raise ValidationError("--within and --retire-missing: choose one (--retire-missing already covers the kind)")
    day = valid_from
    ts = pd.Timestamp(day)
    zones = zones.copy()
    rows = store.zones(kind=kind, with_ids=True)
    if inherit and len(rows):
        latest = rows.sort_values("valid_from").drop_duplicates("code", keep="last").set_index("code")
        for column in inherit:
            stored = zones["code"].map(latest[column]) if column in latest else None
            if stored is not None:
                zones[column] = zones[column].astype(object).where(zones[column].notna(), stored)
        if "population" in inherit:
            zones["population"] = pd.array(pd.to_numeric(zones["population"], errors="coerce"), dtype="Int64")
    pk = parent_kind(kind)
    derived = 0
    if pk and zones["parent_code"].isna().any():
        parents = store.zones(kind=pk, as_of=day)
        if len(parents):
            missing = zones["parent_code"].isna().to_numpy()
            zones.loc[missing, "parent_code"] = derive_parent_codes(zones.geometry.to_numpy()[missing],
                                                                     parents.geometry.to_numpy(),
                                                                     parents["code"].to_numpy())
            derived = int(missing.sum())
    bounds = tuple(pd.concat([rows.geometry, zones.geometry]).total_bounds)
    to_metric = geometry_projector("EPSG:4326", metric_crs(bounds))
    within_zones = _resolve_within(store, within, kind, day)
    scope = "kind" if retire_missing else ("within" if len(within_zones) else "file")
    plan = EditionPlan(kind=kind, edition=int(edition), valid_from=day, scope=scope,
                       within=[{"kind": str(k), "code": str(c), "name": str(n)}
                               for k, c, n in zip(within_zones["kind"], within_zones["code"], within_zones["name"])])
    if derived:
        plan.notes.append(f"parent_code derived from the {pk} layer (in force on {day}) for {derived} zone(s)")

    by_code: dict[str, list[dict]] = {}
    for r in rows.to_dict("records"):
        by_code.setdefault(str(r["code"]), []).append(r)
    conflicts = []
    file_codes = set(zones["code"].astype(str))
    # the scope's own newer editions (zones the file leaves out but would retire)
    in_force = rows[(rows["valid_from"] <= ts) & (rows["valid_to"].isna() | (rows["valid_to"] > ts))]
    scoped = np.ones(len(in_force), dtype=bool) if scope == "kind" else (
        _inside(store, in_force, kind, within_zones, day, to_metric) if scope == "within"
        else np.zeros(len(in_force), dtype=bool))
    later = rows[(rows["edition"] > int(edition)) | ((rows["valid_from"] > ts) & (rows["edition"] != int(edition)))]
    scope_codes = file_codes | set(in_force["code"][scoped].astype(str))
    if scope != "file":  # the scope's zones that start later are in the scope too
        later_scoped = later[later["code"].astype(str).isin(scope_codes)] if scope == "within" else later
    else:
        later_scoped = later[later["code"].astype(str).isin(file_codes)]
    for r in later_scoped.drop_duplicates("code").to_dict("records"):
        conflicts.append(f"{kind} {r['code']} {r['name']} already has edition {r['edition']} (from "
                         f"{pd.Timestamp(r['valid_from']).date()}), newer than edition {edition} from {day}")
    if conflicts:
        raise ConflictError(f"edition {edition} is older than editions already stored for {len(conflicts)} of its "
                            f"zones; import it as a later edition (and --valid-from), or leave those zones out; "
                            f"nothing was written", conflicts)

    # each zone of the file against the stored row it continues: the same edition's row (a correction), the
    # row in force on the day, or a row retired on that very day (which an unchanged zone restores)
    records = zones.drop(columns="geometry").to_dict("records")
    new_geoms = np.asarray(zones.geometry.to_numpy(), dtype=object)
    refs: list[tuple[str, dict | None]] = []
    for new in records:
        code = str(new["code"])
        history = sorted(by_code.get(code, []), key=lambda r: r["valid_from"])
        same = next((r for r in history if int(r["edition"]) == int(edition)), None)
        if same is not None:
            if pd.Timestamp(same["valid_from"]).date() != day:
                conflicts.append(f"{kind} {code}: edition {edition} of it already starts on "
                                 f"{pd.Timestamp(same['valid_from']).date()}; a re-import of the same edition corrects "
                                 f"it and keeps its dates (give --valid-from "
                                 f"{pd.Timestamp(same['valid_from']).date()}), or import a new edition")
            refs.append(("same", same))
            continue
        prev = history[-1] if history else None
        if prev is None:
            refs.append(("new", None))
        elif pd.isna(prev["valid_to"]) or pd.Timestamp(prev["valid_to"]) > ts:
            refs.append(("open", prev))
        elif pd.Timestamp(prev["valid_to"]) == ts:
            refs.append(("retired-today", prev))
        else:
            refs.append(("retired", prev))
    if conflicts:
        raise ConflictError(f"{len(conflicts)} zone(s) of the file cannot be written as edition {edition}; nothing "
                            f"was written", conflicts)
    with_ref = [i for i, (_, r) in enumerate(refs) if r is not None]
    same_shape = np.zeros(len(records), dtype=bool)
    if with_ref:
        same_shape[with_ref] = same_geometry(np.array([refs[i][1]["geometry"] for i in with_ref], dtype=object),
                                             new_geoms[with_ref])
    add, add_valid_from, add_valid_to, add_geoms = [], [], [], []
    measure = []  # (position in plan.changed, old geometry, new geometry) of the zones whose boundary moved
    for i, (new, (mode, ref)) in enumerate(zip(records, refs)):
        attrs = _attributes_changed(ref, new) if ref is not None else []
        unchanged = ref is not None and same_shape[i] and not attrs
        if mode in ("same", "open") and unchanged:
            plan.unchanged.append(_ref(new, edition=int(ref["edition"])))
            continue
        if mode == "retired-today" and unchanged:
            plan._close[int(ref["fid"])] = None  # retired on this very day by an earlier import: restored
            plan.unchanged.append(_ref(new, edition=int(ref["edition"]), note="restored"))
            continue
        if mode == "same":
            plan._drop.append(int(ref["fid"]))
            valid_from, valid_to = ref["valid_from"], ref["valid_to"]
        else:
            if mode == "open":
                plan._close[int(ref["fid"])] = day
            valid_from, valid_to = ts, pd.NaT
        add.append(new), add_valid_from.append(valid_from), add_valid_to.append(valid_to), add_geoms.append(new_geoms[i])
        if mode in ("same", "open"):
            entry = _ref(new, previous_edition=int(ref["edition"]), geometry_changed=not bool(same_shape[i]),
                         attributes_changed=attrs, **({"correction": True} if mode == "same" else {}))
            if not same_shape[i]:
                measure.append((len(plan.changed), ref["geometry"], new_geoms[i]))
            plan.changed.append(entry)
        else:
            note = f"back after its retirement on {pd.Timestamp(ref['valid_to']).date()}" if ref is not None else None
            plan.added.append(_ref(new, **({"note": note} if note else {})))
    if measure:
        change = shape_change(np.array([m[1] for m in measure], dtype=object),
                              np.array([m[2] for m in measure], dtype=object), to_metric)
        for (pos, _, _), metrics in zip(measure, change.to_dict("records")):
            plan.changed[pos].update(metrics)

    # retire what the scope declares gone
    for r, in_scope in zip(in_force.to_dict("records"), scoped):
        code = str(r["code"])
        if code in file_codes:
            continue
        if not in_scope:
            plan.kept += 1
            continue
        if int(r["edition"]) == int(edition) and pd.Timestamp(r["valid_from"]) == ts:
            plan._drop.append(int(r["fid"]))
            plan.retired.append(_ref(r, note=f"removed from edition {edition}, which had added it"))
        else:
            plan._close[int(r["fid"])] = day
            plan.retired.append(_ref(r, edition=int(r["edition"])))

    if scope == "within" and len(zones):
        outside = ~_inside(store, zones, kind, within_zones, day, to_metric)
        if outside.any():
            codes = ", ".join(zones["code"].astype(str)[outside].tolist()[:10])
            plan.notes.append(f"{int(outside.sum())} zone(s) of the file lie outside --within "
                              f"{', '.join(within_zones['code'])}: {codes}{' ...' if outside.sum() > 10 else ''}")
    if add:
        frame = pd.DataFrame(add)
        frame["edition"] = int(edition)
        frame["valid_from"] = add_valid_from
        frame["valid_to"] = add_valid_to
        plan._add = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(add_geoms, crs="EPSG:4326"), crs="EPSG:4326")
    else:
        plan._add = gpd.GeoDataFrame({"code": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
    return plan


# -- the use case -----------------------------------------------------------------------------------
def import_zones(ws: Workspace, zones: gpd.GeoDataFrame, report: ImportReport, request: LayerImport, *,
                 actor: Actor) -> EditionPlan:
    """Plan and (unless a dry run) apply an import of zones already read and checked."""
    store = ws.store
    if request.dry_run:
        plan = plan_edition(store, zones, kind=request.kind, edition=request.edition, valid_from=request.first_day,
                            within=request.within, retire_missing=request.retire_missing,
                            inherit=report.missing_fields)
        plan.dry_run, plan.report = True, report
        return plan
    with store.transaction():
        plan = plan_edition(store, zones, kind=request.kind, edition=request.edition, valid_from=request.first_day,
                            within=request.within, retire_missing=request.retire_missing,
                            inherit=report.missing_fields)
        plan.report = report
        if plan.writes_anything:
            log = dict(report.as_dict(), summary=plan.summary(), scope=plan.scope,
                       within=[w["code"] for w in plan.within], valid_from=plan.valid_from.isoformat())
            plan.import_id = store.apply_zone_changes(kind=request.kind, edition=request.edition, add=plan._add,
                                                      close=plan._close, drop=plan._drop, report=log,
                                                      source=request.source or str(request.path), actor=actor.name)
    if plan.written:
        ws.changed(zones=True)
    return plan


def import_layer(ws: Workspace | None, request: LayerImport, *, actor: Actor, create=None,
                 budget=None) -> EditionPlan:
    """Read, check, plan and import a boundary file (``create()`` makes the workspace when there is no store
    yet: a refused import then leaves no empty store behind). ``budget`` (a
    :class:`~zeren.api.service.budget.WorkBudget`): vertex limits checked before the plan is worked out."""
    zones, report = read_layer(ws.store if ws is not None else None, request)
    if budget is not None:
        from zeren.api.service.budget import geometry_vertices

        codes = zones["code"].astype(str).tolist() if "code" in zones else []
        budget.check(geometry_vertices(zones.geometry.to_numpy()),
                     lambda i: f"zone {codes[i]!r}" if i < len(codes) else f"feature {i}")
    check_read(zones, report, request)
    if ws is None:
        if request.dry_run:
            empty = _EmptyStore()
            plan = plan_edition(empty, zones, kind=request.kind, edition=request.edition,
                                valid_from=request.first_day, within=request.within,
                                retire_missing=request.retire_missing)
            plan.dry_run, plan.report = True, report
            return plan
        ws = create()
    return import_zones(ws, zones, report, request, actor=actor)


def import_frame(ws: Workspace, zones: gpd.GeoDataFrame, *, kind: str, edition: int, actor: Actor,
                 valid_from: dt.date | None = None, source: str = "memory", within=(), retire_missing: bool = False,
                 dry_run: bool = False) -> EditionPlan:
    """Import zones already in memory (EPSG:4326, columns code, name and optionally name_en, parent_code,
    population, attrs), as the demo builder and the benchmarks do: the same plan and rules as a file."""
    frame = zones.copy()
    for column, default in (("name_en", None), ("parent_code", None), ("population", pd.NA)):
        if column not in frame:
            frame[column] = default
    if "attrs" not in frame:
        frame["attrs"] = [{} for _ in range(len(frame))]
    frame["population"] = pd.array(pd.to_numeric(frame["population"], errors="coerce"), dtype="Int64")
    report = ImportReport(source=source, crs="EPSG:4326", read=len(frame))
    request = LayerImport(path=Path(source), kind=kind, edition=edition, valid_from=valid_from, within=tuple(within),
                          retire_missing=retire_missing, dry_run=dry_run, source=source)
    return import_zones(ws, frame, report, request, actor=actor)


class _EmptyStore:
    """A store with no zones: what a dry run plans against before the first import has made a store."""

    def zones(self, kind=None, as_of=None, edition=None, *, with_ids=False, with_geometry=True):
        from zeren.layers.schema import empty_zones

        frame = empty_zones() if with_geometry else pd.DataFrame(empty_zones().drop(columns="geometry"))
        if with_ids:
            frame.insert(0, "fid", pd.Series(dtype="int64"))
        return frame


__all__ = ["LayerImport", "EditionPlan", "plan_edition", "import_zones", "import_layer", "import_frame", "read_layer",
           "check_read"]
