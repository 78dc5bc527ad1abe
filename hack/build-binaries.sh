#!/usr/bin/env bash
# Build the local control plane's binaries from their published Go modules, or reuse them.
#
# Binaries land in ${XDG_CACHE_HOME:-~/.cache}/specforge-k8s/<key>/bin, where <key> names the
# Kubernetes version and a hash of every pin, so changing a pin builds afresh and an unchanged
# set is a stamp check with no `go build` at all. Five lanes run in parallel on purpose: Go's
# own package parallelism keeps both cores busy while compiling, but each link is single
# threaded, and a second lane fills those gaps.
#
#   hack/build-binaries.sh                  build what is missing, print the bin dir's path
#   hack/build-binaries.sh --print-bin-dir  print the bin dir's path, build nothing
#   hack/build-binaries.sh --check          exit 0 when every binary is present, else 1
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib/binaries.sh
source "$HACK_DIR/lib/binaries.sh"
# shellcheck source=hack/lib/build.sh
source "$HACK_DIR/lib/build.sh"

case "${1:-}" in
  --print-bin-dir) echo "$BIN_DIR"; exit 0 ;;
  --check) binaries_present && exit 0 || exit 1 ;;
  "") ;;
  *) echo "usage: $0 [--print-bin-dir|--check]" >&2; exit 2 ;;
esac

if binaries_present; then
  echo "$BIN_DIR"
  exit 0
fi

# One build per cache key at a time: a second caller (another make target, a test fixture) waits
# for the first and then finds the binaries, instead of compiling the same packages again.
mkdir -p "$KEY_DIR"
exec 9>"$KEY_DIR/.build.lock"
if ! flock -n 9; then
  echo "another build of $KEY_DIR is running; waiting for it" >&2
  flock 9
fi
if binaries_present; then
  echo "$BIN_DIR"
  exit 0
fi

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
  else
    echo "error: Go (1.26 or newer) is needed to build the control plane; none on PATH or in /usr/local/go" >&2
    exit 1
  fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
export GOCACHE="${GOCACHE:-$CACHE_ROOT/go-build}" GOMODCACHE="${GOMODCACHE:-$CACHE_ROOT/go-mod}"
mkdir -p "$BIN_DIR" "$KEY_DIR/logs" "$KEY_DIR/src"

started=$(date +%s)
pids=()
lane() {  # lane NAME FUNCTION: run a build function in the background, logging to logs/NAME.log
  local name=$1 fn=$2
  (
    t0=$(date +%s)
    # Started in the background, not as an `if` condition, so `set -e` holds inside the recipe.
    (set -e; "$fn") >"$KEY_DIR/logs/$name.log" 2>&1 &
    if wait $!; then
      echo "built $name in $(($(date +%s) - t0)) s" >&2
    else
      echo "error: building $name failed; see $KEY_DIR/logs/$name.log:" >&2
      tail -n 20 "$KEY_DIR/logs/$name.log" >&2
      exit 1
    fi
  ) &
  pids+=($!)
}

lane kubernetes build_kubernetes
lane etcd+kwok build_etcd_and_kwok
lane training-operator+helm build_training_operator_and_helm
lane node-addons build_node_addons
lane jobset build_jobset

failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if [ "$failed" -ne 0 ] || ! binaries_present; then
  echo "error: some binaries are missing from $BIN_DIR" >&2
  exit 1
fi
echo "cold build took $(($(date +%s) - started)) s" | tee "$KEY_DIR/logs/build-time.txt" >&2
echo "$BIN_DIR"
