// PinnedUploader (see kernels/pinned_uploader.h).
#include "kernels/pinned_uploader.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/fatal.h"

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
    const std::size_t n = std::min(chunk_, bytes - offset);
    upload_with(static_cast<char*>(device.data()) + offset, n,
                [&](void* pinned) { std::memcpy(pinned, static_cast<const char*>(host) + offset, n); });
  }
  return device;
}

void PinnedUploader::upload_with(void* device, std::size_t bytes, const std::function<void(void*)>& fill) {
  LS_CHECK(bytes <= chunk_, "PinnedUploader::upload_with: " << bytes << " bytes, more than a staging buffer's "
                                                             << chunk_);
  if (bytes == 0) return;
  Staging& s = staging_[next_];
  next_ ^= 1;
  LS_CUDA_CHECK(cudaEventSynchronize(s.drained));  // its last DMA is done (never recorded: at once)
  fill(s.pinned);
  LS_CUDA_CHECK(cudaMemcpyAsync(device, s.pinned, bytes, cudaMemcpyHostToDevice, stream_));
  LS_CUDA_CHECK(cudaEventRecord(s.drained, stream_));
}

void PinnedUploader::finish() { LS_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace lockstep
