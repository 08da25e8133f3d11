// LtMatmul (see lt_matmul.h).
#include "kernels/cuda/lt_matmul.h"

#include <algorithm>
#include <cstdint>
#include <functional>

#include "kernels/cuda/cublas_check.h"
#include "kernels/fatal.h"

namespace lockstep::cuda {
namespace {

// The largest power of two (up to the 256 cuBLASLt assumes unless told) dividing the address.
int alignment_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return a == 0 ? 256 : static_cast<int>(std::min<std::uintptr_t>(256, a & (~a + 1)));
}

}  // namespace

std::size_t LtMatmul::KeyHash::operator()(const Key& k) const {
  std::size_t h = std::hash<std::int64_t>()(k.rows);
  for (std::int64_t v : {std::int64_t{k.type}, std::int64_t{k.y_type}, k.in, k.out, std::int64_t{k.x_align},
                         std::int64_t{k.w_align}, std::int64_t{k.y_align}})
    h = h * 1000003u ^ std::hash<std::int64_t>()(v);
  return h;
}

LtMatmul::LtMatmul(cudaStream_t stream, void* workspace, std::size_t workspace_bytes)
    : stream_(stream), workspace_(workspace), workspace_bytes_(workspace_bytes) {
  LS_CUBLAS_CHECK(cublasLtCreate(&handle_));
  LS_CUBLAS_CHECK(cublasLtMatmulDescInit(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T;
  LS_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(&desc_, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)));
}

LtMatmul::~LtMatmul() {
  if (handle_) cublasLtDestroy(handle_);
}

void LtMatmul::set_sm_count_target(int sms) {
  if (sms == sm_count_target_) return;
  const std::int32_t target = sms;
  LS_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(&desc_, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, &target, sizeof(target)));
  sm_count_target_ = sms;
  plans_.clear();
}

LtMatmul::Key LtMatmul::key_of(cudaDataType_t type, const void* x, std::int64_t rows, std::int64_t in, const void* w,
                               std::int64_t out, const void* y, cudaDataType_t y_type) {
  LS_CHECK(y_type == CUDA_R_32F || y_type == type, "LtMatmul: the output is fp32 or the inputs' type");
  return Key{type, y_type, rows, in, out, alignment_of(x), alignment_of(w), alignment_of(y)};
}

// Row-major y[rows, out] is column-major [out, rows] = w^T . x^T with w read as the
// column-major [in, out] it is in memory (A, transposed) and x as column-major [in, rows] (B).
std::vector<cublasLtMatmulHeuristicResult_t> LtMatmul::heuristics(const Key& key, Plan& p, int count) {
  const auto rows = static_cast<std::uint64_t>(key.rows), in = static_cast<std::uint64_t>(key.in),
             out = static_cast<std::uint64_t>(key.out);
  LS_CUBLAS_CHECK(cublasLtMatrixLayoutInit(&p.w_layout, key.type, in, out, key.in));
  LS_CUBLAS_CHECK(cublasLtMatrixLayoutInit(&p.x_layout, key.type, in, rows, key.in));
  LS_CUBLAS_CHECK(cublasLtMatrixLayoutInit(&p.y_layout, key.y_type, out, rows, key.out));

  cublasLtMatmulPreferenceOpaque_t pref;
  LS_CUBLAS_CHECK(cublasLtMatmulPreferenceInit(&pref));
  const std::uint64_t workspace = workspace_bytes_;
  LS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                       sizeof(workspace)));
  // The pointers' real alignment: the heuristic otherwise assumes 256 bytes and may pick a
  // kernel that faults on a slice that starts mid-row.
  const std::uint32_t a = key.w_align, b = key.x_align, cd = key.y_align;
  LS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a, sizeof(a)));
  LS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &b, sizeof(b)));
  LS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &cd, sizeof(cd)));
  LS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &cd, sizeof(cd)));

  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<std::size_t>(count));
  int found = 0;
  LS_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, &desc_, &p.w_layout, &p.x_layout, &p.y_layout, &p.y_layout,
                                                 &pref, count, results.data(), &found));
  if (found == 0)
    LS_FATAL("cuBLASLt has no algorithm for a " << (key.type == CUDA_R_16BF ? "bf16" : "fp16") << " GEMM of "
                                                << key.rows << " x " << key.in << " by " << key.in << " x " << key.out);
  results.resize(static_cast<std::size_t>(found));
  return results;
}

LtMatmul::Plan& LtMatmul::plan_for(const Key& key) {
  if (auto it = plans_.find(key); it != plans_.end()) return it->second;
  if (plans_.size() >= kMaxPlans) plans_.clear();
  Plan p{};
  p.algo = heuristics(key, p, 1).front().algo;
  return plans_.emplace(key, p).first->second;
}

std::vector<cublasLtMatmulAlgo_t> LtMatmul::algorithms(cudaDataType_t type, const void* x, std::int64_t rows,
                                                       std::int64_t in, const void* w, std::int64_t out,
                                                       const void* y, int count, cudaDataType_t y_type) {
  Plan p{};
  std::vector<cublasLtMatmulAlgo_t> algos;
  for (const cublasLtMatmulHeuristicResult_t& r : heuristics(key_of(type, x, rows, in, w, out, y, y_type), p, count))
    algos.push_back(r.algo);
  return algos;
}

void LtMatmul::run(cudaDataType_t type, const void* x, std::int64_t rows, std::int64_t in, const void* w,
                   std::int64_t out, void* y, cudaDataType_t y_type) {
  const Plan& p = plan_for(key_of(type, x, rows, in, w, out, y, y_type));
  enqueue(p, p.algo, x, w, y);
}

void LtMatmul::run_with(const cublasLtMatmulAlgo_t& algo, cudaDataType_t type, const void* x, std::int64_t rows,
                        std::int64_t in, const void* w, std::int64_t out, void* y, cudaDataType_t y_type) {
  enqueue(plan_for(key_of(type, x, rows, in, w, out, y, y_type)), algo, x, w, y);
}

void LtMatmul::enqueue(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, void* y) {
  // cuBLASLt takes the layouts as non-const handles but only reads them.
  auto layout = [](const cublasLtMatrixLayoutOpaque_t& l) { return const_cast<cublasLtMatrixLayout_t>(&l); };
  const float alpha = 1.0f, beta = 0.0f;
  LS_CUBLAS_CHECK(cublasLtMatmul(handle_, &desc_, &alpha, w, layout(p.w_layout), x, layout(p.x_layout), &beta, y,
                                 layout(p.y_layout), y, layout(p.y_layout), &algo, workspace_, workspace_bytes_,
                                 stream_));
}

}  // namespace lockstep::cuda
