#!/usr/bin/env bash
# `make test` as a fresh machine runs it: a clean clone of HEAD, and a HOME with nothing in it, so pip's,
# Go's and the project's caches (binaries, buildah's images, the node's containerd root) all start empty.
# The warm caches under the real HOME are not touched (nothing is moved, so an interrupted run loses
# nothing), and the cold HOME is deleted afterwards unless KEEP_COLD_HOME=1.
#
#   hack/test-cold.sh                    (`make test-cold`) clone HEAD, run `make test`, print the wall time
#   SPECFORGE_COLD_DIR=DIR hack/test-cold.sh   work under DIR (default: a new directory under /var/tmp)
#
# Uncommitted changes are not in the clone: commit first. System packages (apt) stay installed; on a
# fresh machine `make test` installs them in about a minute.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A cold run holds a second copy of everything the warm caches hold: the venv (6 GB), Go's caches (11 GB),
# buildah's images and layer cache (16 GB, ~25 GB at the trainer build's peak) and the node's containerd.
NEED_GB=${SPECFORGE_COLD_MIN_FREE_GB:-55}
WORK=${SPECFORGE_COLD_DIR:-$(mktemp -d /var/tmp/specforge-cold.XXXXXX)}
mkdir -p "$WORK/home"
free_gb=$(df -P -BG "$WORK" | awk 'NR == 2 { sub("G", "", $4); print $4 }')
if [ "$free_gb" -lt "$NEED_GB" ]; then
  echo "error: a cold make test needs about $NEED_GB GB free beside the warm caches; $WORK has $free_gb GB." \
    "Free space, or run \`make test\` in a fresh clone after removing ~/.cache/specforge-k8s, ~/.cache/go-*" \
    "(that is cold too, and leaves warm caches behind)" >&2
  rmdir "$WORK/home" "$WORK" 2>/dev/null || true
  exit 1
fi
[ -z "$(git -C "$REPO_ROOT" status --porcelain --untracked-files=no)" ] \
  || echo "note: uncommitted changes are not in the cold clone (it is HEAD, $(git -C "$REPO_ROOT" rev-parse --short HEAD))" >&2
rm -rf "$WORK/specforge-k8s"
git clone -q --no-hardlinks "$REPO_ROOT" "$WORK/specforge-k8s"
# CI clones the project with the shared notes beside it.
[ ! -d "$REPO_ROOT/../shared" ] || ln -sfn "$(cd "$REPO_ROOT/../shared" && pwd)" "$WORK/shared"

cleanup() {
  if [ "${KEEP_COLD_HOME:-0}" = 1 ]; then
    echo "kept: $WORK (cold HOME $WORK/home)" >&2
    return
  fi
  # A build killed midway leaves buildah's overlay mounts under the cold HOME.
  awk -v w="$WORK" 'index($2, w "/") == 1 { print $2 }' /proc/mounts | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done
  rm -rf --one-file-system "$WORK" 2>/dev/null || echo "note: some of $WORK could not be removed" >&2
}
trap cleanup EXIT

echo "cold make test in $WORK/specforge-k8s (HOME=$WORK/home), log $WORK/make-test.log" >&2
start=$SECONDS
status=0
(
  cd "$WORK/specforge-k8s"
  unset XDG_CACHE_HOME XDG_STATE_HOME PIP_CACHE_DIR GOCACHE GOMODCACHE GOPATH KUBECONFIG VIRTUAL_ENV
  HOME="$WORK/home" make test
) 2>&1 | tee "$WORK/make-test.log" || status=$?
elapsed=$((SECONDS - start))
echo "cold make test: exit $status in $((elapsed / 60)) min $((elapsed % 60)) s (log $WORK/make-test.log)" >&2
mkdir -p "$REPO_ROOT/build" && cp "$WORK/make-test.log" "$REPO_ROOT/build/test-cold.log" && echo "log kept as build/test-cold.log" >&2
exit "$status"
