# The local cluster's real node: a kubelet on this machine beside the KWOK nodes (sourced by cluster.sh).
#
# containerd (Debian's, our own config, socket and root), the kubelet, kube-proxy (iptables), CoreDNS and
# local-path-provisioner all run as plain processes, the last two out of cluster with the cluster's
# admin kubeconfig. Names and paths come from node-env.sh. One real node per machine: the cluster that
# starts it holds $REAL_NODE_LOCK (a `flock` kept by a small holder process) until `cluster.sh down`;
# a second cluster comes up KWOK-only.
#
# Addresses: Services 10.96.0.0/16 (the `kubernetes` Service 10.96.0.1, cluster DNS 10.96.0.10), the
# real node's pods 10.244.0.0/24 on the bridge $CNI_BRIDGE, KWOK's fake pod IPs 10.0.0.0/24 (its
# default). The API server listens on 0.0.0.0 and advertises this machine's primary IP, so pods reach
# it through the `kubernetes` Service; CoreDNS listens on that IP on a free port behind a
# selector-less `kube-dns` Service whose EndpointSlice we write.
# shellcheck shell=bash

# shellcheck source=hack/lib/node-env.sh
source "$HACK_DIR/lib/node-env.sh"

SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
CLUSTER_DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
REAL_NODE_POD_CIDR=10.244.0.0/24
CNI_BRIDGE=specforge0
CNI_NETWORK=specforge-real-node
REAL_NODE_GPUS=4
LOCAL_PATH_NAMESPACE=local-path-storage
LOCAL_PATH_HELPER_LABEL=specforge.io/local-path-helper

# Machine-wide (one real node per machine) ...
CONTAINERD_CONFIG="$REAL_NODE_RUN_DIR/containerd/config.toml"
CNI_CONF_DIR="$REAL_NODE_RUN_DIR/cni/net.d"
CNI_IPAM_DIR="$REAL_NODE_RUN_DIR/cni/ipam"
KUBELET_ROOT="$REAL_NODE_RUN_DIR/kubelet"
REAL_NODE_OWNER="$REAL_NODE_RUN_DIR/real-node.owner"
# ... and this cluster's part: configs, logs, pids, PV data; deleted with the cluster.
NODE_DIR="$CLUSTER_DIR/real-node"
REAL_NODE_COMPONENTS=(containerd kubelet kube-proxy coredns local-path-provisioner)

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace "$CONTAINERD_NAMESPACE" "$@"; }

# host_ip: this machine's primary IPv4 address (the source of its default route).
host_ip() {
  local ip
  ip=$(ip -4 route get 1.0.0.0 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  [ -n "$ip" ] || ip=$(hostname -I 2>/dev/null | awk '{print $1}')
  [ -n "$ip" ] || { echo "error: cannot tell this machine's IP address" >&2; return 1; }
  echo "$ip"
}

# ---- the lock: one real node per machine -------------------------------------------------------------

# lock_holder: the pid of the process holding the real node's lock for this cluster, if it is alive.
lock_holder() {
  local pid dir
  read -r pid dir 2>/dev/null <"$REAL_NODE_OWNER" || return 1
  [ "$dir" = "$CLUSTER_DIR" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# acquire_real_node: take $REAL_NODE_LOCK for this cluster (true), or fail when another holds it.
# A detached `sleep` inherits the locked descriptor and keeps the lock until `down` ends it.
acquire_real_node() {
  lock_holder >/dev/null && return 0
  mkdir -p "$REAL_NODE_RUN_DIR"
  local fd
  exec {fd}>>"$REAL_NODE_LOCK"
  if ! flock -n "$fd"; then
    exec {fd}>&-
    return 1
  fi
  setsid bash -c 'exec -a specforge-real-node-lock sleep infinity' </dev/null >/dev/null 2>&1 &
  printf '%s %s\n' "$!" "$CLUSTER_DIR" >"$REAL_NODE_OWNER"
  exec {fd}>&-
}

release_real_node() {
  local pid
  if pid=$(lock_holder); then
    kill "$pid" 2>/dev/null || true
    wait_for_exit "$pid"
    rm -f "$REAL_NODE_OWNER"
  fi
}

# want_real_node: decide, when a cluster is first created, whether it gets the real node.
want_real_node() {
  if [ "${SPECFORGE_REAL_NODE:-1}" = 0 ]; then
    echo "note: SPECFORGE_REAL_NODE=0: this cluster is KWOK-only" >&2
    return 1
  fi
  local tool
  for tool in containerd runc ctr buildah iptables; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "note: $tool is not installed (hack/install-system-deps.sh installs it): this cluster is KWOK-only" >&2
      return 1
    fi
  done
  acquire_real_node && return 0
  echo "note: the real node is taken by another cluster ($(real_node_owner); lock $REAL_NODE_LOCK): this cluster is KWOK-only" >&2
  return 1
}

real_node_owner() { awk '{print $2}' "$REAL_NODE_OWNER" 2>/dev/null || echo unknown; }

has_real_node() { [ -f "$NODE_DIR/enabled" ]; }

# ---- processes -----------------------------------------------------------------------------------

node_pid() {
  local pid
  pid=$(cat "$NODE_DIR/pids/$1.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# start_node_process NAME COMMAND...: run a component detached, logging to $NODE_DIR/logs/NAME.log.
start_node_process() {
  local name=$1
  shift
  node_pid "$name" >/dev/null && return 0
  mkdir -p "$NODE_DIR/logs" "$NODE_DIR/pids"
  setsid "$@" </dev/null >>"$NODE_DIR/logs/$name.log" 2>&1 &
  echo $! >"$NODE_DIR/pids/$name.pid"
}

stop_node_process() {
  local pid
  if pid=$(node_pid "$1"); then
    kill "$pid" 2>/dev/null || true
    wait_for_exit "$pid"
  fi
  rm -f "$NODE_DIR/pids/$1.pid"
}

# wait_until SECONDS WHAT NAME COMMAND...: poll COMMAND; on timeout show NAME's log and fail.
wait_until() {
  local timeout=$1 what=$2 name=$3 deadline
  shift 3
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || { [ -n "$name" ] && ! node_pid "$name" >/dev/null; }; then
      echo "error: $what; last lines of $NODE_DIR/logs/$name.log:" >&2
      tail -n 25 "$NODE_DIR/logs/$name.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.3
  done
}

# ---- containerd, images, CNI -----------------------------------------------------------------------

write_containerd_config() {
  mkdir -p "$(dirname "$CONTAINERD_CONFIG")" "$CONTAINERD_ROOT" "$CONTAINERD_STATE" "$CNI_CONF_DIR"
  cat >"$CONTAINERD_CONFIG" <<TOML
# Written by hack/lib/real-node.sh for the local cluster's real node.
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_ROOT/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # root here may not lower oom_score_adj; without this every sandbox fails in runc.
  restrict_oom_score_adj = true
  systemd_cgroup = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_CONF_DIR"
TOML
}

write_cni_config() {
  mkdir -p "$CNI_CONF_DIR" "$CNI_IPAM_DIR"
  cat >"$CNI_CONF_DIR/10-specforge.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_IPAM_DIR",
        "ranges": [[{"subnet": "$REAL_NODE_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
}

containerd_ready() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }

start_containerd() {
  # Kernel settings pods need: routing between the bridge and the host, Service rules for bridged traffic.
  sysctl -qw net.ipv4.ip_forward=1
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  write_cni_config
  if containerd_ready; then
    node_pid containerd >/dev/null && return 0
    echo "error: a containerd we did not start serves $CONTAINERD_SOCK" >&2
    return 1
  fi
  write_containerd_config
  start_node_process containerd containerd --config "$CONTAINERD_CONFIG"
  wait_until 30 "containerd did not start" containerd containerd_ready
}

# image_present NAME: containerd holds an image of exactly that name. The listing is captured whole
# before it is searched: `ctr ... | grep -q` under pipefail fails when grep's early exit kills ctr.
image_present() {
  local names
  names=$(ctr_k8s images ls -q 2>/dev/null) || return 1
  grep -qxF -- "$1" <<<"$names"
}

# import_image ARCHIVE: load a docker-archive (or OCI archive) into the node's containerd, unpacked.
import_image() { ctr_k8s images import "$1" >/dev/null; }

# ensure_pause_image: containerd's sandbox image, built from our static pause binary with buildah.
ensure_pause_image() {
  image_present "$PAUSE_IMAGE" && return 0
  local work ctr_id
  work=$(mktemp -d)
  ctr_id=$(buildah from scratch)
  buildah copy "$ctr_id" "$BIN_DIR/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --label "io.specforge.component=pause" "$ctr_id"
  buildah commit -q "$ctr_id" "$PAUSE_IMAGE" >/dev/null
  buildah rm "$ctr_id" >/dev/null
  buildah push -q "$PAUSE_IMAGE" "docker-archive:$work/pause.tar:$PAUSE_IMAGE"
  import_image "$work/pause.tar"
  rm -rf "$work"
  image_present "$PAUSE_IMAGE"
}

# ---- kubelet, kube-proxy ---------------------------------------------------------------------------

write_kubelet_config() {
  local ip=$1 port healthz
  read -r port healthz < <(free_ports 2)
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 and no systemd on this machine; root may not lower oom_score_adj.
failCgroupV1: false
cgroupDriver: cgroupfs
oomScoreAdj: 0
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $ip
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: /etc/resolv.conf
# The API server calls us with the cluster's admin certificate (kubectl logs/exec/port-forward).
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CLUSTER_DIR/pki/ca.crt}
authorization:
  mode: Webhook
podLogsDir: $NODE_DIR/pod-logs
# Images are imported, not pulled: never garbage-collect them (100 disables image GC).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Eviction under disk pressure also deletes every unused image, which here means the imported ones:
# absolute floors, so only a disk that is really full (not a busy shared one) triggers it.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1Gi
  imagefs.available: 1Gi
serializeImagePulls: false
YAML
  echo "$healthz" >"$NODE_DIR/kubelet-healthz-port"
}

kubelet_healthy() {
  python3 - "$(cat "$NODE_DIR/kubelet-healthz-port")" <<'PY'
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2)
PY
}

start_kubelet() {
  node_pid kubelet >/dev/null && return 0
  local ip=$1
  mkdir -p "$KUBELET_ROOT" "$NODE_DIR/pod-logs"
  write_kubelet_config "$ip"
  start_node_process kubelet "$BIN_DIR/kubelet" --config="$NODE_DIR/kubelet.yaml" \
    --kubeconfig="$CLUSTER_KUBECONFIG" --root-dir="$KUBELET_ROOT" --cert-dir="$NODE_DIR/kubelet-pki" \
    --hostname-override="$REAL_NODE_NAME" --node-ip="$ip" --node-labels="$REAL_NODE_LABEL=true"
  wait_until 60 "kubelet did not become healthy" kubelet kubelet_healthy
}

node_ready() {
  [ "$(kc get node "$REAL_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

node_gpus() {
  [ "$(kc get node "$REAL_NODE_NAME" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}' 2>/dev/null)" = "$REAL_NODE_GPUS" ]
}

# advertise_gpus: the node's extended resource (Kubernetes docs, "Advertise Extended Resources for a
# Node"): a JSON patch on the status. Applied on every `up`: a restarted kubelet may zero it.
advertise_gpus() {
  node_gpus && return 0
  kc patch node "$REAL_NODE_NAME" --subresource=status --type=json -p "[
    {\"op\": \"add\", \"path\": \"/status/capacity/nvidia.com~1gpu\", \"value\": \"$REAL_NODE_GPUS\"},
    {\"op\": \"add\", \"path\": \"/status/allocatable/nvidia.com~1gpu\", \"value\": \"$REAL_NODE_GPUS\"}]" >/dev/null
  wait_until 30 "node $REAL_NODE_NAME does not show $REAL_NODE_GPUS allocatable GPUs" kubelet node_gpus
}

start_kube_proxy() {
  node_pid kube-proxy >/dev/null && return 0
  local healthz metrics
  read -r healthz metrics < <(free_ports 2)
  cat >"$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $CLUSTER_KUBECONFIG
hostnameOverride: $REAL_NODE_NAME
mode: iptables
clusterCIDR: $REAL_NODE_POD_CIDR
healthzBindAddress: 127.0.0.1:$healthz
metricsBindAddress: 127.0.0.1:$metrics
oomScoreAdj: 0
# Leave the machine's conntrack sysctls alone (root here lacks CAP_SYS_RESOURCE for some).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
  start_node_process kube-proxy "$BIN_DIR/kube-proxy" --config="$NODE_DIR/kube-proxy.yaml"
  wait_until 30 "kube-proxy did not program the Service rules" kube-proxy iptables -t nat -n -L KUBE-SERVICES
}

# ---- cluster DNS -----------------------------------------------------------------------------------

# coredns_answers IP PORT: CoreDNS resolves kubernetes.default.svc.cluster.local (NOERROR, an answer).
coredns_answers() {
  python3 - "$1" "$2" <<'PY'
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x5346, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in "kubernetes.default.svc.cluster.local".split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(q, (sys.argv[1], int(sys.argv[2])))
reply = s.recv(512)
sys.exit(0 if reply[3] & 0x0F == 0 and struct.unpack(">H", reply[6:8])[0] > 0 else 1)
PY
}

start_coredns() {
  local ip=$1 port
  if ! node_pid coredns >/dev/null; then
    read -r port < <(free_ports 1)
    echo "$port" >"$NODE_DIR/coredns-port"
    cat >"$NODE_DIR/Corefile" <<COREFILE
.:$port {
    bind $ip
    errors
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $CLUSTER_KUBECONFIG
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . /etc/resolv.conf
    cache 30
}
COREFILE
    start_node_process coredns "$BIN_DIR/coredns" -conf "$NODE_DIR/Corefile"
  fi
  port=$(cat "$NODE_DIR/coredns-port")
  # kube-dns: a ClusterIP Service without a selector; its one endpoint is CoreDNS on this machine.
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $CLUSTER_DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: $port}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: $port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: specforge-cluster-sh
addressType: IPv4
endpoints:
- addresses: [$ip]
  conditions: {ready: true}
  nodeName: $REAL_NODE_NAME
ports:
- {name: dns, port: $port, protocol: UDP}
- {name: dns-tcp, port: $port, protocol: TCP}
YAML
  wait_until 30 "CoreDNS does not answer on $ip:$port" coredns coredns_answers "$ip" "$port"
}

# ---- storage ---------------------------------------------------------------------------------------

start_local_path() {
  local dir="$NODE_DIR/local-path"
  mkdir -p "$dir"
  # Helper pods on KWOK nodes carry $LOCAL_PATH_HELPER_LABEL: the specforge-local-path-helper stage
  # completes them, so PVCs of pods scheduled there bind too.
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $LOCAL_PATH_NAMESPACE
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: local-path-provisioner-service-account
  namespace: $LOCAL_PATH_NAMESPACE
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-path-config
  namespace: $LOCAL_PATH_NAMESPACE
data:
  config.json: |-
    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$dir"]}]}
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata:
      name: helper-pod
      labels:
        $LOCAL_PATH_HELPER_LABEL: "true"
    spec:
      priorityClassName: system-node-critical
      containers:
      - name: helper-pod
        image: $BASE_IMAGE
        imagePullPolicy: Never
YAML
  start_node_process local-path-provisioner "$BIN_DIR/local-path-provisioner" start \
    --kubeconfig "$CLUSTER_KUBECONFIG" --namespace "$LOCAL_PATH_NAMESPACE" \
    --provisioner-name rancher.io/local-path --configmap-name local-path-config \
    --service-account-name local-path-provisioner-service-account --helper-image "$BASE_IMAGE"
  sleep 0.5
  node_pid local-path-provisioner >/dev/null || {
    echo "error: local-path-provisioner exited; see $NODE_DIR/logs/local-path-provisioner.log" >&2
    tail -n 20 "$NODE_DIR/logs/local-path-provisioner.log" >&2
    return 1
  }
}

# ---- up, down, status ------------------------------------------------------------------------------

real_node_up() {
  local ip
  # The lock may have been lost (the holder killed); take it again or give up the node.
  if ! acquire_real_node; then
    echo "warning: this cluster had the real node, but $(real_node_owner) holds it now" >&2
    return 0
  fi
  ip=$(cat "$NODE_DIR/host-ip")
  local logs="$NODE_DIR/logs"
  starting containerd "$logs/containerd.log"
  start_containerd
  starting "pause image" "$logs/containerd.log"
  ensure_pause_image
  starting kubelet "$logs/kubelet.log"
  start_kubelet "$ip"
  wait_until 90 "node $REAL_NODE_NAME did not become Ready" kubelet node_ready
  advertise_gpus
  starting kube-proxy "$logs/kube-proxy.log"
  start_kube_proxy
  starting coredns "$logs/coredns.log"
  start_coredns "$ip"
  starting local-path-provisioner "$logs/local-path-provisioner.log"
  start_local_path
  image_present "$BASE_IMAGE" || echo "note: $BASE_IMAGE is not in the node's containerd yet: local-path helper pods on $REAL_NODE_NAME wait for it" >&2
}

# drain_real_node: delete the pods bound to the node and let the kubelet tear them down (CNI DEL
# included), so no veth, IPAM lease or masquerade rule outlives them.
drain_real_node() {
  node_pid kubelet >/dev/null || return 0
  kc get node "$REAL_NODE_NAME" >/dev/null 2>&1 || return 0
  kc cordon "$REAL_NODE_NAME" >/dev/null 2>&1 || true
  kc delete pods --all-namespaces --field-selector "spec.nodeName=$REAL_NODE_NAME" \
    --grace-period=2 --wait=true --timeout=40s >/dev/null 2>&1 || true
  # The kubelet stops the sandboxes shortly after the pods are gone.
  local deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ] && [ -n "$(ctr_k8s tasks ls -q 2>/dev/null)" ]; do sleep 0.5; done
}

# remove_containers: whatever the kubelet left: tasks killed and deleted, containers deleted.
remove_containers() {
  containerd_ready || return 0
  local id
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$id" >/dev/null 2>&1 || true; done
}

# unmount_under DIR: every mount point below DIR, deepest first.
unmount_under() {
  local dir=$1 mnt
  [ -d "$dir" ] || return 0
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done
  # The kubelet bind-mounts its root dir onto itself (rshared).
  if awk -v d="$dir" '$2 == d {f = 1} END {exit !f}' /proc/self/mounts; then umount -l "$dir" 2>/dev/null || true; fi
}

# cleanup_network: the bridge, and masquerade chains of sandboxes the CNI never saw deleted.
cleanup_network() {
  local rule chain
  ip link del "$CNI_BRIDGE" 2>/dev/null || true
  local rules
  rules=$(iptables -t nat -S POSTROUTING 2>/dev/null | grep -F "\"name: \\\"$CNI_NETWORK\\\"" || true)
  [ -n "$rules" ] || return 0
  while read -r rule; do
    chain=$(sed -n 's/.* -j \(CNI-[0-9a-f]*\).*/\1/p' <<<"$rule")
    # The rule's words, quoted as iptables -S printed them.
    eval "iptables -t nat ${rule/-A/-D}" 2>/dev/null || true
    if [ -n "$chain" ] && iptables -t nat -F "$chain" 2>/dev/null; then iptables -t nat -X "$chain" 2>/dev/null || true; fi
  done <<<"$rules"
}

# cleanup_kubelet_chains: the chains the kubelet itself makes (kube-proxy --cleanup removes its own).
cleanup_kubelet_chains() {
  local tool table chain
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null 2>&1 || continue
    while "$tool" -t filter -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$tool" -t filter -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    for table in filter nat mangle; do
      for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
        if "$tool" -t "$table" -F "$chain" 2>/dev/null; then "$tool" -t "$table" -X "$chain" 2>/dev/null || true; fi
      done
    done
  done
}

# stop_shims: containerd-shim processes serving our containerd (they outlive containerd itself).
stop_shims() {
  local pids=() cmdline pid args
  for cmdline in /proc/[0-9]*/cmdline; do
    pid=${cmdline#/proc/}
    pid=${pid%/cmdline}
    args=$(tr '\0' ' ' 2>/dev/null <"$cmdline") || continue
    [[ "$args" == *containerd-shim*" -address $CONTAINERD_SOCK "* ]] && pids+=("$pid")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  wait_for_exit "${pids[@]}"
}

real_node_down() {
  has_real_node || return 0
  # Clean up when we hold the node, or when its lock is free again (the holder was killed).
  if ! acquire_real_node; then
    echo "note: the real node is held by $(real_node_owner), not by this cluster: left alone" >&2
    return 0
  fi
  stop_node_process local-path-provisioner
  stop_node_process coredns
  drain_real_node
  stop_node_process kubelet
  remove_containers
  stop_node_process kube-proxy
  "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1 || true
  stop_node_process containerd
  stop_shims
  unmount_under "$KUBELET_ROOT"
  unmount_under "$CONTAINERD_STATE"
  cleanup_network
  cleanup_kubelet_chains
  rm -rf --one-file-system "$KUBELET_ROOT" "$CNI_IPAM_DIR" "$CONTAINERD_STATE" "$CNI_CONF_DIR"
  kc delete node "$REAL_NODE_NAME" --wait=false >/dev/null 2>&1 || true
  release_real_node
  echo "real node $REAL_NODE_NAME is down" >&2
}

real_node_status() {
  if ! has_real_node; then
    echo "real node: none in this cluster (KWOK-only)"
    return 0
  fi
  if ! lock_holder >/dev/null; then
    echo "real node: not held by this cluster"
    return 1
  fi
  local name pid kib failed=0 total=0
  echo "real node $REAL_NODE_NAME (lock $REAL_NODE_LOCK):"
  for name in "${REAL_NODE_COMPONENTS[@]}"; do
    if pid=$(node_pid "$name"); then
      kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      total=$((total + kib))
      printf '  %-24s running (pid %s) %6d MiB\n' "$name" "$pid" $((kib / 1024))
    else
      printf '  %-24s not running\n' "$name"
      failed=1
    fi
  done
  printf '  %-24s %21d MiB\n' "real node total RSS" $((total / 1024))
  return $failed
}
