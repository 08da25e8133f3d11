// Collectives over an NCCL communicator: device buffers, enqueued on one CUDA stream.
// Calls return once enqueued; synchronize() waits and surfaces asynchronous NCCL errors.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "comm/collectives.h"

namespace lockstep {

class NcclCollectives final : public Collectives {
 public:
  NcclCollectives(ncclComm_t comm, cudaStream_t stream);  // borrows both

  CommBackend backend() const override { return CommBackend::Nccl; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  cudaStream_t stream() const override { return stream_; }

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
  void synchronize() override;

 private:
  ncclComm_t comm_;
  cudaStream_t stream_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace lockstep
