// NcclCollectives (see nccl_collectives.h).
#include "comm/nccl_collectives.h"

#include "comm/nccl_check.h"
#include "kernels/cuda/cuda_check.h"

namespace lockstep {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I32: return ncclInt32;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Prod: return ncclProd;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
    case ReduceOp::Avg: return ncclAvg;
  }
  return ncclSum;
}

const char* at(const void* p, std::size_t elems, DType t) {
  return static_cast<const char*>(p) + elems * dtype_size(t);
}
char* at(void* p, std::size_t elems, DType t) { return static_cast<char*>(p) + elems * dtype_size(t); }

}  // namespace

NcclCollectives::NcclCollectives(ncclComm_t comm, cudaStream_t stream) : comm_(comm), stream_(stream) {
  LS_NCCL_CHECK(ncclCommUserRank(comm_, &rank_));
  LS_NCCL_CHECK(ncclCommCount(comm_, &size_));
}

void NcclCollectives::all_reduce(const void* send, void* recv, std::size_t count, DType t, ReduceOp op) {
  LS_NCCL_CHECK(ncclAllReduce(send, recv, count, nccl_type(t), nccl_op(op), comm_, stream_));
}

void NcclCollectives::all_gather(const void* send, void* recv, std::size_t send_count, DType t) {
  LS_NCCL_CHECK(ncclAllGather(send, recv, send_count, nccl_type(t), comm_, stream_));
}

void NcclCollectives::reduce_scatter(const void* send, void* recv, std::size_t recv_count, DType t,
                                     ReduceOp op) {
  LS_NCCL_CHECK(ncclReduceScatter(send, recv, recv_count, nccl_type(t), nccl_op(op), comm_, stream_));
}

void NcclCollectives::broadcast(const void* send, void* recv, std::size_t count, DType t, int root) {
  LS_NCCL_CHECK(ncclBroadcast(send, recv, count, nccl_type(t), root, comm_, stream_));
}

void NcclCollectives::send(const void* buf, std::size_t count, DType t, int peer) {
  LS_NCCL_CHECK(ncclSend(buf, count, nccl_type(t), peer, comm_, stream_));
}

void NcclCollectives::recv(void* buf, std::size_t count, DType t, int peer) {
  LS_NCCL_CHECK(ncclRecv(buf, count, nccl_type(t), peer, comm_, stream_));
}

void NcclCollectives::send_recv(const void* send_buf, int send_peer, void* recv_buf, int recv_peer,
                                std::size_t count, DType t) {
  LS_NCCL_CHECK(ncclGroupStart());
  LS_NCCL_CHECK(ncclSend(send_buf, count, nccl_type(t), send_peer, comm_, stream_));
  LS_NCCL_CHECK(ncclRecv(recv_buf, count, nccl_type(t), recv_peer, comm_, stream_));
  LS_NCCL_CHECK(ncclGroupEnd());
}

void NcclCollectives::all_to_all(const void* send, void* recv, std::size_t count, DType t) {
  LS_CHECK(send != recv, "the NCCL all_to_all is out-of-place only");
  LS_NCCL_CHECK(ncclGroupStart());
  for (int peer = 0; peer < size_; ++peer) {
    LS_NCCL_CHECK(ncclSend(at(send, peer * count, t), count, nccl_type(t), peer, comm_, stream_));
    LS_NCCL_CHECK(ncclRecv(at(recv, peer * count, t), count, nccl_type(t), peer, comm_, stream_));
  }
  LS_NCCL_CHECK(ncclGroupEnd());
}

void NcclCollectives::synchronize() {
  // Poll rather than block so an asynchronous NCCL failure (a peer died) is reported.
  for (;;) {
    const cudaError_t q = cudaStreamQuery(stream_);
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) LS_CUDA_CHECK(q);
    ncclResult_t async = ncclSuccess;
    LS_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    if (async != ncclSuccess) LS_NCCL_CHECK(async);
  }
}

}  // namespace lockstep
