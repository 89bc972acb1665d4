#!/usr/bin/env sh
# Prints the path of a working Python 3.10 interpreter, or explains what to do.
# Rasa 3.6 runs on Python 3.8-3.10 only; this project pins 3.10.
check() { [ -n "$1" ] && "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

if [ -n "${PYTHON310:-}" ] && check "$PYTHON310"; then echo "$PYTHON310"; exit 0; fi
if check "$(command -v python3.10 2>/dev/null)"; then command -v python3.10; exit 0; fi
if command -v pyenv >/dev/null 2>&1; then
  for p in $(ls -d "$(pyenv root)"/versions/3.10.*/bin/python 2>/dev/null | sort -V -r); do
    if check "$p"; then echo "$p"; exit 0; fi
  done
fi
cat >&2 <<'MSG'
error: no Python 3.10 found.
  Rasa 3.6 needs Python 3.8-3.10 and this project is built on 3.10.
  Install one (for example `pyenv install 3.10.13`, or your system's python3.10
  package), or point PYTHON310 at it: make run PYTHON310=/path/to/python3.10
MSG
exit 1
