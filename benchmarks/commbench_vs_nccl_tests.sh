#!/usr/bin/env bash
# Side by side on one GPU host: lockstep commbench and nccl-tests (built here from its public
# source, which never enters this repo) with the same sizes, iterations and rank count, one
# after the other per collective; then benchmarks/compare_tables.py prints the busbw ratios
# (64 MB - 4 GB) and the small-message time ratios (1 KB - 1 MB).
# usage: commbench_vs_nccl_tests.sh LOCKSTEP_BIN NCCL_TESTS_SRC NP OUT_DIR
# Needs NCCL_HOME (headers + libnccl.so.2) and an Open MPI mpirun; keeps NCCL_NVLS_ENABLE=0.
set -euo pipefail
lockstep=$1 src=$2 np=$3 out=$4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export NCCL_NVLS_ENABLE=0
# nccl-tests links -lnccl: give it a libnccl.so next to the wheel's libnccl.so.2.
nccl=/tmp/nccl-for-tests; mkdir -p "$nccl/lib"
ln -sfn "$NCCL_HOME/include" "$nccl/include"
ln -sf "$NCCL_HOME/lib/libnccl.so.2" "$nccl/lib/libnccl.so"
mpi_home=$(dirname "$(dirname "$(readlink -f "$(command -v mpicc || command -v mpirun)")")")
[ -d /usr/lib/x86_64-linux-gnu/openmpi/include ] && mpi_home=/usr/lib/x86_64-linux-gnu/openmpi
make -s -C "$src/src" -j "$(nproc)" MPI=1 MPI_HOME="$mpi_home" NCCL_HOME="$nccl" BUILDDIR=/tmp/nccl-tests-build \
  NVCC_GENCODE="-gencode=arch=compute_90,code=sm_90" >"$out/nccl_tests_build.log" 2>&1 \
  || { tail -30 "$out/nccl_tests_build.log"; exit 1; }
nt=/tmp/nccl-tests-build
M=(mpirun --bind-to none -np "$np" -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE)
common=(-b 1K -e 4G -f 2 -n 20 -w 5 -c 1)
# A failed check is recorded (rc in the log) but does not stop the comparison.
for op in all_reduce all_gather sendrecv; do
  "${M[@]}" "$nt/${op}_perf" "${common[@]}" -g 1 >"$out/nccl_tests_$op.txt" 2>&1 || echo "nccl-tests $op rc=$?"
  "${M[@]}" "$lockstep" commbench --backend nccl --ops "$op" "${common[@]}" --json "$out/commbench_$op.json" \
    >"$out/commbench_$op.txt" 2>&1 || echo "commbench $op rc=$?"
done
"${M[@]}" "$lockstep" commbench --backend nccl --latency -b 1K -e 1M -f 2 -n 200 -w 20 \
  >"$out/commbench_latency.txt" 2>&1 || echo "commbench latency rc=$?"
python3 "$here/compare_tables.py" "$out" | tee "$out/summary.txt"
