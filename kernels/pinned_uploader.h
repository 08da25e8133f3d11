// Host-to-GPU copies of weights at pinned-memory speed: each upload goes through two pinned
// staging buffers on the uploader's own stream, the CPU filling one while the DMA out of the
// other runs (a pageable cudaMemcpy stages through the driver at a fraction of that speed and
// blocks the caller throughout). upload_with lets the caller read its data into the staging
// buffer itself (model/weight_upload.h: weights go from the checkpoint's pages to pinned memory
// to the GPU, with no host copy in between). Only in CUDA builds; uses the current GPU.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "kernels/device_buffer.h"

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

namespace lockstep {

class PinnedUploader {
 public:
  explicit PinnedUploader(std::size_t chunk_bytes = std::size_t{64} << 20);
  ~PinnedUploader();  // waits for the copies still in flight
  PinnedUploader(const PinnedUploader&) = delete;
  PinnedUploader& operator=(const PinnedUploader&) = delete;

  // A new device buffer with a copy of [host, host + bytes). The host memory may be reused as
  // soon as this returns; the device copy is complete once finish() returns.
  DeviceBuffer upload(const void* host, std::size_t bytes);
  template <typename T>
  DeviceBuffer upload(const std::vector<T>& host) {
    return upload(host.data(), host.size() * sizeof(T));
  }
  // The most bytes one upload_with call takes.
  std::size_t chunk_bytes() const { return chunk_; }
  // Copies `bytes` (<= chunk_bytes()) to `device`, which must stay allocated until finish():
  // fill(pinned) writes them into a staging buffer first, before this returns, while the
  // previous call's DMA may still be running.
  void upload_with(void* device, std::size_t bytes, const std::function<void(void* pinned)>& fill);
  // Waits until every upload has landed.
  void finish();

 private:
  struct Staging {
    void* pinned = nullptr;
    cudaEvent_t drained = nullptr;  // recorded after the DMA out of `pinned`
  };
  std::size_t chunk_;
  cudaStream_t stream_ = nullptr;
  Staging staging_[2];
  int next_ = 0;
};

}  // namespace lockstep
