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
#
# Speed: the suites are dominated by XLA compiles of small models on CPU.
# - JAX's persistent compilation cache is on, in a fresh temporary folder outside the repository
#   that is deleted at the end: every run starts cold, nothing carries over between runs. Every
#   compiled program is stored, whatever its size or compile time, so the same graph built again by
#   a later test, a subprocess or another member's suite is loaded instead of recompiled (the key
#   covers the computation, the compile options, the devices and the jax/jaxlib version).
#   IFVIT_JAX_CACHE=0 turns it off.
# - IFVIT_JOBS suites (default 2) run at a time, each (member, Python) in its own environment as
#   before; the longest suites start first. With more than one at a time each suite's output goes
#   to its own log and every log is printed in full, in the usual order, when all are done. Tests
#   that start servers or workers use free ports and their own temp folders. IFVIT_JOBS=1 runs the
#   suites one after the other with their output streamed as it comes.
# Fast loop: `bash scripts/test.sh --fast [pytest args]` runs the default Python only and deselects
# the tests marked `slow` (end-to-end runs: the demo, kill-and-resume, multi-process training,
# worker processes, real-entry subprocesses). `.ci/run` runs everything.
#
# Lint first, in every mode (--fast too): `ruff check .` with the rules and line length of the root
# pyproject.toml ([tool.ruff]), ruff pinned by its dev group, in its own environment .venvs/lint
# (pytest + ruff only). Any finding fails the run (exit 1, "lint failed") before a suite starts.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
if [[ ${1:-} == --fast ]]; then
  fast=1
  shift
  set -- -m "not slow" "$@"
fi
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
echo "=== lint: ruff check . ==="
if ! UV_PROJECT_ENVIRONMENT=.venvs/lint uv run --locked --exact --only-group dev ruff check .; then
  echo "FAILED: lint failed (ruff check .): fix the findings above, or see [tool.ruff] in pyproject.toml"
  exit 1
fi
declare -A path=(
  [ifvit-core]=packages/ifvit-core
  [ifvit-data]=packages/ifvit-data
  [ifvit-train]=packages/ifvit-train
  [ifvit]=apps/ifvit
  [ifvit-convert]=packages/ifvit-convert
)
# Rough relative cost of each suite (measured on a 2-core CPU), to start the longest first.
declare -A cost=([ifvit-train]=50 [ifvit]=40 [ifvit-core]=20 [ifvit-data]=3 [ifvit-convert]=3)
members=${IFVIT_MEMBERS:-"ifvit-core ifvit-data ifvit-train ifvit ifvit-convert"}
default_python=$(tr -d '[:space:]' < .python-version)
if ((fast)); then pythons=${IFVIT_PYTHONS:-$default_python}; else pythons=${IFVIT_PYTHONS:-"$default_python 3.12"}; fi
first_only=${IFVIT_FIRST_PYTHON_ONLY-"ifvit-convert"}
max_jobs=${IFVIT_JOBS:-2}
[[ $max_jobs =~ ^[1-9][0-9]*$ ]] || { echo "IFVIT_JOBS must be a positive integer" >&2; exit 2; }

# Scratch space of this run (compilation cache, logs, results), outside the repository, removed on
# any exit; suites still running then (the script was interrupted) are stopped first.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ifvit-test.XXXXXX")
running=()
cleanup() {
  local pid
  for pid in "${running[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
if [[ ${IFVIT_JAX_CACHE:-1} != 0 ]]; then
  export JAX_COMPILATION_CACHE_DIR="$scratch/jax-cache"
  export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
  export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1
fi

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

# The suites to run, in the usual order (Python by Python, member by member): suite i is member
# s_member[i] on Python s_py[i] (interpreter s_python[i]) in environment s_env[i].
s_member=() s_py=() s_python=() s_env=()
skipped=()
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
    s_member+=("$m") s_py+=("$py") s_python+=("$interpreter") s_env+=("$env_dir")
  done
  first=0
done

# Runs suite number $1, then the pytest args; writes "tested X@py" or "failed X@py" to result.$1.
run_suite() {
  local i=$1 m=${s_member[$1]} py=${s_py[$1]} start status=tested
  shift
  echo "=== $m (${path[$m]}) on Python $py ==="
  start=$SECONDS
  if ! UV_PYTHON="${s_python[$i]}" UV_PROJECT_ENVIRONMENT="${s_env[$i]}" \
      uv run --locked --exact --package "$m" pytest "${path[$m]}" "$@"; then
    status=failed
  fi
  echo "=== $m on Python $py: $status, $((SECONDS - start)) s ==="
  echo "$status $m@$py" > "$scratch/result.$i"
}

if ((max_jobs == 1 || ${#s_member[@]} <= 1)); then
  for i in "${!s_member[@]}"; do
    run_suite "$i" "$@"
  done
else
  # Longest first (by cost, then in the usual order), at most max_jobs at a time.
  mapfile -t order < <(for i in "${!s_member[@]}"; do
    echo "${cost[${s_member[$i]}]:-10} $i"
  done | sort -k1,1nr -k2,2n -s | cut -d' ' -f2)
  echo "=== running ${#s_member[@]} suites, $max_jobs at a time; their logs follow when all are done ==="
  for i in "${order[@]}"; do
    while (($(jobs -rp | wc -l) >= max_jobs)); do
      wait -n || true
    done
    run_suite "$i" "$@" > "$scratch/log.$i" 2>&1 < /dev/null &
    running+=($!)
  done
  wait || true
  running=()
  for i in "${!s_member[@]}"; do
    cat "$scratch/log.$i"
  done
fi

tested=()
failed=()
for i in "${!s_member[@]}"; do
  # a suite whose runner died before recording its result counts as failed
  if [[ $(cat "$scratch/result.$i" 2>/dev/null) == "tested ${s_member[$i]}@${s_py[$i]}" ]]; then
    tested+=("${s_member[$i]}@${s_py[$i]}")
  else
    failed+=("${s_member[$i]}@${s_py[$i]}")
  fi
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
