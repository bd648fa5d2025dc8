#!/usr/bin/env bash
# Proves that a fresh machine installs with the README's two commands: clones this
# repository (its committed HEAD, nothing uncommitted) into a temporary folder and runs
# the quick start there with pip's cache turned off, so that no wheel built earlier on this
# machine can hide a missing build step (issue 15: an sdist that needed Cython passed CI
# because the cache held its wheel).
#   scripts/check_fresh_install.sh            bootstrap + `./quickstart.sh run 2`
#   scripts/check_fresh_install.sh test ARGS  bootstrap + `./quickstart.sh test ARGS`
# The clone is removed afterwards unless KEEP=1. Debian packages already on the machine are
# kept (apt is the bootstrap's first step and installs only what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/binpick-fresh.XXXXXX")
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "check_fresh_install: kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
git clone -q "$ROOT" "$WORK/binpick"
cd "$WORK/binpick"
export PIP_NO_CACHE_DIR=1
start=$SECONDS
case "${1:-run}" in
    run) ./quickstart.sh run 2 ;;
    test) shift; ./quickstart.sh test "$@" ;;
    *) echo "usage: $0 [run | test [PYTEST ARGS]]" >&2; exit 2 ;;
esac
echo "check_fresh_install: passed in $((SECONDS - start)) s from a fresh clone with no pip cache"
