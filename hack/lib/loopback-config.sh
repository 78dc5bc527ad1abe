# The kwokctl configuration of a local cluster (sourced by cluster.sh).
#
# kwokctl's binary runtime binds etcd, the API server and the controllers to 0.0.0.0; a test
# cluster has no business listening beyond loopback. We pick the ports ourselves and override the
# bind flags, which kwokctl appends to the command lines it builds. One exception: with a real node
# (hack/lib/real-node.sh) the API server must be reachable from pods, so it listens on every address
# and advertises this machine's IP (the `kubernetes` Service's endpoint); host tools keep using
# 127.0.0.1. Every cluster gets the same Service range, apart from KWOK's fake pod IPs (10.0.0.0/24),
# and its serving certificate names the `kubernetes` Service's IP for in-cluster clients.
# shellcheck shell=bash

# write_loopback_config PATH [HOST_IP]: HOST_IP given when the cluster has the real node.
write_loopback_config() {
  local host_ip=${2:-} apiserver etcd etcd_peer controller_manager scheduler kwok_controller
  read -r apiserver etcd etcd_peer controller_manager scheduler kwok_controller < <(free_ports 6)
  local apiserver_bind=127.0.0.1 apiserver_extra=""
  if [ -n "$host_ip" ]; then
    apiserver_bind=0.0.0.0
    apiserver_extra="
  - {key: advertise-address, value: $host_ip}
  - {key: kubelet-preferred-address-types, value: InternalIP}
  - {key: kubelet-client-certificate, value: $CLUSTER_DIR/pki/admin.crt}
  - {key: kubelet-client-key, value: $CLUSTER_DIR/pki/admin.key}"
  fi
  cat >"$1" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverPort: $apiserver
  etcdPort: $etcd
  etcdPeerPort: $etcd_peer
  kubeControllerManagerPort: $controller_manager
  kubeSchedulerPort: $scheduler
  kwokControllerPort: $kwok_controller
  kubeApiserverCertSANs: [$KUBERNETES_SERVICE_IP]
componentsPatches:
- name: etcd
  extraArgs:
  - {key: listen-client-urls, value: "http://127.0.0.1:$etcd", override: true}
  - {key: advertise-client-urls, value: "http://127.0.0.1:$etcd", override: true}
  - {key: listen-peer-urls, value: "http://127.0.0.1:$etcd_peer", override: true}
  - {key: initial-advertise-peer-urls, value: "http://127.0.0.1:$etcd_peer", override: true}
  - {key: initial-cluster, value: "node0=http://127.0.0.1:$etcd_peer", override: true}
- name: kube-apiserver
  extraArgs:
  - {key: bind-address, value: $apiserver_bind, override: true}
  - {key: service-cluster-ip-range, value: $SERVICE_CIDR}$apiserver_extra
- name: kube-controller-manager
  extraArgs:
  - {key: bind-address, value: 127.0.0.1, override: true}
  - {key: service-cluster-ip-range, value: $SERVICE_CIDR}
- name: kube-scheduler
  extraArgs:
  - {key: bind-address, value: 127.0.0.1, override: true}
- name: kwok-controller
  extraArgs:
  - {key: server-address, value: "127.0.0.1:$kwok_controller", override: true}
  - {key: node-ip, value: 10.0.0.1, override: true}
  # Only the fake nodes (hack/kwok/nodes.yaml): the real node's pods are the kubelet's.
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
YAML
}
