// CUDA kernels of the verification pattern (see kernels/pattern.h); the CPU reference in
// cpu/pattern.cc defines the semantics and the tests compare the two.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/pattern.h"

namespace lockstep::cuda {
namespace {

// pattern_value is constexpr and callable here through --expt-relaxed-constexpr.
__device__ double expected_at(const ExpectedPattern& e, std::uint64_t i, DType type) {
  const std::uint64_t idx = e.index_offset + i;
  double acc = pattern_value(e.seed, idx);
  for (int q = 1; q < e.ranks; ++q) {
    const double x = pattern_value(e.seed + q, idx);
    switch (e.op) {
      case PatternReduce::Sum:
      case PatternReduce::Avg: acc += x; break;
      case PatternReduce::Prod: acc *= x; break;
      case PatternReduce::Max: acc = fmax(acc, x); break;
      case PatternReduce::Min: acc = fmin(acc, x); break;
    }
  }
  if (e.ranks > 0 && e.op == PatternReduce::Avg) acc = type == DType::I32 ? trunc(acc / e.ranks) : acc / e.ranks;
  return acc;
}

__device__ void store(void* data, std::size_t i, DType type, float v) {
  switch (type) {
    case DType::F32: static_cast<float*>(data)[i] = v; break;
    case DType::BF16: static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16_rn(v); break;
    case DType::F16: static_cast<__half*>(data)[i] = __float2half_rn(v); break;
    case DType::I32: static_cast<std::int32_t*>(data)[i] = __float2int_rn(v); break;
  }
}

__device__ float load(const void* data, std::size_t i, DType type) {
  switch (type) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]);
    case DType::F16: return __half2float(static_cast<const __half*>(data)[i]);
    case DType::I32: return static_cast<float>(static_cast<const std::int32_t*>(data)[i]);
  }
  return 0.0f;
}

// Rounds through the element type so the comparison sees what a correct result would hold.
__device__ float rounded(float v, DType type) {
  switch (type) {
    case DType::BF16: return __bfloat162float(__float2bfloat16_rn(v));
    case DType::F16: return __half2float(__float2half_rn(v));
    case DType::I32: return static_cast<float>(__float2int_rn(v));
    case DType::F32: return v;
  }
  return v;
}

__global__ void fill_kernel(void* data, std::size_t count, DType type, std::uint32_t seed, std::uint64_t offset) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x)
    store(data, i, type, static_cast<float>(pattern_value(seed, offset + i)));
}

__global__ void mismatch_kernel(const void* data, std::size_t count, DType type, ExpectedPattern e, double rel,
                                unsigned long long* wrong) {
  unsigned long long mine = 0;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const double want = rounded(static_cast<float>(expected_at(e, i, type)), type);
    const double got = load(data, i, type);
    if (rel == 0.0 ? got != want : !(fabs(got - want) <= rel * fmax(1.0, fabs(want)))) ++mine;
  }
  if (mine) atomicAdd(wrong, mine);
}

constexpr int kThreads = 256;

unsigned blocks_for(std::size_t count) {
  const std::size_t b = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 4096 ? (b == 0 ? 1 : b) : 4096);
}

}  // namespace

void fill_pattern(void* data, std::size_t count, DType type, std::uint32_t seed, std::uint64_t index_offset,
                  cudaStream_t stream) {
  if (count == 0) return;
  fill_kernel<<<blocks_for(count), kThreads, 0, stream>>>(data, count, type, seed, index_offset);
  LS_CUDA_CHECK(cudaGetLastError());
}

std::uint64_t count_mismatches(const void* data, std::size_t count, DType type, const ExpectedPattern& e,
                               cudaStream_t stream) {
  if (count == 0) return 0;
  const double rel = e.op == PatternReduce::Avg && e.ranks > 0
                         ? (type == DType::BF16 ? 1.0 / 64 : type == DType::F16 ? 1.0 / 512 : 1e-6)
                         : 0.0;
  unsigned long long* wrong = nullptr;
  LS_CUDA_CHECK(cudaMallocAsync(&wrong, sizeof *wrong, stream));
  LS_CUDA_CHECK(cudaMemsetAsync(wrong, 0, sizeof *wrong, stream));
  mismatch_kernel<<<blocks_for(count), kThreads, 0, stream>>>(data, count, type, e, rel, wrong);
  LS_CUDA_CHECK(cudaGetLastError());
  unsigned long long host = 0;
  LS_CUDA_CHECK(cudaMemcpyAsync(&host, wrong, sizeof host, cudaMemcpyDeviceToHost, stream));
  LS_CUDA_CHECK(cudaFreeAsync(wrong, stream));
  LS_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace lockstep::cuda
