#!/usr/bin/env bash
# The prefix indexes' compiled structures (router/scheduling/producers/_holder_map.c)
# under AddressSanitizer and UBSan: builds them so in place of the normal build, runs
# their tests (any memory error or undefined behaviour aborts them), then puts the
# normal build back. Needs gcc and an installed checkout (pip install -e .).
set -euo pipefail
cd "$(dirname "$0")/.."

module=$(python -c "import triskel.router.scheduling.producers._holder_map as m; print(m.__file__)")
backup=$(mktemp)
cp "$module" "$backup"
trap 'cp "$backup" "$module"; rm -f "$backup"' EXIT

include=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
gcc -shared -fPIC -O1 -g -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=undefined \
    -I"$include" router/scheduling/producers/_holder_map.c -o "$module"

# Python's own allocations are not this code's: leaks are not checked. --capture=sys: a
# report goes to file descriptor 2, which pytest's default capture would swallow.
ASAN_OPTIONS=detect_leaks=0 \
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
TRISKEL_REQUIRE_COMPILED=1 \
    python -m pytest -q -p no:cacheprovider --capture=sys tests/router/scheduling/producers/
