#!/usr/bin/env bash
# Puts the peer routers Triskel is compared with and tested against into a venv of their
# own, .peers/ (git-ignored): SGLang's model gateway (`smg`, PyPI sglang-router) and
# vLLM's router (`vllm-router`, PyPI vllm-router). Both wheels carry a Rust binary; their
# own venv keeps their Python dependencies away from Triskel's.
# Idempotent: when both commands are present at the pinned versions, nothing is done.
set -euo pipefail
cd "$(dirname "$0")/.."

SGLANG_ROUTER="sglang-router==0.3.2"
VLLM_ROUTER="vllm-router==0.1.17"
VENV=".peers"

# -I: the repo root must not go on sys.path (its operator/ folder shadows the stdlib's).
pip() { "$VENV/bin/python" -I -m pip "$@"; }
installed_version() { pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }

is_installed() {
    [ -x "$VENV/bin/smg" ] && [ -x "$VENV/bin/vllm-router" ] \
        && [ "$(installed_version sglang-router)" = "${SGLANG_ROUTER#*==}" ] \
        && [ "$(installed_version vllm-router)" = "${VLLM_ROUTER#*==}" ]
}

if is_installed; then
    echo "$SGLANG_ROUTER and $VLLM_ROUTER already in $VENV"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    (cd / && python3 -m venv "$OLDPWD/$VENV")
fi
pip install -q --disable-pip-version-check "$SGLANG_ROUTER" "$VLLM_ROUTER"

if ! is_installed; then
    echo "install_peer_routers.sh: expected $SGLANG_ROUTER and $VLLM_ROUTER with" \
        "$VENV/bin/smg and $VENV/bin/vllm-router after installing" >&2
    exit 1
fi
echo "installed $SGLANG_ROUTER and $VLLM_ROUTER into $VENV"
