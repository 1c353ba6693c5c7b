"""Read a Zeren store the way QGIS does. Run by tests/test_qgis.py with Debian's /usr/bin/python3 (PyQGIS lives
in the system python's dist-packages, not in the venv) and QT_QPA_PLATFORM=offscreen; imports nothing but
PyQGIS and the standard library.

    python3 tests/qgis_helper.py '{"store": PATH, "layers": [...], "url": "http://HOST/ogc", "collections": [...]}'

prints one JSON object: per GeoPackage layer (OGR provider) whether it is valid, its CRS, feature count,
extent and spatial index; per OGC API collection (OAPIF provider) whether it is valid and how many features
QGIS read from it; and every message QGIS logged (GDAL's warnings arrive there).
"""
from __future__ import annotations

import json
import os
import sys

from qgis.core import Qgis, QgsApplication, QgsFeatureRequest, QgsFeatureSource, QgsVectorLayer


def _count(layer) -> int:
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
    return sum(1 for _ in layer.getFeatures(request))


def main() -> int:
    args = json.loads(sys.argv[1])
    app = QgsApplication([], False)
    app.initQgis()
    messages = []
    QgsApplication.messageLog().messageReceived.connect(
        lambda message, tag, level: messages.append({"tag": tag, "level": int(level), "message": message}))
    out = {"qgis": Qgis.version(), "layers": {}, "collections": {}}
    for name in args.get("layers", []):
        layer = QgsVectorLayer(f"{args['store']}|layername={name}", name, "ogr")
        info = {"valid": layer.isValid()}
        if layer.isValid():
            info["count"] = layer.featureCount()
            info["read"] = _count(layer)
            info["spatial"] = layer.isSpatial()
            if layer.isSpatial():
                e = layer.extent()
                info["crs"] = layer.crs().authid()
                info["extent"] = [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()]
                info["spatial_index"] = layer.hasSpatialIndex() == QgsFeatureSource.SpatialIndexPresent
        out["layers"][name] = info
    for coll in args.get("collections", []):
        layer = QgsVectorLayer(f"url='{args['url']}' typename='{coll}'", coll, "OAPIF")
        info = {"valid": layer.isValid()}
        if layer.isValid():
            info["read"] = _count(layer)
            info["crs"] = layer.crs().authid()
        out["collections"][coll] = info
    out["messages"] = messages
    layer = None  # no layer may outlive the application (PyQGIS crashes on exit otherwise)
    print(json.dumps(out, ensure_ascii=False), flush=True)
    app.exitQgis()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: PyQGIS 3.22 may crash there after a clean run
