#!/usr/bin/env bash
# Runs every workspace member's test suite, each in its own environment that holds only that member,
# its declared dependencies and its dev group (`uv run --exact --package X`). This is the command the
# README gives and the one `.ci/run` calls. Extra arguments go to every pytest call (e.g. -x, -k expr).
#
# Pythons: the lock resolves jax 0.10 on Python 3.11 and jax >= 0.11 on Python >= 3.12, so both forks
# are tested. IFVIT_PYTHONS lists the versions (default: .python-version's, then 3.12). The first
# runs every member in .venvs/X; the others run every member except those in IFVIT_FIRST_PYTHON_ONLY
# (default: ifvit-convert, whose environment pulls a ~3 GB torch) in .venvs/py<version>/X.
# A version that is not installed is skipped with a message, and the summary says so.
#
# Select members with IFVIT_MEMBERS="ifvit-core ifvit-data"; one Python with IFVIT_PYTHONS=3.11.
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
default_python=$(tr -d '[:space:]' < .python-version)
pythons=${IFVIT_PYTHONS:-"$default_python 3.12"}
first_only=${IFVIT_FIRST_PYTHON_ONLY-"ifvit-convert"}

# An interpreter for version $1 (e.g. 3.12): pyenv's installs first (their shims only answer for
# the pyenv version in force), then whatever uv finds without downloading. Empty if none.
find_python() {
  local v=$1 full
  if command -v pyenv >/dev/null 2>&1; then
    full=$(pyenv versions --bare --skip-aliases 2>/dev/null | grep -E "^${v//./\\.}(\.[0-9]+)?$" \
      | sort -V | tail -1 || true)
    if [[ -n $full && -x "$(pyenv root)/versions/$full/bin/python$v" ]]; then
      echo "$(pyenv root)/versions/$full/bin/python$v"
      return
    fi
  fi
  uv python find "$v" 2>/dev/null || true
}

failed=()
skipped=()
tested=()
first=1
for py in $pythons; do
  interpreter=$(find_python "$py")
  if [[ -z $interpreter ]]; then
    echo "=== Python $py: not installed, SKIPPED (install it, e.g. pyenv install $py) ==="
    skipped+=("Python $py")
    first=0
    continue
  fi
  for m in $members; do
    if ((first == 0)) && [[ " $first_only " == *" $m "* ]]; then
      continue
    fi
    if [[ $py == "$default_python" ]]; then env_dir=".venvs/$m"; else env_dir=".venvs/py$py/$m"; fi
    echo "=== $m (${path[$m]}) on Python $py ==="
    if ! UV_PYTHON="$interpreter" UV_PROJECT_ENVIRONMENT="$env_dir" \
        uv run --locked --exact --package "$m" pytest "${path[$m]}" "$@"; then
      failed+=("$m@$py")
    else
      tested+=("$m@$py")
    fi
  done
  first=0
done
if ((${#skipped[@]})); then
  echo "NOT TESTED: ${skipped[*]}"
fi
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
if ((${#tested[@]} == 0)); then
  echo "FAILED: nothing was tested"
  exit 1
fi
echo "all passed: ${tested[*]}"
