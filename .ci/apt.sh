# Shared by the .ci/ install scripts (source it): Debian packages installed quietly, with retries.
#   apt_update LOG               apt-get update (3 tries; once per script run); output in LOG; exits 1 when it
#                                cannot (also when apt-get is missing or we are not root)
#   apt_install LOG PACKAGE...   apt_update, then install without recommends; output in LOG, its tail printed
#                                on failure; exits 1 with a message when it cannot.

APT_UPDATED=""

apt_update() {
    local log_file=$1
    [ -z "$APT_UPDATED" ] || return 0
    command -v apt-get >/dev/null || { printf 'apt.sh: apt-get not found: install the packages by hand\n' >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { printf 'apt.sh: installing Debian packages needs root\n' >&2; exit 1; }
    local i
    for i in 1 2 3; do
        if apt-get update -qq -o DPkg::Lock::Timeout=300 >"$log_file" 2>&1; then APT_UPDATED=1; return 0; fi
        cat "$log_file" >&2
        printf 'apt.sh: apt-get update failed (attempt %s), retrying\n' "$i" >&2
        sleep $((i * 5))
    done
    printf 'apt.sh: apt-get update failed\n' >&2
    exit 1
}

apt_install() {
    local log_file=$1
    shift
    apt_update "$log_file"
    printf 'apt.sh: installing %s (apt-get output in %s)\n' "$*" "$log_file" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "$@" >"$log_file" 2>&1; then
        tail -n 40 "$log_file" >&2
        printf 'apt.sh: apt-get install %s failed\n' "$*" >&2
        exit 1
    fi
}
