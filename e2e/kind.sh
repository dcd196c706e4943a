#!/usr/bin/env bash
# End to end on a real Kubernetes (kind): build the image, helm install Triskel, apply the
# mock P/D example, stream a chat completion through the router, scale a pool, delete it,
# tear down. Needs docker, kind, kubectl and helm on PATH (scripts/install_tools.sh puts
# helm and kubectl in .tools/bin). Usage: e2e/kind.sh [--keep]  (--keep: leave the cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"

CLUSTER="${TRISKEL_E2E_CLUSTER:-triskel-e2e}"
IMAGE="triskel:e2e"
NAMESPACE="triskel"
KEEP="${1:-}"
LOCAL_PORT="${TRISKEL_E2E_PORT:-18080}"
PORT_FORWARD_PID=""

step() { printf '\n=== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; kubectl get wp,sg,rp,pods -A >&2 || true; exit 1; }

cleanup() {
    if [ -n "$PORT_FORWARD_PID" ]; then kill "$PORT_FORWARD_PID" 2>/dev/null || true; fi
    if [ "$KEEP" != "--keep" ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

for tool in docker kind kubectl helm curl; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done

step "kind cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s

step "image $IMAGE"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "helm install"
helm upgrade --install triskel charts/triskel --namespace "$NAMESPACE" --create-namespace \
    --set image.repository=triskel --set image.tag=e2e --set image.pullPolicy=Never --wait

step "mock P/D example"
kubectl apply -n "$NAMESPACE" -f manifests/examples/pd-mock.yaml
kubectl wait -n "$NAMESPACE" --for=condition=Ready sg/llama --timeout=300s \
    || fail "the ServingGraph did not become Ready"
kubectl get -n "$NAMESPACE" sg,wp,rp

step "a streamed chat completion through the router"
kubectl port-forward -n "$NAMESPACE" svc/triskel-router "$LOCAL_PORT:8080" >/dev/null &
PORT_FORWARD_PID=$!
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$LOCAL_PORT/health" >/dev/null && break; sleep 1; done
body='{"model":"llama-3.1-8b","messages":[{"role":"user","content":"Why split prefill from decode?"}],"max_tokens":12,"stream":true}'
stream=""
for _ in $(seq 30); do
    stream="$(curl -sN "http://127.0.0.1:$LOCAL_PORT/v1/chat/completions" \
        -H 'content-type: application/json' -d "$body" || true)"
    echo "$stream" | grep -q '"finish_reason":"length"' && break
    sleep 2  # the router picks up the operator's config within seconds
done
echo "$stream" | tail -n 3
[ "$(echo "$stream" | grep -c '"content":" ')" -ge 12 ] || fail "expected 12 streamed tokens"
echo "$stream" | grep -q '^data: \[DONE\]' || fail "the stream did not end with [DONE]"

step "scale the decode pool to 3"
kubectl scale -n "$NAMESPACE" wp/llama-decode --replicas 3
kubectl wait -n "$NAMESPACE" --for=jsonpath='{.status.readyReplicas}'=3 wp/llama-decode \
    --timeout=300s || fail "the decode pool did not reach 3 ready replicas"

step "delete the decode pool (drained first)"
kubectl delete -n "$NAMESPACE" wp/llama-decode --timeout=300s
kubectl get -n "$NAMESPACE" deploy/llama-decode 2>/dev/null && fail "the pool's Deployment is still there"
kubectl wait -n "$NAMESPACE" --for=jsonpath='{.status.conditions[?(@.type=="Degraded")].status}'=True \
    sg/llama --timeout=120s || fail "the graph did not report its missing pool"

step "passed"
