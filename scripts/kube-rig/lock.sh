# Sourced by the rig scripts: the pinned Debian package versions (debian-packages.lock).
LOCK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/debian-packages.lock"

# pinned SUITE: the "name=version" lines of that suite's section.
pinned() {
  awk -v want="[$1]" '/^\[/ {suite = $0; next} suite == want && NF && !/^#/ {print}' "$LOCK"
}

# fetch_pinned WHAT CMD...: runs an apt-get download; on failure, says which pin the
# archive no longer serves and stops (never a silent fallback to another version).
fetch_pinned() {
  local what="$1"; shift
  local err; err=$(mktemp)
  if ! "$@" >/dev/null 2>"$err"; then
    echo "kube-rig: Debian's archive no longer serves a version pinned in $LOCK ($what):" >&2
    grep -v unsandboxed "$err" | grep -iE "not found|unable|E:" | head -5 >&2 || cat "$err" >&2
    echo "kube-rig: refresh the pins (see scripts/kube-rig/README.md) and rebuild." >&2
    rm -f "$err"; return 1
  fi
  rm -f "$err"
}
