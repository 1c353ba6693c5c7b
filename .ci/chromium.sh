#!/usr/bin/env bash
# Headless Chromium for Zeren's browser tests and screenshots (Debian packages).
#
#   .ci/chromium.sh install   install Debian's chromium plus fonts (fonts-noto-cjk so Chinese labels
#                                 render, fonts-liberation for Latin text; fontconfig to list them) when
#                                 missing; idempotent
#   .ci/chromium.sh check     check that a CJK font is installed (fc-list :lang=zh), then take a headless
#                                 screenshot of a local file to prove the browser runs
#
# Flags that work here (root, no GPU, no network but the package mirrors):
#   chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
#            --disable-background-networking --disable-component-update --disable-sync \
#            --user-data-dir="$(mktemp -d)" --screenshot=out.png URL
# (seen here: --window-size=400,100 gives a blank screenshot; 500,200 and larger render.)
set -euo pipefail
# shellcheck source=.ci/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(chromium fonts-noto-cjk fonts-liberation fontconfig poppler-utils)  # poppler-utils: pdftoppm checks the PDF reports
APT_LOG=${TMPDIR:-/tmp}/zeren-chromium-apt.log

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
die() { printf 'chromium.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

browser() { command -v chromium || command -v chromium-browser || true; }

cmd_install() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ] && [ -n "$(browser)" ]; then
        log "chromium and fonts already installed ($(browser))"
        return 0
    fi
    [ ${#missing[@]} -gt 0 ] || missing=(chromium)
    apt_install "$APT_LOG" "${missing[@]}"
    [ -n "$(browser)" ] || die "chromium not on PATH after install"
    log "installed: $("$(browser)" --version 2>/dev/null || echo chromium)"
}

cmd_check() {
    local bin tmp rc=0
    bin=$(browser)
    [ -n "$bin" ] || die "chromium is not installed; run: .ci/chromium.sh install"
    # Without a CJK font Chinese labels render as empty boxes, which the pixel test below cannot tell from text.
    command -v fc-list >/dev/null || die "fc-list not found (package fontconfig); run: .ci/chromium.sh install"
    [ -n "$(fc-list :lang=zh family)" ] || die "no Chinese (CJK) font installed; run: apt-get install fonts-noto-cjk"
    log "CJK font: $(fc-list :lang=zh family | sort | head -n 1)"
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    printf '<!doctype html><meta charset="utf-8"><body style="font:32px sans-serif">责任规划师 Zeren</body>\n' \
        >"$tmp/page.html"
    timeout 120 "$bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$tmp/profile" --window-size=600,300 --screenshot="$tmp/shot.png" \
        "file://$tmp/page.html" >"$tmp/out.log" 2>&1 || rc=$?
    if [ $rc -ne 0 ] || [ ! -s "$tmp/shot.png" ]; then
        cat "$tmp/out.log" >&2
        die "headless screenshot failed (exit $rc)"
    fi
    # A blank page decodes to a handful of byte values; rendered (anti-aliased) text to many.
    python3 - "$tmp/shot.png" <<'PY' || die "headless screenshot is blank: text did not render"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if kind == b"IDAT":
        idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
sys.exit(0 if len(set(zlib.decompress(idat))) > 8 else 1)
PY
    log "headless screenshot ok ($(stat -c %s "$tmp/shot.png") bytes, $("$bin" --version 2>/dev/null))"
}

[ $# -eq 1 ] || usage
case "$1" in
    install) cmd_install ;;
    check) cmd_check ;;
    *) usage ;;
esac
