#!/bin/sh
# Builds {{name}}.wasm, a Plugboard {{world}} component, from app.py with componentize-py.
# Written by `plugboard new --lang python`; the paths below are the Plugboard checkout's WIT and
# Python SDK.
set -eu
cd "$(dirname "$0")"

# componentize-py from $COMPONENTIZE_PY, the PATH (an activated venv), or ./venv.
CPY="${COMPONENTIZE_PY:-}"
if [ -z "$CPY" ]; then
    if command -v componentize-py >/dev/null 2>&1; then
        CPY=componentize-py
    elif [ -x venv/bin/componentize-py ]; then
        CPY=venv/bin/componentize-py
    else
        echo "error: componentize-py not found. Install it once, e.g.:" >&2
        echo "  python3 -m venv venv && venv/bin/pip install componentize-py==0.25.1" >&2
        echo "(or activate a venv that has it, or set COMPONENTIZE_PY=/path/to/componentize-py)" >&2
        exit 1
    fi
fi

"$CPY" -d "{{wit}}" -w "{{world}}" componentize -p "{{sdk}}" -p . app -o "{{name}}.wasm"
echo "built {{name}}.wasm"
