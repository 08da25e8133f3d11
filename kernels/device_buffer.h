// Owning buffer on a device: host memory for the CPU backend, cudaMalloc'd memory for the
// CUDA backend. Collectives and kernels take raw pointers from it; it only owns and copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lockstep {

enum class DeviceKind { Cpu, Cuda };

// Number of CUDA devices this process can see; 0 when built without CUDA or none usable.
int visible_gpu_count();
// Makes `gpu` current for this thread (no-op on a CPU build; fatal if gpu is out of range).
void select_gpu(int gpu);
// PCI bus id ("0000:1b:00.0") of a GPU, or "" when there is none.
std::string gpu_pci_bus_id(int gpu);
// Marketing name of a GPU ("NVIDIA H200"), or "" when there is none.
std::string gpu_name(int gpu);
// Compute capability as major * 10 + minor (90 for Hopper), or 0 when there is none.
int gpu_compute_capability(int gpu);
// Free and total memory of a GPU in bytes (zeros without CUDA).
struct GpuMemory {
  std::size_t free = 0, total = 0;
};
GpuMemory gpu_memory(int gpu);
// Whether this binary carries the CUDA backend.
bool built_with_cuda();

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceKind kind, std::size_t bytes);
  // Adopts memory from another allocator (e.g. ncclMemAlloc); `release` frees it.
  using Release = void (*)(void* data);
  DeviceBuffer(DeviceKind kind, void* data, std::size_t bytes, Release release);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  DeviceKind kind() const { return kind_; }

  // Synchronous copies between this buffer (at byte offset) and host memory.
  void copy_from_host(const void* src, std::size_t bytes, std::size_t offset = 0);
  void copy_to_host(void* dst, std::size_t bytes, std::size_t offset = 0) const;
  // Sets every byte; returns once done (safe to follow with work on any stream).
  void fill_bytes(std::uint8_t value);

 private:
  void release();
  DeviceKind kind_ = DeviceKind::Cpu;
  void* data_ = nullptr;
  Release adopted_release_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace lockstep
