// HostStagedCollectives (see host_staged_collectives.h). In-place forms follow the
// Collectives contract on the device; on the host every call works in place in one buffer
// where MpiCollectives allows it, so a call copies each byte across PCIe once each way.
#include "comm/host_staged_collectives.h"

#include "kernels/cuda/cuda_check.h"

namespace lockstep {
namespace {

char* grow_pinned(char*& p, std::size_t& have, std::size_t bytes) {
  if (bytes > have) {
    if (p) LS_CUDA_CHECK(cudaFreeHost(p));
    p = nullptr;
    have = 0;
    LS_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p), bytes));
    have = bytes;
  }
  return p;
}

}  // namespace

StagingStream::StagingStream(int gpu) {
  LS_CHECK(gpu >= 0, "device-buffer collectives need a GPU on this rank (check CUDA_VISIBLE_DEVICES)");
  LS_CUDA_CHECK(cudaSetDevice(gpu));
  LS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

StagingStream::~StagingStream() {
  if (stream_) cudaStreamDestroy(stream_);
}

HostStagedCollectives::HostStagedCollectives(MPI_Comm comm, cudaStream_t stream) : mpi_(comm), stream_(stream) {}

HostStagedCollectives::~HostStagedCollectives() {
  cudaStreamSynchronize(stream_);  // a copy back out of the buffers may still be queued
  if (a_) cudaFreeHost(a_);
  if (b_) cudaFreeHost(b_);
}

char* HostStagedCollectives::host_a(std::size_t bytes) { return grow_pinned(a_, a_bytes_, bytes); }
char* HostStagedCollectives::host_b(std::size_t bytes) { return grow_pinned(b_, b_bytes_, bytes); }

void HostStagedCollectives::to_host(char* dst, const void* src, std::size_t bytes) {
  if (bytes) LS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  LS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void HostStagedCollectives::to_device(void* dst, const char* src, std::size_t bytes) {
  if (bytes) LS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void HostStagedCollectives::all_reduce(const void* send, void* recv, std::size_t count, DType t, ReduceOp op) {
  const std::size_t bytes = count * dtype_size(t);
  char* h = host_a(bytes);
  to_host(h, send, bytes);
  mpi_.all_reduce(h, h, count, t, op);
  to_device(recv, h, bytes);
}

void HostStagedCollectives::all_gather(const void* send, void* recv, std::size_t send_count, DType t) {
  const std::size_t block = send_count * dtype_size(t);
  char* h = host_a(block * static_cast<std::size_t>(size()));
  char* mine = h + block * static_cast<std::size_t>(rank());
  to_host(mine, send, block);
  mpi_.all_gather(mine, h, send_count, t);
  to_device(recv, h, block * static_cast<std::size_t>(size()));
}

void HostStagedCollectives::reduce_scatter(const void* send, void* recv, std::size_t recv_count, DType t,
                                           ReduceOp op) {
  const std::size_t block = recv_count * dtype_size(t);
  char* h = host_a(block * static_cast<std::size_t>(size()));
  char* mine = h + block * static_cast<std::size_t>(rank());
  to_host(h, send, block * static_cast<std::size_t>(size()));
  mpi_.reduce_scatter(h, mine, recv_count, t, op);
  to_device(recv, mine, block);
}

void HostStagedCollectives::broadcast(const void* send, void* recv, std::size_t count, DType t, int root) {
  const std::size_t bytes = count * dtype_size(t);
  char* h = host_a(bytes);
  if (rank() == root) to_host(h, send, bytes);
  else LS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  mpi_.broadcast(h, h, count, t, root);
  to_device(recv, h, bytes);
}

void HostStagedCollectives::send(const void* buf, std::size_t count, DType t, int peer) {
  const std::size_t bytes = count * dtype_size(t);
  char* h = host_a(bytes);
  to_host(h, buf, bytes);
  mpi_.send(h, count, t, peer);
}

void HostStagedCollectives::recv(void* buf, std::size_t count, DType t, int peer) {
  const std::size_t bytes = count * dtype_size(t);
  LS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  char* h = host_a(bytes);
  mpi_.recv(h, count, t, peer);
  to_device(buf, h, bytes);
}

void HostStagedCollectives::send_recv(const void* send_buf, int send_peer, void* recv_buf, int recv_peer,
                                      std::size_t count, DType t) {
  const std::size_t bytes = count * dtype_size(t);
  char* out = host_a(bytes);
  char* in = host_b(bytes);
  to_host(out, send_buf, bytes);
  mpi_.send_recv(out, send_peer, in, recv_peer, count, t);
  to_device(recv_buf, in, bytes);
}

void HostStagedCollectives::all_to_all(const void* send, void* recv, std::size_t count, DType t) {
  LS_CHECK(send != recv, "all_to_all is out-of-place only");
  const std::size_t bytes = count * dtype_size(t) * static_cast<std::size_t>(size());
  char* out = host_a(bytes);
  char* in = host_b(bytes);
  to_host(out, send, bytes);
  mpi_.all_to_all(out, in, count, t);
  to_device(recv, in, bytes);
}

void HostStagedCollectives::synchronize() { LS_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace lockstep
