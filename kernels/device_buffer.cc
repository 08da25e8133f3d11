// DeviceBuffer and GPU discovery. The CUDA half is compiled only into CUDA builds
// (LOCKSTEP_WITH_CUDA); a CPU build asked for GPU memory fails with a clear message.
#include "kernels/device_buffer.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "kernels/fatal.h"

#if LOCKSTEP_WITH_CUDA
#include "kernels/cuda/cuda_check.h"
#endif

namespace lockstep {

bool built_with_cuda() { return LOCKSTEP_WITH_CUDA != 0; }

std::string gpu_name(int gpu) {
#if LOCKSTEP_WITH_CUDA
  cudaDeviceProp prop{};
  if (gpu < 0 || cudaGetDeviceProperties(&prop, gpu) != cudaSuccess) {
    (void)cudaGetLastError();
    return "";
  }
  return prop.name;
#else
  (void)gpu;
  return "";
#endif
}

int gpu_compute_capability(int gpu) {
#if LOCKSTEP_WITH_CUDA
  int major = 0, minor = 0;
  if (gpu < 0 || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, gpu) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, gpu) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return major * 10 + minor;
#else
  (void)gpu;
  return 0;
#endif
}

int visible_gpu_count() {
#if LOCKSTEP_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: the CPU backend applies
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

GpuMemory gpu_memory(int gpu) {
  GpuMemory m;
#if LOCKSTEP_WITH_CUDA
  select_gpu(gpu);
  LS_CUDA_CHECK(cudaMemGetInfo(&m.free, &m.total));
#else
  (void)gpu;
#endif
  return m;
}

void select_gpu(int gpu) {
  if (gpu < 0) return;
#if LOCKSTEP_WITH_CUDA
  LS_CUDA_CHECK(cudaSetDevice(gpu));
#else
  LS_FATAL("GPU " << gpu << " requested but this lockstep was built without CUDA "
                  "(rebuild with -DLOCKSTEP_CUDA=ON)");
#endif
}

std::string gpu_pci_bus_id(int gpu) {
#if LOCKSTEP_WITH_CUDA
  if (gpu < 0) return "";
  char id[32] = {};
  if (cudaDeviceGetPCIBusId(id, sizeof id, gpu) != cudaSuccess) {
    (void)cudaGetLastError();
    return "";
  }
  return id;
#else
  (void)gpu;
  return "";
#endif
}

DeviceBuffer::DeviceBuffer(DeviceKind kind, std::size_t bytes) : kind_(kind), bytes_(bytes) {
  if (bytes == 0) return;
  if (kind == DeviceKind::Cpu) {
    data_ = std::malloc(bytes);
    LS_CHECK(data_ != nullptr, "out of host memory allocating " << bytes << " bytes");
    return;
  }
#if LOCKSTEP_WITH_CUDA
  LS_CUDA_CHECK(cudaMalloc(&data_, bytes));
#else
  LS_FATAL("GPU buffer requested but this lockstep was built without CUDA");
#endif
}

DeviceBuffer::DeviceBuffer(DeviceKind kind, void* data, std::size_t bytes, Release release)
    : kind_(kind), data_(data), adopted_release_(release), bytes_(bytes) {}

DeviceBuffer::~DeviceBuffer() { release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : kind_(o.kind_),
      data_(std::exchange(o.data_, nullptr)),
      adopted_release_(std::exchange(o.adopted_release_, nullptr)),
      bytes_(std::exchange(o.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    kind_ = o.kind_;
    data_ = std::exchange(o.data_, nullptr);
    adopted_release_ = std::exchange(o.adopted_release_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::release() {
  if (!data_) return;
  if (adopted_release_) {
    adopted_release_(data_);
  } else if (kind_ == DeviceKind::Cpu) {
    std::free(data_);
  } else {
#if LOCKSTEP_WITH_CUDA
    cudaFree(data_);  // not checked: destructors run during teardown after errors too
#endif
  }
  data_ = nullptr;
  adopted_release_ = nullptr;
  bytes_ = 0;
}

void DeviceBuffer::copy_from_host(const void* src, std::size_t bytes, std::size_t offset) {
  LS_CHECK(offset + bytes <= bytes_, "copy of " << bytes << " bytes at " << offset << " overruns a "
                                                << bytes_ << "-byte buffer");
  if (kind_ == DeviceKind::Cpu) {
    std::memcpy(static_cast<char*>(data_) + offset, src, bytes);
    return;
  }
#if LOCKSTEP_WITH_CUDA
  // From pageable memory cudaMemcpy may return once the bytes are staged, before the DMA lands;
  // the legacy stream it runs on does not order kernels on our non-blocking streams. Wait for it
  // (the 40000-wide norm test read a half-copied input on an H200 without this).
  LS_CUDA_CHECK(cudaMemcpy(static_cast<char*>(data_) + offset, src, bytes, cudaMemcpyHostToDevice));
  LS_CUDA_CHECK(cudaStreamSynchronize(nullptr));
#endif
}

void DeviceBuffer::copy_to_host(void* dst, std::size_t bytes, std::size_t offset) const {
  LS_CHECK(offset + bytes <= bytes_, "copy of " << bytes << " bytes at " << offset << " overruns a "
                                                << bytes_ << "-byte buffer");
  if (kind_ == DeviceKind::Cpu) {
    std::memcpy(dst, static_cast<const char*>(data_) + offset, bytes);
    return;
  }
#if LOCKSTEP_WITH_CUDA
  LS_CUDA_CHECK(cudaMemcpy(dst, static_cast<const char*>(data_) + offset, bytes, cudaMemcpyDeviceToHost));
#endif
}

void DeviceBuffer::fill_bytes(std::uint8_t value) {
  if (!data_) return;
  if (kind_ == DeviceKind::Cpu) {
    std::memset(data_, value, bytes_);
    return;
  }
#if LOCKSTEP_WITH_CUDA
  // Wait: kernels on other (non-blocking) streams must not race the legacy-stream memset.
  LS_CUDA_CHECK(cudaMemset(data_, value, bytes_));
  LS_CUDA_CHECK(cudaStreamSynchronize(nullptr));
#endif
}

}  // namespace lockstep
