#!/usr/bin/env bash
# Build Zeren's wheel and use it, installed in a fresh venv, from a directory that is not the checkout:
#
#   .ci/wheel.sh            build (pip wheel, isolated build as a user's pip does it), install, smoke-test
#
# The venv sees the system site-packages (the dependencies are already installed there: no download) and gets
# the wheel with --no-deps --force-reinstall; the script checks that `zeren` then comes from the venv's
# site-packages, not from an editable install of a checkout. Smoke test: `zeren demo`, `zeren lookup`,
# `python -m zeren --help`, an offline map page, a life-circle check with the shipped default tables, and
# `zeren serve` answering /lookup, /docs, /maps/coverage and a map asset. Exits nonzero on the first failure.
# Run after the dependencies are installed (.ci/run: after pip-install).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd -P)
PY=${PYTHON:-python3}

log() { printf 'wheel.sh: %s\n' "$*" >&2; }
die() { printf 'wheel.sh: FAILED: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/zeren-wheel.XXXXXX)
SERVER_PID=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# 1. Build from a copy of the sources: no build/ or egg-info in the checkout, no stale build/ folder in the wheel.
mkdir "$WORK/src" "$WORK/dist" "$WORK/elsewhere"
TOPS=$("$PY" -c 'import tomllib; t = tomllib.load(open("pyproject.toml", "rb"))
print(" ".join(sorted({d.split("/")[0] for d in t["tool"]["setuptools"]["package-dir"].values()})))')
# shellcheck disable=SC2086  # TOPS is a list of folder names
tar -C "$REPO" --exclude=__pycache__ --exclude='*.egg-info' --exclude='*.gpkg-journal' -cf - \
    pyproject.toml README.md $TOPS | tar -C "$WORK/src" -xf -
log "building the wheel"
"$PY" -m pip wheel --no-deps -q "$WORK/src" -w "$WORK/dist" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; die "pip wheel"; }
WHEEL=$(ls "$WORK"/dist/zeren-*.whl)
log "built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

# 2. A fresh venv; the wheel must win over any editable install in the system site-packages.
"$PY" -m venv --system-site-packages "$WORK/venv" || die "$PY -m venv (on Debian: apt-get install python3-venv)"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --no-deps --force-reinstall "$WHEEL" >"$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log" >&2; die "pip install of the wheel"; }
export PATH="$WORK/venv/bin:$PATH"
unset ZEREN_STORE ZEREN_POIS_FILE ZEREN_NETWORK_FILE
cd "$WORK/elsewhere"

SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$VPY" - "$SITE" "$REPO" <<'EOF' || die "zeren does not come from the venv's site-packages"
import sys
from pathlib import Path

import zeren
import zeren.maps.assets as assets
from zeren.layers.resources import data_file

site, repo = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
paths = [Path(zeren.__file__), data_file("chengdu_hangzhou.gpkg"), data_file("facility_categories.csv"),
         assets.STATIC_DIR / "zeren-maps.js"]
for p in paths:
    p = p.resolve()
    print(f"  {p}")
    if not p.is_relative_to(site) or p.is_relative_to(repo):
        sys.exit(f"{p}: not inside {site}")
EOF
[ "$(command -v zeren)" = "$WORK/venv/bin/zeren" ] || die "the zeren command is $(command -v zeren), not the venv's"

# 3. The command line.
run() { log "\$ $*"; "$@" >"$WORK/out.log" 2>&1 || { cat "$WORK/out.log" >&2; die "$*"; }; }
run python -m zeren --help
run zeren demo --store demo.gpkg
run zeren lookup --lon 104.0657 --lat 30.6570 --store demo.gpkg --json
grep -q '"lead"' "$WORK/out.log" || die "zeren lookup answered no lead"
run zeren map coverage --store demo.gpkg --out coverage.html
[ -s coverage.html ] || die "zeren map coverage wrote nothing"
PBF="$SITE/zeren/data/helsinki.osm.pbf"
printf 'id,name,lon,lat\nK1,Kaisaniemi,24.9440,60.1700\n' >centres.csv
run zeren life-circles generate centres.csv --crs wgs84 --network "$PBF" --minutes 15 --out circles.gpkg
run zeren life-circles check circles.gpkg --pois "$PBF" --out check.gpkg   # default category + OSM tables

# 4. The server, on a free port.
PORT=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
zeren serve --store demo.gpkg --port "$PORT" --no-access-log >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
"$VPY" - "$PORT" <<'EOF' || { cat "$WORK/serve.log" >&2; die "zeren serve"; }
import sys
import time
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(120):
    try:
        urllib.request.urlopen(base + "/openapi.json", timeout=2)
        break
    except OSError:
        time.sleep(0.25)
checks = {"/lookup?lon=104.0657&lat=30.6570": b'"lead"', "/docs": b"swagger", "/maps/coverage": b"<html",
          "/static/swagger/swagger-ui-bundle.js": b"", "/static/maps/zeren-maps.js": b"",
          "/static/maps/leaflet/leaflet.js": b""}
for path, needle in checks.items():
    with urllib.request.urlopen(base + path, timeout=30) as r:
        body = r.read()
        if r.status != 200 or not body or needle.lower() not in body.lower():
            sys.exit(f"GET {path}: {r.status}, {len(body)} bytes, no {needle!r}")
    print(f"  GET {path}: 200, {len(body)} bytes")
EOF
log "ok: the wheel installs and runs outside the checkout"
