#!/usr/bin/env bash
# The e2e suite on a Docker host: kind cluster, KWOK fake GPU nodes, training-operator, JobSet, our chart.
#
# The path for machines with a Docker engine (GitHub Actions runners); the local control plane
# (hack/cluster.sh) is the path for everything else. Needs docker, kind, kubectl and helm on PATH.
# The kind node plays the local cluster's real node (hack/lib/real-node.sh): it carries the same
# label, and the operator and trainer images built from this checkout under the names the chart and
# the run CRD default to (hack/lib/node-env.sh; hack/images.sh builds the same two Dockerfile targets
# with buildah there). Redis is pulled from Docker Hub here. The KWOK nodes carry KWOK's taint
# (hack/kwok/nodes.yaml), as on the local control plane: workloads that tolerate it land on them, and
# everything else runs for real on the kind node. The suite: the e2e tests and the real-pod ones.
#   E2E_BUILD_IMAGES=0                            do not build/load the operator and trainer images
#   E2E_IMAGES="name:tag=path/to/Dockerfile ..."  more images to build and `kind load` (default: none)
#   E2E_PYTEST_ARGS="..."                         extra pytest arguments
#   HELM_EXTRA_ARGS="..."                         extra arguments for `helm upgrade --install`
#   KEEP_CLUSTER=1                                leave the kind cluster running afterwards
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$HACK_DIR")
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"
# shellcheck source=hack/lib/node-env.sh
source "$HACK_DIR/lib/node-env.sh"  # OPERATOR_IMAGE, TRAINER_IMAGE, REAL_NODE_LABEL
CLUSTER=specforge-e2e
KUBECONFIG="$(mktemp -d)/kubeconfig"
export KUBECONFIG

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not on PATH (the kind path needs a Docker host)" >&2; exit 1; }
done

# The two images of the Dockerfile (its default base), built before the cluster exists: a failed
# build costs no cluster. The trainer image carries torch from PyPI (several GB).
images=()
if [ "${E2E_BUILD_IMAGES:-1}" = 1 ]; then
  docker build --target operator -t "$OPERATOR_IMAGE" "$REPO_ROOT"
  docker build --target trainer -t "$TRAINER_IMAGE" "$REPO_ROOT"
  images+=("$OPERATOR_IMAGE" "$TRAINER_IMAGE")
fi
for entry in ${E2E_IMAGES:-}; do
  docker build -t "${entry%%=*}" -f "$REPO_ROOT/${entry#*=}" "$REPO_ROOT"
  images+=("${entry%%=*}")
done

clusters=$(kind get clusters)
grep -qx "$CLUSTER" <<<"$clusters" || kind create cluster --config "$HACK_DIR/kind-config.yaml" --wait 120s
kind export kubeconfig --name "$CLUSTER"
[ "${KEEP_CLUSTER:-0}" = 1 ] || trap 'kind delete cluster --name "$CLUSTER"' EXIT

for image in "${images[@]}"; do
  kind load docker-image --name "$CLUSTER" "$image"
done
# The kind node is the real node: labelled as hack/lib/real-node.sh labels the local one.
for node in $(kind get nodes --name "$CLUSTER"); do
  kubectl label node "$node" "$REAL_NODE_LABEL=true" --overwrite
done

# KWOK in the cluster: its controller from the release manifest, our stages as Stage objects, our nodes.
kubectl apply -f "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/kwok.yaml"
kubectl -n kube-system rollout status deployment kwok-controller --timeout=180s
kubectl apply -f "$HACK_DIR/kwok/stages.yaml"
kubectl apply -f "$HACK_DIR/kwok/nodes.yaml"
kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s

kubectl apply --server-side -k \
  "github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=$TRAINING_OPERATOR_VERSION"
kubectl -n kubeflow rollout status deployment training-operator --timeout=300s
# JobSet, the other trainer backend, from its release manifest (the pin of hack/jobset.env).
# shellcheck source=hack/jobset.env
source "$HACK_DIR/jobset.env"
kubectl apply --server-side -f "https://github.com/kubernetes-sigs/jobset/releases/download/$JOBSET_VERSION/manifests.yaml"
kubectl -n jobset-system rollout status deployment jobset-controller-manager --timeout=300s

if [ -d "$REPO_ROOT/charts/specforge-operator" ]; then
  # shellcheck disable=SC2086  # HELM_EXTRA_ARGS is a list of arguments on purpose
  helm upgrade --install specforge-operator "$REPO_ROOT/charts/specforge-operator" \
    --namespace specforge-system --create-namespace --wait ${HELM_EXTRA_ARGS:-}
fi

cd "$REPO_ROOT"
# shellcheck disable=SC2086  # E2E_PYTEST_ARGS is a list of arguments on purpose
.venv/bin/pytest -m "e2e or realnode" ${E2E_PYTEST_ARGS:-}
