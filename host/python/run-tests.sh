#!/usr/bin/env bash
# Run the probe's unittest suite on every supported CPython (3.9 to 3.13), then
# the web framework tests (tests_web/: real Flask, Django, FastAPI, gunicorn) once, on the
# default `python3` (PYROMETER_WEB_PYTHON picks another).
#
# Interpreters come from pyenv ($PYENV_ROOT/versions/3.X.*, newest patch of each
# minor), or from PYROMETER_PYTHONS ("/path/to/python3.9 /path/to/python3.10 ...").
# A missing version fails the run: the probe claims to support it. So does a
# missing framework: its tests fail with the pip command that installs it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
minors=(3.9 3.10 3.11 3.12 3.13)

pythons=()
if [ -n "${PYROMETER_PYTHONS:-}" ]; then
    read -r -a pythons <<<"$PYROMETER_PYTHONS"
else
    root="${PYENV_ROOT:-$HOME/.pyenv}"
    missing=()
    for minor in "${minors[@]}"; do
        found="$(ls -d "$root"/versions/"$minor".* 2>/dev/null | grep -E "/$minor\.[0-9]+$" | sort -V | tail -n 1 || true)"
        if [ -n "$found" ] && [ -x "$found/bin/python" ]; then
            pythons+=("$found/bin/python")
        else
            missing+=("$minor")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "run-tests.sh: CPython ${missing[*]} not found under $root/versions." >&2
        echo "  install with: for v in ${missing[*]}; do pyenv install \"\$v\"; done" >&2
        echo "  (or list interpreters in PYROMETER_PYTHONS)" >&2
        exit 1
    fi
fi

status=0
passed=0
failed=0
for python in "${pythons[@]}"; do
    version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
    echo "== probe tests on CPython $version ($python)"
    if (cd "$here/tests" && "$python" -m unittest discover -s . -p 'test_*.py' "$@"); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        status=1
    fi
done
web_python="${PYROMETER_WEB_PYTHON:-python3}"
echo "== web framework tests on $("$web_python" --version 2>&1) ($web_python)"
if (cd "$here/tests_web" && "$web_python" -m unittest discover -s . -p 'test_*.py' "$@"); then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    status=1
fi
echo "probe: $passed passed, $failed failed"
exit "$status"
