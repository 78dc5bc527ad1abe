# Names, paths and small process helpers of one local cluster (sourced by cluster.sh, not run).
#
# Several clusters can live side by side (the e2e fixture gives each test run its own name), so
# every path derives from SPECFORGE_CLUSTER_NAME and nothing is shared but the binaries.
# shellcheck shell=bash

CLUSTER_NAME="${SPECFORGE_CLUSTER_NAME:-specforge}"
if ! [[ "$CLUSTER_NAME" =~ ^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$ ]]; then
  echo "error: SPECFORGE_CLUSTER_NAME='$CLUSTER_NAME' must be lower-case letters, digits and '-' (at most 42)" >&2
  exit 2
fi
STATE_ROOT="${SPECFORGE_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/specforge-k8s}"
export KWOK_WORKDIR="$STATE_ROOT/kwok"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"
CLUSTER_KUBECONFIG="$CLUSTER_DIR/kubeconfig.yaml"
OPERATOR_DIR="$CLUSTER_DIR/training-operator"
JOBSET_DIR="$CLUSTER_DIR/jobset"

# starting COMPONENT LOG: what `cluster.sh up` is starting now and where that component logs, so a
# failure can name both (cluster.sh's failure handler reads these).
UP_COMPONENT="" UP_LOG=""
starting() { UP_COMPONENT=$1 UP_LOG=$2; }

# kubectl against this cluster, whatever KUBECONFIG the caller has.
kc() { "$BIN_DIR/kubectl" --kubeconfig "$CLUSTER_KUBECONFIG" "$@"; }

# free_ports N: N distinct TCP ports nothing listens on now (the kernel picks them, all held at once).
free_ports() {
  python3 -c '
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))' "$1"
}

# wait_for_exit PID...: give processes 10 s to exit after being signalled, then kill what is left.
wait_for_exit() {
  local pid
  for _ in $(seq 100); do
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
    [ -z "${pid:-}" ] && return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -9 "$pid" 2>/dev/null || true; done
}
