#!/usr/bin/env bash
# The two commands of the README's quick start. Each sets the machine up first
# (Debian packages when missing, .venv, native build) and then:
#   ./quickstart.sh run [CYCLES]   runs the appliance's main job on the embedded default
#   ./quickstart.sh test [ARGS]    runs the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"
action=${1:-}
shift || true
case "$action" in
    run)
        scripts/bootstrap.sh
        exec .venv/bin/binpick detect \
            --boundaries examples/pile/boundaries.png \
            --occlusions examples/pile/occlusions.png \
            --image examples/pile/rgb.png \
            --out out/result.json --overlay out/overlay.png
        ;;
    test)
        scripts/bootstrap.sh
        .venv/bin/ruff check .
        exec .venv/bin/python -m pytest -q "$@"
        ;;
    *)
        echo "usage: $0 run [CYCLES] | test [PYTEST ARGS]" >&2
        exit 2
        ;;
esac
