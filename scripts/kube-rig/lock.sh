# Sourced by the rig scripts: the pinned Debian package versions (debian-packages.lock).
# A section per suite ([bookworm], [bullseye], [sid]) of "name=version" lines; the
# `kubernetes-source` line pins the *source* package `kubernetes`.
LOCK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/debian-packages.lock"

# pinned SUITE: the "name=version" lines of that suite's section.
pinned() {
  awk -v want="[$1]" '/^\[/ {suite = $0; next} suite == want && NF && !/^#/ {print}' "$LOCK"
}

# require_served SUITE PINS REFRESH [apt options...]: fails naming every pin of PINS (lines
# "name=version" of the lock's [SUITE]) that the archive, as apt's lists read with those
# options see it, no longer serves. Old versions vanish: sid's at every upload, stable's at
# point releases. Never falls back to another version.
require_served() {
  local suite="$1" pins="$2" refresh="$3"; shift 3
  local names served missing
  pins=$(echo "$pins" | sed 's/^kubernetes-source=/kubernetes=/')   # madison names it so
  names=$(echo "$pins" | sed 's/=.*//')
  # shellcheck disable=SC2086
  served=$(apt-cache "$@" madison $names 2>/dev/null \
    | awk -F'|' '{gsub(/ /, "", $1); gsub(/ /, "", $2); print $1 "=" $2}')
  missing=$(echo "$pins" | grep -vxF -f <(echo "$served") || true)
  [ -z "$missing" ] && return 0
  {
    echo "kube-rig: Debian's archive stopped serving $(echo "$missing" | wc -l) version(s) pinned in $LOCK [$suite]:"
    echo "$missing" | while IFS='=' read -r name version; do
      now=$(echo "$served" | sed -n "s/^$name=//p" | paste -sd' ' -)
      echo "  $name=$version (the archive now serves: ${now:-no version at all})"
    done
    echo "kube-rig: refresh the pins with '$refresh', rebuild, run 'pytest -m realapi', commit the lock."
  } >&2
  return 1
}

# fetch_pinned WHAT CMD...: runs an apt-get download of pins require_served has checked;
# a failure here is the network or the mirror, shown with apt's own errors.
fetch_pinned() {
  local what="$1"; shift
  local err; err=$(mktemp)
  if ! "$@" >/dev/null 2>"$err"; then
    echo "kube-rig: downloading the pinned $what failed:" >&2
    grep -v unsandboxed "$err" >&2 || true
    rm -f "$err"; return 1
  fi
  rm -f "$err"
}

# lock_write SUITE FILE: replaces SUITE's section of the lock with FILE's lines (appended
# when the section is missing); the other sections stay as they are.
lock_write() {
  awk -v want="[$1]" -v new="$2" '
    function put() { print want; while ((getline line < new) > 0) print line; done = 1 }
    /^\[/ { skip = 0; if ($0 == want) { put(); skip = 1; next } }
    !skip
    END { if (!done) put() }' "$LOCK" > "$LOCK.new"
  mv "$LOCK.new" "$LOCK"
  echo "rewrote [$1] in $LOCK ($(wc -l < "$2") pins)"
}

# candidates NAME... [-- apt options...]: "name=version" of what apt would take today, one
# line per name; fails naming a package apt has no candidate for.
candidates() {
  local names=() found
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do names+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  found=$(apt-cache "$@" policy "${names[@]}" \
    | awk '/^[^ ]/ {name = $1; sub(/:$/, "", name)} /Candidate:/ && $2 != "(none)" {print name "=" $2}')
  local name
  for name in "${names[@]}"; do
    echo "$found" | grep -q "^$name=" || { echo "kube-rig lock: apt has no version of $name" >&2; return 1; }
  done
  echo "$found"
}
