# Shared by the .ci/ install scripts (source it): Debian packages installed quietly, with retries.
#   apt_install LOG PACKAGE...   apt-get update (3 tries) then install without recommends; output in LOG,
#                                its tail printed on failure; exits 1 with a message when it cannot.

apt_install() {
    local log_file=$1
    shift
    command -v apt-get >/dev/null || { printf 'apt.sh: apt-get not found: install %s by hand\n' "$*" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { printf 'apt.sh: installing Debian packages needs root\n' >&2; exit 1; }
    local i ok=""
    for i in 1 2 3; do
        if apt-get update -qq -o DPkg::Lock::Timeout=300 >"$log_file" 2>&1; then ok=1; break; fi
        cat "$log_file" >&2
        printf 'apt.sh: apt-get update failed (attempt %s), retrying\n' "$i" >&2
        sleep $((i * 5))
    done
    [ -n "$ok" ] || { printf 'apt.sh: apt-get update failed\n' >&2; exit 1; }
    printf 'apt.sh: installing %s (apt-get output in %s)\n' "$*" "$log_file" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "$@" >"$log_file" 2>&1; then
        tail -n 40 "$log_file" >&2
        printf 'apt.sh: apt-get install %s failed\n' "$*" >&2
        exit 1
    fi
}
