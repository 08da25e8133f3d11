# Sourced by the sbatch scripts: where lockstep is, and the NCCL / InfiniBand / UCX settings
# multi-node deployment guides use. Every value can be overridden from the environment
# (export it, or sbatch --export=ALL,NAME=value). LOCKSTEP_CPU=1 runs on CPU-only nodes
# (collectives over MPI, no GPU or InfiniBand settings) — what CI uses.
export LOCKSTEP_HOME=${LOCKSTEP_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}
export LOCKSTEP_BIN=${LOCKSTEP_BIN:-$LOCKSTEP_HOME/build/app/lockstep}
export LOCKSTEP_CPU=${LOCKSTEP_CPU:-0}
if [ ! -x "$LOCKSTEP_BIN" ]; then
  echo "lockstep: $LOCKSTEP_BIN is not an executable; build first (bash scripts/setup.sh) or set LOCKSTEP_BIN" >&2
  exit 2
fi
if [ "$LOCKSTEP_CPU" = 1 ]; then
  export LOCKSTEP_BACKEND=${LOCKSTEP_BACKEND:-mpi}
else
  export LOCKSTEP_BACKEND=${LOCKSTEP_BACKEND:-nccl}
  # NCCL over InfiniBand with GPUDirect RDMA. List your HCAs (ibv_devinfo) in NCCL_IB_HCA; on
  # RoCE v2 fabrics NCCL_IB_GID_INDEX is usually 3. NVLink multicast (NVLS) stays off.
  export NCCL_IB_HCA=${NCCL_IB_HCA:-mlx5}
  export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-^lo,docker0}
  export NCCL_NET_GDR_LEVEL=${NCCL_NET_GDR_LEVEL:-PHB}
  export NCCL_IB_GID_INDEX=${NCCL_IB_GID_INDEX:-0}
  export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
  export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
  # Open MPI's own traffic (step plans, bootstrap) over UCX on the same fabric.
  export OMPI_MCA_pml=${OMPI_MCA_pml:-ucx}
  export UCX_TLS=${UCX_TLS:-rc,sm,self}
  export UCX_NET_DEVICES=${UCX_NET_DEVICES:-mlx5_0:1}
fi
# srun launches one rank per task through PMIx; extra srun options (e.g. --overcommit on a
# small test node) go in SRUN_ARGS. --kill-on-bad-exit: a rank that dies without MPI_Abort (the
# kernel's OOM killer, a signal) ends the step instead of leaving the others in a collective.
lockstep_srun() { srun --mpi=pmix --kill-on-bad-exit=1 ${SRUN_ARGS:-} "$LOCKSTEP_BIN" "$@"; }
