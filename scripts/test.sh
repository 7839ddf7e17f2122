#!/usr/bin/env bash
# Runs every workspace member's test suite, each in its own environment that holds only that member,
# its declared dependencies and its dev group (`uv run --exact --package X`). This is the command the
# README gives and the one `.ci/run` calls. Extra arguments go to every pytest call (e.g. -x, -k expr).
# Select members with IFVIT_MEMBERS="ifvit-core ifvit-data".
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
declare -A path=(
  [ifvit-core]=packages/ifvit-core
  [ifvit-data]=packages/ifvit-data
  [ifvit-train]=packages/ifvit-train
  [ifvit]=apps/ifvit
  [ifvit-convert]=packages/ifvit-convert
)
members=${IFVIT_MEMBERS:-"ifvit-core ifvit-data ifvit-train ifvit ifvit-convert"}
failed=()
for m in $members; do
  echo "=== $m (${path[$m]}) ==="
  if ! UV_PROJECT_ENVIRONMENT=".venvs/$m" uv run --locked --exact --package "$m" \
      pytest "${path[$m]}" "$@"; then
    failed+=("$m")
  fi
done
if ((${#failed[@]})); then
  echo "FAILED members: ${failed[*]}"
  exit 1
fi
echo "all members passed: $members"
