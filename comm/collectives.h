// The collectives every layer above uses, over one group of ranks (world, a TP group or a PP
// group). Three backends: NCCL (device buffers, ordered on the backend's CUDA stream), MPI
// (host buffers; bf16/fp16 reductions accumulate in fp32) and MPI staged (device buffers
// through pinned host copies and MPI, for ranks sharing a GPU). Counts are elements, not bytes.
// In-place use follows NCCL: all_reduce/broadcast with send == recv; all_gather with
// send == recv + rank * count; reduce_scatter with recv == send + rank * recv_count.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "kernels/dtype.h"

typedef struct CUstream_st* cudaStream_t;

namespace lockstep {

enum class ReduceOp { Sum, Prod, Max, Min, Avg };
enum class CommBackend { Mpi, Nccl, MpiStaged };

constexpr std::string_view reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Prod: return "prod";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
    case ReduceOp::Avg: return "avg";
  }
  return "?";
}
std::optional<ReduceOp> parse_reduce_op(std::string_view name);
constexpr std::string_view backend_name(CommBackend b) {
  return b == CommBackend::Mpi ? "mpi" : b == CommBackend::Nccl ? "nccl" : "mpi-staged";
}
// Whether the backend's buffers live on the GPU (NCCL, MPI staged) rather than the host.
constexpr bool uses_device_buffers(CommBackend b) { return b != CommBackend::Mpi; }

class Collectives {
 public:
  virtual ~Collectives() = default;

  virtual CommBackend backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  virtual void all_reduce(const void* send, void* recv, std::size_t count, DType type,
                          ReduceOp op = ReduceOp::Sum) = 0;
  // recv holds size() * send_count elements, rank r's block at r * send_count.
  virtual void all_gather(const void* send, void* recv, std::size_t send_count, DType type) = 0;
  // send holds size() * recv_count elements; rank r receives the reduction of block r.
  virtual void reduce_scatter(const void* send, void* recv, std::size_t recv_count, DType type,
                              ReduceOp op = ReduceOp::Sum) = 0;
  // On root, send is the source; on every rank recv receives it.
  virtual void broadcast(const void* send, void* recv, std::size_t count, DType type, int root) = 0;
  virtual void send(const void* buf, std::size_t count, DType type, int peer) = 0;
  virtual void recv(void* buf, std::size_t count, DType type, int peer) = 0;
  // Both at once, so a ring exchange cannot deadlock. send_buf == recv_buf is exact on MPI
  // (MPI_Sendrecv_replace) but races on NCCL; only benchmarks use it there, unchecked.
  virtual void send_recv(const void* send_buf, int send_peer, void* recv_buf, int recv_peer,
                         std::size_t count, DType type) = 0;
  // send and recv hold size() * count elements; block j of send goes to rank j. Out-of-place.
  virtual void all_to_all(const void* send, void* recv, std::size_t count, DType type) = 0;

  // Returns when every operation issued so far has completed (NCCL: stream synchronize).
  virtual void synchronize() = 0;
  // The CUDA stream operations are ordered on (kernels that feed them use it too); null for MPI
  // over host buffers.
  virtual cudaStream_t stream() const { return nullptr; }
};

}  // namespace lockstep
