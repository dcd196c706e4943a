#!/usr/bin/env bash
# The router's compiled modules (the prefix indexes' structures,
# router/scheduling/producers/_holder_map.c, and the scheduler's score sum,
# router/scheduling/_score_sum.c) under AddressSanitizer and UBSan: builds them so in
# place of the normal builds, runs their tests (any memory error or undefined behaviour
# aborts them), then puts the normal builds back. The score sum is built without its
# AVX2 clone here, so its baseline code is the one tested (the normal build's tests run
# the clone this machine picks). Needs gcc and an installed checkout (pip install -e .).
set -euo pipefail
cd "$(dirname "$0")/.."

include=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
backups=$(mktemp -d)
modules=()  # the modules replaced, each backed up as $backups/<index>
restore() {
    for i in "${!modules[@]}"; do
        cp "$backups/$i" "${modules[$i]}"
    done
    rm -rf "$backups"
}
trap restore EXIT

# build NAME SOURCE [gcc flags...]: the sanitized build in place of module NAME's.
build() {
    local name=$1 source=$2 module
    shift 2
    module=$(python -c "import $name as m; print(m.__file__)")
    cp "$module" "$backups/${#modules[@]}"
    modules+=("$module")
    gcc -shared -fPIC -O1 -g -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=undefined \
        "$@" -I"$include" "$source" -o "$module"
}
build triskel.router.scheduling.producers._holder_map router/scheduling/producers/_holder_map.c
build triskel.router.scheduling._score_sum router/scheduling/_score_sum.c \
    -ffp-contract=off -DTRISKEL_NO_CLONES

# Python's own allocations are not this code's: leaks are not checked. --capture=sys: a
# report goes to file descriptor 2, which pytest's default capture would swallow.
ASAN_OPTIONS=detect_leaks=0 \
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
TRISKEL_REQUIRE_COMPILED=1 \
    python -m pytest -q -p no:cacheprovider --capture=sys \
        tests/router/scheduling/producers/ tests/router/scheduling/test_score_sum.py
