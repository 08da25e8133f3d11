#!/usr/bin/env bash
# README command 2 (and CI's): install, build, run the whole test suite, multi-rank tests
# under mpirun --oversubscribe included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/mpi_env.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
# The build without CUDA (hosts with no toolkit: LOCKSTEP_CUDA=AUTO finds no nvcc) must not rot
# either: configure it apart and build the binary (its code paths are the ones tested above).
cmake -S . -B build-nocuda -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKSTEP_CUDA=OFF >/dev/null
cmake --build build-nocuda -j "$(nproc)" --target lockstep
build-nocuda/app/lockstep --help | grep -q "serve" || { echo "FAIL: the build without CUDA does not run"; exit 1; }
echo "build without CUDA: OK"
