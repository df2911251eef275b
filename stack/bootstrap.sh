#!/usr/bin/env bash
# Create the project's virtual environment (.venv) from uv.lock on a fresh machine.
# Needs Python 3.11+; installs uv into .cache/tools if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python 3.11 or newer is needed as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi

UV=$(command -v uv || true)
if [ -z "$UV" ] || [ "$("$UV" --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  if [ ! -x .cache/tools/bin/uv ]; then
    echo "installing uv $UV_VERSION into .cache/tools" >&2
    "$PYTHON" -m venv .cache/tools
    .cache/tools/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  fi
  UV=.cache/tools/bin/uv
fi

"$UV" sync --frozen --quiet --python "$PYTHON"
touch .venv/.synced
