#!/usr/bin/env bash
# README command 2 (and CI's): install, build, run the whole test suite, multi-rank tests
# under mpirun --oversubscribe included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/mpi_env.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
