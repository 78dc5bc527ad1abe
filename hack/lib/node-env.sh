# Names and paths of the local cluster's real node and of the images it runs (sourced, not run).
#
# One real node per machine: its kubelet, kube-proxy (iptables) and containerd are machine-wide
# resources, so the cluster that starts it holds $REAL_NODE_LOCK until it goes down. containerd's
# root lives under the cache directory, so imported images survive `cluster-down` and a rebuild
# with unchanged inputs imports nothing.
# shellcheck shell=bash

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}"
REAL_NODE_NAME=real-node-0
REAL_NODE_LABEL=specforge.io/real-node
REAL_NODE_RUN_DIR=/run/specforge-k8s
REAL_NODE_LOCK="$REAL_NODE_RUN_DIR/real-node.lock"
CONTAINERD_ROOT="$CACHE_ROOT/specforge-k8s/containerd/root"
CONTAINERD_STATE="$REAL_NODE_RUN_DIR/containerd/state"
CONTAINERD_SOCK="$REAL_NODE_RUN_DIR/containerd/containerd.sock"
CONTAINERD_NAMESPACE=k8s.io
# Taint on the KWOK nodes (KWOK's own convention): only pods that tolerate it land on fake nodes.
KWOK_TAINT_KEY=kwok.x-k8s.io/node
KWOK_TAINT_VALUE=fake

PROJECT_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$HACK_DIR/../pyproject.toml")
# The names the chart and the CRD default to, so examples run unchanged on the real node.
OPERATOR_IMAGE="ghcr.io/specforge-k8s/operator:$PROJECT_VERSION"
TRAINER_IMAGE="ghcr.io/specforge-k8s/trainer:$PROJECT_VERSION"
REDIS_IMAGE="docker.io/library/redis:7.2-alpine"  # built from Debian's redis-server (no registry here)
PAUSE_IMAGE="localhost/specforge-k8s/pause:1"  # containerd's sandbox_image
BASE_IMAGE="localhost/specforge-k8s/debian-python:bookworm"  # Dockerfile base; local-path helper pods
