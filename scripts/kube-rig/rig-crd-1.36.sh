#!/usr/bin/env bash
# A modern Kubernetes CRD API server (1.36) + etcd on 127.0.0.1 only, from Debian's archive only.
#
# What it is: k8s.io/apiextensions-apiserver 0.36.x -- the CustomResourceDefinition half of
# kube-apiserver 1.36 (same Go code that kube-apiserver embeds: structural schemas, defaulting,
# pruning, CEL x-kubernetes-validations incl. transition rules, scale/status subresources,
# server-side apply, field validation) -- built from Debian sid's golang-k8s-apiextensions-apiserver-dev
# and its golang-*-dev dependencies (GOPATH mode, GO111MODULE=off, GOPROXY=off, as dh-golang does)
# with Debian sid's Go toolchain (golang-1.NN-go, extracted, not installed), plus a ~100-line main
# (crd-apiserver) that adds what kube-apiserver's aggregator normally supplies:
#   * /apis discovery (so kubectl works), OpenAPI v2+v3 incl. the CRD OpenAPI controllers,
#   * --token-auth-file (static bearer tokens, kube-apiserver's CSV format),
#   * no Service informer (there is no core API behind it).
# etcd: Debian sid's etcd-server (3.5.x), extracted, no service.
#
# What it is NOT: a full kube-apiserver. Standalone (`start`) there is no /api (core v1), no apps/v1,
# no RBAC, no namespaces API, no kube-controller-manager: Debian packages none of k8s.io/kubernetes
# (cmd/kube-apiserver, pkg/...) past 1.20 -- the kubernetes source package 1.32.3+ds / 1.36.x+ds is
# repacked to kubectl only, and no binary package ships kube-apiserver. `start-hybrid` puts rig-1.20.sh's
# kube-apiserver/KCM 1.20.2 in front for core/apps/RBAC/GC: CEL is then real, Deployments are 1.20's
# (lifecycle.preStop.sleep is refused). Debian sid only: trixie/forky lack
# golang-k8s-apiextensions-apiserver-dev. sid moves: `install` prints the versions it took
# (verified 2026-12-05: golang-k8s-apiextensions-apiserver-dev 0.36.4-1, golang-k8s-apiserver-dev
# 0.36.4-2, golang-1.27 1.27.3, etcd-server 3.5.30-2; 317 debs, ~270 MB).
#
#   rig-new.sh install   # fetch + build into $BIN (skips what exists)   ~5 min on 2 cores, no root apt install
#   rig-new.sh start     # etcd + crd-apiserver (<1 s), writes $RUN/kubeconfig; applies $RIG_CRDS if set
#   rig-new.sh check     # CEL checks against $MAIN_REPO/manifests (needs `start` and kubectl)
#   rig-new.sh stop      # stop by recorded PIDs
#   rig-new.sh lock      # re-resolve the [sid] pins of debian-packages.lock at today's versions
#   RIG_CRDS=crds.yaml rig-new.sh start-hybrid | check-hybrid | stop-hybrid   (~10 s to ready)
#                        # one endpoint: rig-1.20.sh's 1.20 kube-apiserver + KCM aggregating crd-apiserver
set -euo pipefail
# shellcheck source=lock.sh
. "$(dirname "${BASH_SOURCE[0]}")/lock.sh"

RIG_DIR="${RIG_DIR:-$HOME/.cache/triskel-rig}"
BIN="${RIG_NEW_BIN:-$RIG_DIR/bin-new}"
RUN="${RIG_NEW_RUN:-$RIG_DIR/run-new}"
WORK="${RIG_NEW_WORK:-/tmp/rig-new-build}"
ETCD_PORT="${ETCD_PORT:-23791}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-23801}"
API_PORT="${API_PORT:-16444}"
TOKEN="${RIG_TOKEN:-rig-admin-token-0123456789}"
MAIN_REPO="${MAIN_REPO:-$PWD}"
REFRESH="bash scripts/kube-rig/rig-crd-1.36.sh lock"

apt_opts() {  # private apt config: Debian sid deb + deb-src; system sources untouched
  local A="$WORK/apt"
  echo -o "Dir::Etc::sourcelist=$A/sources.list" -o "Dir::Etc::sourceparts=/nonexistent" \
       -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache"
}

install() {
  mkdir -p "$BIN" "$WORK"
  local A="$WORK/apt" M
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
  M=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$M" ] || M=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$M" ] || { echo "no Debian mirror found in the apt sources" >&2; return 1; }
  cat > "$A/sources.list" <<EOS
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $M sid main
EOS
  local O; read -ra O <<< "$(apt_opts)"
  apt-get "${O[@]}" update -qq
  apt-cache "${O[@]}" policy golang-k8s-apiextensions-apiserver-dev golang-k8s-apiserver-dev etcd-server golang-go \
    | awk '/^[a-z]/{p=$1} /Candidate/{print "  " p " " $2}'

  if [ ! -x "$BIN/etcd" ]; then
    require_served sid "$(pinned sid | grep '^etcd-')" "$REFRESH" "${O[@]}"
    mkdir -p "$WORK/etcd-debs"
    # shellcheck disable=SC2046
    ( cd "$WORK/etcd-debs" && fetch_pinned "sid etcd" apt-get "${O[@]}" download $(pinned sid | grep '^etcd-') \
      && for d in *.deb; do dpkg-deb -x "$d" "$WORK/etcd-root"; done )
    cp "$WORK/etcd-root/usr/bin/etcd" "$WORK/etcd-root/usr/bin/etcdctl" "$BIN/"
  fi

  if [ ! -x "$BIN/crd-apiserver" ]; then
    # every golang-*-dev that golang-k8s-apiextensions-apiserver-dev pulls in, plus the Go toolchain
    # it depends on (golang-1.NN-go/-src), downloaded (~270 MB) and extracted, not installed
    # the pinned closure (name=version; `lock` re-resolves it)
    local PKGS GOV
    PKGS=$(pinned sid | grep -v '^etcd-')
    GOV=$(echo "$PKGS" | grep -oE '^golang-1\.[0-9]+-go=' | head -1 | sed 's/^golang-//; s/-go=$//')
    echo "  $(echo "$PKGS" | wc -l) packages, Go $GOV"
    require_served sid "$PKGS" "$REFRESH" "${O[@]}"
    rm -rf "$WORK/debs" "$WORK/root"; mkdir -p "$WORK/debs" "$WORK/root"
    # shellcheck disable=SC2086
    ( cd "$WORK/debs" && fetch_pinned "sid closure of golang-k8s-apiextensions-apiserver-dev" \
        apt-get "${O[@]}" download $PKGS )
    for d in "$WORK"/debs/*.deb; do dpkg-deb -x "$d" "$WORK/root"; done
    local GR="$WORK/root/usr/lib/go-$GOV" SRC="$WORK/root/usr/share/gocode"
    local APIEXT_VER
    APIEXT_VER=$(dpkg-deb -f "$WORK"/debs/golang-k8s-apiextensions-apiserver-dev_*.deb Version | sed 's/-[^-]*$//')

    mkdir -p "$WORK/gopath/src/rignew/crd-apiserver"
    write_main > "$WORK/gopath/src/rignew/crd-apiserver/main.go"
    # version stamped as kube-apiserver's would be (k8s.io/* 0.MM.P <-> Kubernetes 1.MM.P)
    local V=k8s.io/component-base/version LDF
    LDF="-s -w -X $V.gitMajor=1 -X $V.gitMinor=$(echo "$APIEXT_VER" | cut -d. -f2) -X $V.gitVersion=v1.${APIEXT_VER#0.}"
    LDF="$LDF -X $V.gitCommit=debian-golang-k8s-apiextensions-apiserver-$APIEXT_VER -X $V.gitTreeState=clean"
    ( cd "$WORK" && env -u GOFLAGS -u GOPATH HOME="$WORK/home" GOROOT="$GR" PATH="$GR/bin:$PATH" \
        GOPATH="$WORK/gopath:$SRC" GO111MODULE=off GOPROXY=off GOTOOLCHAIN=local GOCACHE="$WORK/gocache" \
        CGO_ENABLED=0 go build -trimpath -ldflags "$LDF" -o "$BIN/crd-apiserver" rignew/crd-apiserver )
  fi
  # (sed, not head: head closes the pipe early and etcd dies of SIGPIPE, exit 141 under pipefail)
  "$BIN/etcd" --version | sed -n 1p
  "$BIN/crd-apiserver" --version
}

write_main() {
cat <<'EOF'
// crd-apiserver: Debian's k8s.io/apiextensions-apiserver (the CRD half of kube-apiserver, same
// code, incl. CEL x-kubernetes-validations) run standalone, with what kube-apiserver normally
// supplies around it: /apis discovery and OpenAPI v2+v3 (so kubectl works), a static bearer-token
// file (--token-auth-file, like kube-apiserver's), and no Service informer (no core API behind it).
package main

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	scheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/version/verflag"
	netutils "k8s.io/utils/net"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "crd-apiserver",
		Short: "apiextensions-apiserver with /apis discovery, OpenAPI and a static token file",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			verflag.PrintAndExitIfRequested()
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			// as options.Config(), but: OpenAPI v2 too (without it apiextensions runs no CRD OpenAPI
			// controller and kubectl's validation fails), and a webhook service resolver that needs
			// no Service informer
			if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
				return err
			}
			sc := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
			if err := o.ServerRunOptions.ApplyTo(&sc.Config); err != nil {
				return err
			}
			if err := o.RecommendedOptions.ApplyTo(sc); err != nil {
				return err
			}
			if err := o.APIEnablement.ApplyTo(&sc.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
				return err
			}
			defs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
			namer := openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme)
			sc.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer)
			sc.OpenAPIConfig.Info.Title = "Kubernetes"
			sc.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)
			sc.OpenAPIV3Config.Info.Title = "Kubernetes"
			if tokenFile != "" {
				ta, err := tokenfile.NewCSV(tokenFile)
				if err != nil {
					return fmt.Errorf("token file: %w", err)
				}
				sc.Authentication.Authenticator = union.New(bearertoken.New(ta), sc.Authentication.Authenticator)
			}
			cfg := &apiserver.Config{
				GenericConfig: sc,
				ExtraConfig: apiserver.ExtraConfig{
					CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*o.RecommendedOptions.Etcd, sc.ResourceTransformers, sc.StorageObjectCountTracker),
					ServiceResolver:      webhook.NewDefaultServiceResolver(),
					AuthResolverWrapper:  webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil, sc.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
				},
			}
			completed := cfg.Complete()
			// kube-apiserver's aggregator serves /apis; standalone, the generic server must
			completed.GenericConfig.EnableDiscovery = true
			server, err := completed.New(genericapiserver.NewEmptyDelegate())
			if err != nil {
				return err
			}
			return server.GenericAPIServer.PrepareRun().RunWithContext(c.Context())
		},
	}
	cmd.SetContext(ctx)
	fs := cmd.Flags()
	o.AddFlags(fs)
	verflag.AddFlags(fs)
	fs.StringVar(&tokenFile, "token-auth-file", "", "static bearer tokens, kube-apiserver's CSV format: token,user,uid,\"group1,group2\"")
	os.Exit(cli.Run(cmd))
}
EOF
}

certs() {
  mkdir -p "$RUN/pki"
  cd "$RUN/pki"
  if [ ! -f apiserver.crt ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout apiserver.key -out apiserver.crt \
      -subj "/CN=crd-apiserver" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
  fi
  echo "$TOKEN,rig-admin,rig-admin,system:masters" > tokens.csv
  # the delegated authn/authz/core kubeconfig points nowhere (as upstream's own integration
  # fixture does): tokens.csv authenticates; group system:masters is always authorized
  cat > "$RUN/nowhere.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "http://127.1.2.3:1"}}]
users: [{name: none, user: {}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
EOF
  cat > "$RUN/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rig-new
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: $RUN/pki/apiserver.crt}
users:
- name: rig-admin
  user: {token: $TOKEN}
contexts:
- name: rig-new
  context: {cluster: rig-new, user: rig-admin}
current-context: rig-new
EOF
}

start() {
  mkdir -p "$RUN"
  certs
  rm -rf "$RUN/etcd-data"
  "$BIN/etcd" --name rig-new --data-dir "$RUN/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "rig-new=http://127.0.0.1:$ETCD_PEER_PORT" >"$RUN/etcd.log" 2>&1 &
  echo $! > "$RUN/etcd.pid"
  for _ in $(seq 1 100); do
    "$BIN/etcdctl" --endpoints "http://127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && break; sleep 0.1
  done

  "$BIN/crd-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$RUN/pki/apiserver.crt" --tls-private-key-file "$RUN/pki/apiserver.key" \
    --token-auth-file "$RUN/pki/tokens.csv" \
    --authentication-skip-lookup --authentication-kubeconfig "$RUN/nowhere.kubeconfig" \
    --authorization-kubeconfig "$RUN/nowhere.kubeconfig" --kubeconfig "$RUN/nowhere.kubeconfig" \
    --disable-admission-plugins NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook \
    --enable-priority-and-fairness=false \
    >"$RUN/apiserver.log" 2>&1 &
  echo $! > "$RUN/apiserver.pid"
  for _ in $(seq 1 300); do
    curl -sf --cacert "$RUN/pki/apiserver.crt" -H "Authorization: Bearer $TOKEN" \
      "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
  done
  if [ -n "${RIG_CRDS:-}" ]; then
    kubectl --kubeconfig "$RUN/kubeconfig" apply -f "$RIG_CRDS" >/dev/null
    kubectl --kubeconfig "$RUN/kubeconfig" wait --for condition=established --timeout=60s crd --all >/dev/null
  fi
  echo "export KUBECONFIG=$RUN/kubeconfig"
}

check() {  # the CEL checks; standalone: namespaces need not exist (no core API, NamespaceLifecycle off)
  local KCRD=(kubectl --kubeconfig "${KC_CRD:-$RUN/kubeconfig}") K=(kubectl --kubeconfig "${KC_OBJ:-$RUN/kubeconfig}") T
  T=$(mktemp -d)
  "${K[@]}" version 2>/dev/null | grep Server
  for f in "$MAIN_REPO"/manifests/crds/*.yaml; do cat "$f"; echo '---'; done > "$T/crds.yaml"
  echo "== 1. the CRDs as they are"
  "${KCRD[@]}" apply -f "$T/crds.yaml" 2>&1 || true
  echo "== 2. workerpools CRD with spec.replicas default {} -> {min: 1, max: 1}"
  python3 - "$MAIN_REPO/manifests/crds/workerpools.triskel.io.yaml" "$T/wp.yaml" <<'PY'
import sys
s = open(sys.argv[1]).read()
old = "                type: object\n                default: {}\n                properties:\n                  min:"
assert s.count(old) == 1, "replicas block not found"
open(sys.argv[2], "w").write(s.replace(old, old.replace("default: {}", "default: {min: 1, max: 1}")))
PY
  "${KCRD[@]}" apply -f "$T/wp.yaml" 2>&1
  "${KCRD[@]}" wait --for condition=established --timeout=60s crd --all
  # hybrid: the 1.20 aggregator proxies a CRD group only once its APIService turned Available (seconds)
  "${K[@]}" wait --for condition=Available --timeout=60s apiservice -l '!kube-aggregator.kubernetes.io/automanaged' \
    >/dev/null 2>&1 || true
  echo "== 3. the valid example"
  "${K[@]}" apply -n default -f "$MAIN_REPO/manifests/examples/pd-mock.yaml" 2>&1 || echo "FAILED (rc=$?)"
  echo "== 4. WorkerPool with replicas.min 3 > max 2 (must be refused)"
  cat > "$T/bad.yaml" <<'EOF'
apiVersion: triskel.io/v1alpha1
kind: WorkerPool
metadata: {name: bad-pool}
spec:
  role: decode
  model: llama-3.1-8b
  engine: {type: mock}
  replicas: {min: 3, max: 2}
  resources: {cpu: "1", memory: 1Gi}
  kvConnector: {type: tcp}
  profile: {name: llama-3.1-8b-h100}
EOF
  if "${K[@]}" apply -n default -f "$T/bad.yaml" 2>&1; then echo "NOT REFUSED"; else echo "refused (rc=$?)"; fi
  echo "== 5. kubectl scale wp/llama-decode --replicas 9 (max 4: must be refused) and 3 (accepted)"
  "${K[@]}" scale -n default wp/llama-decode --replicas 9 2>&1 || echo "refused (rc=$?)"
  "${K[@]}" scale -n default wp/llama-decode --replicas 3 2>&1 || echo "FAILED (rc=$?)"
  echo "== 6. kvConnector nixl on a mock engine (must be refused)"
  sed 's/name: bad-pool/name: nixl-mock/; s/replicas: {min: 3, max: 2}/replicas: {min: 1, max: 2}/; s/type: tcp/type: nixl/' \
    "$T/bad.yaml" > "$T/nixl.yaml"
  "${K[@]}" apply -n default -f "$T/nixl.yaml" 2>&1 || echo "refused (rc=$?)"
  if [[ "$("${K[@]}" api-resources --api-group=apps 2>/dev/null || true)" == *deployments* ]]; then
    echo "== 7. Deployment with lifecycle.preStop.sleep (needs kube-apiserver >= 1.30; this one is $("${K[@]}" version 2>/dev/null | sed -n 's/Server Version: //p'))"
    cat > "$T/dep.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: prestop-sleep}
spec:
  selector: {matchLabels: {app: prestop-sleep}}
  template:
    metadata: {labels: {app: prestop-sleep}}
    spec:
      containers: [{name: c, image: busybox, lifecycle: {preStop: {sleep: {seconds: 5}}}}]
EOF
    "${K[@]}" apply -n default -f "$T/dep.yaml" 2>&1 || echo "refused (rc=$?)"
    "${K[@]}" apply -n default --validate=false -f "$T/dep.yaml" 2>&1 || echo "refused by the server too (rc=$?)"
  else
    echo "== 7. Deployment check skipped: this server has no apps/v1"
  fi
  rm -rf "$T"
}

# ---- hybrid: one endpoint (KUBECONFIG=$RUNH/kubeconfig). Debian bookworm's kube-apiserver 1.20.2 +
# kube-controller-manager 1.20.2 (rig-1.20.sh's binaries, $OLD_BIN) serve core/apps/RBAC/GC/namespaces;
# 1.20's own apiextensions is switched off (--runtime-config) and its aggregator routes
# apiextensions.k8s.io/v1 and each CRD group/version ($RIG_CRD_GROUPVERSIONS) through an ExternalName
# Service (localhost) to crd-apiserver 1.36, which stores the CRDs and custom resources and checks
# their CEL rules. `kubectl apply -f crds/` through the 1.20 endpoint therefore lands in 1.36.
# A CRD group/version not listed in $RIG_CRD_GROUPVERSIONS is served by no one through the 1.20 endpoint.
OLD_BIN="${OLD_BIN:-$RIG_DIR/bin}"
RUNH="${RIG_HYBRID_RUN:-$RIG_DIR/run-hybrid}"
HY_API_PORT="${HY_API_PORT:-16445}"; HY_CRD_PORT="${HY_CRD_PORT:-16446}"; HY_KCM_PORT="${HY_KCM_PORT:-16258}"
HY_ETCD_PORT="${HY_ETCD_PORT:-23792}"; HY_ETCD_PEER_PORT="${HY_ETCD_PEER_PORT:-23802}"

hy_sign() {  # name subject san(or "") eku -- signed by $RUNH/pki/ca
  [ -f "$1.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  { if [ -n "$3" ]; then echo "subjectAltName=$3"; fi; echo "extendedKeyUsage=$4"; } > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out "$1.crt" -extfile "$1.ext" 2>/dev/null
}

hy_certs() {
  mkdir -p "$RUNH/pki"; cd "$RUNH/pki"
  [ -f ca.key ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt -subj "/CN=rig-ca" 2>/dev/null
  [ -f sa.key ] || openssl genrsa -out sa.key 2048 2>/dev/null
  [ -f sa.pub ] || openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  hy_sign apiserver "/CN=kube-apiserver" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" serverAuth
  hy_sign crd-apiserver "/CN=crd-apiserver" "IP:127.0.0.1,DNS:localhost,DNS:crd-apiserver.kube-system.svc" serverAuth
  hy_sign front-proxy-client "/CN=front-proxy-client" "" clientAuth
  echo "$TOKEN,rig-admin,rig-admin,system:masters" > tokens.csv
  local k
  for k in kubeconfig:$HY_API_PORT crd.kubeconfig:$HY_CRD_PORT; do
    cat > "$RUNH/${k%%:*}" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: rig, cluster: {server: "https://127.0.0.1:${k##*:}", certificate-authority: $RUNH/pki/ca.crt}}]
users: [{name: rig-admin, user: {token: $TOKEN}}]
contexts: [{name: rig, context: {cluster: rig, user: rig-admin}}]
current-context: rig
EOF
  done
}

start-hybrid() {
  mkdir -p "$RUNH"; hy_certs; rm -rf "$RUNH/etcd-data"
  local P="$RUNH/pki" K=(kubectl --kubeconfig "$RUNH/kubeconfig")
  "$BIN/etcd" --name rig-hy --data-dir "$RUNH/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$HY_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$HY_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$HY_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$HY_ETCD_PEER_PORT" \
    --initial-cluster "rig-hy=http://127.0.0.1:$HY_ETCD_PEER_PORT" >"$RUNH/etcd.log" 2>&1 &
  echo $! > "$RUNH/etcd.pid"
  for _ in $(seq 1 100); do
    "$BIN/etcdctl" --endpoints "http://127.0.0.1:$HY_ETCD_PORT" endpoint health >/dev/null 2>&1 && break; sleep 0.1
  done
  "$OLD_BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$HY_ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$HY_API_PORT" \
    --tls-cert-file "$P/apiserver.crt" --tls-private-key-file "$P/apiserver.key" --client-ca-file "$P/ca.crt" \
    --token-auth-file "$P/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$P/sa.pub" --service-account-signing-key-file "$P/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
    --disable-admission-plugins ServiceAccount \
    --requestheader-client-ca-file "$P/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$P/front-proxy-client.crt" --proxy-client-key-file "$P/front-proxy-client.key" \
    --runtime-config apiextensions.k8s.io/v1=false,apiextensions.k8s.io/v1beta1=false \
    ${RIG_APISERVER_ARGS:-} \
    >"$RUNH/apiserver.log" 2>&1 &
  echo $! > "$RUNH/apiserver.pid"
  # (its own apiextensions is switched off: until the APIService below routes apiextensions.k8s.io
  # to crd-apiserver, its CRD informer cannot sync, so wait for readiness without those two checks)
  local X="exclude=poststarthook/crd-informer-synced&exclude=poststarthook/start-apiextensions-controllers"
  for _ in $(seq 1 600); do
    curl -sf --cacert "$P/ca.crt" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$HY_API_PORT/readyz?$X" >/dev/null 2>&1 && break; sleep 0.1
  done
  # crd-apiserver delegates authn (TokenReview; requestheader CA looked up in kube-system) and authz
  # (SubjectAccessReview) to the 1.20 server; policy admission and APF stay off (1.20 lacks their APIs)
  "$BIN/crd-apiserver" --etcd-servers "http://127.0.0.1:$HY_ETCD_PORT" --etcd-prefix /rig-crd-apiserver \
    --bind-address 127.0.0.1 --secure-port "$HY_CRD_PORT" \
    --tls-cert-file "$P/crd-apiserver.crt" --tls-private-key-file "$P/crd-apiserver.key" \
    --token-auth-file "$P/tokens.csv" \
    --authentication-kubeconfig "$RUNH/kubeconfig" --authorization-kubeconfig "$RUNH/kubeconfig" --kubeconfig "$RUNH/kubeconfig" \
    --disable-admission-plugins MutatingAdmissionPolicy,ValidatingAdmissionPolicy \
    --enable-priority-and-fairness=false \
    >"$RUNH/crd-apiserver.log" 2>&1 &
  echo $! > "$RUNH/crd-apiserver.pid"
  for _ in $(seq 1 300); do
    curl -sf --cacert "$P/ca.crt" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$HY_CRD_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
  done
  # APIServices: apiextensions.k8s.io/v1 (so CRDs applied through the 1.20 endpoint land in crd-apiserver)
  # and one per CRD group/version (default: triskel.io/v1alpha1; Available once its CRD exists)
  local CA gv; CA=$(base64 -w0 < "$P/ca.crt")
  { cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: crd-apiserver, namespace: kube-system}
spec: {type: ExternalName, externalName: localhost, ports: [{port: $HY_CRD_PORT}]}
EOF
    for gv in apiextensions.k8s.io/v1 ${RIG_CRD_GROUPVERSIONS:-triskel.io/v1alpha1}; do cat <<EOF
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: ${gv#*/}.${gv%/*}}
spec:
  group: ${gv%/*}
  version: ${gv#*/}
  service: {namespace: kube-system, name: crd-apiserver, port: $HY_CRD_PORT}
  caBundle: $CA
  groupPriorityMinimum: 1000
  versionPriority: 15
EOF
    done; } | "${K[@]}" apply -f - >/dev/null
  for _ in $(seq 1 600); do
    curl -sf --cacert "$P/ca.crt" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$HY_API_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1
  done
  if [ -n "${RIG_CRDS:-}" ]; then
    "${K[@]}" apply -f "$RIG_CRDS" >/dev/null
    "${K[@]}" wait --for condition=established --timeout=60s crd --all >/dev/null
    "${K[@]}" wait --for condition=Available --timeout=60s apiservice -l '!kube-aggregator.kubernetes.io/automanaged' >/dev/null
  fi
  "$OLD_BIN/kube-controller-manager" \
    --kubeconfig "$RUNH/kubeconfig" --authentication-kubeconfig "$RUNH/kubeconfig" --authorization-kubeconfig "$RUNH/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$HY_KCM_PORT" --port 0 --leader-elect=false \
    --service-account-private-key-file "$P/sa.key" --root-ca-file "$P/ca.crt" \
    --use-service-account-credentials=false --controllers '*' \
    >"$RUNH/controller-manager.log" 2>&1 &
  echo $! > "$RUNH/controller-manager.pid"
  for _ in $(seq 1 300); do
    curl -sfk "https://127.0.0.1:$HY_KCM_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1
  done
  echo "export KUBECONFIG=$RUNH/kubeconfig"
}

stop_list() {
  local c pid
  for c in "$@"; do
    if [ -f "$RUN/$c.pid" ]; then
      pid=$(cat "$RUN/$c.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$RUN/$c.pid"
    fi
  done
}

lock() {  # re-resolve sid's closure at today's versions and rewrite the [sid] section
  mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial"
  local M O T
  M=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$M" ] || M=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $M sid main" > "$WORK/apt/sources.list"
  read -ra O <<< "$(apt_opts)"
  apt-get "${O[@]}" update -qq
  T=$(mktemp)
  # shellcheck disable=SC2046
  candidates etcd-client etcd-server $(apt-cache "${O[@]}" depends --recurse --no-recommends \
      --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
      golang-k8s-apiextensions-apiserver-dev \
      | grep -v '^[ <]' | grep -E '^golang-.*-dev$|^golang-1\.[0-9]+-(go|src)$' | sort -u) \
    -- "${O[@]}" | sort > "$T"
  lock_write sid "$T"
  rm -f "$T"
}

stop() { stop_list apiserver etcd; }
stop-hybrid() { RUN="$RUNH" stop_list controller-manager crd-apiserver apiserver etcd; }
check-hybrid() { KC_CRD="$RUNH/kubeconfig" KC_OBJ="$RUNH/kubeconfig" check; }

"${1:-start}"
