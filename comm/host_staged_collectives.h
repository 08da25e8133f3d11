// Collectives over device buffers that travel through pinned host memory and MPI: for ranks
// that share a GPU, which NCCL refuses ("Duplicate GPU detected"). Each call waits for the
// stream, copies its device input to the host, runs the MPI collective there and enqueues the
// copy back, so it is a host-blocking call and cannot be captured in a CUDA graph. Slow; its
// use is running TP x PP layouts on fewer GPUs than ranks (tests, development).
#pragma once

#include <cuda_runtime_api.h>
#include <mpi.h>

#include "comm/collectives.h"
#include "comm/mpi_collectives.h"

namespace lockstep {

// The stream a rank's staged collectives and the kernels feeding them share; made on `gpu`.
class StagingStream {
 public:
  explicit StagingStream(int gpu);
  ~StagingStream();
  StagingStream(const StagingStream&) = delete;
  StagingStream& operator=(const StagingStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class HostStagedCollectives final : public Collectives {
 public:
  HostStagedCollectives(MPI_Comm comm, cudaStream_t stream);  // borrows both
  ~HostStagedCollectives() override;
  HostStagedCollectives(const HostStagedCollectives&) = delete;
  HostStagedCollectives& operator=(const HostStagedCollectives&) = delete;

  CommBackend backend() const override { return CommBackend::MpiStaged; }
  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
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
  // Pinned host buffers of at least `bytes` (kept and grown across calls). Every call
  // synchronizes the stream first, so an earlier call's copy back out of them has finished.
  char* host_a(std::size_t bytes);
  char* host_b(std::size_t bytes);
  void to_host(char* dst, const void* src, std::size_t bytes);  // waits for the copy
  void to_device(void* dst, const char* src, std::size_t bytes);  // enqueued on the stream

  MpiCollectives mpi_;
  cudaStream_t stream_;
  char* a_ = nullptr;
  std::size_t a_bytes_ = 0;
  char* b_ = nullptr;
  std::size_t b_bytes_ = 0;
};

}  // namespace lockstep
