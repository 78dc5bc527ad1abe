# A kwokctl configuration that keeps every component on 127.0.0.1 (sourced by cluster.sh).
#
# kwokctl's binary runtime binds etcd, the API server and the controllers to 0.0.0.0; a test
# cluster has no business listening beyond loopback. We pick the ports ourselves and override the
# bind flags, which kwokctl appends to the command lines it builds.
# shellcheck shell=bash

# write_loopback_config PATH
write_loopback_config() {
  local apiserver etcd etcd_peer controller_manager scheduler kwok_controller
  read -r apiserver etcd etcd_peer controller_manager scheduler kwok_controller < <(free_ports 6)
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
  - {key: bind-address, value: 127.0.0.1, override: true}
- name: kube-controller-manager
  extraArgs:
  - {key: bind-address, value: 127.0.0.1, override: true}
- name: kube-scheduler
  extraArgs:
  - {key: bind-address, value: 127.0.0.1, override: true}
- name: kwok-controller
  extraArgs:
  - {key: server-address, value: "127.0.0.1:$kwok_controller", override: true}
  - {key: node-ip, value: 10.0.0.1, override: true}
YAML
}
