#!/usr/bin/env bash
# Small-message time per call (1 KB - 64 KB), nccl-tests vs lockstep commbench, five
# alternating repetitions of 1000 calls per size, medians and their ratio: the repeat run behind
# the small-message rows of benchmarks/RESULTS.md. Run from the repo root on a GPU host, after
# `. scripts/gpu_host_build.sh`, with OUT set (a folder for the raw lines).
# usage: small_message_repeats.sh NCCL_TESTS_SRC NP
set -o pipefail; export NCCL_NVLS_ENABLE=0
NT_SRC=$1 NP=$2
nccl=/tmp/nccl-for-tests; mkdir -p $nccl/lib; ln -sfn $NCCL_HOME/include $nccl/include; ln -sf $NCCL_HOME/lib/libnccl.so.2 $nccl/lib/libnccl.so
mpi_home=$(dirname "$(dirname "$(readlink -f "$(command -v mpicc || command -v mpirun)")")")
[ -d /usr/lib/x86_64-linux-gnu/openmpi/include ] && mpi_home=/usr/lib/x86_64-linux-gnu/openmpi
make -s -C "$NT_SRC/src" -j "$(nproc)" MPI=1 MPI_HOME="$mpi_home" NCCL_HOME=$nccl BUILDDIR=/tmp/nt \
  NVCC_GENCODE="-gencode=arch=compute_90,code=sm_90" >$OUT/nt_build.log 2>&1 || { tail -20 $OUT/nt_build.log; exit 1; }
M="mpirun --bind-to none -np $NP -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE"
A="-b 1K -e 64K -f 2 -n 1000 -w 100 -c 1"
for op in all_reduce all_gather sendrecv; do for rep in 1 2 3 4 5; do
  $M /tmp/nt/${op}_perf -g 1 $A 2>&1 | grep -E "^ +[0-9]+ " | awk -v op=$op -v r=$rep '{print "nt", op, r, $1, $6}'
  $M $BUILD/app/lockstep commbench --backend nccl --ops $op $A 2>&1 | grep -E "^ +[0-9]+ " | awk -v op=$op -v r=$rep '{print "cb", op, r, $1, $6}'
done; done > $OUT/small.txt
python3 - <<'PY' | tee $OUT/small_summary.txt
import os, statistics as st, collections
d=collections.defaultdict(list)
for l in open(os.environ['OUT']+'/small.txt'):
    t,op,r,size,us=l.split(); d[(t,op,int(size))].append(float(us))
for op in ['all_reduce','all_gather','sendrecv']:
    print(op)
    for size in sorted({k[2] for k in d if k[1]==op}):
        nt=d[('nt',op,size)]; cb=d[('cb',op,size)]
        print(f"  {size:8d} nt {st.median(nt):6.2f} {nt}  cb {st.median(cb):6.2f} {cb}  ratio {st.median(cb)/st.median(nt):.3f}")
PY
