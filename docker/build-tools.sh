#!/bin/sh
# The C compiler and Python headers that the compiled receive path (setup.py) needs, in
# the image's build stage only: the final stage installs the built wheels and has neither.
# Without them the wheel would still build, with the pure-Python path only.
set -eu
include=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
need=""
command -v gcc >/dev/null 2>&1 || need="gcc libc6-dev"
[ -e "$include/Python.h" ] || need="$need python3-dev"
if [ -n "$need" ]; then
    apt-get update
    # shellcheck disable=SC2086 # a list of package names
    apt-get install -y --no-install-recommends $need
    rm -rf /var/lib/apt/lists/*
fi
