// The GPU's block-fp8 weights (kernels/fp8_weights.h) on fresh random codes and scales, outputs
// poisoned first: dequantize_fp8_blocks against cpu::dequantize_fp8_blocks rounded to W (exactly),
// and the experts' fp8 grouped GEMVs (kernels/cuda/gemv.h) against a host loop over the
// dequantized weights. Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cuda/gemv.h"
#include "kernels/dense_ops.h"
#include "kernels/fp8_weights.h"
#include "tests/kernels/cuda_ops_fixture.h"

namespace lockstep {
namespace {

class CudaFp8Weights : public CudaOpsTest {
 protected:
  // Random finite e4m3 codes (0x7F and 0xFF are e4m3fn's NaNs), magnitudes up to 448.
  std::vector<fp8_e4m3> codes(std::size_t n) {
    std::vector<fp8_e4m3> v(n);
    for (fp8_e4m3& c : v) {
      do c.bits = static_cast<std::uint8_t>(rng_() & 0xFF);
      while ((c.bits & 0x7F) == 0x7F);
    }
    return v;
  }
  // Positive scales around `typical`, as DeepSeek's weight_scale_inv (max |w| of a block / 448).
  std::vector<float> scales(std::size_t n, float typical) {
    std::vector<float> v = normal(n, 0.3f);
    for (float& s : v) s = typical * std::exp(s);
    return v;
  }
};

TEST_F(CudaFp8Weights, DequantizeMatchesTheReferenceExactly) {
  for_each_half([&]<HalfFloat W>() {
    struct Shape { int rows, cols, block_rows, block_cols; };
    // 128 x 128 blocks (DeepSeek's), partial blocks at both edges, and blocks narrower than 4.
    for (const Shape sh : {Shape{256, 384, 128, 128}, Shape{40, 52, 16, 32}, Shape{7, 12, 3, 2}}) {
      SCOPED_TRACE(std::to_string(sh.rows) + " x " + std::to_string(sh.cols));
      const int scale_rows = (sh.rows + sh.block_rows - 1) / sh.block_rows;
      const int scale_cols = (sh.cols + sh.block_cols - 1) / sh.block_cols;
      const std::vector<fp8_e4m3> w = codes(static_cast<std::size_t>(sh.rows) * sh.cols);
      const std::vector<float> s = scales(static_cast<std::size_t>(scale_rows) * scale_cols, 1e-3f);
      W* out = poisoned<W>(w.size());
      cuda::dequantize_fp8_blocks(ctx(), dev(w), dev(s), sh.rows, sh.cols, sh.block_rows, sh.block_cols, out);
      const std::vector<W> got = host(out, w.size());
      std::vector<float> want(w.size());
      cpu::dequantize_fp8_blocks(w.data(), s.data(), sh.rows, sh.cols, sh.block_rows, sh.block_cols, want.data());
      for (std::size_t i = 0; i < w.size(); ++i)
        ASSERT_EQ(to_float(got[i]), to_float(from_float<W>(want[i]))) << i;
    }
  });
}

// As GroupedGemvRunsEachExpertOverItsRows (cuda_moe_experts_test), on fp8 weights: experts with
// no rows, one, and more than a pass of 8; slots past the active count; x in place and picked by
// index. Blocks of 16 x 32: a 16-byte load's codes share a scale, a row crosses several blocks.
TEST_F(CudaFp8Weights, GroupedGemvRunsEachExpertOverItsRows) {
  for_each_half([&]<HalfFloat W>() {
    const int experts = 6, in = 96, out = 48, ffn = 32, tokens = 9, block_rows = 16, block_cols = 32;
    const std::vector<int> rows_of = {0, 1, 3, 11, 0, 2};
    const GroupedRows g = grouped_rows(rows_of, tokens);
    const std::vector<int>& offsets = g.offsets;
    const std::vector<int>& x_rows = g.x_rows;
    const int rows = g.rows, scale_cols = in / block_cols;
    const std::vector<W> x = normal_half<W>(static_cast<std::size_t>(rows) * in, 1.0f);
    const std::vector<W> token_x = normal_half<W>(static_cast<std::size_t>(tokens) * in, 1.0f);
    const float typical = 2.0f / std::sqrt(static_cast<float>(in)) / 100.0f;  // codes' magnitudes ~100
    const std::vector<fp8_e4m3> w = codes(static_cast<std::size_t>(experts) * out * in);
    const std::vector<fp8_e4m3> w_glu = codes(static_cast<std::size_t>(experts) * 2 * ffn * in);
    const std::vector<float> s = scales(static_cast<std::size_t>(experts) * out / block_rows * scale_cols, typical);
    const std::vector<float> s_glu = scales(static_cast<std::size_t>(experts) * 2 * ffn / block_rows * scale_cols, typical);
    float* y = poisoned<float>(static_cast<std::size_t>(rows) * out);
    W* act = poisoned<W>(static_cast<std::size_t>(rows) * ffn);
    const cuda::ExpertRows& grouped = g.on_device;
    cuda::grouped_gemv_fp8(ctx(), dev(x), static_cast<const int*>(nullptr), rows, in, dev(w), dev(s), block_rows,
                           block_cols, out, grouped, y);
    cuda::grouped_gemv_silu_mul_fp8(ctx(), dev(token_x), dev(x_rows), rows, in, dev(w_glu), dev(s_glu), block_rows,
                                    block_cols, ffn, grouped, act);
    const std::vector<float> got = host(y, static_cast<std::size_t>(rows) * out);
    const std::vector<W> got_act = host(act, static_cast<std::size_t>(rows) * ffn);

    // The reference: the experts' weights dequantized (stacked, so one call each), then x . w^T.
    std::vector<float> wf(w.size()), wf_glu(w_glu.size());
    cpu::dequantize_fp8_blocks(w.data(), s.data(), experts * out, in, block_rows, block_cols, wf.data());
    cpu::dequantize_fp8_blocks(w_glu.data(), s_glu.data(), experts * 2 * ffn, in, block_rows, block_cols,
                               wf_glu.data());
    const std::vector<float> xf = to_floats(x), token_xf = to_floats(token_x);
    auto dot = [&](const float* a, const float* b) {
      double sum = 0;
      for (int k = 0; k < in; ++k) sum += static_cast<double>(a[k]) * b[k];
      return static_cast<float>(sum);
    };
    std::vector<float> want(got.size()), want_gate_up(static_cast<std::size_t>(rows) * 2 * ffn), want_act(got_act.size());
    for (int e = 0; e < experts; ++e)
      for (int r = offsets[e]; r < offsets[e + 1]; ++r) {
        for (int o = 0; o < out; ++o)
          want[static_cast<std::size_t>(r) * out + o] = dot(&xf[static_cast<std::size_t>(r) * in], &wf[(static_cast<std::size_t>(e) * out + o) * in]);
        for (int o = 0; o < 2 * ffn; ++o)  // gate and up rounded to W, as the kernel does
          want_gate_up[static_cast<std::size_t>(r) * 2 * ffn + o] = to_float(from_float<W>(
              dot(&token_xf[static_cast<std::size_t>(x_rows[r]) * in], &wf_glu[(static_cast<std::size_t>(e) * 2 * ffn + o) * in])));
      }
    cpu::silu_mul(want_gate_up.data(), rows, ffn, want_act.data());
    const float tol = 4e-4f * std::sqrt(static_cast<float>(in));
    expect_close(got, want, tol, 1e-5f, "grouped_gemv_fp8");
    expect_half_close(got_act, want_act, tol, "grouped_gemv_silu_mul_fp8");
    cuda::grouped_gemv_fp8(ctx(), dev(x), static_cast<const int*>(nullptr), 0, in, dev(w), dev(s), block_rows,
                           block_cols, out, grouped, y);  // no rows: no-op
    ctx().synchronize();
  });
}

}  // namespace
}  // namespace lockstep
