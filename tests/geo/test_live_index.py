import numpy as np
import shapely

from zeren.geo.live_index import LiveIndex


def brute(geoms: dict, bbox):
    box = shapely.box(*bbox)
    return sorted(i for i, g in geoms.items() if g.intersects(box))


def test_live_index_agrees_with_brute_force_through_inserts_and_deletes():
    rng = np.random.default_rng(3)
    centres = rng.uniform(0, 100, (300, 2))
    geoms = {i: shapely.Point(x, y).buffer(rng.uniform(0.5, 3)) for i, (x, y) in enumerate(centres)}
    index = LiveIndex(list(geoms)[:200], [geoms[i] for i in list(geoms)[:200]])
    live = {i: geoms[i] for i in list(geoms)[:200]}
    for i in list(geoms)[200:]:
        index.insert(i, geoms[i])
        live[i] = geoms[i]
    for i in range(0, 300, 7):
        index.delete(i)
        live.pop(i)
    moved = shapely.Point(50, 50).buffer(1)
    index.insert(1, moved)  # re-inserting an id replaces its geometry
    live[1] = moved
    assert len(index) == len(live)
    for _ in range(50):
        x, y = rng.uniform(0, 100, 2)
        bbox = (x, y, x + rng.uniform(1, 30), y + rng.uniform(1, 30))
        assert index.query(bbox) == brute(live, bbox)


def test_bbox_hit_that_misses_the_geometry_is_not_returned():
    ring = shapely.Point(0, 0).buffer(10).difference(shapely.Point(0, 0).buffer(9))
    index = LiveIndex([7], [ring])
    assert index.query((-1, -1, 1, 1)) == []  # inside the hole: the box overlaps the bounds only
    assert index.query((9.2, -0.1, 9.8, 0.1)) == [7]
