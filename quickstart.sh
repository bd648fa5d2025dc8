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
        # Embedded default: simulated bin camera, bundled model on ONNX Runtime (CPU),
        # Modbus TCP on 127.0.0.1:5020, status page on 127.0.0.1:8080; one line per grasp.
        exec .venv/bin/binpick run --config firmware_config/embedded.toml --cycles "${1:-10}" --print
        ;;
    test)
        scripts/bootstrap.sh
        .venv/bin/ruff check .
        # The layers (docs/contracts.md section 0): a wrong-way import fails here, before the tests.
        .venv/bin/lint-imports --no-cache --no-logo
        exec .venv/bin/python -m pytest -q "$@"
        ;;
    *)
        echo "usage: $0 run [CYCLES] | test [PYTEST ARGS]" >&2
        exit 2
        ;;
esac
