// MpiCollectives (see mpi_collectives.h). Element-wise operations are issued in chunks so
// counts past MPI's int limit work and the fp32 staging buffer stays bounded.
#include "comm/mpi_collectives.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "comm/mpi_check.h"

namespace lockstep {
namespace {

MPI_Datatype raw_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::I32: return MPI_INT32_T;
    case DType::BF16:
    case DType::F16: return MPI_UINT16_T;
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return MPI_SUM;  // Avg divides afterwards
    case ReduceOp::Prod: return MPI_PROD;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

bool is_16bit_float(DType t) { return t == DType::BF16 || t == DType::F16; }

int as_int_count(std::size_t count, const char* what) {
  LS_CHECK(count <= static_cast<std::size_t>(INT_MAX),
           what << " of " << count << " elements per rank exceeds the MPI backend's limit of "
                << INT_MAX << "; use the NCCL backend or a smaller size");
  return static_cast<int>(count);
}

template <typename F>
void for_each_chunk(std::size_t count, std::size_t chunk, F&& f) {
  for (std::size_t off = 0; off < count; off += chunk) f(off, static_cast<int>(std::min(chunk, count - off)));
}

// Divides n reduced values by the group size for ReduceOp::Avg (ints truncate, as NCCL does).
void finish_average(void* data, std::size_t n, DType t, int group) {
  if (t == DType::I32) {
    auto* p = static_cast<std::int32_t*>(data);
    for (std::size_t i = 0; i < n; ++i) p[i] /= group;
  } else {
    auto* p = static_cast<float*>(data);  // only fp32 buffers reach here (16-bit is widened)
    for (std::size_t i = 0; i < n; ++i) p[i] /= static_cast<float>(group);
  }
}

const char* at(const void* p, std::size_t elems, DType t) {
  return static_cast<const char*>(p) + elems * dtype_size(t);
}
char* at(void* p, std::size_t elems, DType t) { return static_cast<char*>(p) + elems * dtype_size(t); }

}  // namespace

MpiCollectives::MpiCollectives(MPI_Comm comm, std::size_t max_chunk) : comm_(comm), max_chunk_(max_chunk) {
  LS_CHECK(max_chunk_ >= 1 && max_chunk_ <= static_cast<std::size_t>(INT_MAX), "bad chunk " << max_chunk_);
  LS_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  LS_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

void MpiCollectives::all_reduce(const void* send, void* recv, std::size_t count, DType t, ReduceOp op) {
  if (is_16bit_float(t)) {
    for_each_chunk(count, max_chunk_, [&](std::size_t off, int n) {
      widen_.resize(n);
      for (int i = 0; i < n; ++i) widen_[i] = load_as_float(send, off + i, t);
      LS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, widen_.data(), n, MPI_FLOAT, mpi_op(op), comm_));
      if (op == ReduceOp::Avg) finish_average(widen_.data(), n, DType::F32, size_);
      for (int i = 0; i < n; ++i) store_from_float(recv, off + i, t, widen_[i]);
    });
    return;
  }
  for_each_chunk(count, max_chunk_, [&](std::size_t off, int n) {
    const void* s = send == recv ? MPI_IN_PLACE : at(send, off, t);
    LS_MPI_CHECK(MPI_Allreduce(s, at(recv, off, t), n, raw_type(t), mpi_op(op), comm_));
    if (op == ReduceOp::Avg) finish_average(at(recv, off, t), n, t, size_);
  });
}

void MpiCollectives::all_gather(const void* send, void* recv, std::size_t send_count, DType t) {
  const int n = as_int_count(send_count, "all_gather");
  const bool in_place = send == at(recv, rank_ * send_count, t);
  LS_MPI_CHECK(MPI_Allgather(in_place ? MPI_IN_PLACE : send, n, raw_type(t), recv, n, raw_type(t), comm_));
}

void MpiCollectives::reduce_scatter(const void* send, void* recv, std::size_t recv_count, DType t,
                                    ReduceOp op) {
  const int n = as_int_count(recv_count, "reduce_scatter");
  const std::size_t total = recv_count * size_;
  if (is_16bit_float(t)) {
    widen_.resize(total);
    for (std::size_t i = 0; i < total; ++i) widen_[i] = load_as_float(send, i, t);
    // In place: the result lands in the first recv_count elements of widen_.
    LS_MPI_CHECK(MPI_Reduce_scatter_block(MPI_IN_PLACE, widen_.data(), n, MPI_FLOAT, mpi_op(op), comm_));
    if (op == ReduceOp::Avg) finish_average(widen_.data(), recv_count, DType::F32, size_);
    for (std::size_t i = 0; i < recv_count; ++i) store_from_float(recv, i, t, widen_[i]);
    return;
  }
  // MPI forbids aliasing send and recv; NCCL's in-place form (recv inside send) is staged.
  const char* s = static_cast<const char*>(send);
  const char* r = static_cast<const char*>(recv);
  const bool overlap = r < s + total * dtype_size(t) && s < r + recv_count * dtype_size(t);
  if (!overlap) {
    LS_MPI_CHECK(MPI_Reduce_scatter_block(send, recv, n, raw_type(t), mpi_op(op), comm_));
  } else {
    std::vector<char> staged(recv_count * dtype_size(t));
    LS_MPI_CHECK(MPI_Reduce_scatter_block(send, staged.data(), n, raw_type(t), mpi_op(op), comm_));
    std::memcpy(recv, staged.data(), staged.size());
  }
  if (op == ReduceOp::Avg) finish_average(recv, recv_count, t, size_);
}

void MpiCollectives::broadcast(const void* send, void* recv, std::size_t count, DType t, int root) {
  if (rank_ == root && send != recv) std::memcpy(recv, send, count * dtype_size(t));
  for_each_chunk(count, max_chunk_, [&](std::size_t off, int n) {
    LS_MPI_CHECK(MPI_Bcast(at(recv, off, t), n, raw_type(t), root, comm_));
  });
}

void MpiCollectives::send(const void* buf, std::size_t count, DType t, int peer) {
  for_each_chunk(count, max_chunk_, [&](std::size_t off, int n) {
    LS_MPI_CHECK(MPI_Send(at(buf, off, t), n, raw_type(t), peer, 0, comm_));
  });
}

void MpiCollectives::recv(void* buf, std::size_t count, DType t, int peer) {
  for_each_chunk(count, max_chunk_, [&](std::size_t off, int n) {
    LS_MPI_CHECK(MPI_Recv(at(buf, off, t), n, raw_type(t), peer, 0, comm_, MPI_STATUS_IGNORE));
  });
}

void MpiCollectives::send_recv(const void* send_buf, int send_peer, void* recv_buf, int recv_peer,
                               std::size_t count, DType t) {
  for_each_chunk(count, max_chunk_, [&](std::size_t off, int n) {
    if (send_buf == recv_buf)  // MPI forbids aliasing the two buffers of MPI_Sendrecv
      LS_MPI_CHECK(MPI_Sendrecv_replace(at(recv_buf, off, t), n, raw_type(t), send_peer, 1, recv_peer, 1, comm_,
                                        MPI_STATUS_IGNORE));
    else
      LS_MPI_CHECK(MPI_Sendrecv(at(send_buf, off, t), n, raw_type(t), send_peer, 1, at(recv_buf, off, t), n,
                                raw_type(t), recv_peer, 1, comm_, MPI_STATUS_IGNORE));
  });
}

void MpiCollectives::all_to_all(const void* send, void* recv, std::size_t count, DType t) {
  LS_CHECK(send != recv, "all_to_all is out-of-place only");
  const int n = as_int_count(count, "all_to_all");
  LS_MPI_CHECK(MPI_Alltoall(send, n, raw_type(t), recv, n, raw_type(t), comm_));
}

}  // namespace lockstep
