#!/usr/bin/env bash
# Local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager)
# on 127.0.0.1 only, from package registries only:
#   etcd            <- Debian apt package etcd-server (3.4.23, bookworm), extracted, no service
#   kube-apiserver,
#   kube-controller-manager <- built from Debian's *source* package "kubernetes"
#                    (1.20.5+really1.20.2, bookworm, full vendored tree) with Go 1.15
#                    from Debian bullseye's golang-1.15-go (extracted, not installed)
#
#   rig.sh install   # fetch + build into $RIG_DIR/bin (skips what exists)
#   rig.sh start     # start all three, write $RIG_DIR/run/kubeconfig, wait for ready
#   rig.sh stop      # stop by recorded PIDs
#   rig.sh lock      # re-resolve the [bookworm] and [bullseye] pins of debian-packages.lock
set -euo pipefail
# shellcheck source=lock.sh
. "$(dirname "${BASH_SOURCE[0]}")/lock.sh"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

RIG_DIR="${RIG_DIR:-$HOME/.cache/triskel-rig}"   # binaries and run state live outside the repo
BIN="$RIG_DIR/bin"
RUN="$RIG_DIR/run"
WORK="${RIG_WORK:-/tmp/rig-build}"
ETCD_PORT="${ETCD_PORT:-23790}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-23800}"
API_PORT="${API_PORT:-16443}"
KCM_PORT="${KCM_PORT:-16257}"
TOKEN="${RIG_TOKEN:-rig-admin-token-0123456789}"

REFRESH="bash scripts/kube-rig/rig-1.20.sh lock"

# private apt config: Debian bookworm deb-src + bullseye (for Go 1.15); system sources untouched.
# Sets O (apt options) for the caller.
apt_private() {
  local A="$WORK/apt"
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
  # the machine's own Debian mirror, read from its apt sources (never hard-coded here)
  local M
  M=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  [ -n "$M" ] || M=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$M" ] || { echo "no Debian mirror found in the apt sources" >&2; return 1; }
  cat > "$A/sources.list" <<EOS
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $M bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $M bullseye main
EOS
  O=(-o "Dir::Etc::sourcelist=$A/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
     -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache")
}

install() {
  mkdir -p "$BIN" "$WORK"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # Build-Depends of Debian's kubernetes source package (rsync, jq) + openssl/curl for the rig
  as_root apt-get install -y -qq --no-install-recommends rsync jq openssl curl dpkg-dev >/dev/null
  local O; apt_private

  if [ ! -x "$BIN/etcd" ]; then          # etcd 3.4.23 from bookworm, extracted (no service started)
    # (the machine's own apt sources, as before pinning: bookworm, its updates and security)
    require_served bookworm "$(pinned bookworm | grep '^etcd-')" "$REFRESH"
    # shellcheck disable=SC2046
    ( cd "$WORK" && fetch_pinned "bookworm etcd" apt-get download $(pinned bookworm | grep '^etcd-') \
      && for d in etcd-server_*.deb etcd-client_*.deb; do dpkg-deb -x "$d" "$WORK/etcd-root"; done )
    cp "$WORK/etcd-root/usr/bin/etcd" "$WORK/etcd-root/usr/bin/etcdctl" "$BIN/"
  fi

  if [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kube-controller-manager" ]; then
    apt-get "${O[@]}" update -qq
    require_served bookworm "$(pinned bookworm | grep '^kubernetes-source=')" "$REFRESH" "${O[@]}"
    require_served bullseye "$(pinned bullseye)" "$REFRESH" "${O[@]}"
    # Go 1.15 (the toolchain k8s 1.20 was released with) from bullseye, extracted.
    # Go >= 1.18 builds but kube-apiserver then crashes ("fatal error: fault" in reflect2 map iteration).
    # shellcheck disable=SC2046
    ( cd "$WORK" && fetch_pinned "bullseye Go 1.15" apt-get "${O[@]}" download $(pinned bullseye) \
      && for d in golang-1.15-*.deb; do dpkg-deb -x "$d" "$WORK/go-root"; done )
    local K8S_VERSION; K8S_VERSION=$(pinned bookworm | sed -n 's/^kubernetes-source=//p')
    ( cd "$WORK" && rm -rf k8s \
      && fetch_pinned "bookworm kubernetes source" apt-get "${O[@]}" source --download-only "kubernetes=$K8S_VERSION" \
      && dpkg-source -x kubernetes_*.dsc k8s >/dev/null )
    ( cd "$WORK/k8s" && env -u GOPATH -u GOFLAGS -u GO111MODULE HOME="$WORK/home" \
        GOROOT="$WORK/go-root/usr/lib/go-1.15" PATH="$WORK/go-root/usr/lib/go-1.15/bin:$PATH" \
        GOCACHE="$WORK/gocache" CGO_ENABLED=0 \
        KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean GOLDFLAGS="-s -w" \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" )
    cp "$WORK/k8s/_output/bin/kube-apiserver" "$WORK/k8s/_output/bin/kube-controller-manager" "$BIN/"
  fi
  # (sed, not head: head closes the pipe early and etcd dies of SIGPIPE, exit 141 under pipefail)
  "$BIN/etcd" --version | sed -n 1p; "$BIN/kube-apiserver" --version
}

certs() {
  mkdir -p "$RUN/pki"
  cd "$RUN/pki"
  [ -f sa.key ] || openssl genrsa -out sa.key 2048 2>/dev/null
  [ -f sa.pub ] || openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  if [ ! -f apiserver.crt ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout apiserver.key -out apiserver.crt \
      -subj "/CN=kube-apiserver" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
      -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
  fi
  echo "$TOKEN,rig-admin,rig-admin,system:masters" > tokens.csv
}

kubeconfig() {
  cat > "$RUN/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rig
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $RUN/pki/apiserver.crt
users:
- name: rig-admin
  user:
    token: $TOKEN
contexts:
- name: rig
  context: {cluster: rig, user: rig-admin}
current-context: rig
EOF
}

start() {
  mkdir -p "$RUN"
  certs; kubeconfig
  rm -rf "$RUN/etcd-data"
  "$BIN/etcd" --name rig --data-dir "$RUN/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "rig=http://127.0.0.1:$ETCD_PEER_PORT" >"$RUN/etcd.log" 2>&1 &
  echo $! > "$RUN/etcd.pid"
  for _ in $(seq 1 100); do
    "$BIN/etcdctl" --endpoints "http://127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && break; sleep 0.1
  done

  "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$RUN/pki/apiserver.crt" --tls-private-key-file "$RUN/pki/apiserver.key" \
    --token-auth-file "$RUN/pki/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$RUN/pki/sa.pub" --service-account-signing-key-file "$RUN/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
    --disable-admission-plugins ServiceAccount \
    >"$RUN/apiserver.log" 2>&1 &
  echo $! > "$RUN/apiserver.pid"
  for _ in $(seq 1 600); do
    curl -sfk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
  done

  # CRDs applied before the controller-manager starts are watched by its garbage collector at once;
  # CRDs created later are picked up by its 30 s discovery resync (GC of CR-owned objects lags until then).
  if [ -n "${RIG_CRDS:-}" ]; then
    kubectl --kubeconfig "$RUN/kubeconfig" apply --validate=false -f "$RIG_CRDS" >/dev/null
    # A CRD the server has not given conditions yet makes kubectl 1.32's wait fail at once
    # against this 1.20 server ("status.conditions accessor error"), not wait: try again.
    # At most ~60 s in all; the last try's error is the one shown.
    for _ in $(seq 1 40); do
      kubectl --kubeconfig "$RUN/kubeconfig" wait --for condition=established --timeout=1s \
        crd --all >/dev/null 2>&1 && break
      sleep 0.5
    done
    kubectl --kubeconfig "$RUN/kubeconfig" wait --for condition=established --timeout=5s crd --all >/dev/null
  fi
  "$BIN/kube-controller-manager" \
    --kubeconfig "$RUN/kubeconfig" --authentication-kubeconfig "$RUN/kubeconfig" --authorization-kubeconfig "$RUN/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --port 0 --leader-elect=false \
    --service-account-private-key-file "$RUN/pki/sa.key" --root-ca-file "$RUN/pki/apiserver.crt" \
    --use-service-account-credentials=false --controllers '*' \
    >"$RUN/controller-manager.log" 2>&1 &
  echo $! > "$RUN/controller-manager.pid"
  for _ in $(seq 1 300); do
    curl -sfk "https://127.0.0.1:$KCM_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1
  done
  echo "export KUBECONFIG=$RUN/kubeconfig"
}

lock() {  # re-resolve [bookworm] and [bullseye] at today's versions and rewrite them
  mkdir -p "$WORK"
  local O T; apt_private; T=$(mktemp)
  as_root apt-get update -qq; apt-get "${O[@]}" update -qq
  { candidates etcd-client etcd-server
    apt-cache "${O[@]}" madison kubernetes \
      | awk -F'|' '/Sources/ {gsub(/ /, "", $2); print "kubernetes-source=" $2; exit}'; } > "$T"
  grep -q '^kubernetes-source=' "$T" || { echo "kube-rig lock: bookworm serves no kubernetes source" >&2; return 1; }
  lock_write bookworm "$T"
  candidates golang-1.15-go golang-1.15-src -- "${O[@]}" > "$T"
  lock_write bullseye "$T"
  rm -f "$T"
}

stop() {
  for c in controller-manager apiserver etcd; do
    if [ -f "$RUN/$c.pid" ]; then
      pid=$(cat "$RUN/$c.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$RUN/$c.pid"
    fi
  done
}

"${1:-start}"
