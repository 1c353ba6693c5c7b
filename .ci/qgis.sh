#!/usr/bin/env bash
# QGIS for Zeren's desktop-GIS interoperability tests (tests/test_qgis.py), from Debian's packages.
#
#   .ci/qgis.sh install   install Debian's qgis, python3-qgis (the PyQGIS bindings for /usr/bin/python3)
#                             and gdal-bin (ogrinfo) with --no-install-recommends when missing; idempotent
#   .ci/qgis.sh check     print the QGIS version PyQGIS reports (proves the bindings import headless)
#
# Debian 12 ships QGIS 3.22 LTR on GDAL 3.6: the versions planners' desktops run. Seen here: run headless
# with QT_QPA_PLATFORM=offscreen; Debian's /usr/bin/qgis_process wrapper adds --noversioncheck, which
# qgis_process 3.22 rejects, so call /usr/bin/qgis_process.bin; put the system python3 first on PATH
# (qgis_process embeds Python and takes its home from the first python3 there).
set -euo pipefail
# shellcheck source=.ci/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(qgis python3-qgis gdal-bin)
APT_LOG=${TMPDIR:-/tmp}/zeren-qgis-apt.log

log() { printf 'qgis.sh: %s\n' "$*" >&2; }
die() { printf 'qgis.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

cmd_install() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "qgis already installed"
        return 0
    fi
    apt_install "$APT_LOG" "${missing[@]}"
    [ -x /usr/bin/qgis_process ] || die "/usr/bin/qgis_process missing after install"
    log "installed ${missing[*]}"
}

cmd_check() {
    [ -x /usr/bin/python3 ] || die "/usr/bin/python3 missing"
    local out
    out=$(QT_QPA_PLATFORM=offscreen timeout 120 /usr/bin/python3 -c \
        'from qgis.core import Qgis; print(Qgis.version())' 2>&1) \
        || die "PyQGIS does not import (run: .ci/qgis.sh install): $out"
    echo "QGIS ${out##*$'\n'}"
}

[ $# -eq 1 ] || usage
case "$1" in
    install) cmd_install ;;
    check) cmd_check ;;
    *) usage ;;
esac
