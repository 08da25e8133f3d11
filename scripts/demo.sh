#!/usr/bin/env bash
# README command 1: install, build, check the rank grid, then serve the demo model under
# `mpirun -np 2` (TP2) on http://localhost:8000/v1 until Ctrl-C. The demo checkpoint (random
# weights, DeepSeek-V3/R1 tokenizer) is written into build/demo-model the first time.
# Extra arguments go to `lockstep serve` (e.g. --port 8080 --host 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/mpi_env.sh
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
mpirun --oversubscribe -np 2 -x NCCL_NVLS_ENABLE build/app/lockstep gridcheck --tensor-parallel-size 2
exec bash scripts/demo/serve_demo.sh build/app/lockstep build/demo-model -- "$@"
