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
# Bandwidth: 64 MB - 4 GB, 20 timed calls per size. Small messages: 1 KB - 1 MB with 1000
# calls per size (20 calls of ~8 us are within the barrier-exit skew), three alternating
# repetitions, compared by median. A failed check is recorded but does not stop the run.
big=(-b 64M -e 4G -f 2 -n 20 -w 5 -c 1)
small=(-b 1K -e 1M -f 2 -n 1000 -w 100 -c 1)
ls_run() { "${M[@]}" "$lockstep" commbench --backend nccl "$@" || echo "commbench $* rc=$?"; }
nt_run() { local op=$1; shift; "${M[@]}" "$nt/${op}_perf" -g 1 "$@" || echo "nccl-tests $op rc=$?"; }
for op in all_reduce all_gather sendrecv; do
  nt_run "$op" "${big[@]}" >"$out/nccl_tests_${op}_big.txt" 2>&1
  ls_run --ops "$op" "${big[@]}" --json "$out/commbench_${op}_big.json" >"$out/commbench_${op}_big.txt" 2>&1
  for rep in 1 2 3; do
    nt_run "$op" "${small[@]}" >"$out/nccl_tests_${op}_small_$rep.txt" 2>&1
    ls_run --ops "$op" "${small[@]}" >"$out/commbench_${op}_small_$rep.txt" 2>&1
  done
done
ls_run --latency -b 1K -e 1M -f 2 -n 1000 -w 100 >"$out/commbench_latency.txt" 2>&1
python3 "$here/compare_tables.py" "$out" | tee "$out/summary.txt"
