#!/bin/sh
# Build the oxidicom wheel and a wheel of every runtime dependency into $1, from the
# source tree in $2 (default: the current directory). The image's build stage runs it;
# tests/integration/test_container_recipe.py runs the same script outside a container.
set -eu
out="$1"
src="${2:-.}"
python -m pip wheel --disable-pip-version-check --wheel-dir "$out" "$src"
