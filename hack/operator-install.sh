#!/usr/bin/env bash
# Install (or upgrade) the operator from its Helm chart into the current cluster, as a user would.
#
#   hack/operator-install.sh              helm upgrade --install, wait until the operator is available
#   hack/operator-install.sh --uninstall  helm uninstall (the CRD stays: crds.keep)
#
# KUBECONFIG names the cluster (the local one: `export KUBECONFIG=$(hack/cluster.sh kubeconfig)`).
# The image is the one `make images` imported into the real node (the chart's default name), so nothing
# is pulled. Extra arguments go to helm (e.g. --set replicaCount=1).
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HACK_DIR/.." && pwd)
BIN_DIR=$("$HACK_DIR/build-binaries.sh" --print-bin-dir)
RELEASE=${SPECFORGE_OPERATOR_RELEASE:-specforge-operator}
NAMESPACE=${SPECFORGE_OPERATOR_NAMESPACE:-specforge-system}
helm() { "$BIN_DIR/helm" "$@"; }

if [ -z "${KUBECONFIG:-}" ]; then
  echo "error: KUBECONFIG is not set; for the local cluster: export KUBECONFIG=\$(hack/cluster.sh kubeconfig)" >&2
  exit 2
fi

if [ "${1:-}" = "--uninstall" ]; then
  shift
  helm uninstall "$RELEASE" --namespace "$NAMESPACE" --wait --ignore-not-found "$@"
  exit 0
fi

# The chart installs and upgrades the SpecForgeRun CRD (crds.enabled). One installed some other way (a
# test session's, or `kubectl apply -f crds/`) is left to whoever installed it: Helm refuses to adopt it.
crd_owner=$("$BIN_DIR/kubectl" get crd specforgeruns.specforge.io --ignore-not-found \
  -o 'jsonpath={.metadata.annotations.meta\.helm\.sh/release-name}|{.metadata.name}')
crd_values=()
if [ -n "$crd_owner" ] && [ "${crd_owner%%|*}" != "$RELEASE" ]; then
  crd_values=(--set crds.enabled=false)
fi

started=$SECONDS
helm upgrade --install "$RELEASE" "$REPO_ROOT/charts/specforge-operator" \
  --namespace "$NAMESPACE" --create-namespace --wait --timeout 5m "${crd_values[@]}" "$@"
echo "operator '$RELEASE' is available in namespace $NAMESPACE after $((SECONDS - started)) s" >&2
