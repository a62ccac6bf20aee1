#!/bin/sh
# Install oxidicom from the wheels in $1 into a new virtual environment at $2, offline,
# without the test extras and without pip itself (the base image's pip installs into
# it); then check that it runs on uvloop. The image's final stage runs it;
# tests/integration/test_container_recipe.py runs the same script.
set -eu
wheels="$1"
venv="$2"
python -m venv --without-pip "$venv"
python -m pip --python "$venv/bin/python" install --disable-pip-version-check --no-index \
    --find-links "$wheels" oxidicom
"$venv/bin/python" -c "import uvloop, oxidicom.app.cli"
