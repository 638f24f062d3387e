#!/bin/sh
# Compiles _speedups.c for one CPython into DIR/_speedups<EXT_SUFFIX> (such as
# _speedups.cpython-311-x86_64-linux-gnu.so, the name only that version
# loads) and prints that path. The interpreter is $PYTHON, else python3; it
# needs its headers (Python.h) and a C compiler ($CC, else cc).
# Used by host/build.rs (the probe the pyrometer binary carries) and by
# host/python/run-tests.sh (the probe's own tests, on every CPython).
set -eu
dir=${1:?usage: build.sh DIR}
here=$(dirname "$0")
python=${PYTHON:-python3}
paths=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"]); print(sysconfig.get_config_var("EXT_SUFFIX"))') || {
    echo "build.sh: $python does not run (set PYTHON to a CPython 3.9 or later)" >&2
    exit 1
}
include=$(echo "$paths" | sed -n 1p)
suffix=$(echo "$paths" | sed -n 2p)
if [ ! -f "$include/Python.h" ]; then
    echo "build.sh: no Python.h in $include (apt-get install python3-dev, or set PYTHON to a CPython with its headers)" >&2
    exit 1
fi
out="$dir/_speedups$suffix"
"${CC:-cc}" -O2 -shared -fPIC -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter \
    -Wno-missing-field-initializers -Werror -I"$include" "$here/_speedups.c" -o "$out"
echo "$out"
