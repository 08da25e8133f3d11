// What every kernel_bench*.cc shares: the run's context and ceilings (set in kernel_bench.cc's
// main), device buffers with deterministic contents, the timing loop that reports each row as a
// fraction of the ceilings, and registration.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/device_buffer.h"
#include "kernels/dtype.h"
#include "kernels/gpu_context.h"
#include "kernels/pattern.h"

namespace lockstep {

constexpr std::int64_t kBlockSize = 16;  // the KV cache's positions a block, as the server's default

// Set in main before any benchmark runs: the context every op is enqueued on, a buffer larger
// than L2 that is overwritten before each timed launch, and the ceilings of this run.
struct Bench {
  GpuContext* ctx = nullptr;
  GpuContext* side = nullptr;  // a second stream (and cuBLASLt) for the overlap benchmarks
  DeviceBuffer* l2_flush = nullptr;
  double copy_gbps = 0;    // device-to-device copy, bytes read + written
  double gemm_tflops = 0;  // cuBLAS bf16 GEMM 8192^3, fp32 out
};
inline Bench g;  // one for the whole binary (kernel_bench*.cc)

// ---- Device buffers with deterministic contents.

// count values of T (float, bf16 or fp16) from the verification pattern (kernels/pattern.h: hashed
// values in {-2, -1, 1, 2}, written on the GPU), so rows and tensors all differ and no weight
// is zero (zeros would run faster than any real weight).
template <class T>
DeviceBuffer filled(std::size_t count, std::uint32_t seed) {
  DeviceBuffer buf(DeviceKind::Cuda, count * sizeof(T));
  fill_pattern(DeviceKind::Cuda, buf.data(), count,
               std::is_same_v<T, bf16> ? DType::BF16 : std::is_same_v<T, fp16> ? DType::F16 : DType::F32, seed, 0,
               g.ctx->stream());
  g.ctx->synchronize();
  return buf;
}

template <class T>
DeviceBuffer to_device(const std::vector<T>& host) {
  DeviceBuffer buf(DeviceKind::Cuda, host.size() * sizeof(T));
  buf.copy_from_host(host.data(), host.size() * sizeof(T));
  return buf;
}

// A decode step's batch on the device: sequence i at position context - 1, its row i of the
// block tables (context / kBlockSize distinct blocks a sequence, shuffled unless `in_order`: a
// cache's pages as a long-running server leaves them), seq_of the identity.
struct DecodeBatch {
  DeviceBuffer tables, seq_of, pos;
};
inline DecodeBatch decode_batch(std::int64_t batch, std::int64_t context, bool in_order = false) {
  std::vector<int> tables(static_cast<std::size_t>(batch * (context / kBlockSize))), seq_of(batch),
      pos(batch, static_cast<int>(context - 1));
  std::iota(tables.begin(), tables.end(), 0);
  if (!in_order) std::shuffle(tables.begin(), tables.end(), std::mt19937(13));
  std::iota(seq_of.begin(), seq_of.end(), 0);
  return {to_device(tables), to_device(seq_of), to_device(pos)};
}

template <class T>
T* as(DeviceBuffer& b) { return static_cast<T*>(b.data()); }

// ---- Timing.

struct Event {
  cudaEvent_t e = nullptr;
  Event() { LS_CUDA_CHECK(cudaEventCreate(&e)); }
  ~Event() { cudaEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

// Times one launch of `op` per iteration between events on the context stream. L2 is overwritten
// before each, outside the events, so every byte comes from HBM as in a real step (each layer's
// weights differ) and the queued memset hides the launch latency. Then sets the counters.
// warm: instead, kWarmRepeats launches back to back with nothing in between (data, code and
// block tables stay cached; launches overlap as in a CUDA graph), timed together: what is left
// of a short kernel's time when nothing about it is cold.
constexpr int kWarmRepeats = 16;
template <class Op>
void run_timed(benchmark::State& state, double bytes, double flops, Op&& op, bool warm = false) {
  GpuContext& ctx = *g.ctx;
  op();  // first-launch costs, cuBLAS heuristics, scratch growth
  ctx.synchronize();
  Event start, stop;
  double seconds = 0;
  for (auto _ : state) {
    if (!warm) LS_CUDA_CHECK(cudaMemsetAsync(g.l2_flush->data(), 0, g.l2_flush->bytes(), ctx.stream()));
    LS_CUDA_CHECK(cudaEventRecord(start.e, ctx.stream()));
    for (int i = 0; i < (warm ? kWarmRepeats : 1); ++i) op();
    LS_CUDA_CHECK(cudaEventRecord(stop.e, ctx.stream()));
    LS_CUDA_CHECK(cudaEventSynchronize(stop.e));
    float ms = 0;
    LS_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, stop.e));
    if (warm) ms /= kWarmRepeats;
    state.SetIterationTime(ms * 1e-3);
    seconds += ms * 1e-3;
  }
  if (seconds <= 0) return;
  const double iters = static_cast<double>(state.iterations());
  const double gbps = bytes * iters / seconds / 1e9;
  state.counters["GB/s"] = gbps;
  state.counters["roofline"] = gbps / g.copy_gbps;
  if (flops > 0) {
    const double tflops = flops * iters / seconds / 1e12;
    state.counters["TFLOP/s"] = tflops;
    state.counters["of_gemm_peak"] = tflops / g.gemm_tflops;
  }
}

template <class Fn>
void add(const std::string& name, Fn&& fn) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn))->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace lockstep
