#!/usr/bin/env bash
# timed.sh NAME CMD...: run CMD and append "NAME<TAB>SECONDS<TAB>STATUS" to $SPECFORGE_TIMINGS_DIR/preparations.tsv
# (when that is set), so `make test` can end with how long each preparation took. CMD's status is kept.
set -uo pipefail
name=$1
shift
start=$(date +%s.%N)
"$@"
status=$?
if [ -n "${SPECFORGE_TIMINGS_DIR:-}" ]; then
  mkdir -p "$SPECFORGE_TIMINGS_DIR"
  printf '%s\t%s\t%s\n' "$name" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$status" \
    >>"$SPECFORGE_TIMINGS_DIR/preparations.tsv"
fi
exit "$status"
