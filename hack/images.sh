#!/usr/bin/env bash
# Builds the local cluster's images without Docker or a registry, and imports them into the real
# node's containerd (`make images`).
#
#   base      $BASE_IMAGE      Debian bookworm (debootstrap minbase) with python3: the Dockerfile's base
#                              here, and the local-path-provisioner's helper image (/bin/sh, mkdir, rm)
#   redis     $REDIS_IMAGE     Debian's redis-server on the base (hack/redis.Containerfile), uid 999
#   operator  $OPERATOR_IMAGE  the Dockerfile's `operator` target on the base
#   trainer   $TRAINER_IMAGE   the Dockerfile's `trainer` target on the base (torch from PyPI: GBs)
#
# Usage: hack/images.sh [--build-only | --import-only] [--force] [IMAGE...]   (default: all four)
#   --build-only   build, import nothing
#   --import-only  import what buildah already has (after `make cluster-up`), build nothing
#   --force        rebuild even when the inputs are unchanged (buildah's layer cache still applies)
#
# A build is skipped when the hash of its inputs (the files the Dockerfile copies for that target, the
# recipe, and the base's image ID) matches the one recorded under $CACHE_ROOT/specforge-k8s/images/
# and buildah still holds that image. An import is skipped when containerd already has an image of that
# name with the same config digest. Needs root (debootstrap, buildah's storage, containerd's socket).
# The names come from hack/lib/node-env.sh; IMAGES_CONTAINERD_SOCK imports into another containerd.
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$HACK_DIR")
# shellcheck source=hack/lib/node-env.sh
source "$HACK_DIR/lib/node-env.sh"
# IMAGES_CONTAINERD_SOCK: import into another containerd than the real node's (a test's, say).
CONTAINERD_SOCK="${IMAGES_CONTAINERD_SOCK:-$CONTAINERD_SOCK}"

ALL_IMAGES=(base redis operator trainer)
IMAGES_CACHE="$CACHE_ROOT/specforge-k8s/images"
BASE_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python-is-python3,passwd,ca-certificates
# The CA bundle of the base, which Debian's pip (the venv's, from python3-venv) trusts.
BASE_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# Docker's manifest format: the docker-archive then carries the very config buildah built, so the
# config digest containerd reports after the import is buildah's image ID.
export BUILDAH_FORMAT=docker
export BUILDAH_ISOLATION=chroot
# buildah's storage (layers, the layer cache) lives under the cache directory with the project's other
# built artifacts, so a machine that keeps ~/.cache (CI after a session) rebuilds nothing.
BUILDAH_STORAGE="$IMAGES_CACHE/storage"
export CONTAINERS_STORAGE_CONF="$IMAGES_CACHE/storage.conf"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

mode=all force=0 selected=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) mode=build ;;
    --import-only) mode=import ;;
    --force) force=1 ;;
    -h | --help) usage; exit 0 ;;
    base | redis | operator | trainer) selected+=("$1") ;;
    *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ ${#selected[@]} -gt 0 ] || selected=("${ALL_IMAGES[@]}")

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (debootstrap, buildah's storage and containerd's socket need it): sudo $0 $*" >&2
  exit 1
fi
for tool in buildah debootstrap ctr python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "error: $tool is missing: run hack/install-system-deps.sh (\`make system-deps\`)" >&2
    exit 1
  }
done
export PATH="$PATH:/usr/sbin:/sbin"

mkdir -p "$IMAGES_CACHE/tmp" "$BUILDAH_STORAGE"
cat >"$CONTAINERS_STORAGE_CONF.tmp" <<TOML
[storage]
driver = "overlay"
graphroot = "$BUILDAH_STORAGE"
runroot = "/run/specforge-k8s/buildah"
TOML
mv "$CONTAINERS_STORAGE_CONF.tmp" "$CONTAINERS_STORAGE_CONF"
exec 9>"$IMAGES_CACHE/lock"
flock 9 || true  # one run at a time (they share buildah's storage and the stamps)

# ---------------------------------------------------------------- timings
SUMMARY=()
now() { date +%s%N; }
# timed LABEL CMD...: run CMD, print how long it took, and keep the line for the summary. Called
# plainly (never under `if`, `||` or `&&`), so errexit applies inside CMD and a failure ends the run.
timed() {
  local label=$1 start line
  shift
  start=$(now)
  "$@"
  line=$(awk -v ns="$(($(now) - start))" -v l="$label" 'BEGIN { printf "%-34s %7.1f s", l, ns / 1e9 }')
  echo "    $line"
  SUMMARY+=("$line")
}
# logged LOG CMD...: CMD's output goes to LOG, each line stamped with the seconds since CMD started
# (where a cold build's time went), and LOG's end is shown when CMD fails.
logged() {
  local log=$1 status=0
  shift
  "$@" 2>&1 | awk -v t0="$(date +%s)" '{ printf "%5ds %s\n", systime() - t0, $0; fflush() }' >"$log" || status=$?
  [ "$status" -eq 0 ] || { tail -n 30 "$log" >&2; echo "error: see $log" >&2; return 1; }
}
note() { SUMMARY+=("$(printf '%-34s %s' "$1" "$2")"); echo "    $1: $2"; }

# ---------------------------------------------------------------- names and inputs
image_name() {
  case "$1" in
    base) echo "$BASE_IMAGE" ;;
    redis) echo "$REDIS_IMAGE" ;;
    operator) echo "$OPERATOR_IMAGE" ;;
    trainer) echo "$TRAINER_IMAGE" ;;
  esac
}

# buildah's ID of an image (the sha256 of its config), empty when buildah does not have it.
buildah_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }

# The Debian mirror apt is configured with on this machine (deb822 .sources or one-line .list).
debian_mirror() {
  local uri
  uri=$(
    {
      grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | sed 's/^URIs:[[:space:]]*//' | tr ' ' '\n'
      grep -hs '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        | sed 's/\[[^]]*\]//' | awk '{ print $2 }'
    } | grep -E '^https?://.*/debian/?$' | sed -n 1p
  ) || true
  echo "${DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

# hash_files PATH...: one digest over the names and contents of the files under PATH, as the build
# context sees them (.dockerignore drops __pycache__, *.pyc and *.egg-info).
hash_files() {
  (
    cd "$REPO_ROOT"
    find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-64
}

# What goes into each image; a change here is what triggers its rebuild.
inputs_hash() {
  case "$1" in
    base)
      { echo "$BASE_SUITE minbase $BASE_PACKAGES"; declare -f build_base debootstrap_rootfs commit_rootfs; } \
        | sha256sum | cut -c1-64
      ;;
    redis) { buildah_id "$BASE_IMAGE"; hash_files hack/redis.Containerfile; } | sha256sum | cut -c1-64 ;;
    operator | trainer)
      {
        buildah_id "$BASE_IMAGE"
        echo "target=$1"
        hash_files Dockerfile .dockerignore constraints.txt pyproject.toml api "$1"
      } | sha256sum | cut -c1-64
      ;;
  esac
}

stamp_file() { echo "$IMAGES_CACHE/$1.built"; }
# up_to_date NAME HASH: the stamp records HASH and buildah still holds the image it recorded.
up_to_date() {
  local stamp hash id
  stamp=$(stamp_file "$1")
  [ "$force" = 0 ] && [ -f "$stamp" ] || return 1
  read -r hash id <"$stamp"
  [ "$hash" = "$2" ] && [ -n "$id" ] && [ "$(buildah_id "$(image_name "$1")")" = "$id" ]
}

# ---------------------------------------------------------------- builds
WORK_CONTAINER="" ROOTFS=""
cleanup() {
  [ -z "$WORK_CONTAINER" ] || buildah rm "$WORK_CONTAINER" >/dev/null 2>&1 || true
  [ -z "$ROOTFS" ] || rm -rf --one-file-system "$ROOTFS"
  rm -f "$IMAGES_CACHE"/tmp/*.tar
}
trap cleanup EXIT

debootstrap_rootfs() {
  local log="$IMAGES_CACHE/debootstrap.log"
  mkdir -p "$IMAGES_CACHE/debs"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" --cache-dir="$IMAGES_CACHE/debs" \
    "$BASE_SUITE" "$ROOTFS" "$(debian_mirror)" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    [ ! -f "$ROOTFS/debootstrap/debootstrap.log" ] || tail -n 20 "$ROOTFS/debootstrap/debootstrap.log" >&2
    return 1
  fi
  # Host files debootstrap copies in (the runtime provides its own), caches, lists and docs.
  rm -rf "$ROOTFS"/etc/resolv.conf "$ROOTFS"/etc/hostname "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/* \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/doc/*
  # What the Dockerfile and the local-path-provisioner's helper pods run.
  local path
  for path in bin/sh usr/bin/mkdir usr/bin/rm usr/bin/python usr/bin/python3 usr/sbin/useradd; do
    [ -x "$ROOTFS/$path" ] || { echo "error: the base rootfs has no /$path" >&2; return 1; }
  done
  [ -s "$ROOTFS$BASE_CA_BUNDLE" ] || { echo "error: the base rootfs has no $BASE_CA_BUNDLE" >&2; return 1; }
  chroot "$ROOTFS" python -c 'import ensurepip, venv'
}

commit_rootfs() {
  local mnt
  WORK_CONTAINER=$(buildah from scratch)
  mnt=$(buildah mount "$WORK_CONTAINER")
  cp -a "$ROOTFS"/. "$mnt"/
  buildah unmount "$WORK_CONTAINER" >/dev/null
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --label "org.opencontainers.image.description=Debian $BASE_SUITE minbase + python3" \
    "$WORK_CONTAINER"
  buildah commit --quiet --rm "$WORK_CONTAINER" "$BASE_IMAGE" >/dev/null
  WORK_CONTAINER=""
}

build_base() {
  ROOTFS=$(mktemp -d "$IMAGES_CACHE/tmp/rootfs.XXXXXX")
  timed "base: debootstrap" debootstrap_rootfs
  timed "base: buildah commit" commit_rootfs
  rm -rf --one-file-system "$ROOTFS"
  ROOTFS=""
}

build_redis() {
  timed "redis: buildah bud" logged "$IMAGES_CACHE/redis.build.log" \
    nice buildah bud --layers --force-rm --pull=false --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f "$HACK_DIR/redis.Containerfile" -t "$REDIS_IMAGE" "$HACK_DIR"
}

# pip inside the build must trust the CA of a TLS-intercepting proxy when the host does (PIP_CERT or
# SSL_CERT_FILE name the host's bundle). That bundle is bind-mounted, read-only and for RUN steps only,
# over the base's own bundle, which Debian's pip reads: the file exists in the base, so no mount point is
# left behind, no layer records the mount, and the images keep the base's bundle. The Dockerfile knows
# nothing of it (on a Docker host it builds unchanged from its default base).
ca_mount_args() {
  local ca="${PIP_CERT:-${SSL_CERT_FILE:-}}"
  MOUNT_ARGS=()
  if [ -n "$ca" ] && [ -f "$ca" ]; then MOUNT_ARGS=(--volume "$(realpath "$ca"):$BASE_CA_BUNDLE:ro"); fi
}

build_target() {  # operator | trainer
  ca_mount_args
  timed "$1: buildah bud" logged "$IMAGES_CACHE/$1.build.log" \
    nice buildah bud --layers --force-rm --pull=false "${MOUNT_ARGS[@]}" \
    --build-arg "PYTHON_IMAGE=$BASE_IMAGE" --target "$1" -t "$(image_name "$1")" \
    -f "$REPO_ROOT/Dockerfile" "$REPO_ROOT"
}

ensure_built() {
  local name=$1 image hash id
  image=$(image_name "$name")
  if [[ "$name" == operator || "$name" == trainer ]] && [ ! -f "$REPO_ROOT/constraints.txt" ]; then
    echo "error: $REPO_ROOT/constraints.txt is missing (the Dockerfile pins the images' dependencies with it)" >&2
    return 1
  fi
  hash=$(inputs_hash "$name")
  if up_to_date "$name" "$hash"; then
    note "$name: build" "up to date ($image)"
    return 0
  fi
  echo "==> building $name ($image)"
  if [[ "$name" == operator || "$name" == trainer ]]; then
    # The outdated image goes first: a trainer build needs ~25 GB at its peak, and the old one is 6 GB.
    buildah rmi "$image" >/dev/null 2>&1 || true
    prune_when_short
  fi
  case "$name" in
    base) build_base ;;
    redis) build_redis ;;
    operator | trainer) build_target "$name" ;;
  esac
  id=$(buildah_id "$image")
  [ -n "$id" ] || { echo "error: buildah has no $image after building it" >&2; return 1; }
  # Inputs edited during the build: the image may hold either version, so record nothing (the next
  # run builds again, mostly from buildah's layer cache).
  if [ "$(inputs_hash "$name")" = "$hash" ]; then
    echo "$hash $id" >"$(stamp_file "$name")"
  else
    rm -f "$(stamp_file "$name")"
    echo "note: $name's inputs changed during its build: the next run builds it again" >&2
  fi
}

# ---------------------------------------------------------------- containerd
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace "$CONTAINERD_NAMESPACE" "$@"; }
containerd_up() { [ -S "$CONTAINERD_SOCK" ] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }

# The config digest of IMAGE in containerd (sha256:...), empty when it has no such image.
containerd_config_digest() {
  local target
  target=$(ctr_ images ls "name==$1" 2>/dev/null | awk 'NR == 2 { print $3 }')
  [ -n "$target" ] || return 0
  ctr_ content get "$target" 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(doc["config"]["digest"] if "config" in doc else "index:" + doc["manifests"][0]["digest"])
' || true
}

push_archive() { rm -f "$2" && buildah push --quiet "$1" "docker-archive:$2:$1" >/dev/null; }
import_archive() { ctr_ images import "$1" >/dev/null; }

ensure_imported() {
  local name=$1 image id archive
  image=$(image_name "$name")
  id=$(buildah_id "$image")
  [ -n "$id" ] || { echo "error: buildah has no $image: build it first (hack/images.sh $name)" >&2; return 1; }
  if [ "$(containerd_config_digest "$image")" = "sha256:$id" ]; then
    note "$name: import" "up to date (containerd has sha256:${id:0:12})"
    return 0
  fi
  echo "==> importing $name ($image) into containerd"
  local replaced got
  replaced=$(containerd_config_digest "$image")
  archive="$IMAGES_CACHE/tmp/$name.tar"
  timed "$name: buildah push (archive)" push_archive "$image" "$archive"
  timed "$name: ctr import" import_archive "$archive"
  rm -f "$archive"
  got=$(containerd_config_digest "$image")
  [ "$got" = "sha256:$id" ] || { echo "error: containerd has $image as '$got', not sha256:$id" >&2; return 1; }
  forget_replaced "$replaced"
}

# The kubelet's CRI names every image it has seen by its config digest too, so the image a new import
# replaced would keep its layers (6 GB for the trainer) in the node's store for good. Dropping that
# name lets containerd's garbage collector free them; a container still running on it keeps its own
# snapshot.
forget_replaced() {
  case "$1" in sha256:*) ctr_ images rm "$1" >/dev/null 2>&1 || true ;; esac
}

# ---------------------------------------------------------------- main
total_start=$(now)
# A trainer build generation (its stages' layers and the image) takes ~18 GB. Older generations stay
# as untagged images, the layer cache; when the disk runs short they go (the next build downloads its
# dependencies again), rather than the disk filling up and the node evicting its imported images.
MIN_FREE_GB=${SPECFORGE_IMAGES_MIN_FREE_GB:-30}
free_gb() { df -P -BG "$BUILDAH_STORAGE" | awk 'NR == 2 {sub("G", "", $4); print $4}'; }
prune_when_short() {
  if [ "$(free_gb)" -lt "$MIN_FREE_GB" ]; then
    echo "==> less than $MIN_FREE_GB GB free: pruning buildah's untagged images (the layer cache)" >&2
    buildah rmi --prune >/dev/null 2>&1 || true
  fi
}

if [ "$mode" != import ]; then
  # Working containers a killed or failed run left behind hold whole layers (gigabytes for the trainer);
  # runs are serialised by the lock above, so any that exist now are leftovers.
  buildah rm --all >/dev/null 2>&1 || true
  prune_when_short
  # The base goes first: the other three are built on it and their inputs include its ID.
  ensure_built base
  for name in redis operator trainer; do
    if [[ " ${selected[*]} " == *" $name "* ]]; then ensure_built "$name"; fi
  done
fi
[ "$mode" = import ] || prune_when_short
imported=0
if [ "$mode" != build ]; then
  if containerd_up; then
    for name in "${selected[@]}"; do ensure_imported "$name"; done
    imported=1
  elif [ "$mode" = import ]; then
    echo "error: containerd is not running at $CONTAINERD_SOCK: start the cluster first (\`make cluster-up\`)" >&2
    exit 1
  fi
fi

echo
echo "images ($(awk -v ns="$(($(now) - total_start))" 'BEGIN { printf "%.1f s", ns / 1e9 }') in all):"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
for name in "${selected[@]}"; do
  image=$(image_name "$name")
  size=$(buildah images --format '{{.Size}}' "$image" 2>/dev/null | sed -n 1p) || true
  printf '  %-9s %-52s %s\n' "$name" "$image" "${size:-not built}"
done
if [ "$imported" = 0 ] && [ "$mode" != build ]; then
  echo "containerd is not running at $CONTAINERD_SOCK, so nothing was imported: run \`make cluster-up\`" \
    "(it starts containerd), then \`hack/images.sh --import-only\` (or \`make images\` again)."
fi
