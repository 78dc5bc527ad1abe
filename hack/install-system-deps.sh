#!/usr/bin/env bash
# Installs the system packages the tests start as real services. Idempotent and quiet when present.
#
# redis-server/redis-tools: the Redis the tests start on free ports. The real node: containerd and
# runc (the container runtime), the CNI plugins, iptables and conntrack (kube-proxy), and buildah
# plus debootstrap to build the node's images without Docker or a registry.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have redis-server || need+=(redis-server)
have redis-benchmark || need+=(redis-tools)
have containerd || need+=(containerd)
have runc || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
have iptables || need+=(iptables)
have conntrack || need+=(conntrack)
have buildah || need+=(buildah)
have debootstrap || need+=(debootstrap)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >/dev/null \
  || { $sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
# Debian starts system services for some of these; the tests start their own on free ports (and
# cluster.sh its own containerd with its own socket), so none of them may run.
if command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl disable --now redis-server containerd >/dev/null 2>&1 || true
fi
echo "installed: ${need[*]}"
