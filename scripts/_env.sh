# Shared set-up for scripts/demo and scripts/test: create or reuse .venv and install amasskit into it.
# Sourced, not run. Re-installs only when pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AMASSKIT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${1:-dev}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "amasskit needs Python >= 3.10; set PYTHON=/path/to/python3.x" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.amasskit-installed-$EXTRAS"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing amasskit[$EXTRAS] into $VENV" >&2
  # A pinned CPU torch first: an open-ended torch requirement with no torch installed pulls several GB of CUDA
  # packages. The package itself keeps an open requirement (torch>=2.1) for real users.
  if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet "torch==${AMASSKIT_TORCH_VERSION:-2.13.0}"
  fi
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$EXTRAS]"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
