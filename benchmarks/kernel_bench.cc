// The CUDA dense ops (kernels/dense_ops.h) at DeepSeek-R1-Distill-Qwen-7B shapes, each reported as
// a fraction of ceilings measured first in the same process: a device-to-device copy (GB/s) and a
// cuBLAS bf16 GEMM (TFLOP/s); the deepseek_v3 rows are in kernel_bench_deepseek.cc, what both share
// in kernel_bench_support.h. Run: build/benchmarks/kernel_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "benchmarks/kernel_bench_support.h"
#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_decoding.h"
#include "kernels/cuda/lt_matmul.h"
#include "kernels/dense_ops.h"
#include "kernels/device_buffer.h"
#include "kernels/dtype.h"
#include "kernels/fatal.h"
#include "kernels/gpu_context.h"
#include "kernels/pattern.h"
#include "kernels/sampling.h"

namespace lockstep {

void register_deepseek_benchmarks();  // kernel_bench_deepseek.cc

namespace {

// DeepSeek-R1-Distill-Qwen-7B (a Qwen2 architecture).
constexpr std::int64_t kHidden = 3584, kInter = 18944, kHeads = 28, kKvHeads = 4, kHeadDim = 128;
constexpr std::int64_t kVocab = 152064;
constexpr float kEps = 1e-6f, kRopeTheta = 1e6f;

// A cache of `count` values of C: the pattern fill for 16 bits; for fp8, codes of N(0, 1) values
// drawn from a table of 256 (finite, as a cache written by the model holds).
template <KvCacheElement C>
DeviceBuffer filled_cache(std::size_t count, std::uint32_t seed) {
  if constexpr (HalfFloat<C>) {
    return filled<C>(count, seed);
  } else {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    C table[256];
    for (C& c : table) c = fp8_from_float<C>(normal(rng));
    std::vector<C> codes(count);
    for (std::size_t i = 0; i < count; ++i) codes[i] = table[(i * 2654435761u) >> 24 & 255];
    return to_device(codes);
  }
}

// Seconds per call of `op`, the best of a few trials of `reps` back-to-back calls (for ceilings).
template <class Op>
double best_seconds(GpuContext& ctx, int reps, Op&& op) {
  for (int i = 0; i < 3; ++i) op();  // warm-up: clocks up, cuBLAS heuristics chosen
  Event start, stop;
  double best = 1e30;
  for (int trial = 0; trial < 5; ++trial) {
    LS_CUDA_CHECK(cudaEventRecord(start.e, ctx.stream()));
    for (int i = 0; i < reps; ++i) op();
    LS_CUDA_CHECK(cudaEventRecord(stop.e, ctx.stream()));
    LS_CUDA_CHECK(cudaEventSynchronize(stop.e));
    float ms = 0;
    LS_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, stop.e));
    best = std::min(best, ms * 1e-3 / reps);
  }
  return best;
}

void measure_ceilings(GpuContext& ctx) {
  {
    const std::size_t bytes = std::size_t{1} << 30;
    DeviceBuffer src(DeviceKind::Cuda, bytes), dst(DeviceKind::Cuda, bytes);
    src.fill_bytes(0x5a);
    const double s = best_seconds(ctx, 10, [&] {
      LS_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, ctx.stream()));
    });
    g.copy_gbps = 2.0 * static_cast<double>(bytes) / s / 1e9;
  }
  {
    // The same layout as cuda::linear (A transposed, bf16 in, fp32 out), on non-trivial data:
    // zeros would run faster than any real weight.
    const int n = 8192;
    const std::size_t nn = static_cast<std::size_t>(n) * n;
    DeviceBuffer a = filled<bf16>(nn, 101), b = filled<bf16>(nn, 102);
    DeviceBuffer c(DeviceKind::Cuda, nn * sizeof(float));
    const float alpha = 1.0f, beta = 0.0f;
    const double s = best_seconds(ctx, 4, [&] {
      LS_CUBLAS_CHECK(cublasGemmEx(ctx.blas(), CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, a.data(), CUDA_R_16BF, n,
                                   b.data(), CUDA_R_16BF, n, &beta, c.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
    });
    g.gemm_tflops = 2.0 * static_cast<double>(n) * n * n / s / 1e12;
  }
}

// ---- The ops.

// As the model calls them: q|k|v, gate|up and down read bf16 activations (the norms and
// silu_mul write bf16), o and lm_head fp32 ones (rounded to bf16 by linear first). W: the
// model's dtype (fp16 for --dtype half).
template <HalfFloat W = bf16>
void bm_linear(benchmark::State& state, std::int64_t rows, std::int64_t in, std::int64_t out, bool fp32_input) {
  DeviceBuffer x = fp32_input ? filled<float>(rows * in, 1) : filled<W>(rows * in, 1);
  DeviceBuffer w = filled<W>(in * out, 2), y(DeviceKind::Cuda, rows * out * sizeof(float));
  const double bytes = 2.0 * in * out + (fp32_input ? 4.0 : 2.0) * rows * in + 4.0 * rows * out;
  run_timed(state, bytes, 2.0 * rows * in * out, [&] {
    if (fp32_input) cuda::linear(*g.ctx, as<float>(x), rows, in, as<W>(w), out, nullptr, as<float>(y));
    else cuda::linear(*g.ctx, as<W>(x), rows, in, as<W>(w), out, nullptr, as<float>(y));
  });
}

// The peer of every linear: cuBLAS' cublasGemmEx on the same shape and bf16 input, as
// cuda::linear called it before it took kernels/cuda/gemv.h's GEMV for decode-sized steps and
// cuBLASLt (kernels/cuda/lt_matmul.h) for the rest.
void bm_cublas_linear(benchmark::State& state, std::int64_t rows, std::int64_t in, std::int64_t out) {
  DeviceBuffer x = filled<bf16>(rows * in, 1), w = filled<bf16>(in * out, 2);
  DeviceBuffer y(DeviceKind::Cuda, rows * out * sizeof(float));
  const float alpha = 1.0f, beta = 0.0f;
  run_timed(state, 2.0 * in * out + 2.0 * rows * in + 4.0 * rows * out, 2.0 * rows * in * out, [&] {
    LS_CUBLAS_CHECK(cublasGemmEx(g.ctx->blas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(rows),
                                 static_cast<int>(in), &alpha, w.data(), CUDA_R_16BF, static_cast<int>(in), x.data(),
                                 CUDA_R_16BF, static_cast<int>(in), &beta, y.data(), CUDA_R_32F, static_cast<int>(out),
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  });
}

// The heuristic's `index`-th cuBLASLt algorithm for a bf16-input linear (cuda::linear runs the
// first): whether timing the others at start-up would pick faster GEMMs for the model's shapes.
void bm_lt_algorithm(benchmark::State& state, std::int64_t rows, std::int64_t in, std::int64_t out, int index) {
  DeviceBuffer x = filled<bf16>(rows * in, 1), w = filled<bf16>(in * out, 2);
  DeviceBuffer y(DeviceKind::Cuda, rows * out * sizeof(float));
  cuda::LtMatmul& lt = g.ctx->gemm();
  const std::vector<cublasLtMatmulAlgo_t> algos =
      lt.algorithms(CUDA_R_16BF, x.data(), rows, in, w.data(), out, as<float>(y), index + 1);
  if (static_cast<int>(algos.size()) <= index) {
    state.SkipWithError("the heuristic offers fewer algorithms");
    return;
  }
  run_timed(state, 2.0 * in * out + 2.0 * rows * in + 4.0 * rows * out, 2.0 * rows * in * out, [&] {
    lt.run_with(algos[index], CUDA_R_16BF, x.data(), rows, in, w.data(), out, as<float>(y));
  });
}

// Into bf16, as before each linear.
void bm_rms_norm(benchmark::State& state, std::int64_t rows, bool add) {
  const std::int64_t n = rows * kHidden;
  DeviceBuffer x = filled<float>(n, 4), delta = filled<float>(n, 5);
  DeviceBuffer w = filled<bf16>(kHidden, 6), y(DeviceKind::Cuda, n * sizeof(bf16));
  // rms_norm reads x, writes y; add_rms_norm also reads delta and writes the residual back.
  const double bytes = (add ? 3.0 : 1.0) * 4.0 * n + 2.0 * n + 2.0 * kHidden;
  run_timed(state, bytes, 0, [&] {
    if (add) cuda::add_rms_norm(*g.ctx, as<float>(x), as<float>(delta), rows, kHidden, as<bf16>(w), kEps, as<bf16>(y));
    else cuda::rms_norm(*g.ctx, as<float>(x), rows, kHidden, as<bf16>(w), kEps, as<bf16>(y));
  });
}

// Fused gate|up in (fp32, or bf16 as linear_silu_mul's GEMM writes it), bf16 out (the down
// projection's input).
void bm_silu_mul(benchmark::State& state, std::int64_t rows, bool bf16_input) {
  const std::int64_t n = rows * kInter;
  DeviceBuffer gate_up = bf16_input ? filled<bf16>(2 * n, 7) : filled<float>(2 * n, 7);
  DeviceBuffer out(DeviceKind::Cuda, n * sizeof(bf16));
  run_timed(state, 2.0 * (bf16_input ? 2.0 : 4.0) * n + 2.0 * n, 0, [&] {
    if (bf16_input) cuda::silu_mul(*g.ctx, as<bf16>(gate_up), rows, kInter, as<bf16>(out));
    else cuda::silu_mul(*g.ctx, as<float>(gate_up), rows, kInter, as<bf16>(out));
  });
}

// The MLP's first half as the model runs it (the GEMM into bf16 gate|up, then silu_mul), beside
// linear/gate_up (fp32 out) + silu_mul/fp32 for what the bf16 gate|up saves.
void bm_linear_silu_mul(benchmark::State& state, std::int64_t rows) {
  DeviceBuffer x = filled<bf16>(rows * kHidden, 1), w = filled<bf16>(2 * kInter * kHidden, 2);
  DeviceBuffer gate_up(DeviceKind::Cuda, rows * 2 * kInter * sizeof(bf16));
  DeviceBuffer out(DeviceKind::Cuda, rows * kInter * sizeof(bf16));
  run_timed(state, 2.0 * 2 * kInter * kHidden + 2.0 * rows * kHidden + 2.0 * rows * kInter,
            2.0 * rows * kHidden * 2 * kInter, [&] {
              cuda::linear_silu_mul(*g.ctx, as<bf16>(x), rows, kHidden, as<bf16>(w), kInter, as<bf16>(gate_up),
                                    as<bf16>(out));
            });
}

void bm_split_qkv_rope_cache(benchmark::State& state, std::int64_t tokens) {
  const std::int64_t width = (kHeads + 2 * kKvHeads) * kHeadDim, kv_row = kKvHeads * kHeadDim;
  DeviceBuffer qkv = filled<float>(tokens * width, 9), bias = filled<bf16>(width, 15);
  DeviceBuffer q(DeviceKind::Cuda, tokens * kHeads * kHeadDim * sizeof(float));
  DeviceBuffer k_cache(DeviceKind::Cuda, tokens * kv_row * sizeof(bf16));
  DeviceBuffer v_cache(DeviceKind::Cuda, tokens * kv_row * sizeof(bf16));
  std::vector<int> positions(tokens);
  std::iota(positions.begin(), positions.end(), 1000);
  std::vector<std::int64_t> slots(tokens);
  std::iota(slots.begin(), slots.end(), 0);
  std::vector<float> inv_freq(kHeadDim / 2);
  for (std::int64_t i = 0; i < kHeadDim / 2; ++i)
    inv_freq[i] = std::pow(kRopeTheta, -2.0f * static_cast<float>(i) / static_cast<float>(kHeadDim));
  DeviceBuffer pos = to_device(positions), freq = to_device(inv_freq), d_slots = to_device(slots);
  // Reads the fused rows, writes q (fp32) and the K/V rows (bf16).
  const double bytes = 4.0 * tokens * width + 4.0 * tokens * kHeads * kHeadDim + 2.0 * 2.0 * tokens * kv_row +
                       2.0 * width + 12.0 * tokens;
  run_timed(state, bytes, 0, [&] {
    cuda::split_qkv_rope_cache<bf16>(*g.ctx, as<float>(qkv), tokens, kHeads, kKvHeads, kHeadDim, as<bf16>(bias),
                               as<int>(pos), as<float>(freq), as<std::int64_t>(d_slots), as<float>(q),
                               as<bf16>(k_cache), as<bf16>(v_cache));
  });
}

// Decode: one query token per sequence at position context-1, so each reads `context` cached
// tokens, from blocks scattered over the cache as a block manager leaves them.
const char* kernel_name(cuda::AttentionKernel kernel) {
  switch (kernel) {
    case cuda::AttentionKernel::TensorCores: return "tensor_cores";
    case cuda::AttentionKernel::FlashDecoding: return "flash_decoding";
    default: return "cuda_cores";
  }
}

// Decode: `batch` sequences at `context` positions each, one query token per sequence; a W
// (bf16, fp16 or fp8) cache.
template <KvCacheElement W = bf16>
void bm_paged_attention(benchmark::State& state, std::int64_t batch, std::int64_t context,
                        cuda::AttentionKernel kernel, int splits = 0, bool warm = false, bool shuffled = true) {
  if (kernel == cuda::AttentionKernel::FlashDecoding &&
      cuda::flash_decoding_splits(*g.ctx, batch, kHeads, kKvHeads, kHeadDim, context, splits) == 0) {
    state.SkipWithError("flash-decoding does not take this step (it would fall back to CUDA cores)");
    return;
  }
  const std::int64_t max_blocks = context / kBlockSize, num_blocks = batch * max_blocks;
  const std::int64_t cache_floats = num_blocks * kBlockSize * kKvHeads * kHeadDim;
  DeviceBuffer k = filled_cache<W>(cache_floats, 10), v = filled_cache<W>(cache_floats, 11);
  DeviceBuffer q = filled<float>(batch * kHeads * kHeadDim, 12);
  DeviceBuffer out(DeviceKind::Cuda, batch * kHeads * kHeadDim * sizeof(float));
  DecodeBatch d = decode_batch(batch, context, !shuffled);
  const double bytes = 2.0 * sizeof(W) * batch * context * kKvHeads * kHeadDim;  // K and V read
  const double flops = 4.0 * batch * context * kHeads * kHeadDim;          // q.k and p.v
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  run_timed(state, bytes, flops, [&] {
    cuda::paged_attention(*g.ctx, as<float>(q), as<W>(k), as<W>(v), batch, kHeads, kKvHeads, kHeadDim,
                          kBlockSize, as<int>(d.seq_of), as<int>(d.pos), as<int>(d.tables), max_blocks, scale,
                          as<float>(out), context, 1, kernel, splits);
  }, warm);
}

// Prefill: `seqs` prompts of `prompt` tokens in one step, causal (the offline run's steps: 8
// prompts of 1024 tokens). FLOPs count the visible positions only; bytes, K and V read once.
template <KvCacheElement W = bf16>
void bm_prefill_attention(benchmark::State& state, std::int64_t seqs, std::int64_t prompt,
                          cuda::AttentionKernel kernel) {
  const std::int64_t max_blocks = prompt / kBlockSize, num_blocks = seqs * max_blocks, tokens = seqs * prompt;
  const std::int64_t cache_floats = num_blocks * kBlockSize * kKvHeads * kHeadDim;
  DeviceBuffer k = filled_cache<W>(cache_floats, 15), v = filled_cache<W>(cache_floats, 16);
  DeviceBuffer q = filled<float>(tokens * kHeads * kHeadDim, 17);
  DeviceBuffer out(DeviceKind::Cuda, tokens * kHeads * kHeadDim * sizeof(float));
  std::vector<int> tables(num_blocks), seq_of(tokens), pos(tokens);
  std::iota(tables.begin(), tables.end(), 0);
  std::shuffle(tables.begin(), tables.end(), std::mt19937(18));
  for (std::int64_t t = 0; t < tokens; ++t) seq_of[t] = static_cast<int>(t / prompt), pos[t] = static_cast<int>(t % prompt);
  DeviceBuffer d_tables = to_device(tables), d_seq = to_device(seq_of), d_pos = to_device(pos);
  const double bytes = 2.0 * sizeof(W) * tokens * kKvHeads * kHeadDim;
  const double flops = 4.0 * seqs * (prompt * (prompt + 1) / 2) * kHeads * kHeadDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  run_timed(state, bytes, flops, [&] {
    cuda::paged_attention(*g.ctx, as<float>(q), as<W>(k), as<W>(v), tokens, kHeads, kKvHeads, kHeadDim,
                          kBlockSize, as<int>(d_seq), as<int>(d_pos), as<int>(d_tables), max_blocks, scale,
                          as<float>(out), prompt, prompt, kernel);
  });
}

#define LS_CU_CHECK(call)                                                        \
  do {                                                                           \
    const CUresult r_ = (call);                                                  \
    if (r_ != CUDA_SUCCESS) {                                                    \
      const char* what = nullptr;                                                \
      cuGetErrorString(r_, &what);                                               \
      LS_FATAL(#call << ": " << (what ? what : "unknown CUDA driver error"));    \
    }                                                                            \
  } while (0)

// The GPU's SMs split in two green contexts (CUDA 12.4+): `first_sms` (rounded as the driver
// splits) and the rest, a stream in each. A kernel on either stream runs on its part's SMs only.
struct GreenSplit {
  CUgreenCtx ctx[2] = {};
  cudaStream_t stream[2] = {};
  unsigned sms[2] = {};
  explicit GreenSplit(unsigned first_sms) {
    CUdevice dev;
    LS_CU_CHECK(cuDeviceGet(&dev, 0));
    CUdevResource all, part, rest;
    LS_CU_CHECK(cuDeviceGetDevResource(dev, &all, CU_DEV_RESOURCE_TYPE_SM));
    unsigned groups = 1;
    LS_CU_CHECK(cuDevSmResourceSplitByCount(&part, &groups, &all, &rest, 0, first_sms));
    CUdevResource* res[2] = {&part, &rest};
    for (int i = 0; i < 2; ++i) {
      CUdevResourceDesc desc;
      LS_CU_CHECK(cuDevResourceGenerateDesc(&desc, res[i], 1));
      LS_CU_CHECK(cuGreenCtxCreate(&ctx[i], desc, dev, CU_GREEN_CTX_DEFAULT_STREAM));
      CUstream st;
      LS_CU_CHECK(cuGreenCtxStreamCreate(&st, ctx[i], CU_STREAM_NON_BLOCKING, 0));
      stream[i] = st;
      sms[i] = res[i]->sm.smCount;
    }
  }
  ~GreenSplit() {
    for (int i = 0; i < 2; ++i) {
      if (stream[i]) cudaStreamSynchronize(stream[i]), cuStreamDestroy(stream[i]);
      if (ctx[i]) cuGreenCtxDestroy(ctx[i]);
    }
  }
};

// Nano-batched decode: one half of a decode step's sequences attends (memory-bound, on the
// context's stream) while the other half runs a layer's GEMMs (q|k|v, o, gate|up with silu_mul,
// down; compute-bound, on a second stream whose cuBLASLt assumes `gemm_sms` SMs, 0: all).
// mode 0: the attention alone, 1: the GEMMs alone, 2: both at once. The gain of overlapping
// is (time 0 + time 1) / time 2 at the same shape. Measured on an H200 (RESULTS.md, 2026-12-03
// seventeenth session): 345 + 340 us alone, 646 us at once, and no better with the SMs split:
// the attention's time scales with its SMs (1558 us on 16, 415 on 64), so neither kernel has
// SMs to spare and nano-batching was not kept.
// attention_sms > 0: instead the attention runs on a green context of that many SMs and the
// GEMMs on one of the rest (cuBLASLt told their count), so neither can crowd out the other.
void bm_nano_overlap(benchmark::State& state, std::int64_t batch, std::int64_t context, int gemm_sms, int mode,
                     unsigned attention_sms = 0) {
  const std::int64_t max_blocks = context / kBlockSize, num_blocks = batch * max_blocks;
  const std::int64_t cache_values = num_blocks * kBlockSize * kKvHeads * kHeadDim, qkv = (kHeads + 2 * kKvHeads) * kHeadDim;
  DeviceBuffer k = filled<bf16>(cache_values, 10), v = filled<bf16>(cache_values, 11);
  DeviceBuffer q = filled<float>(batch * kHeads * kHeadDim, 12);
  DeviceBuffer att(DeviceKind::Cuda, batch * kHeads * kHeadDim * sizeof(float));
  DecodeBatch d = decode_batch(batch, context);
  DeviceBuffer x = filled<bf16>(batch * kHidden, 1), x32 = filled<float>(batch * kHidden, 3);
  DeviceBuffer w_qkv = filled<bf16>(kHidden * qkv, 2), w_o = filled<bf16>(kHidden * kHidden, 4);
  DeviceBuffer w_gate_up = filled<bf16>(2 * kInter * kHidden, 5), w_down = filled<bf16>(kInter * kHidden, 6);
  DeviceBuffer y_qkv(DeviceKind::Cuda, batch * qkv * sizeof(float)), y(DeviceKind::Cuda, batch * kHidden * sizeof(float));
  DeviceBuffer gate_up(DeviceKind::Cuda, batch * 2 * kInter * sizeof(bf16)), act = filled<bf16>(batch * kInter, 7);
  std::unique_ptr<GreenSplit> green;
  std::unique_ptr<GpuContext> green_attention, green_gemms;
  if (attention_sms > 0) {
    green = std::make_unique<GreenSplit>(attention_sms);
    green_attention = std::make_unique<GpuContext>(0, green->stream[0]);
    green_gemms = std::make_unique<GpuContext>(0, green->stream[1]);
    gemm_sms = static_cast<int>(green->sms[1]);
    state.counters["attention_sms"] = green->sms[0];
    state.counters["gemm_sms"] = green->sms[1];
  }
  GpuContext& main = *g.ctx;
  GpuContext& attention_ctx = green ? *green_attention : main;
  GpuContext& side = green ? *green_gemms : *g.side;
  side.gemm().set_sm_count_target(gemm_sms);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  auto attention = [&] {
    cuda::paged_attention(attention_ctx, as<float>(q), as<bf16>(k), as<bf16>(v), batch, kHeads, kKvHeads, kHeadDim, kBlockSize,
                          as<int>(d.seq_of), as<int>(d.pos), as<int>(d.tables), max_blocks, scale, as<float>(att), context,
                          1);
  };
  auto gemms = [&] {
    cuda::linear(side, as<bf16>(x), batch, kHidden, as<bf16>(w_qkv), qkv, nullptr, as<float>(y_qkv));
    cuda::linear(side, as<float>(x32), batch, kHidden, as<bf16>(w_o), kHidden, nullptr, as<float>(y));
    cuda::linear_silu_mul(side, as<bf16>(x), batch, kHidden, as<bf16>(w_gate_up), kInter, as<bf16>(gate_up),
                          as<bf16>(act));
    cuda::linear(side, as<bf16>(act), batch, kInter, as<bf16>(w_down), kHidden, nullptr, as<float>(y));
  };
  cudaEvent_t fork = nullptr, join = nullptr;
  LS_CUDA_CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
  LS_CUDA_CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
  const double attention_bytes = 2.0 * sizeof(bf16) * batch * context * kKvHeads * kHeadDim;
  const double weight_bytes = 2.0 * kHidden * (qkv + kHidden + 3 * kInter);
  const double flops = 2.0 * batch * kHidden * (qkv + kHidden + 3 * kInter);
  cudaEvent_t join_attention = nullptr;
  LS_CUDA_CHECK(cudaEventCreateWithFlags(&join_attention, cudaEventDisableTiming));
  run_timed(state, (mode != 1 ? attention_bytes : 0) + (mode != 0 ? weight_bytes : 0), mode != 0 ? flops : 0, [&] {
    LS_CUDA_CHECK(cudaEventRecord(fork, main.stream()));
    if (mode != 0) {
      LS_CUDA_CHECK(cudaStreamWaitEvent(side.stream(), fork));
      gemms();  // first, so that its blocks are queued before the attention's fill the SMs
      LS_CUDA_CHECK(cudaEventRecord(join, side.stream()));
    }
    if (mode != 1) {
      if (&attention_ctx != &main) LS_CUDA_CHECK(cudaStreamWaitEvent(attention_ctx.stream(), fork));
      attention();
      LS_CUDA_CHECK(cudaEventRecord(join_attention, attention_ctx.stream()));
      LS_CUDA_CHECK(cudaStreamWaitEvent(main.stream(), join_attention));
    }
    if (mode != 0) LS_CUDA_CHECK(cudaStreamWaitEvent(main.stream(), join));
  });
  cudaEventDestroy(join_attention);
  side.synchronize();
  attention_ctx.synchronize();
  side.gemm().set_sm_count_target(0);
  cudaEventDestroy(fork);
  cudaEventDestroy(join);
}

void bm_argmax(benchmark::State& state, std::int64_t rows) {
  DeviceBuffer logits = filled<float>(rows * kVocab, 14), ids(DeviceKind::Cuda, rows * sizeof(int));
  run_timed(state, 4.0 * rows * kVocab + 4.0 * rows, 0,
            [&] { cuda::argmax(*g.ctx, as<float>(logits), rows, kVocab, as<int>(ids)); });
}

// Sampling on the GPU (kernels/sampling.h): `rows` rows of the 152k vocabulary, logits ~ N(0, 1)
// (flat, as random weights give: top-p keeps most of the row, the hardest case for the
// selections); bytes count the logits read once.
void bm_sample_rows(benchmark::State& state, std::int64_t rows, RowSampling params, int cluster) {
  std::vector<float> host_logits(static_cast<std::size_t>(rows * kVocab));
  std::mt19937 gen(21);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& l : host_logits) l = normal(gen);
  std::vector<RowSampling> host_params(rows, params);
  for (std::int64_t r = 0; r < rows; ++r) host_params[r].u = (r + 0.5) / static_cast<double>(rows);
  DeviceBuffer logits = to_device(host_logits), d_params = to_device(host_params);
  DeviceBuffer ids(DeviceKind::Cuda, rows * sizeof(int));
  run_timed(state, 4.0 * rows * kVocab, 0, [&] {
    cuda::sample_rows(*g.ctx, as<float>(logits), rows, kVocab, 1, kVocab, as<RowSampling>(d_params), as<int>(ids),
                      cluster);
  });
}

// ---- Registration.


void register_benchmarks() {
  struct Shape {
    const char* name;
    std::int64_t in, out;
    bool fp32_input;
  };
  const Shape shapes[] = {{"qkv", kHidden, (kHeads + 2 * kKvHeads) * kHeadDim, false},
                          {"o", kHeads * kHeadDim, kHidden, true},
                          {"gate_up", kHidden, 2 * kInter, false},
                          {"down", kInter, kHidden, false},
                          {"lm_head", kHidden, kVocab, true}};
  auto shape_name = [](const Shape& s) {
    return std::string(s.name) + ":" + std::to_string(s.in) + "x" + std::to_string(s.out);
  };
  // 256 and 8192 rows: the decode and prefill steps of the 1k/1k offline run.
  for (const std::int64_t rows : {1, 2, 4, 32, 256, 4096, 8192})
    for (const Shape& s : shapes) {
      add("linear/" + shape_name(s) + "/rows:" + std::to_string(rows),
          [=](benchmark::State& st) { bm_linear(st, rows, s.in, s.out, s.fp32_input); });
      add("cublas_linear/" + shape_name(s) + "/rows:" + std::to_string(rows),
          [=](benchmark::State& st) { bm_cublas_linear(st, rows, s.in, s.out); });
    }
  // 842: the 1k/1k run's decode steps on average (1024 sequences at vLLM's offline defaults).
  for (const std::int64_t rows : {256, 842, 8192})
    for (const Shape& s : shapes)
      for (int index = 0; index < 8; ++index)
        add("lt_algorithm/" + shape_name(s) + "/rows:" + std::to_string(rows) + "/index:" + std::to_string(index),
            [=](benchmark::State& st) { bm_lt_algorithm(st, rows, s.in, s.out, index); });
  // --dtype half: the same GEMV (rows 1) and cuBLAS GEMM (4096) in fp16.
  for (const std::int64_t rows : {1, 4096})
    for (const Shape& s : shapes)
      add("linear_fp16/" + shape_name(s) + "/rows:" + std::to_string(rows),
          [=](benchmark::State& st) { bm_linear<fp16>(st, rows, s.in, s.out, s.fp32_input); });
  for (const bool add_first : {false, true})
    for (const std::int64_t rows : {1, 32, 4096, 16384})
      add(std::string(add_first ? "add_rms_norm" : "rms_norm") + "/rows:" + std::to_string(rows),
          [=](benchmark::State& st) { bm_rms_norm(st, rows, add_first); });
  for (const std::int64_t rows : {32, 256, 4096, 8192, 16384})
    for (const bool bf16_input : {false, true})
      add(std::string("silu_mul/") + (bf16_input ? "bf16" : "fp32") + "/rows:" + std::to_string(rows),
          [=](benchmark::State& st) { bm_silu_mul(st, rows, bf16_input); });
  for (const std::int64_t rows : {1, 256, 8192})
    add("linear_silu_mul/rows:" + std::to_string(rows), [=](benchmark::State& st) { bm_linear_silu_mul(st, rows); });
  for (const std::int64_t tokens : {1, 32})
    add("split_qkv_rope_cache/tokens:" + std::to_string(tokens),
        [=](benchmark::State& st) { bm_split_qkv_rope_cache(st, tokens); });
  for (const cuda::AttentionKernel kernel : {cuda::AttentionKernel::FlashDecoding, cuda::AttentionKernel::CudaCores,
                                             cuda::AttentionKernel::TensorCores}) {
    const std::string prefix = std::string("paged_attention/") + kernel_name(kernel);
    const bool decode_only = kernel == cuda::AttentionKernel::FlashDecoding;
    for (const std::int64_t context : {256, 1024, 4096})  // 256: the decode benchmark's (prompt 128 + 256 new)
      for (const std::int64_t batch : {1, 8, 32})
        add(prefix + "/batch:" + std::to_string(batch) + "/ctx:" + std::to_string(context),
            [=](benchmark::State& st) { bm_paged_attention(st, batch, context, kernel); });
    // The 1k-in/1k-out offline run's decode: 256 sequences at 1.5k positions on average, and its
    // prefill steps: 8 prompts of 1024 tokens.
    for (const std::int64_t batch : {1, 256})  // an fp16 cache (--dtype half)
      add(prefix + "/fp16/batch:" + std::to_string(batch) + "/ctx:1536",
          [=](benchmark::State& st) { bm_paged_attention<fp16>(st, batch, 1536, kernel); });
    if (!decode_only) {  // flash-decoding takes neither: too many blocks for one wave, or not decode
      add(prefix + "/batch:256/ctx:1536", [=](benchmark::State& st) { bm_paged_attention(st, 256, 1536, kernel); });
      for (const int splits : {1, 2, 3, 4})  // how the split count fills the waves of blocks
        add(prefix + "/batch:256/ctx:1536/splits:" + std::to_string(splits),
            [=](benchmark::State& st) { bm_paged_attention(st, 256, 1536, kernel, splits); });
      // and a long prompt's prefill (one 16k-token chunk), where attention outgrows the GEMMs.
      for (const auto& [seqs, prompt] : {std::pair<std::int64_t, std::int64_t>{8, 1024}, {1, 16384}})
        if (prompt <= 1024 || kernel == cuda::AttentionKernel::TensorCores)  // CUDA cores: seconds a call
          add(std::string("prefill_attention/") + kernel_name(kernel) + "/seqs:" + std::to_string(seqs) +
                  "/prompt:" + std::to_string(prompt),
              [=](benchmark::State& st) { bm_prefill_attention(st, seqs, prompt, kernel); });
    }
    // Batch-1 decode is a latency chain (the block's loads, its split's partial, the merge): how
    // the split count trades a shorter walk per block against the merge.
    for (const std::int64_t context : {256, 1024})
      for (const int splits : {1, 2, 4, 8, 16, 32})
        add(prefix + "/batch:1/ctx:" + std::to_string(context) + "/splits:" + std::to_string(splits),
            [=](benchmark::State& st) { bm_paged_attention(st, 1, context, kernel, splits); });
    // The same launches warm (back to back, nothing flushed): the gap to the cold figure is
    // what fetching code, tables and data first costs.
    for (const std::int64_t batch : {1, 32})
      for (const std::int64_t context : {256, 1024})
        add(prefix + "/batch:" + std::to_string(batch) + "/ctx:" + std::to_string(context) + "/warm",
            [=](benchmark::State& st) { bm_paged_attention(st, batch, context, kernel, 0, true); });
  }
  // An fp8 cache (--kv-cache-dtype fp8; the tensor-core kernel always): the offline run's decode
  // and prefill steps, and smaller decode batches.
  for (const auto& [batch, context] : {std::pair<std::int64_t, std::int64_t>{1, 1024}, {32, 1024}, {256, 1536}}) {
    const std::string shape = "/batch:" + std::to_string(batch) + "/ctx:" + std::to_string(context);
    add("paged_attention/fp8_e4m3" + shape, [=](benchmark::State& st) {
      bm_paged_attention<fp8_e4m3>(st, batch, context, cuda::AttentionKernel::Auto);
    });
    add("paged_attention/fp8_e5m2" + shape, [=](benchmark::State& st) {
      bm_paged_attention<fp8_e5m2>(st, batch, context, cuda::AttentionKernel::Auto);
    });
  }
  // A sequence's blocks in order (the shuffled tables above scatter every 16 positions, as the
  // decode steps of a full batch allocate them): how much the cache's page order costs.
  add("paged_attention/fp8_e4m3/batch:256/ctx:1536/blocks_in_order", [=](benchmark::State& st) {
    bm_paged_attention<fp8_e4m3>(st, 256, 1536, cuda::AttentionKernel::Auto, 0, false, false);
  });
  add("prefill_attention/fp8_e4m3/seqs:8/prompt:1024", [=](benchmark::State& st) {
    bm_prefill_attention<fp8_e4m3>(st, 8, 1024, cuda::AttentionKernel::Auto);
  });
 // Half of the offline run's ~840 decoding sequences a nano-batch (bf16 cache, ~1.5k positions).
  auto mode_name = [](int mode) { return std::string(mode == 0 ? "attention" : mode == 1 ? "gemms" : "both"); };
  for (const int gemm_sms : {0, 96, 108, 120})
    for (const int mode : {0, 1, 2}) {
      if (mode == 0 && gemm_sms != 0) continue;  // the attention does not use cuBLASLt
      add("nano_overlap/" + mode_name(mode) + "/batch:420/ctx:1536/gemm_sms:" + std::to_string(gemm_sms),
          [=](benchmark::State& st) { bm_nano_overlap(st, 420, 1536, gemm_sms, mode); });
    }
  // The same with the SMs split between them (green contexts).
  for (const unsigned attention_sms : {16u, 32u, 48u, 64u})
    for (const int mode : {0, 1, 2})
      add("nano_overlap/green/" + mode_name(mode) + "/batch:420/ctx:1536/attention_sms:" + std::to_string(attention_sms),
          [=](benchmark::State& st) { bm_nano_overlap(st, 420, 1536, 0, mode, attention_sms); });
  register_deepseek_benchmarks();
  for (const std::int64_t rows : {1, 32})
    add("argmax/rows:" + std::to_string(rows), [=](benchmark::State& st) { bm_argmax(st, rows); });
  RowSampling plain, top_p, top_k;
  plain.temperature = 1.0f;  // vLLM's benchmark_throughput
  top_p.temperature = 0.6f, top_p.top_p = 0.95f;  // DeepSeek-R1's recommended
  top_k.temperature = 0.6f, top_k.top_k = 50;
  // cluster 0: blocks per row chosen by the row count (8 at 1 row); 1: a block per row.
  for (const std::int64_t rows : {1, 8, 256})
    for (const int cluster : {0, 1})
      for (const auto& [name, params] : {std::pair{"temperature_1", plain}, std::pair{"top_p_0.95", top_p},
                                         std::pair{"top_k_50", top_k}})
        if (cluster == 0 || rows < 256)
          add(std::string("sample_rows/") + name + "/rows:" + std::to_string(rows) + "/cluster:" + std::to_string(cluster),
              [=](benchmark::State& st) { bm_sample_rows(st, rows, params, cluster); });
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  using namespace lockstep;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (visible_gpu_count() == 0) {
    std::printf("kernel_bench: no CUDA GPU visible; nothing measured. Run it on a GPU host.\n");
    return 0;
  }
  GpuContext ctx(0);
  int l2_bytes = 0;
  LS_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, ctx.gpu()));
  DeviceBuffer l2_flush(DeviceKind::Cuda, std::max<std::size_t>(2 * static_cast<std::size_t>(l2_bytes), 64 << 20));
  GpuContext side(0);
  g.ctx = &ctx;
  g.side = &side;
  g.l2_flush = &l2_flush;

  measure_ceilings(ctx);
  std::printf("kernel_bench on %s: ceilings of this run: device-to-device copy %.0f GB/s (read + write), "
              "cuBLAS bf16 GEMM 8192^3 %.1f TFLOP/s\n",
              gpu_name(0).c_str(), g.copy_gbps, g.gemm_tflops);
  std::fflush(stdout);
  benchmark::AddCustomContext("gpu", gpu_name(0));
  benchmark::AddCustomContext("copy_ceiling_GB/s", std::to_string(g.copy_gbps));
  benchmark::AddCustomContext("gemm_ceiling_TFLOP/s", std::to_string(g.gemm_tflops));

  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
