#!/usr/bin/env bash
# README command 1: install, build, and run lockstep's main job on this machine. Until the
# server lands that is the comm layer on 4 ranks: the TP2 x PP2 grid self-check, then an
# nccl-tests-style commbench of every collective (NCCL where every rank has a GPU, else MPI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/mpi_env.sh
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
mpirun --oversubscribe -np 4 -x NCCL_NVLS_ENABLE build/app/lockstep gridcheck --tensor-parallel-size 2 --pipeline-parallel-size 2
mpirun --oversubscribe -np 4 -x NCCL_NVLS_ENABLE build/app/lockstep commbench --ops all -b 8 -e 16M -f 8
