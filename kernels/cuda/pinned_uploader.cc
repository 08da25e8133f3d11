// PinnedUploader (see kernels/pinned_uploader.h).
#include "kernels/pinned_uploader.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "kernels/cuda/cuda_check.h"

namespace lockstep {

PinnedUploader::PinnedUploader(std::size_t chunk_bytes) : chunk_(std::max<std::size_t>(chunk_bytes, 1)) {
  LS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  for (Staging& s : staging_) {
    LS_CUDA_CHECK(cudaMallocHost(&s.pinned, chunk_));
    LS_CUDA_CHECK(cudaEventCreateWithFlags(&s.drained, cudaEventDisableTiming));
  }
}

PinnedUploader::~PinnedUploader() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (Staging& s : staging_) {
    if (s.drained) cudaEventDestroy(s.drained);
    if (s.pinned) cudaFreeHost(s.pinned);
  }
  if (stream_) cudaStreamDestroy(stream_);
}

DeviceBuffer PinnedUploader::upload(const void* host, std::size_t bytes) {
  if (bytes == 0) return {};
  DeviceBuffer device(DeviceKind::Cuda, bytes);
  for (std::size_t offset = 0; offset < bytes; offset += chunk_) {
    Staging& s = staging_[next_];
    next_ ^= 1;
    const std::size_t n = std::min(chunk_, bytes - offset);
    LS_CUDA_CHECK(cudaEventSynchronize(s.drained));  // its last DMA is done (never recorded: at once)
    std::memcpy(s.pinned, static_cast<const char*>(host) + offset, n);
    LS_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(device.data()) + offset, s.pinned, n, cudaMemcpyHostToDevice,
                                  stream_));
    LS_CUDA_CHECK(cudaEventRecord(s.drained, stream_));
  }
  return device;
}

void PinnedUploader::finish() { LS_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace lockstep
