"""GET /projects?bbox= answers from the live project index, which new projects join without a rebuild."""
import numpy as np
import shapely

from zeren.layers.store import open_store
from tests.api.conftest import AUTH


def _ids(client, bbox):
    r = client.get("/projects", params={"bbox": ",".join(map(str, bbox)), "limit": 1000})
    assert r.status_code == 200, r.text
    return sorted(f["id"] for f in r.json()["features"])


def _brute(store_path, bbox):
    projects = open_store(store_path).projects()
    hit = shapely.intersects(projects.geometry.to_numpy(), shapely.box(*bbox))
    return sorted(int(i) for i in projects["id"][hit])


def test_bbox_matches_brute_force_before_and_after_new_projects(wclient):
    rng = np.random.default_rng(11)
    boxes = [(x, y, x + 0.05, y + 0.05) for x, y in zip(rng.uniform(103.9, 104.2, 12), rng.uniform(30.5, 30.8, 12))]
    boxes.append((104.04, 30.66, 104.07, 30.68))  # around the Kuanzhai project
    for box in boxes:
        assert _ids(wclient, box) == _brute(wclient.store_path, box)
    for lon, lat in rng.uniform((103.95, 30.55), (104.15, 30.75), (8, 2)):
        r = wclient.post("/projects", json={"name": "新项目", "geometry": {"type": "Point", "coordinates": [lon, lat]}},
                         headers=AUTH)
        assert r.status_code == 201, r.text
    new = _brute(wclient.store_path, (103.9, 30.5, 104.2, 30.8))
    assert len(new) >= 8
    for box in boxes + [(103.9, 30.5, 104.2, 30.8)]:
        assert _ids(wclient, box) == _brute(wclient.store_path, box)
