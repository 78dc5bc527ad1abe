# Build recipes for the control plane's binaries, one function per lane (sourced by build-binaries.sh).
#
# Each recipe builds into a scratch directory and moves finished binaries into $BIN_DIR, so an
# interrupted build never leaves a half-written binary that the stamp check would trust.
# shellcheck shell=bash

LDFLAGS_STRIP="-s -w"

# any_missing NAME...: true when one of the named binaries is not in $BIN_DIR yet.
any_missing() {
  local name
  for name in "$@"; do [ -x "$BIN_DIR/$name" ] || return 0; done
  return 1
}

# install_into_bin SCRATCH_DIR [FROM=TO ...]: move built binaries into $BIN_DIR, renaming some.
install_into_bin() {
  local scratch=$1 pair
  shift
  for pair in "$@"; do mv "$scratch/${pair%%=*}" "$scratch/${pair#*=}"; done
  chmod 0755 "$scratch"/*
  mv "$scratch"/* "$BIN_DIR/"
}

# module_field MODULE@VERSION FIELD: one string field of `go mod download -json` (GoMod, Dir, Info...).
module_field() {
  # The second sed reads to the end, so nothing upstream dies of SIGPIPE under pipefail.
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",*$/\1/p" | sed -n 1p
}

# The wrapper module's replace list comes from k8s.io/kubernetes's own go.mod: every staging module
# it points at ./staging/src/k8s.io/X is replaced by the published k8s.io/X at v0.<minor>.<patch>.
write_kubernetes_wrapper_module() {
  local src=$1 gomod staging_version module
  local -a edits=()
  gomod=$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" GoMod)
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  (cd "$src" && go mod init specforge-k8s.local/kubernetes-wrapper)
  edits+=("-go=$(awk '$1 == "go" {print $2; exit}' "$gomod")")
  while read -r module; do
    edits+=("-replace=$module=$module@$staging_version")
  done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/\1[[:space:]]*$#\1#p' "$gomod")
  if [ "${#edits[@]}" -lt 10 ]; then
    echo "error: found too few staging replaces in $gomod; has k8s.io/kubernetes changed its layout?" >&2
    return 1
  fi
  (cd "$src" && go mod edit "${edits[@]}")
}

build_kubernetes() {
  any_missing kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy || return 0
  local src="$KEY_DIR/src/kubernetes" minor info build_date commit
  # The real node's kubelet and kube-proxy come from the same build, so they match the API server.
  local -a packages=(cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubectl cmd/kubelet cmd/kube-proxy)
  rm -rf "$src" && mkdir -p "$src/out"
  write_kubernetes_wrapper_module "$src"
  packages=("${packages[@]/#/k8s.io/kubernetes/}")
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  info=$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" Info)
  build_date=$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$info")
  commit=$(sed -n 's/.*"Hash": *"\([^"]*\)".*/\1/p' "$info")
  local ldflags="$LDFLAGS_STRIP" pkg
  # Both version packages, as upstream's hack/lib/version.sh does, so /version and `kubectl version` are right.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${build_date:-unknown} -X $pkg.gitCommit=${commit:-unknown}"
  done
  (cd "$src" && go get "${packages[@]/%/@$KUBERNETES_VERSION}" && go build -ldflags "$ldflags" -o out/ "${packages[@]}")
  install_into_bin "$src/out"
}

build_etcd() {
  any_missing etcd || return 0
  local out="$KEY_DIR/src/etcd-out"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$HACK_DIR/etcd" && go build -mod=readonly -ldflags "$LDFLAGS_STRIP" -o "$out/etcd" .)
  install_into_bin "$out"
}

# go_install_into_bin LDFLAGS MODULE_PACKAGE@VERSION... [-- FROM=TO...]: `go install` with the module's own go.mod.
go_install_into_bin() {
  local ldflags=$1 gobin
  shift
  local -a targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  gobin=$(mktemp -d "$KEY_DIR/src/gobin.XXXXXX")
  GOBIN="$gobin" go install -ldflags "$ldflags" "${targets[@]}"
  install_into_bin "$gobin" "$@"
  rmdir "$gobin"
}

build_kwok() {
  any_missing kwok kwokctl || return 0
  local consts=sigs.k8s.io/kwok/pkg/consts
  go_install_into_bin "$LDFLAGS_STRIP -X $consts.Version=$KWOK_VERSION -X $consts.KubeVersion=$KUBERNETES_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_training_operator() {
  any_missing training-operator || return 0
  go_install_into_bin "$LDFLAGS_STRIP" \
    "github.com/kubeflow/training-operator/cmd/training-operator.v1@$TRAINING_OPERATOR_VERSION" \
    -- training-operator.v1=training-operator
}

build_helm() {
  any_missing helm || return 0
  go_install_into_bin "$LDFLAGS_STRIP -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# The PyTorchJob CRD ships in training-operator's module; keep a copy next to the binaries so
# cluster-up needs no module cache.
copy_pytorchjob_crd() {
  [ -s "$PYTORCHJOB_CRD" ] && return 0
  local dir
  dir=$(module_field "github.com/kubeflow/training-operator@$TRAINING_OPERATOR_VERSION" Dir)
  mkdir -p "$(dirname "$PYTORCHJOB_CRD")"
  cp "$dir/manifests/base/crds/kubeflow.org_pytorchjobs.yaml" "$PYTORCHJOB_CRD.tmp"
  mv "$PYTORCHJOB_CRD.tmp" "$PYTORCHJOB_CRD"
}

build_coredns() {
  any_missing coredns || return 0
  go_install_into_bin "$LDFLAGS_STRIP" "github.com/coredns/coredns@$COREDNS_VERSION"
}

build_local_path_provisioner() {
  any_missing local-path-provisioner || return 0
  go_install_into_bin "$LDFLAGS_STRIP" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
}

# The sandbox ("pause") image's only program: registry.k8s.io is out of reach, so we build our own.
build_pause() {
  any_missing pause || return 0
  local out="$KEY_DIR/src/pause-out"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$HACK_DIR/pause" && go build -mod=readonly -ldflags "$LDFLAGS_STRIP" -o "$out/pause" .)
  install_into_bin "$out"
}

build_node_addons() { build_pause && build_local_path_provisioner && build_coredns; }
build_etcd_and_kwok() { build_etcd && build_kwok; }
build_training_operator_and_helm() { build_training_operator && copy_pytorchjob_crd && build_helm; }
