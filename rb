#!/usr/bin/env bash
# Bootstrap and run: creates .venv with pinned dependencies on first use, then runs
#   ./rb demo              the main job against the embedded sandbox (export, check, preview, sync)
#   ./rb test              the whole test suite: ruff, mypy and pytest
#   ./rb <command> ...     any `rosterbook` command (./rb --help lists them)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.rosterbook-installed"
want="$(cat "$here/pyproject.toml" "$here/constraints.txt" | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "rb: installing rosterbook and its pinned dependencies into .venv ..." >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$here/constraints.txt" -e "$here[dev,bench]" >&2
  echo "$want" > "$stamp"
fi
# Bytecode for rosterbook's own modules, as a regular (not editable) install has it: a machine that sets
# PYTHONDONTWRITEBYTECODE (many containers do) would otherwise compile them from source in every process (~0.1 s
# each command; the test suite starts hundreds). Up to date, this is a 50 ms look at the files' times.
"$venv/bin/python" -m compileall -q "$here/rosterbook" "$here/sync_client" "$here/addin" >/dev/null 2>&1 || true
cmd="${1:-demo}"
case "$cmd" in
  test)
    shift || true
    cd "$here"
    echo "== ruff" && "$venv/bin/ruff" check .
    echo "== mypy" && "$venv/bin/mypy"
    echo "== pytest" && exec "$venv/bin/python" -m pytest -n 2 "$@"
    ;;
  *)
    exec "$venv/bin/rosterbook" "$@"
    ;;
esac
