// Every cuda:: dense op against its CPU reference (kernels/dense_ops.h) on fresh random
// inputs, with the outputs poisoned (NaN) before each call. Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "kernels/cuda/flash_decoding.h"
#include "kernels/cuda/lt_matmul.h"
#include "kernels/dense_ops.h"
#include "kernels/device_buffer.h"
#include "kernels/gpu_context.h"
#include "kernels/sampling.h"
#include "tests/kernels/cuda_ops_fixture.h"

namespace lockstep {
namespace {

class CudaDenseOps : public CudaOpsTest {
 protected:
  template <KvCacheElement C>
  void attention_cases(int heads, int kv_heads, int head_dim, std::initializer_list<cuda::AttentionKernel> kernels);
};

// Runs body.template operator()<C>(dtype) for each fp8 cache format, each under a trace.
template <typename Body>
void for_each_fp8(Body&& body) {
  {
    SCOPED_TRACE("fp8_e4m3");
    body.template operator()<fp8_e4m3>(KvCacheDtype::Fp8E4M3);
  }
  {
    SCOPED_TRACE("fp8_e5m2");
    body.template operator()<fp8_e5m2>(KvCacheDtype::Fp8E5M2);
  }
}

TEST_F(CudaDenseOps, LinearMatchesTheReferenceOnRoundedInputs) {
  for_each_half([&]<HalfFloat W>() {
    struct Shape { int rows, in, out; bool bias; };
    cuda::linear<W>(ctx(), static_cast<const float*>(nullptr), 0, 96, nullptr, 200, nullptr, nullptr);  // no rows: no-op
    cuda::linear<W>(ctx(), static_cast<const W*>(nullptr), 0, 96, nullptr, 200, nullptr, nullptr);
    ctx().synchronize();
    // Up to kGemvMaxRows (2) rows with `in` a multiple of 8 take the GEMV (kernels/cuda/gemv.h), the rest cuBLASLt;
    // the GEMV's rows of 8 and 96 (its loads issued before the dependent-launch wait, part
    // empty), 3584 (those, then a batch of 4 loads a lane and a part-empty one), 4104 (a lane's
    // tail) and 18944 (several batches). 3 x 99: fp32 input rounded 4 values a thread but the
    // last, and a GEMM whose rows start 2 bytes apart from 16.
    for (const Shape s : {Shape{1, 96, 200, false}, Shape{7, 96, 200, true}, Shape{64, 256, 384, true},
                          Shape{3, 3584, 512, false}, Shape{1, 18944, 64, false}, Shape{4, 3584, 4608, true},
                          Shape{2, 8, 13, true}, Shape{2, 100, 50, true}, Shape{5, 256, 130, true},
                          Shape{2, 3584, 300, true}, Shape{1, 4104, 24, false},
                          Shape{3, 99, 40, true}}) {
      SCOPED_TRACE(::testing::Message() << "rows " << s.rows << " in " << s.in << " out " << s.out);
      std::vector<float> x = normal(static_cast<std::size_t>(s.rows) * s.in);
      const std::vector<W> w = normal_half<W>(static_cast<std::size_t>(s.out) * s.in, 1.0f / std::sqrt(s.in));
      const std::vector<W> bias = normal_half<W>(s.out, 1.0f);
      float* y = poisoned<float>(static_cast<std::size_t>(s.rows) * s.out);
      cuda::linear(ctx(), dev(x), s.rows, s.in, dev(w), s.out, s.bias ? dev(bias) : nullptr, y);
      // The GPU rounds x to W before its GEMM: the reference sees the same rounded x, and the
      // W-input linear gets it already rounded.
      std::vector<W> xw(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) xw[i] = from_float<W>(x[i]), x[i] = to_float(xw[i]);
      float* y_half_in = poisoned<float>(static_cast<std::size_t>(s.rows) * s.out);
      cuda::linear(ctx(), dev(xw), s.rows, s.in, dev(w), s.out, s.bias ? dev(bias) : nullptr, y_half_in);
      std::vector<float> want(static_cast<std::size_t>(s.rows) * s.out);
      cpu::linear(x.data(), s.rows, s.in, w.data(), s.out, s.bias ? bias.data() : nullptr, want.data());
      const float abs_tol = 1e-4f * std::sqrt(static_cast<float>(s.in));
      expect_close(host(y, want.size()), want, abs_tol, 1e-3f, "linear");
      expect_close(host(y_half_in, want.size()), want, abs_tol, 1e-3f, "linear, W input");
    }
  });
}

// cuBLASLt's plans (kernels/cuda/lt_matmul.h) are per shape, dtype and pointer alignment: x, w
// and y that start 2 or 4 bytes past an aligned address (a slice of a bigger buffer) must still
// get the right sums, and the same call again must reuse its plan.
TEST_F(CudaDenseOps, LinearTakesOperandsAtAnyAlignment) {
  for_each_half([&]<HalfFloat W>() {
    const int rows = 9, in = 264, out = 72;
    std::vector<W> x = normal_half<W>(static_cast<std::size_t>(rows) * in + 1, 1.0f);
    std::vector<W> w = normal_half<W>(static_cast<std::size_t>(out) * in + 1, 1.0f / std::sqrt(in));
    const W* x_dev = dev(x);
    const W* w_dev = dev(w);
    float* y_dev = poisoned<float>(static_cast<std::size_t>(rows) * out + 1);
    std::vector<float> want(static_cast<std::size_t>(rows) * out);
    for (const int shift : {0, 1}) {
      SCOPED_TRACE(::testing::Message() << "operands shifted by " << shift << " element(s)");
      std::vector<float> xf(static_cast<std::size_t>(rows) * in);
      for (std::size_t i = 0; i < xf.size(); ++i) xf[i] = to_float(x[i + shift]);
      cpu::linear(xf.data(), rows, in, w.data() + shift, out, nullptr, want.data());
      cuda::linear(ctx(), x_dev + shift, rows, in, w_dev + shift, out, nullptr, y_dev + shift);
      const std::size_t plans = ctx().gemm().plan_count();
      cuda::linear(ctx(), x_dev + shift, rows, in, w_dev + shift, out, nullptr, y_dev + shift);
      EXPECT_EQ(ctx().gemm().plan_count(), plans) << "the same GEMM again made a new plan";
      const std::vector<float> all = host(y_dev, want.size() + 1);
      expect_close(std::vector<float>(all.begin() + shift, all.begin() + shift + want.size()), want,
                   1e-4f * std::sqrt(static_cast<float>(in)), 1e-3f, "linear");
    }
  });
}

TEST_F(CudaDenseOps, RmsNormAndFusedAddRmsNorm) {
  for_each_half([&]<HalfFloat W>() {
    // 102 (not a multiple of 4) and 40000 (more than 8 float4s a thread) take the plain loop;
    // 16384 has weights read both before the dependent-launch wait and after it.
    for (int dim : {64, 102, 3584, 8192, 16384, 40000})
      for (int rows : {1, 5}) {
        SCOPED_TRACE(::testing::Message() << "dim " << dim << " rows " << rows);
        const std::size_t n = static_cast<std::size_t>(rows) * dim;
        const std::vector<float> x = normal(n, 3.0f), delta = normal(n);
        const std::vector<W> w = normal_half<W>(dim, 1.0f);
        std::vector<float> want(n);
        cpu::rms_norm(x.data(), rows, dim, w.data(), 1e-6f, want.data());
        float* y = poisoned<float>(n);
        cuda::rms_norm(ctx(), dev(x), rows, dim, dev(w), 1e-6f, y);
        expect_close(host(y, n), want, 1e-5f, 1e-5f, "rms_norm");
        float* d_x = dev(x);  // in place (y aliases x), as the final norm runs
        cuda::rms_norm(ctx(), d_x, rows, dim, dev(w), 1e-6f, d_x);
        expect_close(host(d_x, n), want, 1e-5f, 1e-5f, "rms_norm in place");

        std::vector<float> residual = x, want_y(n);
        cpu::add_rms_norm(residual.data(), delta.data(), rows, dim, w.data(), 1e-6f, want_y.data());
        float* d_residual = dev(x);
        float* y2 = poisoned<float>(n);
        cuda::add_rms_norm(ctx(), d_residual, dev(delta), rows, dim, dev(w), 1e-6f, y2);
        expect_close(host(d_residual, n), residual, 0.0f, 0.0f, "add_rms_norm residual");
        expect_close(host(y2, n), want_y, 1e-5f, 1e-5f, "add_rms_norm output");

        // W outputs (what feeds the next linear).
        W* yb = poisoned<W>(n);
        cuda::rms_norm(ctx(), dev(x), rows, dim, dev(w), 1e-6f, yb);
        expect_half_close(host(yb, n), want, 1e-5f, "rms_norm, W output");
        float* d_residual2 = dev(x);
        W* yb2 = poisoned<W>(n);
        cuda::add_rms_norm(ctx(), d_residual2, dev(delta), rows, dim, dev(w), 1e-6f, yb2);
        expect_close(host(d_residual2, n), residual, 0.0f, 0.0f, "add_rms_norm residual, W output");
        expect_half_close(host(yb2, n), want_y, 1e-5f, "add_rms_norm, W output");
      }
  });
}

TEST_F(CudaDenseOps, VocabParallelEmbedding) {
  for_each_half([&]<HalfFloat W>() {
    const int hidden = 192, vocab_begin = 1000, vocab_rows = 500;
    const std::vector<W> table = normal_half<W>(static_cast<std::size_t>(vocab_rows) * hidden, 1.0f);
    const std::vector<int> ids = {1000, 1499, 999, 1500, 1234, 0, 1001, 77777};  // in, edge, out of the slice
    std::vector<float> want(ids.size() * hidden);
    cpu::embedding(ids.data(), ids.size(), table.data(), vocab_begin, vocab_rows, hidden, want.data());
    float* out = poisoned<float>(want.size());
    cuda::embedding(ctx(), dev(ids), ids.size(), dev(table), vocab_begin, vocab_rows, hidden, out);
    expect_close(host(out, want.size()), want, 0.0f, 0.0f, "embedding");
  });
}

TEST_F(CudaDenseOps, ArgmaxPicksTheLargestAndTheFirstOnTies) {
  const int vocab = 152064, rows = 6;
  std::vector<float> logits = normal(static_cast<std::size_t>(rows) * vocab);
  const std::vector<int> where = {0, vocab - 1, 77, 151000, 4096, 123};
  for (int r = 0; r < rows; ++r) logits[static_cast<std::size_t>(r) * vocab + where[r]] = 50.0f;
  logits[5 * static_cast<std::size_t>(vocab) + 9000] = 50.0f;  // a tie after 123: the first wins
  std::vector<int> want(rows);
  cpu::argmax(logits.data(), rows, vocab, want.data());
  int* ids = poisoned<int>(rows);
  cuda::argmax(ctx(), dev(logits), rows, vocab, ids);
  EXPECT_EQ(host(ids, rows), want);
  EXPECT_EQ(want, where);

  // One row at a time (batch-1 decode: the row cut over many blocks), row 5's tie between two of
  // them; then a row of -inf and NaN only (index 0, as the CPU's).
  const float* d_logits = dev(logits);
  for (int r = 0; r < rows; ++r) {
    int* one = poisoned<int>(1);
    cuda::argmax(ctx(), d_logits + static_cast<std::size_t>(r) * vocab, 1, vocab, one);
    EXPECT_EQ(host(one, 1)[0], where[r]) << "row " << r << " alone";
  }
  std::vector<float> empty_row(vocab, -INFINITY);
  empty_row[70000] = NAN;
  int want_empty = -1;
  cpu::argmax(empty_row.data(), 1, vocab, &want_empty);
  int* got_empty = poisoned<int>(1);
  cuda::argmax(ctx(), dev(empty_row), 1, vocab, got_empty);
  EXPECT_EQ(host(got_empty, 1)[0], want_empty);
  EXPECT_EQ(want_empty, 0);

  // A vocab-parallel slice: the first 150000 columns of rows 152064 apart, with the maxima.
  const int cols = 150000;
  std::vector<int> want_slice(rows);
  std::vector<float> want_values(rows);
  cpu::argmax(logits.data(), rows, cols, want_slice.data(), vocab, want_values.data());
  int* slice_ids = poisoned<int>(rows);
  float* values = poisoned<float>(rows);
  cuda::argmax(ctx(), dev(logits), rows, cols, slice_ids, vocab, values);
  EXPECT_EQ(host(slice_ids, rows), want_slice);
  expect_close(host(values, rows), want_values, 0.0f, 0.0f, "argmax values");
  EXPECT_EQ(want_slice[2], 77);
  EXPECT_NE(want_slice[3], 151000);  // past the slice
}

// The fused q|k|v rows of scattered tokens: bias or none, GQA and MHA, head_dim 64/128, the
// caches' other slots untouched.
TEST_F(CudaDenseOps, SplitQkvRopeCache) {
  for_each_half([&]<HalfFloat W>() {
    struct Shape { int q_heads, kv_heads, head_dim; bool bias; };
    for (const Shape s : {Shape{4, 2, 64, true}, Shape{28, 4, 128, true}, Shape{8, 8, 128, false}, Shape{2, 1, 16, false}}) {
      SCOPED_TRACE(::testing::Message() << "heads " << s.q_heads << "/" << s.kv_heads << " head_dim " << s.head_dim
                                        << (s.bias ? " bias" : ""));
      const int blocks = 8, block_size = 16, tokens = 9;
      const std::int64_t width = static_cast<std::int64_t>(s.q_heads + 2 * s.kv_heads) * s.head_dim;
      const std::size_t kv_row = static_cast<std::size_t>(s.kv_heads) * s.head_dim;
      const std::size_t cache = static_cast<std::size_t>(blocks) * block_size * kv_row;
      std::vector<float> inv_freq(s.head_dim / 2);
      for (int i = 0; i < s.head_dim / 2; ++i) inv_freq[i] = std::pow(1e6f, -2.0f * i / s.head_dim);
      const std::vector<int> positions = {0, 1, 2, 17, 100, 511, 1000, 4095, 3};
      std::vector<std::int64_t> all(blocks * block_size);
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng_);
      const std::vector<std::int64_t> slots(all.begin(), all.begin() + tokens);
      const std::vector<float> qkv = normal(tokens * width);
      const std::vector<W> bias = normal_half<W>(width, 1.0f);
      // Old contents stay where not written; the GPU cache is W, the reference's fp32.
      const std::vector<W> old_k = normal_half<W>(cache, 1.0f), old_v = normal_half<W>(cache, 1.0f);
      std::vector<float> k_cache = to_floats(old_k), v_cache = to_floats(old_v);
      W* dk = dev(old_k);
      W* dv = dev(old_v);
      float* q = poisoned<float>(static_cast<std::size_t>(tokens) * s.q_heads * s.head_dim);
      cuda::split_qkv_rope_cache<W>(ctx(), dev(qkv), tokens, s.q_heads, s.kv_heads, s.head_dim,
                                    s.bias ? dev(bias) : nullptr, dev(positions), dev(inv_freq), dev(slots), q, dk, dv);
      std::vector<float> want_q(static_cast<std::size_t>(tokens) * s.q_heads * s.head_dim);
      cpu::split_qkv_rope_cache<W>(qkv.data(), tokens, s.q_heads, s.kv_heads, s.head_dim, s.bias ? bias.data() : nullptr,
                                positions.data(), inv_freq.data(), slots.data(), want_q.data(), k_cache.data(),
                                v_cache.data());
      expect_close(host(q, want_q.size()), want_q, 2e-4f, 1e-4f, "q");
      expect_half_close(host(dk, cache), k_cache, 2e-4f, "k_cache");
      expect_half_close(host(dv, cache), v_cache, 0.0f, "v_cache");
      // An fp8 cache (--kv-cache-dtype): the reference rounds as it writes. k and v may land a step
      // of the format apart (2^-3 / 2^-2 relative) where q's sin and cos round a value across a
      // midpoint; v is added, not rotated: exact.
      for_each_fp8([&]<Fp8 C>(KvCacheDtype cache_dtype) {
        const std::vector<C> old_k8 = normal_fp8<C>(cache), old_v8 = normal_fp8<C>(cache);
        std::vector<float> k8_cache = to_floats(old_k8), v8_cache = to_floats(old_v8);
        C* dk8 = dev(old_k8);
        C* dv8 = dev(old_v8);
        cuda::split_qkv_rope_cache<W>(ctx(), dev(qkv), tokens, s.q_heads, s.kv_heads, s.head_dim,
                                      s.bias ? dev(bias) : nullptr, dev(positions), dev(inv_freq), dev(slots), q, dk8,
                                      dv8);
        cpu::split_qkv_rope_cache<W>(qkv.data(), tokens, s.q_heads, s.kv_heads, s.head_dim,
                                     s.bias ? bias.data() : nullptr, positions.data(), inv_freq.data(), slots.data(),
                                     want_q.data(), k8_cache.data(), v8_cache.data(), cache_dtype);
        const float step = std::same_as<C, fp8_e4m3> ? 1.0f / 8 : 1.0f / 4;
        expect_close(to_floats(host(dk8, cache)), k8_cache, 1e-5f, step, "fp8 k_cache");
        expect_close(to_floats(host(dv8, cache)), v8_cache, 0.0f, 0.0f, "fp8 v_cache");
      });
    }
  });
}

TEST_F(CudaDenseOps, SiluMulOfFusedGateUp) {
  for_each_half([&]<HalfFloat W>() {
    // ffn not a multiple of a 16-byte piece (4 fp32, 8 bf16 / fp16) takes the scalar path (1003,
    // and 1004 for 16-bit input); 1004 ends a row inside an fp32 thread's 8 columns; 70000 rows
    // stride past the grid's 65535.
    for (const auto [rows, ffn] : {std::pair{1, 1}, std::pair{3, 1000}, std::pair{7, 1004}, std::pair{32, 9472},
                                   std::pair{5, 1003}, std::pair{70000, 3}}) {
      SCOPED_TRACE(::testing::Message() << "rows " << rows << " ffn " << ffn);
      const std::size_t n = static_cast<std::size_t>(rows) * ffn;
      const std::vector<float> gate_up = normal(2 * n, 4.0f);
      std::vector<float> want(n);
      cpu::silu_mul(gate_up.data(), rows, ffn, want.data());
      float* out = poisoned<float>(n);
      cuda::silu_mul(ctx(), dev(gate_up), rows, ffn, out);
      expect_close(host(out, n), want, 1e-6f, 1e-5f, "silu_mul");
      W* out_half = poisoned<W>(n);
      cuda::silu_mul(ctx(), dev(gate_up), rows, ffn, out_half);
      expect_half_close(host(out_half, n), want, 1e-6f, "silu_mul, W output");
      // gate|up in W (linear_silu_mul's GEMM writes it so): the same on W's values.
      const std::vector<W> gate_up_half = to_half<W>(gate_up);
      std::vector<float> want_from_half(n);
      cpu::silu_mul(to_floats(gate_up_half).data(), rows, ffn, want_from_half.data());
      W* out_from_half = poisoned<W>(n);
      cuda::silu_mul(ctx(), dev(gate_up_half), rows, ffn, out_from_half);
      expect_half_close(host(out_from_half, n), want_from_half, 1e-6f, "silu_mul, W input and output");
    }
  });
}

// Qwen3's q/k head norms in place on a fused q|k|v row: head_dim under a warp (8), a warp's
// multiple (32, 128: R1-0528-Qwen3-8B's) and the largest (256, 8 values a lane); v untouched.
TEST_F(CudaDenseOps, HeadRmsNormAsTheCpuReference) {
  for_each_half([&]<HalfFloat W>() {
    struct Shape { int tokens, q_heads, kv_heads, head_dim; };
    cuda::head_rms_norm<W>(ctx(), nullptr, 0, 4, 2, 32, nullptr, nullptr, 1e-6f);  // no tokens: no-op
    ctx().synchronize();
    for (const Shape s : {Shape{3, 4, 2, 32}, Shape{1, 32, 8, 128}, Shape{5, 2, 1, 256}, Shape{2, 3, 1, 8},
                          Shape{17, 8, 8, 128}}) {
      SCOPED_TRACE(::testing::Message() << "tokens " << s.tokens << " heads " << s.q_heads << "/" << s.kv_heads
                                        << " head_dim " << s.head_dim);
      std::vector<float> qkv = normal(static_cast<std::size_t>(s.tokens) * (s.q_heads + 2 * s.kv_heads) * s.head_dim, 3.0f);
      const std::vector<W> qw = normal_half<W>(s.head_dim, 1.0f), kw = normal_half<W>(s.head_dim, 1.0f);
      float* d = dev(qkv);
      cuda::head_rms_norm(ctx(), d, s.tokens, s.q_heads, s.kv_heads, s.head_dim, dev(qw), dev(kw), 1e-6f);
      cpu::head_rms_norm(qkv.data(), s.tokens, s.q_heads, s.kv_heads, s.head_dim, qw.data(), kw.data(), 1e-6f);
      expect_close(host(d, qkv.size()), qkv, 1e-5f, 1e-5f, "head_rms_norm");
    }
  });
}

// The fused gate|up linear + silu_mul, gate and up rounded to W on either path: decode-sized
// steps (one GEMV writing silu(gate) * up) give exactly what linear, rounding to W and silu_mul
// give (the same sums in the same order, then the same roundings); the others (a GEMM writing
// gate|up in W, then silu_mul) are silu_mul of W's gate|up in the scratch, and that is the CPU
// reference's gate|up rounded to W. Every shape is close to the CPU reference.
TEST_F(CudaDenseOps, LinearSiluMulIsLinearThenSiluMul) {
  for_each_half([&]<HalfFloat W>() {
    cuda::linear_silu_mul<W>(ctx(), nullptr, 0, 96, nullptr, 200, nullptr, nullptr);  // no rows: no-op
    ctx().synchronize();
    struct Shape { int rows, in, ffn; bool gemv; };
    // 1-2 rows take the GEMV (96: part of a lane's early loads empty; 3584 x 18944: the 7B
    // model's; 4104: a lane's tail), 3 and 7 rows cuBLAS + silu_mul, 100 a GEMV-less fallback.
    for (const Shape s : {Shape{1, 96, 200, true}, Shape{2, 96, 13, true}, Shape{1, 3584, 18944, true},
                          Shape{2, 4104, 300, true}, Shape{3, 3584, 512, false}, Shape{7, 256, 130, false},
                          Shape{2, 100, 50, false}}) {
      SCOPED_TRACE(::testing::Message() << "rows " << s.rows << " in " << s.in << " ffn " << s.ffn);
      const std::size_t n = static_cast<std::size_t>(s.rows) * s.ffn;
      const std::vector<W> x = normal_half<W>(static_cast<std::size_t>(s.rows) * s.in, 1.0f);
      const std::vector<W> w = normal_half<W>(2 * static_cast<std::size_t>(s.ffn) * s.in, 2.0f / std::sqrt(s.in));
      W* fused = poisoned<W>(n);
      W* scratch = poisoned<W>(2 * n);
      cuda::linear_silu_mul(ctx(), dev(x), s.rows, s.in, dev(w), s.ffn, scratch, fused);
      const std::vector<W> got = host(fused, n);
      std::vector<float> xf = to_floats(x), want_gate_up(2 * n), want(n);
      cpu::linear(xf.data(), s.rows, s.in, w.data(), 2 * s.ffn, nullptr, want_gate_up.data());
      const float tol = 4e-4f * std::sqrt(static_cast<float>(s.in));
      for (float& v : want_gate_up) v = to_float(from_float<W>(v));  // as either path rounds it
      if (s.gemv) {
        float* gate_up = poisoned<float>(2 * n);
        W* apart = poisoned<W>(n);
        cuda::linear(ctx(), dev(x), s.rows, s.in, dev(w), 2 * s.ffn, nullptr, gate_up);
        cuda::silu_mul(ctx(), dev(to_half<W>(host(gate_up, 2 * n))), s.rows, s.ffn, apart);
        const std::vector<W> separate = host(apart, n);
        int reported = 0;
        for (std::size_t i = 0; i < n; ++i)
          if (std::memcmp(&got[i], &separate[i], sizeof(W)) != 0 && reported++ < 5)
            ADD_FAILURE() << "[" << i << "]: fused " << to_float(got[i]) << ", linear + silu_mul "
                          << to_float(separate[i]);
      } else {
        const std::vector<float> gate_up = to_floats(host(scratch, 2 * n));
        expect_close(gate_up, want_gate_up, tol, std::same_as<W, bf16> ? 1.0f / 128 : 1.0f / 1024, "gate|up in W");
        std::vector<float> from_scratch(n);
        cpu::silu_mul(gate_up.data(), s.rows, s.ffn, from_scratch.data());
        expect_half_close(got, from_scratch, 1e-6f, "silu_mul of the GEMM's gate|up");
      }
      cpu::silu_mul(want_gate_up.data(), s.rows, s.ffn, want.data());
      expect_half_close(got, want, tol, "linear_silu_mul");
    }
  });
}

// Decode (one token per sequence) and causal prefill chunks over shuffled blocks of a cache of C,
// on each of `kernels`: heads / kv_heads query heads per KV head. The reference reads the same
// values as fp32. Tensor cores take q and the probabilities as high + low parts in the cache's
// 16-bit type (fp16 for an fp8 cache), so they are held to a tolerance near fp32 (bf16 rounding
// alone is 2^-9 relative a value).
template <KvCacheElement C>
void CudaDenseOps::attention_cases(int heads, int kv_heads, int head_dim,
                                   std::initializer_list<cuda::AttentionKernel> kernels) {
  SCOPED_TRACE(::testing::Message() << "heads " << heads << "/" << kv_heads << " head_dim " << head_dim);
  const int block_size = 16, max_blocks = 24, seqs = 3, blocks = seqs * max_blocks;
  const std::size_t row = static_cast<std::size_t>(kv_heads) * head_dim, cache = std::size_t{1} * blocks * block_size * row;
  std::vector<C> k_c, v_c;
  if constexpr (Fp8<C>) k_c = normal_fp8<C>(cache), v_c = normal_fp8<C>(cache);
  else k_c = normal_half<C>(cache, 1.0f), v_c = normal_half<C>(cache, 1.0f);
  const std::vector<float> k_cache = to_floats(k_c), v_cache = to_floats(v_c);
  std::vector<int> tables(blocks);
  std::iota(tables.begin(), tables.end(), 0);
  std::shuffle(tables.begin(), tables.end(), rng_);
  // Decode: sequences at positions 0, 17 and 300; then prefill chunks of sequence 1 (12 tokens)
  // and sequence 2 (40 tokens, its context over 3 tiles of 64 positions).
  std::vector<int> seq_of = {0, 1, 2}, pos = {0, 17, 300};
  for (int p = 40; p < 52; ++p) seq_of.push_back(1), pos.push_back(p);
  for (int p = 100; p < 140; ++p) seq_of.push_back(2), pos.push_back(p);
  const int tokens = static_cast<int>(pos.size()), decode_tokens = 3, longest_run = 40;
  const std::vector<float> q = normal(static_cast<std::size_t>(tokens) * heads * head_dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> want(q.size());
  cpu::paged_attention(q.data(), k_cache.data(), v_cache.data(), tokens, heads, kv_heads, head_dim, block_size,
                       seq_of.data(), pos.data(), tables.data(), max_blocks, scale, want.data());
  const std::size_t decode_size = static_cast<std::size_t>(decode_tokens) * heads * head_dim;
  const std::vector<float> want_decode(want.begin(), want.begin() + decode_size);
  const std::vector<int> short_pos = {0, 17, 31};
  std::vector<float> want3(decode_size);
  cpu::paged_attention(q.data(), k_cache.data(), v_cache.data(), decode_tokens, heads, kv_heads, head_dim, block_size,
                       seq_of.data(), short_pos.data(), tables.data(), max_blocks, scale, want3.data());
  const C* dk = dev(k_c);
  const C* dv = dev(v_c);
  for (const cuda::AttentionKernel kernel : kernels) {
    const bool tensor = kernel == cuda::AttentionKernel::TensorCores || Fp8<C>;  // fp8: tensor cores always
    const bool cores = kernel == cuda::AttentionKernel::CudaCores;
    SCOPED_TRACE(kernel == cuda::AttentionKernel::TensorCores ? "tensor cores"
                 : cores                                       ? "CUDA cores"
                                                               : "flash-decoding");
    // Flash-decoding takes the decode tokens alone at 301 positions (and falls back elsewhere).
    if (kernel == cuda::AttentionKernel::FlashDecoding &&
        (head_dim == 64 || head_dim == 128 || head_dim == 256))
      EXPECT_GT(cuda::flash_decoding_splits(ctx(), decode_tokens, heads, kv_heads, head_dim, 301, 0), 0);
    const float abs_tol = tensor ? 5e-5f : 2e-5f, rel_tol = tensor ? 2e-4f : 1e-4f;
    // max_context 0: the tables' 384 positions; 301: the exact bound of the decode tokens (the
    // prefill's are below it); 4096: as many decode splits as fit the GPU (its SM count decides),
    // the short contexts' later ones empty. query_run 1: a block per token, the prefill tokens
    // too; 40: the prefill runs' tokens share blocks (and are not split).
    for (const std::int64_t max_context : {0, 301, 4096})
      for (const std::int64_t query_run : {1, longest_run}) {
        SCOPED_TRACE(::testing::Message() << "max_context " << max_context << " query_run " << query_run);
        float* out = poisoned<float>(q.size());
        cuda::paged_attention(ctx(), dev(q), dk, dv, tokens, heads, kv_heads, head_dim, block_size, dev(seq_of),
                              dev(pos), dev(tables), max_blocks, scale, out, max_context, query_run, kernel);
        expect_close(host(out, q.size()), want, abs_tol, rel_tol, "paged_attention");
        // The decode tokens alone: few blocks, so their contexts are split.
        float* out_decode = poisoned<float>(decode_size);
        cuda::paged_attention(ctx(), dev(q), dk, dv, decode_tokens, heads, kv_heads, head_dim, block_size, dev(seq_of),
                              dev(pos), dev(tables), max_blocks, scale, out_decode, max_context, 1, kernel);
        expect_close(host(out_decode, decode_size), want_decode, abs_tol, rel_tol, "paged_attention, decode");
      }
    // Contexts of at most 64 positions take the single-split path.
    float* out3 = poisoned<float>(decode_size);
    cuda::paged_attention(ctx(), dev(q), dk, dv, decode_tokens, heads, kv_heads, head_dim, block_size, dev(seq_of),
                          dev(short_pos), dev(tables), max_blocks, scale, out3, 32, 1, kernel);
    expect_close(host(out3, decode_size), want3, abs_tol, rel_tol, "paged_attention, one split");
    // Splits asked for (kernel_bench's sweep): none, an uneven 5, and 64 (most of them empty at
    // these contexts).
    for (const int splits : {1, 5, 64}) {
      SCOPED_TRACE(::testing::Message() << "splits " << splits);
      float* out_split = poisoned<float>(decode_size);
      cuda::paged_attention(ctx(), dev(q), dk, dv, decode_tokens, heads, kv_heads, head_dim, block_size, dev(seq_of),
                            dev(pos), dev(tables), max_blocks, scale, out_split, 301, 1, kernel, splits);
      expect_close(host(out_split, decode_size), want_decode, abs_tol, rel_tol, "paged_attention, splits asked");
    }
  }
}

// The three kernels over a bf16 and an fp16 cache: CUDA cores (any head_dim), tensor cores
// (head_dim a multiple of 8 up to 128; the others fall back) and flash-decoding (decode steps it
// can split in one wave of blocks, head_dim 64, 128 or 256; the others fall back). Query heads per
// KV head 1 to 20 (more than one block's group of 8 or 16; tensor-core decode blocks fold q's low
// parts into padding rows up to 8 heads: 8/2 .. 16/2 folded, 20/1 not); head_dim 8 to 256 (64 and
// 128 run the tensor-core kernels built for that width, the others the ones taking any).
TEST_F(CudaDenseOps, PagedAttentionDecodeAndPrefill) {
  for_each_half([&]<HalfFloat W>() {
    struct Shape { int heads, kv_heads, head_dim; };
    for (const Shape s : {Shape{8, 2, 64}, Shape{4, 4, 128}, Shape{28, 4, 128}, Shape{2, 1, 256}, Shape{4, 2, 16},
                          Shape{6, 3, 80}, Shape{20, 1, 128}, Shape{12, 2, 192}, Shape{4, 2, 8}, Shape{3, 3, 36},
                          Shape{16, 2, 72}})
      attention_cases<W>(s.heads, s.kv_heads, s.head_dim,
                         {cuda::AttentionKernel::CudaCores, cuda::AttentionKernel::TensorCores,
                          cuda::AttentionKernel::FlashDecoding});
  });
}

// An fp8 cache (--kv-cache-dtype fp8): flash-decoding where it takes the step (head_dim 64 and
// 128), the tensor-core kernel otherwise and when CUDA cores are asked for; folded and not,
// head_dim a multiple of 16 up to 128 (128 built in, the others at run time), with an odd number
// of 16-dim steps (48, 80) too; a head_dim it cannot take is refused by fp8_kv_cache_supported.
TEST_F(CudaDenseOps, PagedAttentionOverAnFp8Cache) {
  for_each_fp8([&]<Fp8 C>(KvCacheDtype) {
    struct Shape { int heads, kv_heads, head_dim; };
    for (const Shape s : {Shape{8, 2, 64}, Shape{4, 4, 128}, Shape{28, 4, 128}, Shape{4, 2, 16}, Shape{20, 1, 128},
                          Shape{16, 2, 48}, Shape{6, 3, 80}, Shape{12, 4, 96}})
      attention_cases<C>(s.heads, s.kv_heads, s.head_dim,
                         {cuda::AttentionKernel::Auto, cuda::AttentionKernel::CudaCores,
                          cuda::AttentionKernel::FlashDecoding});
  });
  EXPECT_TRUE(cuda::fp8_kv_cache_supported(ctx(), 128));
  EXPECT_FALSE(cuda::fp8_kv_cache_supported(ctx(), 72));
  EXPECT_FALSE(cuda::fp8_kv_cache_supported(ctx(), 256));
}

// Sampling on the GPU against the CPU statement of its rule (kernels/sampling.h), token for
// token: greedy, the unfiltered draw, each filter and their mixes, ties, a masked (-inf) token,
// flat to peaked rows, vocabularies up to 152064; and the TP layout, the rows' vocabulary cut in
// 2 slices gathered one after the other, the last padded with values that would win if read.
TEST_F(CudaDenseOps, SampleRowsAsTheCpuRule) {
  struct Filter { float t; int top_k; float top_p, min_p; };
  const Filter filters[] = {{0.0f, -1, 1.0f, 0.0f}, {1.0f, -1, 1.0f, 0.0f}, {0.6f, -1, 0.95f, 0.0f},
                            {0.6f, 50, 1.0f, 0.0f}, {1.3f, -1, 1.0f, 0.05f}, {0.8f, 20, 0.8f, 0.0f},
                            {0.7f, 3000, 0.99f, 0.2f}, {1.0f, 1, 1.0f, 0.0f}, {1.0f, -1, 0.001f, 0.0f},
                            {1.0f, -1, 1.0f, 2.0f}, {0.6f, 100000, 0.5f, 0.0f}};
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (const int vocab : {7, 5000, 152064}) {
    SCOPED_TRACE(::testing::Message() << "vocab " << vocab);
    std::vector<float> logits;
    std::vector<RowSampling> params;
    for (const float spread : {0.5f, 3.0f, 12.0f})
      for (const Filter& f : filters)
        for (int draw = 0; draw < 2; ++draw) {
          std::vector<float> row = normal(vocab, spread);
          for (int i = 0; i < std::min(vocab, 40); i += 2) row[i] = row[0];  // ties
          row[vocab / 2] = -INFINITY;
          logits.insert(logits.end(), row.begin(), row.end());
          params.push_back({f.t, f.top_k, f.top_p, f.min_p, draw == 0 ? uniform(rng_) : 0.999999});
        }
    const int all_rows = static_cast<int>(params.size());
    std::vector<int> want(all_rows);
    cpu::sample_rows(logits.data(), all_rows, vocab, params.data(), want.data());
    // A row over 1, 2, 4 or 8 blocks (a thread-block cluster; 0: chosen by the row count, 8 for
    // one row), and the TP layout of two vocabulary slices with padding. The rows are the first
    // `rows` of the set, so the one-row launches take each filter in turn over the calls.
    for (const int rows : {1, 5, all_rows})
      for (const int cluster : {0, 1, 2, 8})
        for (const int slices : {1, 2}) {
          SCOPED_TRACE(::testing::Message() << rows << " rows, cluster " << cluster << ", " << slices << " slices");
          const int width = slices == 1 ? vocab : (vocab + 1) / 2 + 3;
          std::vector<float> gathered(static_cast<std::size_t>(slices) * rows * width, 1e30f);
          for (int s = 0; s < slices; ++s)
            for (int r = 0; r < rows; ++r)
              for (int j = 0; j < width && s * width + j < vocab; ++j)
                gathered[(static_cast<std::size_t>(s) * rows + r) * width + j] =
                    logits[static_cast<std::size_t>(r) * vocab + s * width + j];
          int* ids = poisoned<int>(rows);
          cuda::sample_rows(ctx(), dev(gathered), rows, vocab, slices, width, dev(params), ids, cluster);
          EXPECT_EQ(host(ids, rows), std::vector<int>(want.begin(), want.begin() + rows));
        }
    for (int first = 0; first < all_rows; first += 3) {  // single rows of every filter, 8 blocks each
      SCOPED_TRACE(::testing::Message() << "row " << first << " alone");
      int* ids = poisoned<int>(1);
      cuda::sample_rows(ctx(), dev(std::vector<float>(logits.begin() + static_cast<std::ptrdiff_t>(first) * vocab,
                                                      logits.begin() + static_cast<std::ptrdiff_t>(first + 1) * vocab)),
                        1, vocab, 1, vocab, dev(std::vector<RowSampling>{params[first]}), ids, 8);
      EXPECT_EQ(host(ids, 1)[0], want[first]);
    }
  }
}

}  // namespace
}  // namespace lockstep
