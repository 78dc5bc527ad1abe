#!/usr/bin/env bash
# The local Kubernetes control plane for tests: up, down, status, kubeconfig.
#
# `kwokctl --runtime binary` runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# the KWOK controller as plain processes on loopback (free ports, its own PKI) from the binaries
# hack/build-binaries.sh built; this script adds the fake GPU nodes, our KWOK stages and
# training-operator and the JobSet controller (hack/lib/jobset.sh). Everything a cluster writes (kubeconfig, logs, pids) lives under
# $SPECFORGE_STATE_DIR (default ~/.local/state/specforge-k8s)/kwok/clusters/<name>.
#
# Beside the KWOK nodes, one cluster per machine also gets a real node (hack/lib/real-node.sh): a
# kubelet on containerd with kube-proxy, CoreDNS and a default local-path StorageClass. The KWOK
# nodes are tainted kwok.x-k8s.io/node=fake:NoSchedule, so pods land on them only when they tolerate
# that. SPECFORGE_REAL_NODE=0, or another cluster holding the real node, gives a KWOK-only cluster
# (whose KWOK nodes are left untainted: there is nowhere else for a pod to go).
# SPECFORGE_TRAINING_OPERATOR=0 or SPECFORGE_JOBSET=0 leaves that controller (and its CRD) out, for a
# cluster with only one trainer backend.
#
#   hack/cluster.sh up          start (or finish starting) the cluster; idempotent;
#                               the last line printed is `export KUBECONFIG=<path>`
#   hack/cluster.sh down        stop every process and delete the cluster's state
#   hack/cluster.sh status      components, nodes, training-operator, JobSet; exit 1 when not running
#   hack/cluster.sh kubeconfig  print the kubeconfig path
# The cluster is named by SPECFORGE_CLUSTER_NAME (default "specforge").
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib/binaries.sh
source "$HACK_DIR/lib/binaries.sh"
# shellcheck source=hack/lib/cluster-env.sh
source "$HACK_DIR/lib/cluster-env.sh"
# shellcheck source=hack/lib/loopback-config.sh
source "$HACK_DIR/lib/loopback-config.sh"
# shellcheck source=hack/lib/training-operator.sh
source "$HACK_DIR/lib/training-operator.sh"
# shellcheck source=hack/lib/real-node.sh
source "$HACK_DIR/lib/real-node.sh"

kwokctl() { "$BIN_DIR/kwokctl" --name "$CLUSTER_NAME" "$@"; }

# up_failed STATUS: `up` stopped at $UP_COMPONENT. Say so in one line naming its log, keep the logs
# (the cluster's directory goes with the cluster), and stop everything this cluster started.
up_failed() {
  local status=$1 kept log dir rel
  trap - EXIT
  kept="$STATE_ROOT/failed-up/$CLUSTER_NAME-$(date +%Y%m%d-%H%M%S)"
  for dir in "$CLUSTER_DIR/logs" "$NODE_DIR/logs" "$OPERATOR_DIR" "$JOBSET_DIR"; do
    [ -d "$dir" ] || continue
    rel=${dir#"$CLUSTER_DIR"/}
    mkdir -p "$kept/$(dirname "$rel")"
    cp -r "$dir" "$kept/$rel" 2>/dev/null || true
  done
  log=${UP_LOG:-}
  [[ "$log" != "$CLUSTER_DIR"/* ]] || log="$kept/${log#"$CLUSTER_DIR"/}"
  cluster_down >"$kept/teardown.log" 2>&1 || echo "warning: teardown failed too: $kept/teardown.log" >&2
  echo "error: cluster '$CLUSTER_NAME' did not come up: ${UP_COMPONENT:-cluster.sh} failed (exit $status)," \
    "log: ${log:-the output above}; everything the cluster started is stopped" >&2
  exit "$status"
}

cluster_up() {
  local started=$SECONDS
  trap 'up_failed $?' EXIT
  starting "control-plane binaries" "$KEY_DIR/logs"
  "$HACK_DIR/build-binaries.sh" >/dev/null
  export KWOK_KUBECTL_BINARY="$BIN_DIR/kubectl"
  mkdir -p "$CLUSTER_DIR"
  if [ ! -f "$CLUSTER_DIR/kwok.yaml" ]; then
    # Whether the cluster has the real node is settled when it is created: the API server's
    # addresses depend on it.
    local host_ip=""
    if want_real_node; then
      host_ip=$(host_ip)
      mkdir -p "$NODE_DIR"
      echo "$host_ip" >"$NODE_DIR/host-ip"
      touch "$NODE_DIR/enabled"
    else
      rm -rf "$NODE_DIR"
    fi
    write_loopback_config "$CLUSTER_DIR/loopback.yaml" "$host_ip"
  fi
  starting "control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)" "$CLUSTER_DIR/logs"
  kwokctl create cluster --runtime binary --kubeconfig "" --quiet-pull \
    --secure-port=true --kube-authorization=true --kube-admission=true \
    --etcd-binary "$BIN_DIR/etcd" --kube-apiserver-binary "$BIN_DIR/kube-apiserver" \
    --kube-controller-manager-binary "$BIN_DIR/kube-controller-manager" \
    --kube-scheduler-binary "$BIN_DIR/kube-scheduler" --kwok-controller-binary "$BIN_DIR/kwok" \
    --config "$CLUSTER_DIR/loopback.yaml" --config "$HACK_DIR/kwok/stages.yaml" --wait 120s >&2
  starting "KWOK nodes" "$CLUSTER_DIR/logs/kwok-controller.log"
  kc apply -f "$HACK_DIR/kwok/nodes.yaml" >/dev/null
  # The taint steers untolerating pods to the real node; without one it would only leave them Pending.
  if ! has_real_node; then kc taint nodes -l type=kwok "$KWOK_TAINT_KEY-" >/dev/null 2>&1 || true; fi
  kc wait --for=condition=Ready node -l type=kwok --timeout=60s >/dev/null
  # Every cluster has a default StorageClass: a run's claims bind on KWOK nodes too (their helper pods
  # are completed by a KWOK stage), with or without the real node.
  if has_real_node; then
    real_node_up
  else
    starting local-path-provisioner "$NODE_DIR/logs/local-path-provisioner.log"
    start_local_path
  fi
  starting training-operator "$OPERATOR_DIR/training-operator.log"
  start_training_operator
  starting jobset-controller "$JOBSET_DIR/jobset.log"
  start_jobset
  trap - EXIT
  echo "cluster '$CLUSTER_NAME' is up in $((SECONDS - started)) s; logs under $CLUSTER_DIR/logs and $OPERATOR_DIR" >&2
  echo "export KUBECONFIG=$CLUSTER_KUBECONFIG"
}

cluster_down() {
  stop_jobset
  stop_training_operator
  real_node_down
  stop_node_process local-path-provisioner
  local pids
  # kwokctl writes its pid files without a newline: read them one by one, not with one `cat`.
  local pidfile
  pids=$(for pidfile in "$CLUSTER_DIR"/pids/*.pid; do [ -f "$pidfile" ] && echo "$(cat "$pidfile")"; done)
  if [ -d "$CLUSTER_DIR" ]; then
    kwokctl delete cluster >&2
  fi
  # kwokctl signals the components it started; a component restarted since (an e2e test restarts
  # kube-apiserver) is ours to signal. Then wait until every one is really gone (ports freed).
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  wait_for_exit $pids
  rm -rf "$CLUSTER_DIR"
  echo "cluster '$CLUSTER_NAME' is down" >&2
}

cluster_status() {
  if [ ! -f "$CLUSTER_KUBECONFIG" ]; then
    echo "cluster '$CLUSTER_NAME' does not exist (state dir $CLUSTER_DIR)"
    return 1
  fi
  kwokctl get components
  kc get nodes -o custom-columns='NAME:.metadata.name,STATUS:.status.conditions[?(@.type=="Ready")].status,GPUS:.status.allocatable.nvidia\.com/gpu'
  if pid=$(operator_pid); then
    echo "training-operator: running (pid $pid, log $OPERATOR_DIR/training-operator.log)"
  elif [ "${SPECFORGE_TRAINING_OPERATOR:-1}" != 0 ]; then
    echo "training-operator: not running"
    return 1
  fi
  if pid=$(jobset_pid); then
    echo "jobset-controller: running (pid $pid, log $JOBSET_DIR/jobset.log)"
  elif want_jobset; then
    echo "jobset-controller: not running"
    return 1
  fi
  real_node_status || return 1
  print_memory
  echo "export KUBECONFIG=$CLUSTER_KUBECONFIG"
}

# pidfile_component PIDFILE: the component a pid file belongs to (the controllers' files are named "pid").
pidfile_component() {
  case "$1" in
    "$OPERATOR_DIR/pid") echo training-operator ;;
    "$JOBSET_DIR/pid") echo jobset-controller ;;
    *) basename "$1" .pid ;;
  esac
}

# print_memory: resident memory of every process of the cluster, and their sum.
print_memory() {
  local pidfile pid kib total=0
  for pidfile in "$CLUSTER_DIR"/pids/*.pid "$OPERATOR_DIR/pid" "$JOBSET_DIR/pid"; do
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
    printf '  %-26s %6d MiB\n' "$(pidfile_component "$pidfile")" $((kib / 1024))
    total=$((total + kib))
  done
  printf '  %-26s %6d MiB\n' "total RSS" $((total / 1024))
}

case "${1:-}" in
  up) cluster_up ;;
  down) cluster_down ;;
  status) cluster_status ;;
  kubeconfig) echo "$CLUSTER_KUBECONFIG" ;;
  *) echo "usage: $0 up|down|status|kubeconfig" >&2; exit 2 ;;
esac
