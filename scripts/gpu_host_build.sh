#!/usr/bin/env bash
# Builds lockstep on an air-gapped GPU host (the `device` machines): unpacks the Debian
# dependency bundle made by scripts/gpu_deps_bundle.sh (carried in .deps/), points CMake
# at the host's NCCL, and builds the tree the device tool sent (the working tree: the .git it
# carries can be older than the files, so `git archive HEAD` there would build stale code;
# commit before a measurement and record the local commit) into $BUILD (default /tmp/build).
# Source it (". scripts/gpu_host_build.sh") so the environment stays for mpirun afterwards.
# Every step returns on failure explicitly: `set -e` does not apply to a file sourced as
# `. gpu_host_build.sh || …`, which is how gpu_check.sh calls it.
mkdir -p /opt/deps && tar xzf .deps/deps-bundle.tar.gz -C /opt/deps && . /opt/deps/env.sh ||
  { echo "gpu_host_build: no dependency bundle in .deps (run scripts/gpu_deps_bundle.sh here first)"; return 1; }
export NCCL_HOME=${NCCL_HOME:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl}
export LD_LIBRARY_PATH=$NCCL_HOME/lib:$LD_LIBRARY_PATH NCCL_NVLS_ENABLE=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export BUILD=${BUILD:-/tmp/build}
export LOCKSTEP_SRC=$PWD
echo "gpu_host_build: source $LOCKSTEP_SRC (working tree), build $BUILD"
cmake -S "$LOCKSTEP_SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  ${LOCKSTEP_CMAKE_ARGS:-} >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log"; return 1; }
# LOCKSTEP_BUILD_TARGETS (e.g. "lockstep cuda_dense_ops_test"): only those, for a short call.
cmake --build "$BUILD" -j "$(nproc)" ${LOCKSTEP_BUILD_TARGETS:+--target $LOCKSTEP_BUILD_TARGETS} >"$BUILD.build.log" 2>&1 ||
  { tail -40 "$BUILD.build.log"; return 1; }
tail -1 "$BUILD.build.log"
