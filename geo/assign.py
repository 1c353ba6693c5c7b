"""Assignment of sites to responsible planners by spatial overlap.

The public entry points read in phases, like ``geopandas.sjoin``: check the input, find candidate
(site, zone) pairs with a spatial index, then assemble the answer with vectorised array work.

Rules (documented in the README, tested in tests/geo/test_assign.py):

* a point matches every zone that *covers* it, so a point on a shared border matches both zones;
* a line or polygon matches every zone it overlaps, with ``share`` = the part of the site inside the
  zone (area for polygons, length for lines, 1.0 for points), measured in the index's metric CRS; one
  that only touches a zone (a square sharing an edge with it: no area inside) does not match it;
* the lead is the active ``lead`` appointment on the most specific matched base kind that has one
  (community, village, subdistrict, district); within a kind the zone with the largest share wins,
  then the lowest code;
* consultations are the planners appointed to matched overlay zones whose kind obliges consultation;
* a site is ``split`` when, at the level that gives its lead (or the most specific matched level when
  there is no lead), no zone holds ``split_threshold`` of it;
* an uncovered site gets the nearest zone that has a lead, with its distance in metres.

What is worked out once and kept: per :class:`ZoneIndex`, the zone references answers quote
(``zone_refs``, dicts built on access), the projection to the metric CRS and the zones in it (on first use);
per :class:`Responsibility` (one date), the trees of the zones that have a lead, which the nearest-zone search
of uncovered sites queries: in lon/lat for a few sites (``lead_lonlat_tree``: only the candidates are
projected), in the metric CRS for batches (``lead_segments`` / ``lead_tree``), each built on first use. So one
point costs a tree query and a few array operations, and ``geo.answer.site_answer`` reads no DataFrame.

Threads (the rule is ``geo.prepared``'s): an index and its responsibilities are read-only once built and may be
shared between threads.
Shapely releases the GIL inside GEOS, and GEOS does not promise that *prepared* geometries are safe to use
from several threads at once (libgeos/geos#825: their lazily built indexes and intersectors keep state). The
zones (``ZoneIndex.geoms``, the very objects of the zones frame: one decode of the store's geometries) are
never prepared; the batch predicates that want prepared zones (the shares' "covers", the point grid) use
``ZoneIndex.prepared_geoms``, copies made on first use, and run under ``ZoneIndex.prepared_lock``. Tree queries (``tree.query`` with a predicate)
prepare the *query* geometry, a private copy per call, and use the zones unprepared; the metric zones are
never prepared; shapely builds an STRtree when it is made, so concurrent queries only read it. Those need no
lock, and neither does a single-point lookup, which never takes the point grid (``_GRID_MIN_SITES``).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.crs import geometry_projector, metric_crs
from zeren.geo.errors import GeoInputError
from zeren.geo.kinds import BASE_KINDS, DEFAULT_CONSULTATION_KINDS
from zeren.geo.nearest import near_candidates, near_pairs, nearest_distance
from zeren.geo.pointgrid import PointGrid
from zeren.geo.prepared import private_prepared
from zeren.geo.validity import active_mask, as_timestamp

NO_LEVEL = len(BASE_KINDS)  # sorts after every base kind
NO_LEAD = np.iinfo(np.int64).max
NEAREST_TIE_M = 1.0
# A line or polygon site with less than this part of it inside a zone only touches it: a shared edge, or the
# floating-point dust of two boundaries digitised from the same line (a millionth of a square metre).
TOUCH_SHARE = 1e-9
_MAX_NEAREST_SEGMENTS = 5_000_000  # beyond this, the nearest-zone search queries the zones themselves
# Consecutive boundary segments of one ring are kept as one line of up to this many segments: GEOS measures a point
# against a line segment by segment, so the distances are the same numbers, with a tenth of the geometries
_SEGMENTS_PER_PIECE = 16
# Up to this many uncovered sites (a lookup, a small batch) search the zones in lon/lat and project only the few
# candidates: no metric copy of every zone, which costs seconds at national scale (600,000 zones).
_FEW_NEAREST = 64
_BOX_MARGIN_DEG = 1e-3  # the search box, back in lon/lat, is widened by this and 10% of its size
_WORKERS = 2
_PARALLEL_MIN_SITES = 50_000
# Once the point grid is built, batches of at least this many points use it; smaller ones (a lookup) take the
# tree, which needs no lock and is as fast for a handful of points (2,000 zones: 8 us against 27 us for one
# point, 100 us against 26 us for 16).
_GRID_MIN_SITES = 16
# Lines and polygons: a batch of at least this many builds the point grid (0.14 s at 3,000 zones, kept on the
# index) so that the sites inside clean cells skip the tree and the predicates (10,000 sites: about 1 s).
_GRID_MIN_BOXES = 5_000


@dataclass(frozen=True)
class Responsibility:
    """Who holds which zone on one date, as arrays aligned on the index's zone positions."""

    as_of: pd.Timestamp
    zone_active: np.ndarray  # bool per zone: the zone's edition is in force
    lead_planner: np.ndarray  # planner id (object) per zone, None where no lead
    lead_key: np.ndarray  # int64 per zone: its lead rank (level, then code) where it has a lead, else NO_LEAD
    appt_offsets: np.ndarray  # CSR offsets into appt_* per zone
    appt_planner: np.ndarray
    appt_role: np.ndarray
    consult_zone: np.ndarray  # bool per zone: its kind obliges consultation
    index: ZoneIndex = field(repr=False, compare=False)  # the index these arrays are aligned on

    @cached_property
    def memo(self) -> dict:
        """What the encoders of answers keep for this date, by name (``geo.answer``'s texts per group of
        zones): it lives as long as this Responsibility, and is cleared with it when an appointment changes."""
        return {}

    @cached_property
    def lead_tree(self) -> tuple[np.ndarray, shapely.STRtree | None]:
        """(candidates, tree): the positions of the zones that have a lead on this date and an STRtree of them
        in the index's metric CRS (None when no zone has a lead). Built on first use, then kept as long as
        this Responsibility is (the nearest-zone search of every uncovered site queries it)."""
        candidates = np.flatnonzero(self.lead_key != NO_LEAD)
        if not len(candidates):
            return candidates, None
        return candidates, shapely.STRtree(self.index.metric_geoms[candidates])

    @cached_property
    def service_tree(self) -> shapely.STRtree | None:
        """An STRtree of the zones in force on this date (every kind) in the index's metric CRS: the service
        area, whose distance an answer outside every zone reports. None when no zone is in force."""
        active = np.flatnonzero(self.zone_active)
        if not len(active):
            return None
        return shapely.STRtree(self.index.metric_geoms[active])

    def service_area_distance_m(self, metric_sites: np.ndarray) -> np.ndarray:
        """Metres from each site (in the metric CRS) to the nearest zone in force; NaN when none is in force."""
        tree = self.service_tree
        if tree is None or not len(metric_sites):
            return np.full(len(metric_sites), np.nan)
        return nearest_distance(tree, metric_sites)

    @cached_property
    def lead_lonlat_tree(self) -> tuple[np.ndarray, shapely.STRtree | None]:
        """(candidates, tree): the zones that have a lead on this date and an STRtree of them in lon/lat, which
        the nearest-zone search of a few uncovered sites queries (see ``_nearest_few``); cheap to build, it
        projects nothing."""
        candidates = np.flatnonzero(self.lead_key != NO_LEAD)
        if not len(candidates):
            return candidates, None
        return candidates, shapely.STRtree(self.index.geoms[candidates])

    @cached_property
    def lead_segments(self) -> tuple[np.ndarray, shapely.STRtree] | None:
        """(zone of each line, STRtree of lines): the boundaries of the zones that have a lead, cut into
        their straight segments, for the nearest-zone search. A site outside every such zone is as far from a
        zone as from the nearest segment of its boundary (holes included), and a segment's distance costs
        O(1) where a polygon's costs O(its vertices): with zones of many vertices the search gets several
        times faster. A segment two zones share is kept once (``_first_of_shared``); runs of kept segments
        of one ring are lines of up to ``_SEGMENTS_PER_PIECE`` segments (the same distances: a line is
        measured segment by segment; at 30,000 zones 100,000 lines where 1.27M segments held 450 MB and took 2.6 s). None when there are more than ``_MAX_NEAREST_SEGMENTS`` segments (the zone tree is used
        then, in bounded memory) or no zone has a lead."""
        candidates = np.flatnonzero(self.lead_key != NO_LEAD)
        if not len(candidates):
            return None
        if int(shapely.get_num_coordinates(self.index.geoms[candidates]).sum()) > _MAX_NEAREST_SEGMENTS:
            return None
        # the zones' metric copies where they are kept already; else only these, projected for the segments and
        # let go (a batch of points needs nothing else in metres: 30,000 zones' polygons are 90 MB)
        metric = vars(self.index).get("metric_geoms")
        geoms = metric[candidates] if metric is not None else self.index.to_metric(self.index.geoms[candidates])
        rings, ring_zone = shapely.get_parts(shapely.boundary(geoms), return_index=True)
        coords, at = shapely.get_coordinates(rings, return_index=True)
        start = np.flatnonzero(at[1:] == at[:-1])  # segment i runs from coords[start[i]] to coords[start[i] + 1]
        ends = np.stack([coords[start], coords[start + 1]], axis=1)
        zone_of = candidates[ring_zone[at[start]]]
        keep = _first_of_shared(ends, self.index.lead_rank[zone_of])
        del ends
        # runs of consecutive kept segments of one ring, cut every _SEGMENTS_PER_PIECE segments, as one line each
        pos = start[keep]
        run = np.r_[True, pos[1:] != pos[:-1] + 1]
        run_first = np.flatnonzero(run)
        within = np.arange(len(pos)) - np.repeat(run_first, np.diff(np.r_[run_first, len(pos)]))
        piece = np.cumsum(run | (within % _SEGMENTS_PER_PIECE == 0)) - 1
        last = np.r_[piece[1:] != piece[:-1], True]
        vertex = np.concatenate([pos, pos[last] + 1])  # each segment's first end, and each piece's last end
        of_piece = np.concatenate([piece, piece[last]])
        order = np.lexsort((vertex, of_piece))
        lines = shapely.linestrings(coords[vertex[order]], indices=of_piece[order])
        return zone_of[keep][np.r_[True, last[:-1]]], shapely.STRtree(lines)


def _first_of_shared(ends: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Positions of the segments to keep: of the copies of one segment (a border shared by two zones, or a
    district's edge on its subdistrict's: the same two ends, in either order) only the one of the zone that
    sorts first (``rank``). Nothing is lost for the nearest-zone search: where a shared segment is near enough
    to count, the zone that wins is the first of those near enough, so the copy kept is the winner's own."""
    if not len(ends):
        return np.zeros(0, dtype=np.intp)
    a, b = ends[:, 0], ends[:, 1]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    k = np.empty((len(ends), 4))
    k[:, :2] = np.where(swap[:, None], b, a)
    k[:, 2:] = np.where(swap[:, None], a, b)
    k += 0.0  # -0.0 as 0.0, which compares equal to it
    # copies found by a hash of the four coordinates' bits (one pass, no sort of millions of rows), checked exactly
    bits = k.view(np.uint64)
    h = bits[:, 0].copy()
    for j in (1, 2, 3):
        h *= np.uint64(0x9E3779B97F4A7C15)
        h ^= bits[:, j]
    codes, uniques = pd.factorize(h)
    m = len(ends)
    key = np.asarray(rank, dtype=np.int64) * m + np.arange(m)  # the lowest rank, then the first position, wins
    best = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(best, codes, key)
    keep = best % m
    if np.array_equal(k, k[keep[codes]]):
        return np.sort(keep)
    # two different segments with one hash (never seen): sort instead
    order = np.lexsort((rank, k[:, 3], k[:, 2], k[:, 1], k[:, 0]))
    first = np.r_[True, (k[order][1:] != k[order][:-1]).any(axis=1)]
    return np.sort(order[first])


class ZoneRefs(Sequence):
    """How answers name each zone: ``refs[pos]`` is a new dict {kind, code, name, name_en} of the zone at ``pos``.

    Built on access from four lists of strings: a tuple of one dict per zone would cost seconds and hundreds
    of megabytes at national scale (600,000 zones), where an answer reads a handful of them."""

    __slots__ = ("_kind", "_code", "_name", "_name_en")

    def __init__(self, kind: list, code: list, name: list, name_en: list):
        self._kind, self._code, self._name, self._name_en = kind, code, name, name_en

    def __len__(self) -> int:
        return len(self._code)

    def __getitem__(self, pos):
        if isinstance(pos, slice):
            return [self[i] for i in range(*pos.indices(len(self)))]
        return {"kind": self._kind[pos], "code": self._code[pos], "name": self._name[pos],
                "name_en": self._name_en[pos]}


class ZoneIndex:
    """All zones of a store (every kind, every edition), indexed once.

    Queries take an as-of date and filter by edition validity, so one index serves every date.

    Built when the index is made (what a lookup needs at once): the lon/lat STRtree over ``geoms`` (the
    frame's own geometry objects, decoded once by the store), the kind / code / level / rank arrays, the
    validity dates, the bounds and the zone references. Built on first use, by the first question that
    needs them: ``prepared_geoms`` (prepared copies: polygon or line sites' shares, the point grid),
    ``point_grid`` (batches of points), ``to_metric`` / ``metric_geoms`` (distances in metres). Per date,
    :meth:`responsibility` and its trees (``Catalogue.warm`` builds today's).
    """

    def __init__(self, zones: gpd.GeoDataFrame):
        if zones.crs is None or not zones.crs.equals("EPSG:4326"):
            raise GeoInputError("the zone index needs zones in EPSG:4326")
        self.zones = zones.reset_index(drop=True)
        # The zones' geometries as the store decoded them, shared with the frame (``zones``, and every frame
        # taken from it): unprepared, so any thread may use them. The prepared copies the batch predicates
        # need are ``prepared_geoms``, made on first use.
        self.geoms = np.asarray(self.zones.geometry.array, dtype=object)
        # Held around every use of the prepared zones (see the module's docstring, "Threads"). Code outside this
        # module that evaluates a predicate with ``index.prepared_geoms`` as the first argument must hold it too.
        self.prepared_lock = threading.Lock()
        self.tree = shapely.STRtree(self.geoms)
        self.kind = self.zones["kind"].to_numpy(dtype=object)
        codes = self.zones["code"].astype(str)
        self.code = codes.to_numpy(dtype=object)
        kind_level = {k: i for i, k in enumerate(BASE_KINDS)}
        self.level = pd.Series(self.kind, dtype=object).map(kind_level).fillna(NO_LEVEL).to_numpy(dtype=np.int64)
        # The tie-break "lowest code" as integers: code_rank orders codes; lead_rank orders zones by
        # (level, code, position) and is unique, so a per-site minimum of it names one zone.
        # (ranked as pandas text, not Python objects: several times faster at 600,000 zones, the same order)
        self.code_rank = codes.rank(method="dense").fillna(0).to_numpy(dtype=np.int64)
        self.zone_by_lead_rank = np.lexsort((np.arange(len(self.code)), self.code_rank, self.level))
        self.lead_rank = np.empty(len(self.code), dtype=np.int64)
        self.lead_rank[self.zone_by_lead_rank] = np.arange(len(self.code))
        self._valid_from = pd.to_datetime(self.zones["valid_from"]).to_numpy()
        self._valid_to = pd.to_datetime(self.zones["valid_to"]).to_numpy()
        self.bounds = tuple(shapely.total_bounds(self.geoms)) if len(self.geoms) else None
        self.metric_crs = metric_crs(self.bounds) if self.bounds else None
        self.zone_refs = self._zone_refs()

    def _zone_refs(self) -> ZoneRefs:
        if "name_en" in self.zones:
            name_en = self.zones["name_en"].to_numpy(dtype=object)
            missing = self.zones["name_en"].isna().to_numpy(dtype=bool)
        else:
            name_en, missing = np.full(len(self.zones), None, dtype=object), np.ones(len(self.zones), dtype=bool)
        return ZoneRefs(_strings(self.zones["kind"]), _strings(self.zones["code"].astype(str)),
                        _strings(self.zones["name"]),
                        [None if m else str(e) for e, m in zip(name_en.tolist(), missing.tolist())])

    def zone_ref(self, pos: int) -> dict:
        """How answers name the zone at ``pos``: {kind, code, name, name_en} (a new dict: callers may change it)."""
        return self.zone_refs[pos]

    def __len__(self) -> int:
        return len(self.geoms)

    @cached_property
    def prepared_geoms(self) -> np.ndarray:
        """The zones again, as copies of their own, prepared: what the batch predicates with the zones first
        evaluate (the shares' "covers", the point grid), under ``prepared_lock``. Made on the first batch that
        needs them (about 3 s at 600,000 zones), not when the store opens: a lookup never does."""
        return private_prepared(self.geoms)

    @cached_property
    def geometry_digest(self) -> bytes:
        """A digest of every zone's geometry (its WKB, in index order): what the keys of the batch structures
        kept between processes start from (``point_grid_key``). About 0.15 s at 30,000 zones."""
        import hashlib

        geoms = self.geoms
        missing = shapely.is_missing(geoms)
        if missing.any():  # matches nothing, as an empty geometry does: the same structures
            geoms = np.where(missing, shapely.from_wkt("GEOMETRYCOLLECTION EMPTY"), geoms)
        wkb = shapely.to_wkb(geoms).tolist()
        h = hashlib.blake2b(digest_size=20)
        h.update(np.fromiter(map(len, wkb), dtype=np.int64, count=len(wkb)).tobytes())  # where each one ends
        h.update(b"".join(wkb))
        return h.digest()

    @cached_property
    def point_grid(self) -> PointGrid:
        """Grid for bulk point queries, built on the first large one (~0.15 s for 3,000 zones, ~0.8 s for 30,000)."""
        return PointGrid(self.prepared_geoms, workers=_WORKERS)

    @cached_property
    def to_metric(self):
        """Geometries in EPSG:4326 -> the same in the metric CRS (a function, the CRS work done once)."""
        return geometry_projector("EPSG:4326", self.metric_crs)

    @cached_property
    def from_metric(self):
        """Geometries in the metric CRS -> the same in EPSG:4326."""
        return geometry_projector(self.metric_crs, "EPSG:4326")

    @cached_property
    def tile_source(self):
        """The zones as vector tiles cut them (``geo.tiles.TileSource``: EPSG:3857 per kind, built on first use)."""
        from zeren.geo.tiles import TileSource

        return TileSource(self)

    @cached_property
    def metric_geoms(self) -> np.ndarray:
        """Zones in the metric CRS, projected on first use (only nearest-zone distances need them)."""
        return self.to_metric(self.geoms)

    def active(self, as_of) -> np.ndarray:
        ts = np.datetime64(as_timestamp(as_of).to_datetime64())
        started = np.isnat(self._valid_from) | (self._valid_from <= ts)
        not_ended = np.isnat(self._valid_to) | (self._valid_to > ts)
        return started & not_ended

    def require_in_force(self, as_of) -> None:
        """Refuse a date on which no stored edition is in force: the answer would be an empty city."""
        if len(self) and not self.active(as_of).any():
            first = pd.Timestamp(np.nanmin(self._valid_from)).date()
            last = "open" if np.isnat(self._valid_to).any() else pd.Timestamp(self._valid_to.max()).date()
            raise GeoInputError(f"as_of: no zone edition is in force on {as_timestamp(as_of).date()}; the stored "
                                f"editions run from {first} to {last}")

    def edition_span(self) -> tuple | None:
        """(first day, last day or None when still open) over every stored edition; None without zones."""
        if not len(self):
            return None
        first = pd.Timestamp(np.nanmin(self._valid_from)).date() if (~np.isnat(self._valid_from)).any() else None
        last = None if np.isnat(self._valid_to).any() else pd.Timestamp(self._valid_to.max()).date()
        return first, last

    def positions(self, kind: str, code: str) -> np.ndarray:
        """Positions of every edition of one zone."""
        mask = (self.kind == kind) & (self.code == str(code))
        return np.flatnonzero(mask)

    def responsibility(self, appointments: pd.DataFrame, as_of=None,
                       consultation_kinds=DEFAULT_CONSULTATION_KINDS) -> Responsibility:
        """Precompute who holds which zone on ``as_of`` (cheap: zones + appointments, no geometry)."""
        ts = as_timestamp(as_of)
        n = len(self)
        zone_active = self.active(ts)
        appts = appointments.loc[active_mask(appointments["start"], appointments["end"], ts)]
        # appointments meet zones on one integer per (kind, code), not on two text columns (seconds at 600,000)
        zone_key, appt_key = _pair_numbers((self.zones["kind"], self.zones["code"]),
                                           (appts["zone_kind"], appts["zone_code"]))
        keys = pd.DataFrame({"key": zone_key, "pos": np.arange(n)})[zone_active & (zone_key >= 0)]
        held = appts.assign(key=appt_key)
        held = held[appt_key >= 0].merge(keys, on="key").drop(columns="key")
        held = held.sort_values(["pos", "role", "planner_id"], kind="stable")
        pos = held["pos"].to_numpy(dtype=np.int64)
        offsets = np.searchsorted(pos, np.arange(n + 1))
        leads = held[held["role"] == "lead"].drop_duplicates("pos")
        lead_planner = np.full(n, None, dtype=object)
        lead_planner[leads["pos"].to_numpy(dtype=np.int64)] = leads["planner_id"].to_numpy(dtype=object)
        has_lead = pd.notna(lead_planner) & (self.level < NO_LEVEL)
        lead_key = np.where(has_lead, self.lead_rank, NO_LEAD)
        return Responsibility(
            as_of=ts, zone_active=zone_active, lead_planner=lead_planner, lead_key=lead_key.astype(np.int64),
            appt_offsets=offsets, appt_planner=held["planner_id"].to_numpy(dtype=object),
            appt_role=held["role"].to_numpy(dtype=object),
            consult_zone=np.isin(self.kind, list(consultation_kinds)),
            index=self,
        )


def _strings(values: pd.Series) -> list:
    """``str`` of each value, as a list: a column of text without gaps (a store's) is taken as it is."""
    if pd.api.types.is_string_dtype(values.dtype) and not isinstance(values.dtype, np.dtype) \
            and not values.isna().any():
        return values.tolist()
    return [str(v) for v in values.tolist()]


def _pair_numbers(left: tuple, right: tuple) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per (kind, code) pair of two lists of pairs, equal exactly when the pairs are (as text), -1
    where either part is missing. Both sides are numbered together as pandas text (hashed without a Python
    object per value)."""
    n = len(left[0])
    numbers = []
    for a, b in zip(left, right):
        both = pd.concat([pd.Series(a, dtype=str).reset_index(drop=True), pd.Series(b, dtype=str).reset_index(drop=True)],
                         ignore_index=True)
        numbers.append(pd.factorize(both)[0].astype(np.int64))
    kind, code = numbers
    key = code * (int(kind.max(initial=0)) + 1) + kind
    key[(kind < 0) | (code < 0)] = -1
    return key[:n], key[n:]


@dataclass
class Assignment:
    """The answer for a batch of sites, as arrays (positions refer to ``index.zones``)."""

    index: ZoneIndex
    resp: Responsibility
    n_sites: int
    pair_site: np.ndarray  # matched (site, zone) pairs of zones in force, in no particular order
    pair_zone: np.ndarray
    pair_share: np.ndarray
    lead_zone: np.ndarray  # zone position per site, -1 when uncovered
    split: np.ndarray
    nearest_zone: np.ndarray = field(default=None)  # zone position per site, -1 when covered / none
    nearest_distance_m: np.ndarray = field(default=None)

    @property
    def covered(self) -> np.ndarray:
        return self.lead_zone >= 0

    @property
    def lead_planner(self) -> np.ndarray:
        out = np.full(self.n_sites, None, dtype=object)
        ok = self.covered
        out[ok] = self.resp.lead_planner[self.lead_zone[ok]]
        return out

    def consultation_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(site, zone, planner) for every planner of a matched overlay zone that obliges consultation."""
        sites, zones, slot = self.planner_slots(consultations=True)
        return sites, zones, self.resp.appt_planner[slot]

    def planner_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(site, zone, planner, role) for every active appointment on every matched zone."""
        sites, zones, slot = self.planner_slots()
        return sites, zones, self.resp.appt_planner[slot], self.resp.appt_role[slot]

    def planner_slots(self, consultations: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(site, zone, slot) for every active appointment on every matched zone (or, with ``consultations``,
        on every matched overlay zone that obliges consultation); ``slot`` indexes ``resp.appt_planner`` and
        ``resp.appt_role``, so per-appointment values can be computed once and gathered."""
        sites, zones = self.pair_site, self.pair_zone
        if consultations:
            keep = self.resp.consult_zone[zones]
            sites, zones = sites[keep], zones[keep]
        off = self.resp.appt_offsets
        counts = off[zones + 1] - off[zones]
        rep_sites = np.repeat(sites, counts)
        rep_zones = np.repeat(zones, counts)
        starts = np.repeat(off[zones], counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rep_sites, rep_zones, starts + within


def _query_pairs(index: ZoneIndex, sites: np.ndarray, points_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (site, zone) pairs that really match, using the fastest plan for the input."""
    n = len(sites)
    if points_only and (n >= _PARALLEL_MIN_SITES or (n >= _GRID_MIN_SITES and "point_grid" in vars(index))):
        # The precomputed grid answers most points from their cell and sends only those near a border
        # to the exact join: the same pairs as a tree over the points queried with "covers". It evaluates
        # the prepared zones (and builds itself with them on first use): one thread at a time.
        with index.prepared_lock:
            return index.point_grid.query(sites)
    # the tree prepares each site for the predicate and reads the zones unprepared: no lock needed
    predicate = "covered_by" if points_only else "intersects"
    site, zone = index.tree.query(sites, predicate=predicate)
    return site, zone


def _box_pairs(index: ZoneIndex, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs of lines and polygons (any geometries) for a large batch: a site whose bounding box
    lies in clean cells of the point grid (``PointGrid.box_labels``) takes its cell's zones, each covering it
    whole, with no predicate at all; the others the tree's "intersects". Returns (site, zone, whole)."""
    with index.prepared_lock:  # the grid is built (once) from the prepared zones
        grid = index.point_grid
    labels = grid.box_labels(shapely.bounds(sites))
    inside = np.flatnonzero(labels > 0)
    cs, cz = grid.expand(inside, labels[inside])
    others = np.flatnonzero(labels == 0)
    os_, oz = index.tree.query(sites[others], predicate="intersects") if len(others) else (others, others)
    site = np.concatenate([cs, others[os_]]).astype(np.int64)
    zone = np.concatenate([cz, oz]).astype(np.int64)
    whole = np.r_[np.ones(len(cs), dtype=bool), np.zeros(len(os_), dtype=bool)]
    return site, zone, whole


def assign(index: ZoneIndex, resp: Responsibility, sites, *, split_threshold: float = 0.9,
           with_nearest: bool = True) -> Assignment:
    """Assign sites (an array of shapely geometries in EPSG:4326) to zones and planners."""
    if resp.index is not index:
        raise GeoInputError("the responsibility was computed for another zone index (were the zones reloaded?); "
                            "use resp.index, or compute it again with index.responsibility(...)")
    sites = np.asarray(sites, dtype=object)
    if sites.ndim != 1:
        raise GeoInputError("sites must be a one-dimensional array of geometries")
    if len(sites) and (shapely.is_missing(sites).any() or shapely.is_empty(sites).any()):
        raise GeoInputError("sites contain missing or empty geometries; drop or fix them first")
    n = len(sites)
    type_ids = shapely.get_type_id(sites) if n else np.zeros(0, np.int64)
    points_only = bool(n) and bool(((type_ids == 0) | (type_ids == 4)).all())  # Point, MultiPoint

    # phase 1: candidate pairs from the index, restricted to zones in force (in no particular order)
    whole = None  # pairs known to be covered whole (share 1, no predicate needed)
    if not points_only and (n >= _GRID_MIN_BOXES or (n >= _GRID_MIN_SITES and "point_grid" in vars(index))):
        site, zone, whole = _box_pairs(index, sites)
    else:
        site, zone = _query_pairs(index, sites, points_only)
    keep = resp.zone_active[zone]
    site, zone = site[keep], zone[keep]
    whole = whole[keep] if whole is not None else None

    # phase 2: shares; a line or polygon that only touches a zone (nothing of it inside) does not match it
    share = np.ones(len(site))
    rest = np.arange(len(site)) if whole is None else np.flatnonzero(~whole)
    if not points_only and len(rest):
        share[rest], touching = _shares(index, sites, type_ids, site[rest], zone[rest])
        if touching.any():
            drop = np.ones(len(site), dtype=bool)
            drop[rest[touching]] = False
            site, zone, share = site[drop], zone[drop], share[drop]

    return _assemble(index, resp, sites, n, site, zone, share, points_only, split_threshold, with_nearest)


# --- the batch structures as arrays: what a later process (the next ``zeren assign``) adopts instead of
# building them again. Each is keyed by everything its arrays depend on: the zones' geometries to the byte,
# which zones lead on the date and their ranks, the metric CRS, the library versions that computed it, and
# the format; a state under its key is the one a build would make, so adopting it changes no answer.

_STATE_FORMAT = 1


def batch_structures_pay(n_points: int) -> bool:
    """Whether a batch of ``n_points`` points builds the point grid and the led zones' segments (a smaller one
    takes the tree): whether keeping them for later batches is worth anything."""
    return n_points >= _PARALLEL_MIN_SITES


def box_grid_pays(n_sites: int) -> bool:
    """Whether a batch of ``n_sites`` lines or polygons builds the point grid (the sites inside one clean cell
    skip the predicates): whether keeping the grid for later batches is worth anything."""
    return n_sites >= _GRID_MIN_BOXES


def _versions() -> bytes:
    import pyproj

    return "|".join([shapely.__version__, shapely.geos_version_string, pyproj.__version__,
                     pyproj.proj_version_str, np.__version__]).encode()


def point_grid_key(index: ZoneIndex) -> str:
    """The key of ``index``'s point grid: a digest of the zones' geometries (WKB, in index order), the grid's
    format and the versions of the libraries that compute it. (Any grid built over these zones answers
    exactly, whatever its cell size: the grid's tuning constants need not be in it.)"""
    import hashlib

    h = hashlib.blake2b(digest_size=20)
    h.update(b"point-grid|%d|%d|" % (_STATE_FORMAT, PointGrid.STATE_VERSION))
    h.update(_versions())
    h.update(index.geometry_digest)
    return h.hexdigest()


def lead_segments_key(resp: Responsibility) -> str:
    """The key of ``resp.lead_segments``: the zones' geometries, which of them lead on the date and their
    ranks (the shared segments' winners), the metric CRS, the versions of the libraries, the parameters."""
    import hashlib

    index = resp.index
    candidates = np.flatnonzero(resp.lead_key != NO_LEAD).astype(np.int64)
    h = hashlib.blake2b(digest_size=20)
    h.update(b"lead-segments|%d|%d|%d|" % (_STATE_FORMAT, _SEGMENTS_PER_PIECE, _MAX_NEAREST_SEGMENTS))
    h.update(_versions())
    h.update(index.geometry_digest)
    h.update(candidates.tobytes())
    h.update(index.lead_rank[candidates].astype(np.int64).tobytes())
    h.update((index.metric_crs.to_wkt() if index.metric_crs is not None else "").encode())
    return h.hexdigest()


def has_point_grid(index: ZoneIndex) -> bool:
    """Whether ``index`` has its point grid already (built or adopted)."""
    return "point_grid" in vars(index)


def has_lead_segments(resp: Responsibility) -> bool:
    """Whether ``resp`` has its led zones' segments already (cut or adopted)."""
    return "lead_segments" in vars(resp)


def point_grid_state(index: ZoneIndex) -> dict[str, np.ndarray]:
    """``index.point_grid`` (built now if it is not) as arrays: what ``adopt_point_grid`` takes."""
    with index.prepared_lock:
        return index.point_grid.state()


def adopt_point_grid(index: ZoneIndex, state) -> bool:
    """Give ``index`` the point grid of ``state`` (from ``point_grid_state`` of an index of the same key) instead
    of building one. False, and nothing changed, when the index has a grid already or the arrays are not a grid
    over these zones."""
    with index.prepared_lock:
        if has_point_grid(index):
            return False
        try:
            grid = PointGrid.from_state(index.prepared_geoms, state, workers=_WORKERS)
        except ValueError:
            return False
        vars(index)["point_grid"] = grid  # (the cached property's own slot)
        return True


def lead_segments_state(resp: Responsibility) -> dict[str, np.ndarray]:
    """``resp.lead_segments`` (built now if it is not) as arrays: the zone of each line, and the lines'
    coordinates with the line each belongs to. What ``adopt_lead_segments`` takes."""
    segments = resp.lead_segments
    if segments is None:
        return {"none": np.array([True])}
    zone_of, tree = segments
    coords, line = shapely.get_coordinates(tree.geometries, return_index=True)
    return {"none": np.array([False]), "zone_of": np.asarray(zone_of, dtype=np.int64), "coords": coords,
            "line": line.astype(np.int64)}


def adopt_lead_segments(resp: Responsibility, state) -> bool:
    """Give ``resp`` the led zones' segments of ``state`` (from ``lead_segments_state`` of a Responsibility of the
    same key) instead of cutting them again. False, and nothing changed, when it has them already or the
    arrays are not segments of zones that lead on its date."""
    if has_lead_segments(resp):
        return False
    try:
        if bool(state["none"][0]):
            value = None
        else:
            zone_of = np.asarray(state["zone_of"], dtype=np.int64)
            coords = np.asarray(state["coords"], dtype=float)
            line = np.asarray(state["line"], dtype=np.int64)
            if (coords.ndim != 2 or coords.shape[1] != 2 or len(line) != len(coords) or not len(zone_of)
                    or not np.isfinite(coords).all() or (np.diff(line) < 0).any() or int(line[0]) != 0
                    or int(line[-1]) != len(zone_of) - 1 or len(np.unique(line)) != len(zone_of)
                    or int(zone_of.min()) < 0 or int(zone_of.max()) >= len(resp.lead_key)
                    or (resp.lead_key[zone_of] == NO_LEAD).any()):
                return False
            value = (zone_of, shapely.STRtree(shapely.linestrings(coords, indices=line)))
    except (KeyError, IndexError, TypeError, ValueError, shapely.errors.GEOSException):
        return False
    vars(resp)["lead_segments"] = value  # (the cached property's own slot: a frozen dataclass's __dict__)
    return True


def prepare_for_points(index: ZoneIndex, resp: Responsibility, n_points: int) -> None:
    """Build now what ``assign_xy`` of ``n_points`` points builds on first use: for a large batch the point
    grid, then the led zones' boundary segments of the nearest-zone search; nothing for a small one (its
    points take the tree). A caller that reads its input meanwhile on another thread (``zeren assign``) has
    them ready sooner. Safe beside other users of the index: the grid is built under ``prepared_lock``, as
    ``assign_xy`` builds it."""
    if n_points < _PARALLEL_MIN_SITES or not len(index):
        return
    with index.prepared_lock:
        index.point_grid  # noqa: B018 - cached properties, built here
    resp.lead_segments  # noqa: B018


def assign_xy(index: ZoneIndex, resp: Responsibility, lon, lat, *, with_nearest: bool = True) -> Assignment:
    """``assign`` of points given as WGS84 coordinate arrays (every one finite): the same Assignment as
    ``assign(index, resp, shapely.points(lon, lat))``, but a large batch makes a geometry only for the points
    the grid cannot answer from their cell and for the uncovered ones (their nearest zone)."""
    if resp.index is not index:
        raise GeoInputError("the responsibility was computed for another zone index (were the zones reloaded?); "
                            "use resp.index, or compute it again with index.responsibility(...)")
    lon, lat = np.asarray(lon, dtype=float).ravel(), np.asarray(lat, dtype=float).ravel()
    if len(lon) != len(lat) or not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise GeoInputError("lon and lat must be arrays of the same length, every coordinate finite")
    n = len(lon)
    sites = _XYPoints(lon, lat)
    if n >= _PARALLEL_MIN_SITES or (n >= _GRID_MIN_SITES and "point_grid" in vars(index)):
        with index.prepared_lock:  # the grid evaluates the prepared zones (see _query_pairs)
            site, zone = index.point_grid.query_xy(lon, lat)
    else:
        site, zone = _query_pairs(index, sites[np.arange(n)], True)
    keep = resp.zone_active[zone]
    site, zone = site[keep], zone[keep]
    return _assemble(index, resp, sites, n, site, zone, np.ones(len(site)), True, 0.9, with_nearest)


class _XYPoints:
    """Points as two coordinate arrays; indexing with positions makes the shapely points of those only."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, positions) -> np.ndarray:
        return shapely.points(self.x[positions], self.y[positions])

    def metric_xy(self, positions, project) -> tuple[np.ndarray, np.ndarray]:
        """The coordinates of the points at ``positions`` projected by ``project`` (a geometry projector), as
        (x, y) arrays: projected as one line's (the same numbers, coordinate by coordinate), no point made."""
        if len(positions) < 2:
            xy = shapely.get_coordinates(project(self[positions]))
        else:
            line = shapely.linestrings(self.x[positions], self.y[positions])
            xy = shapely.get_coordinates(project(np.array([line], dtype=object)))
        return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])

    def metric(self, positions, project) -> np.ndarray:
        """The points at ``positions`` projected by ``project``: only the projected points are made."""
        if len(positions) < 2:
            return project(self[positions])
        return shapely.points(*self.metric_xy(positions, project))


def _assemble(index, resp, sites, n, site, zone, share, points_only, split_threshold, with_nearest) -> Assignment:
    """Phases 3 and on of ``assign``: lead, split and nearest zone from the matched pairs."""
    # phase 3: the lead is the matched zone with a lead that sorts first by (level, -share, code)
    lead_zone = np.full(n, -1, dtype=np.int64)
    key = resp.lead_key[zone]
    if points_only:
        # every share is 1: a per-site minimum of the unique lead rank decides, no sorting needed
        best = np.full(n, NO_LEAD, dtype=np.int64)
        np.minimum.at(best, site, key)
        found = best != NO_LEAD
        lead_zone[found] = index.zone_by_lead_rank[best[found]]
    else:
        has_lead = key != NO_LEAD
        ls, lz = site[has_lead], zone[has_lead]
        order = np.lexsort((key[has_lead], -share[has_lead], index.level[lz], ls))
        ls, lz = ls[order], lz[order]
        first = np.r_[True, ls[1:] != ls[:-1]] if len(ls) else np.zeros(0, dtype=bool)
        lead_zone[ls[first]] = lz[first]

    split = _split(index, n, site, zone, share, lead_zone, split_threshold, points_only)
    result = Assignment(index=index, resp=resp, n_sites=n, pair_site=site, pair_zone=zone, pair_share=share,
                        lead_zone=lead_zone, split=split)
    if with_nearest:
        result.nearest_zone, result.nearest_distance_m = _nearest(index, resp, sites, lead_zone)
    return result


def _shares(index: ZoneIndex, sites, type_ids, site, zone) -> tuple[np.ndarray, np.ndarray]:
    """Part of each site inside each matched zone, in the metric CRS, and which pairs only touch: a polygon
    (line) site and a zone whose intersection has no area (length) -- less than ``TOUCH_SHARE`` of the site --
    such as a square sharing an edge with the zone. A site with no area or length of its own never touches.

    Where the zone covers the site outright the share is 1 and no intersection is computed. The
    intersection itself is computed in lon/lat and only the pieces are projected: the topology is the
    same and projecting small pieces is much cheaper than projecting every zone.
    """
    share = np.ones(len(site))
    touching = np.zeros(len(site), dtype=bool)
    with index.prepared_lock:  # "covers" with the zones first evaluates their prepared geometries
        partial = ~shapely.covers(index.prepared_geoms[zone], sites[site])
    dims = np.select([np.isin(type_ids, (3, 6)), np.isin(type_ids, (1, 2, 5))], [2, 1], 0)
    measurable = partial & (dims[site] > 0)
    if not measurable.any():
        return share, touching
    ps, pz = site[measurable], zone[measurable]
    pieces = _parallel(lambda a, b: shapely.intersection(a, b), index.geoms[pz], sites[ps])
    metric_pieces = index.to_metric(pieces)
    uniq_sites = np.unique(ps)
    metric_sites = index.to_metric(sites[uniq_sites])
    site_dim = dims[ps]
    whole = np.empty(len(sites))
    whole[uniq_sites] = np.where(dims[uniq_sites] == 2, shapely.area(metric_sites), shapely.length(metric_sites))
    part = np.where(site_dim == 2, shapely.area(metric_pieces), shapely.length(metric_pieces))
    with np.errstate(divide="ignore", invalid="ignore"):
        share[measurable] = np.clip(np.where(whole[ps] > 0, part / whole[ps], 0.0), 0.0, 1.0)
    touching[measurable] = (whole[ps] > 0) & (part <= TOUCH_SHARE * whole[ps])
    return share, touching


def _parallel(func, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) < 2_000:
        return func(a, b)
    chunks = np.array_split(np.arange(len(a)), _WORKERS)
    with ThreadPoolExecutor(_WORKERS) as pool:
        return np.concatenate(list(pool.map(lambda ch: func(a[ch], b[ch]), chunks)))


def _split(index, n, site, zone, share, lead_zone, threshold, points_only) -> np.ndarray:
    split = np.zeros(n, dtype=bool)
    if points_only or not len(site):
        return split
    level = index.level[zone]
    base = level < NO_LEVEL
    if not base.any():
        return split
    s, lv, sh = site[base], level[base], share[base]
    # the level that matters per site: the lead's level, else the most specific matched level
    most_specific = np.full(n, NO_LEVEL)
    np.minimum.at(most_specific, s, lv)
    lead_level = np.where(lead_zone >= 0, index.level[np.maximum(lead_zone, 0)], most_specific)
    at_level = lv == lead_level[s]
    best = np.zeros(n)
    np.maximum.at(best, s[at_level], sh[at_level])
    matched = most_specific < NO_LEVEL
    split[matched] = best[matched] < threshold
    return split


def _nearest(index: ZoneIndex, resp: Responsibility, sites, lead_zone):
    n = len(sites)
    nearest = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan)
    todo = np.flatnonzero(lead_zone < 0)
    if not len(todo):
        return nearest, distance
    if len(todo) <= _FEW_NEAREST:
        with np.errstate(invalid="ignore"):  # a site projected to infinity (far side of the globe): no nearest
            found = _nearest_few(index, resp, sites[todo])
        if found is not None:
            nearest[todo], distance[todo] = found
        return nearest, distance
    segments = resp.lead_segments  # built once per date
    if segments is not None:  # boundary segments: the same distances, each O(1)
        zone_of, tree = segments
    else:
        zone_of, tree = resp.lead_tree
        if tree is None:
            return nearest, distance
    if isinstance(sites, _XYPoints):
        mx, my = sites.metric_xy(todo, index.to_metric)
    else:
        metric_sites = index.to_metric(sites[todo])
        if (shapely.get_type_id(metric_sites) == 0).all() and not shapely.is_empty(metric_sites).any():
            mx, my = shapely.get_x(metric_sites), shapely.get_y(metric_sites)
        else:
            mx = my = None
    if mx is not None:  # points: candidates per cell of points (geo.nearest), the same pairs and distances
        s, z, d = near_pairs(tree, mx, my, NEAREST_TIE_M)
    else:  # (a site the projection took to infinity, on the far side of the globe, has no nearest zone)
        # Zones within a metre of the closest one tie (shared borders project with centimetres of noise)
        ok = np.flatnonzero(np.isfinite(shapely.bounds(metric_sites)).all(axis=1))
        s, z = near_candidates(tree, metric_sites[ok], NEAREST_TIE_M)
        s, d = ok[s], None  # distances measured below, for the pairs that need one only (lines, polygons)
    # Among the ties the most specific kind, then the lowest code, wins.
    zone = zone_of[z]
    order = np.lexsort((index.lead_rank[zone], s))
    s, zone, z = s[order], zone[order], z[order]
    d = d[order] if d is not None else None
    first = np.concatenate(([True], s[1:] != s[:-1]))
    nearest[todo[s[first]]] = zone[first]
    if segments is None:  # the tree's geometries are the zones: the winner's distance is its pair's
        distance[todo[s[first]]] = d[first] if d is not None else \
            shapely.distance(metric_sites[s[first]], tree.geometries[z[first]])
        return nearest, distance
    # A site outside the winning zone is as far from it as from the nearest segment of its boundary, and every
    # segment of it that near is among the candidates found: the distance is the least of theirs (GEOS measures
    # a point against a polygon segment by segment, so it is the same number), with no polygon measured.
    winner = np.full(len(todo), -1, dtype=np.int64)
    winner[s[first]] = zone[first]
    mine = zone == winner[s]
    least = np.full(len(todo), np.inf)
    np.minimum.at(least, s[mine], d[mine] if d is not None else
                  shapely.distance(metric_sites[s[mine]], tree.geometries[z[mine]]))
    distance[todo[s[first]]] = least[s[first]]
    return nearest, distance


def _nearest_few(index: ZoneIndex, resp: Responsibility, sites) -> tuple[np.ndarray, np.ndarray] | None:
    """The nearest zone with a lead of each of a few sites, and its distance in metres: the same answer as the
    metric trees of ``_nearest`` (the same candidates, the same metric distances, the same tie rule), found in
    lon/lat so that only the candidates are projected.

    The zone nearest in lon/lat bounds the metric distance (r) from above; every zone within r + 1 m in the
    metric CRS meets the square of side 2(r + 1 m) around the site there, whose outline taken back to lon/lat
    (16 points, widened by 10% and ``_BOX_MARGIN_DEG`` for the curvature of its sides) gives the box the
    lon/lat tree is queried with. None when no zone has a lead."""
    zone_of, tree = resp.lead_lonlat_tree
    if tree is None:
        return None
    k = len(sites)
    s, z = tree.query_nearest(sites)
    order = np.argsort(s, kind="stable")
    s, z = s[order], z[order]
    first = np.concatenate(([True], s[1:] != s[:-1]))
    s, z = s[first], z[first]
    metric_sites = index.to_metric(sites)
    upper = np.full(k, np.inf)
    upper[s] = shapely.distance(metric_sites[s], index.to_metric(index.geoms[zone_of[z]]))
    reach = upper + NEAREST_TIE_M
    minx, miny, maxx, maxy = shapely.bounds(metric_sites).T
    squares = shapely.segmentize(shapely.box(minx - reach, miny - reach, maxx + reach, maxy + reach),
                                 (maxx - minx + maxy - miny) / 2 + reach / 2)
    bx0, by0, bx1, by1 = shapely.bounds(index.from_metric(squares)).T
    wx, wy = (bx1 - bx0) * 0.1 + _BOX_MARGIN_DEG, (by1 - by0) * 0.1 + _BOX_MARGIN_DEG
    s, c = tree.query(shapely.box(bx0 - wx, by0 - wy, bx1 + wx, by1 + wy), predicate="intersects")
    zone = zone_of[c]
    uniq, inverse = np.unique(zone, return_inverse=True)
    d = shapely.distance(metric_sites[s], index.to_metric(index.geoms[uniq])[inverse])
    closest = np.full(k, np.inf)
    np.minimum.at(closest, s, d)
    tied = d <= closest[s] + NEAREST_TIE_M
    s, zone, d = s[tied], zone[tied], d[tied]
    order = np.lexsort((index.lead_rank[zone], s))
    s, zone, d = s[order], zone[order], d[order]
    first = np.concatenate(([True], s[1:] != s[:-1]))
    nearest = np.full(k, -1, dtype=np.int64)
    distance = np.full(k, np.nan)
    nearest[s[first]], distance[s[first]] = zone[first], d[first]
    return nearest, distance
