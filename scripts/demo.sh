#!/usr/bin/env bash
# README command 1: install, build, and run lockstep's main job on this machine. Until the
# server lands that is a 4-rank TP2 x PP2 grid self-check over the comm layer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/mpi_env.sh
mpirun --oversubscribe -np 4 build/app/lockstep gridcheck --tensor-parallel-size 2 --pipeline-parallel-size 2
