// Collectives over an MPI communicator and host buffers: the CPU backend, also the fallback
// on GPU hosts without NCCL. bf16/fp16 reductions are carried out in fp32 and rounded once.
#pragma once

#include <mpi.h>

#include <vector>

#include "comm/collectives.h"

namespace lockstep {

class MpiCollectives final : public Collectives {
 public:
  // Does not take ownership of comm. Element-wise operations are split into MPI calls of at
  // most max_chunk elements (bounded fp32 staging, counts past INT_MAX); tests shrink it.
  explicit MpiCollectives(MPI_Comm comm, std::size_t max_chunk = std::size_t{1} << 26);

  CommBackend backend() const override { return CommBackend::Mpi; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce(const void* send, void* recv, std::size_t count, DType type, ReduceOp op) override;
  void all_gather(const void* send, void* recv, std::size_t send_count, DType type) override;
  void reduce_scatter(const void* send, void* recv, std::size_t recv_count, DType type,
                      ReduceOp op) override;
  void broadcast(const void* send, void* recv, std::size_t count, DType type, int root) override;
  void send(const void* buf, std::size_t count, DType type, int peer) override;
  void recv(void* buf, std::size_t count, DType type, int peer) override;
  void send_recv(const void* send_buf, int send_peer, void* recv_buf, int recv_peer,
                 std::size_t count, DType type) override;
  void all_to_all(const void* send, void* recv, std::size_t count, DType type) override;
  void synchronize() override {}

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::size_t max_chunk_;
  std::vector<float> widen_;  // fp32 staging for 16-bit reductions, reused across calls
};

}  // namespace lockstep
