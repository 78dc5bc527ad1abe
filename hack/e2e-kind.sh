#!/usr/bin/env bash
# The e2e suite on a Docker host: kind cluster, KWOK fake GPU nodes, training-operator, our chart.
#
# The path for machines with a Docker engine (GitHub Actions runners); the local control plane
# (hack/cluster.sh) is the path for everything else. Needs docker, kind, kubectl and helm on PATH.
# The one real node is tainted so test workloads land on the KWOK nodes, which behave as on the
# local control plane (same hack/kwok stages and nodes); system pods tolerate the taint.
#   E2E_IMAGES="name:tag=path/to/Dockerfile ..."  images to build and `kind load` (default: none)
#   HELM_EXTRA_ARGS="..."                         extra arguments for `helm upgrade --install`
#   KEEP_CLUSTER=1                                leave the kind cluster running afterwards
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$HACK_DIR")
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"
CLUSTER=specforge-e2e
REAL_NODE_TAINT=specforge.io/real-node
KUBECONFIG="$(mktemp -d)/kubeconfig"
export KUBECONFIG

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not on PATH (the kind path needs a Docker host)" >&2; exit 1; }
done

kind get clusters | grep -qx "$CLUSTER" || kind create cluster --config "$HACK_DIR/kind-config.yaml" --wait 120s
kind export kubeconfig --name "$CLUSTER"
[ "${KEEP_CLUSTER:-0}" = 1 ] || trap 'kind delete cluster --name "$CLUSTER"' EXIT

for entry in ${E2E_IMAGES:-}; do
  docker build -t "${entry%%=*}" -f "$REPO_ROOT/${entry#*=}" "$REPO_ROOT"
  kind load docker-image --name "$CLUSTER" "${entry%%=*}"
done

toleration='[{"key":"'"$REAL_NODE_TAINT"'","operator":"Exists","effect":"NoSchedule"}]'
kubectl taint node --all "$REAL_NODE_TAINT=:NoSchedule" --overwrite

# KWOK in the cluster: its controller from the release manifest, our stages as Stage objects, our nodes.
kubectl apply -f "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/kwok.yaml"
kubectl -n kube-system patch deployment kwok-controller --type=json \
  -p '[{"op":"add","path":"/spec/template/spec/tolerations","value":'"$toleration"'}]'
kubectl -n kube-system rollout status deployment kwok-controller --timeout=180s
kubectl apply -f "$HACK_DIR/kwok/stages.yaml"
kubectl apply -f "$HACK_DIR/kwok/nodes.yaml"
kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s

kubectl apply --server-side -k \
  "github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=$TRAINING_OPERATOR_VERSION"
kubectl -n kubeflow patch deployment training-operator --type=json \
  -p '[{"op":"add","path":"/spec/template/spec/tolerations","value":'"$toleration"'}]'
kubectl -n kubeflow rollout status deployment training-operator --timeout=300s

if [ -d "$REPO_ROOT/charts/specforge-operator" ]; then
  # shellcheck disable=SC2086  # HELM_EXTRA_ARGS is a list of arguments on purpose
  helm upgrade --install specforge-operator "$REPO_ROOT/charts/specforge-operator" \
    --namespace specforge-system --create-namespace --set-json "tolerations=$toleration" --wait ${HELM_EXTRA_ARGS:-}
fi

cd "$REPO_ROOT"
.venv/bin/pytest -m e2e tests/e2e
