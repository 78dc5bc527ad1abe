# Where the control plane's binaries live and whether they are all there (sourced, not run).
#
# The cache key is the Kubernetes version plus a hash of every pin (versions.env and the etcd
# wrapper's go.mod), so two checkouts with the same pins share one build.
# shellcheck shell=bash

HACK_DIR=${HACK_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=hack/versions.env
source "$HACK_DIR/versions.env"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}"
PINS_HASH=$(cat "$HACK_DIR/versions.env" "$HACK_DIR/etcd/go.mod" "$HACK_DIR/pause/main.go" | sha256sum | cut -c1-10)
KEY_DIR="$CACHE_ROOT/specforge-k8s/$KUBERNETES_VERSION-$PINS_HASH"
BIN_DIR="$KEY_DIR/bin"
PYTORCHJOB_CRD="$KEY_DIR/manifests/kubeflow.org_pytorchjobs.yaml"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy etcd kwok kwokctl
  training-operator helm coredns local-path-provisioner pause)

# shellcheck source=hack/lib/jobset.sh
source "$HACK_DIR/lib/jobset.sh"  # the JobSet controller: its own pin and cache directory

binaries_present() {
  local name
  for name in "${BINARIES[@]}"; do
    [ -x "$BIN_DIR/$name" ] || return 1
  done
  [ -s "$PYTORCHJOB_CRD" ] && jobset_present
}
