// The GEMM behind cuda::linear: cuBLASLt, with one plan (matrix layouts and the algorithm its
// heuristic picks) kept per shape, dtype and pointer alignment, so that the heuristic runs once
// per shape (host-only work, so a shape first seen inside a CUDA graph capture is fine too).
// One per GpuContext (its stream and its fixed workspace, so no GEMM allocates inside a capture).
#pragma once

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "kernels/dtype.h"

namespace lockstep::cuda {

class LtMatmul {
 public:
  LtMatmul(cudaStream_t stream, void* workspace, std::size_t workspace_bytes);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // y[rows, out] (row-major, y_type: fp32, or `type` itself) = x[rows, in] . w[out, in]^T, x and
  // w in `type` (bf16 or fp16), fp32 accumulation (rounded once to y_type). Enqueued on the stream.
  void run(cudaDataType_t type, const void* x, std::int64_t rows, std::int64_t in, const void* w, std::int64_t out,
           void* y, cudaDataType_t y_type = CUDA_R_32F);

  // The heuristic's first `count` algorithms for this GEMM (fewer when it has fewer), the one
  // run() uses first, and run() with one of them instead: for benchmarks that time the others.
  std::vector<cublasLtMatmulAlgo_t> algorithms(cudaDataType_t type, const void* x, std::int64_t rows, std::int64_t in,
                                               const void* w, std::int64_t out, const void* y, int count,
                                               cudaDataType_t y_type = CUDA_R_32F);
  void run_with(const cublasLtMatmulAlgo_t& algo, cudaDataType_t type, const void* x, std::int64_t rows,
                std::int64_t in, const void* w, std::int64_t out, void* y, cudaDataType_t y_type = CUDA_R_32F);

  // The SMs the GEMMs may assume are theirs (0: all): with kernels of another stream running
  // beside them (kernel_bench's nano_overlap rows), cuBLASLt picks algorithms and grids for
  // that many. Changing it drops the cached plans.
  void set_sm_count_target(int sms);

  // How many plans are cached (tests: one per distinct shape, dtypes and alignment).
  std::size_t plan_count() const { return plans_.size(); }

  // Plans kept at most; past it the cache starts over (chunked prefill makes one shape a row
  // count, so a long-running server would otherwise grow it without bound).
  static constexpr std::size_t kMaxPlans = 4096;

 private:
  struct Key {
    cudaDataType_t type, y_type;
    std::int64_t rows, in, out;
    int x_align, w_align, y_align;  // bytes, powers of two up to 256
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  struct Plan {
    cublasLtMatrixLayoutOpaque_t w_layout, x_layout, y_layout;
    cublasLtMatmulAlgo_t algo;
  };
  static Key key_of(cudaDataType_t type, const void* x, std::int64_t rows, std::int64_t in, const void* w,
                    std::int64_t out, const void* y, cudaDataType_t y_type);
  Plan& plan_for(const Key& key);
  // The layouts of `key` into p, and the heuristic's first `count` results.
  std::vector<cublasLtMatmulHeuristicResult_t> heuristics(const Key& key, Plan& p, int count);
  void enqueue(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y);

  cudaStream_t stream_;
  void* workspace_;
  std::size_t workspace_bytes_;
  cublasLtHandle_t handle_ = nullptr;
  // transa = T, transb = N, fp32 compute and scale: the same for every shape and dtype (the
  // output's type is its layout's).
  cublasLtMatmulDescOpaque_t desc_;
  std::unordered_map<Key, Plan, KeyHash> plans_;
  int sm_count_target_ = 0;
};

}  // namespace lockstep::cuda
