"""Prepared geometries, private to their user: the one rule that keeps threads from crashing the server.

Shapely releases the GIL inside GEOS, and GEOS prepared geometries are not safe to use from several threads
at once (libgeos/geos#825): their lazily built indexes and segment intersectors keep state, and two threads
evaluating a predicate with the same prepared polygon corrupt the heap (a segmentation fault, seen in CI when
two city reports ran at once). Every request of the HTTP server runs in a thread of its own, and the zones of
the catalogue are shared by all of them. So:

- a geometry that outlives one call (the zones frame, the trees' geometries, cached coverage pieces) is never
  prepared in place: ``shapely.prepare`` is only called on copies made by :func:`private_prepared`, and only
  one thread uses a copy at a time (a copy per call, or a copy kept behind a lock, as
  ``geo.assign.ZoneIndex.prepared_geoms`` is);
- shapely prepares a *scalar* first argument of ``contains_xy`` / ``intersects_xy`` in place: call them with a
  private copy too, or with arrays;
- ``STRtree.query(geoms, predicate=...)`` prepares a temporary copy of each unprepared query geometry and
  frees it (as fast as a prepared one), so it is safe on shared geometries as long as they stay unprepared:
  give it the shared geometries themselves, not copies.

:func:`private_prepared` costs one WKB round trip (about 1 ms per 20,000 vertices): small against the
predicates it speeds up.
"""
from __future__ import annotations

import numpy as np
import shapely


def private_prepared(geoms):
    """Prepared copies of ``geoms`` (a geometry or an array of them) that no other caller holds: new objects
    with the same coordinates, prepared. Missing geometries stay missing."""
    copies = shapely.from_wkb(shapely.to_wkb(geoms if isinstance(geoms, shapely.Geometry)
                                             else np.asarray(geoms, dtype=object)))
    shapely.prepare(copies)
    return copies
