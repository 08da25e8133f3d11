// What the cuda:: op tests share: a fixture with the GPU's context, device copies of host
// vectors, outputs poisoned (NaN) before each call, seeded random inputs; and comparisons of a
// GPU result with the CPU reference. Its tests skip where no GPU is visible.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cuda/gemv.h"  // ExpertRows
#include "kernels/dense_ops.h"  // KvCacheElement
#include "kernels/device_buffer.h"
#include "kernels/dtype.h"
#include "kernels/fp8.h"
#include "kernels/gpu_context.h"

namespace lockstep {

// v rounded to W, as a GPU kernel writing W rounds it.
template <HalfFloat W>
std::vector<W> to_half(const std::vector<float>& v) {
  std::vector<W> h(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) h[i] = from_float<W>(v[i]);
  return h;
}

// Runs body.template operator()<W>() for each model dtype (bf16, fp16), each under a trace.
template <typename Body>
void for_each_half(Body&& body) {
  {
    SCOPED_TRACE("bf16");
    body.template operator()<bf16>();
  }
  {
    SCOPED_TRACE("fp16");
    body.template operator()<fp16>();
  }
}

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible";
    ctx_ = std::make_unique<GpuContext>(0);
  }
  GpuContext& ctx() { return *ctx_; }

  template <typename T>
  T* dev(const std::vector<T>& host) {
    buffers_.emplace_back(DeviceKind::Cuda, std::max<std::size_t>(1, host.size() * sizeof(T)));
    if (!host.empty()) buffers_.back().copy_from_host(host.data(), host.size() * sizeof(T));
    return static_cast<T*>(buffers_.back().data());
  }
  // A device array of n elements, every byte 0xFF (NaN for floats, -1 for ints).
  template <typename T>
  T* poisoned(std::size_t n) {
    buffers_.emplace_back(DeviceKind::Cuda, std::max<std::size_t>(1, n * sizeof(T)));
    buffers_.back().fill_bytes(0xFF);
    return static_cast<T*>(buffers_.back().data());
  }
  template <typename T>
  std::vector<T> host(const T* d, std::size_t n) {
    ctx().synchronize();
    std::vector<T> h(n);
    for (const DeviceBuffer& b : buffers_)
      if (b.data() == d) b.copy_to_host(h.data(), n * sizeof(T));
    return h;
  }

  std::mt19937 rng_{20261122};
  std::vector<float> normal(std::size_t n, float sigma = 1.0f) {
    std::normal_distribution<float> d(0.0f, sigma);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }
  template <HalfFloat W>
  std::vector<W> normal_half(std::size_t n, float sigma) {
    return to_half<W>(normal(n, sigma));
  }
  // Rows grouped by expert as cuda::group_by_expert lays them out, from each expert's row count:
  // the offsets and active experts on the host, each row's token (random, with repeats: the
  // token list of a grouping), and the ExpertRows over device copies, one slot an expert (more
  // than the active ones).
  struct GroupedRows {
    std::vector<int> offsets, active, x_rows;
    int rows = 0;
    cuda::ExpertRows on_device;
  };
  GroupedRows grouped_rows(const std::vector<int>& rows_of, int tokens) {
    GroupedRows g;
    g.offsets = {0};
    for (std::size_t e = 0; e < rows_of.size(); ++e) {
      g.offsets.push_back(g.offsets.back() + rows_of[e]);
      if (rows_of[e] > 0) g.active.push_back(static_cast<int>(e));
    }
    g.rows = g.offsets.back();
    g.x_rows.resize(static_cast<std::size_t>(g.rows));
    for (int& r : g.x_rows) r = static_cast<int>(rng_() % static_cast<unsigned>(tokens));
    g.on_device = cuda::ExpertRows::grouped(dev(g.offsets), dev(g.active),
                                            dev(std::vector<int>{static_cast<int>(g.active.size())}),
                                            static_cast<std::int64_t>(rows_of.size()));
    return g;
  }
  template <Fp8 C>
  std::vector<C> normal_fp8(std::size_t n, float sigma = 1.0f) {
    std::vector<C> v(n);
    const std::vector<float> f = normal(n, sigma);
    for (std::size_t i = 0; i < n; ++i) v[i] = fp8_from_float<C>(f[i]);
    return v;
  }

 private:
  std::unique_ptr<GpuContext> ctx_;
  std::vector<DeviceBuffer> buffers_;
};

inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, float abs_tol, float rel_tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const float tol = abs_tol + rel_tol * std::fabs(want[i]);
    if (!(std::fabs(got[i] - want[i]) <= tol) && reported++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: cuda " << got[i] << ", cpu " << want[i] << " (tolerance " << tol << ")";
  }
}

template <KvCacheElement W>
std::vector<float> to_floats(const std::vector<W>& v) {
  std::vector<float> f(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) f[i] = to_float(v[i]);
  return f;
}

// A W output against the fp32 reference rounded to W: one step of W (bf16 2^-8, fp16 2^-11
// relative) apart at most, as the two sides may round a value just off the midpoint differently.
template <HalfFloat W>
void expect_half_close(const std::vector<W>& got, std::vector<float> want, float abs_tol, const char* what) {
  for (float& v : want) v = to_float(from_float<W>(v));
  expect_close(to_floats(got), want, abs_tol, std::same_as<W, bf16> ? 1.0f / 128 : 1.0f / 1024, what);
}

}  // namespace lockstep
