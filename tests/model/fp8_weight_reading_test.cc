// Block-fp8 weights read as stored, for a GPU that keeps DeepSeek's routed experts in fp8
// (model/weight_source.h's fp8_blocks and read_fp8_into, model/fp8_weight_slices.h): through
// safetensors, model.h5 and dummy weights, every code is the one whose dequantized value the
// ordinary read returns; the slices that can stay fp8 and their stacked scales; the errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/fp8.h"
#include "model/fp8_weight_slices.h"
#include "model/hdf5_checkpoint.h"
#include "model/model_config.h"
#include "model/safetensors_reader.h"
#include "model/weight_source.h"

namespace lockstep {
namespace {

const std::string kFixtures = LOCKSTEP_FIXTURES_DIR;
const std::string kExpert = "model.layers.1.mlp.experts.3.gate_proj.weight";  // [16, 64], 16 x 16 blocks

// The codes of rows [r0, r1) x columns [c0, c1) of `name`, dequantized with the scales the
// source gives, equal its ordinary fp32 read (which dequantizes as it reads); rows past the
// tensor's end are zero codes.
void expect_codes_match_values(const WeightSource& w, const std::string& name, const std::vector<std::int64_t>& shape,
                               std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
  const Fp8Blocks b = w.fp8_blocks(name);
  ASSERT_TRUE(b.stored()) << name;
  const std::int64_t width = c1 - c0;
  std::vector<std::uint8_t> codes(static_cast<std::size_t>((r1 - r0) * width), 0xAB);
  w.read_fp8_into(name, shape, r0, r1, c0, c1, codes.data());
  const std::vector<float> values = w.read<float>(name, shape, r0, r1, c0, c1);
  const std::vector<std::int64_t> scale_shape = fp8_scale_shape(shape[0], shape[1], b.rows, b.cols);
  const std::vector<float> scales = w.read_all<float>(fp8_scale_name(name), scale_shape);
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t c = c0; c < c1; ++c) {
      const std::size_t i = static_cast<std::size_t>((r - r0) * width + (c - c0));
      if (r >= shape[0]) {
        EXPECT_EQ(codes[i], 0) << "padding row " << r;
        continue;
      }
      EXPECT_NE(codes[i] & 0x7F, 0x7F) << "a NaN code at " << r << ", " << c;
      const float scale = scales[static_cast<std::size_t>((r / b.rows) * scale_shape[1] + c / b.cols)];
      EXPECT_EQ(to_float(fp8_e4m3{codes[i]}) * scale, values[i]) << name << " at " << r << ", " << c;
    }
}

TEST(Fp8WeightReading, SafetensorsCodesAreTheStoredOnes) {
  const SafetensorsCheckpoint ckpt(kFixtures + "/deepseek-v3-fp8-tiny");
  const ModelConfig c = ModelConfig::from_dir(kFixtures + "/deepseek-v3-fp8-tiny");
  ASSERT_TRUE(c.fp8_weights);
  const CheckpointWeights w(ckpt, c.fp8_block_rows, c.fp8_block_cols);
  EXPECT_EQ(w.fp8_blocks(kExpert).rows, 16);
  EXPECT_EQ(w.fp8_blocks(kExpert).cols, 16);
  expect_codes_match_values(w, kExpert, {16, 64}, 0, 16, 0, 64);
  expect_codes_match_values(w, kExpert, {16, 64}, 5, 20, 16, 48);  // a window, 4 padding rows
  // Not stored as fp8: norms, the router, an fp8 tensor's own scales; no such tensor.
  EXPECT_FALSE(w.fp8_blocks("model.layers.1.input_layernorm.weight").stored());
  EXPECT_FALSE(w.fp8_blocks(fp8_scale_name(kExpert)).stored());
  EXPECT_FALSE(w.fp8_blocks("model.layers.9.mlp.experts.0.gate_proj.weight").stored());
  std::vector<std::uint8_t> out(64);
  try {
    w.read_fp8_into("model.layers.1.input_layernorm.weight", {64}, 0, 64, 0, 1, out.data());
    FAIL() << "a bf16 tensor read as fp8 codes";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.input_layernorm.weight is stored as BF16"), std::string::npos)
        << e.what();
  }
}

TEST(Fp8WeightReading, Hdf5CodesAreTheSafetensorsOnes) {
  const std::string dir = ::testing::TempDir() + "/fp8_weight_reading_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const SafetensorsCheckpoint ckpt(kFixtures + "/deepseek-v3-fp8-tiny");
  write_hdf5_checkpoint(ckpt, dir + "/model.h5");
  const Hdf5Weights h5(dir + "/model.h5", 16, 16);
  const CheckpointWeights st(ckpt, 16, 16);
  EXPECT_EQ(h5.fp8_blocks(kExpert).rows, 16);
  expect_codes_match_values(h5, kExpert, {16, 64}, 3, 19, 32, 64);
  std::vector<std::uint8_t> a(16 * 64), b(16 * 64);
  h5.read_fp8_into(kExpert, {16, 64}, 0, 16, 0, 64, a.data());
  st.read_fp8_into(kExpert, {16, 64}, 0, 16, 0, 64, b.data());
  EXPECT_EQ(a, b);
  EXPECT_FALSE(h5.fp8_blocks("model.layers.1.input_layernorm.weight").stored());
  EXPECT_THROW(h5.read_fp8_into("model.layers.1.input_layernorm.weight", {64}, 0, 64, 0, 1, a.data()), CheckpointError);
  std::filesystem::remove_all(dir);
}

TEST(Fp8WeightReading, DummyExpertsAreFp8WhenTheConfigSaysSo) {
  const DummyWeights w(/*seed=*/4, /*scale=*/0.02f, Fp8Blocks{16, 32});
  const std::string expert = "model.layers.2.mlp.experts.7.down_proj.weight";
  EXPECT_EQ(w.fp8_blocks(expert).rows, 16);
  EXPECT_EQ(w.fp8_blocks(expert).cols, 32);
  EXPECT_FALSE(w.fp8_blocks("model.layers.2.mlp.shared_experts.down_proj.weight").stored());
  EXPECT_FALSE(w.fp8_blocks("model.layers.2.mlp.gate.weight").stored());
  EXPECT_FALSE(w.fp8_blocks(fp8_scale_name(expert)).stored());
  EXPECT_FALSE(DummyWeights(4).fp8_blocks(expert).stored());  // a bf16 config
  expect_codes_match_values(w, expert, {64, 96}, 0, 64, 0, 96);
  expect_codes_match_values(w, expert, {64, 96}, 48, 70, 32, 96);
  // The same codes however the tensor is sliced (every rank computes the same tensor), and of
  // every sign and magnitude but the NaN's, spread over the 254 finite codes.
  std::vector<std::uint8_t> all(64 * 96), part(16 * 32);
  w.read_fp8_into(expert, {64, 96}, 0, 64, 0, 96, all.data());
  w.read_fp8_into(expert, {64, 96}, 16, 32, 64, 96, part.data());
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 32; ++c) EXPECT_EQ(part[r * 32 + c], all[(16 + r) * 96 + 64 + c]);
  std::vector<int> seen(256);
  for (std::uint8_t v : all) ++seen[v];
  int distinct = 0;
  for (int v = 0; v < 256; ++v) distinct += seen[v] > 0;
  EXPECT_GT(distinct, 200);
  EXPECT_EQ(seen[0x7F] + seen[0xFF], 0);
  EXPECT_EQ(w.read_all<float>(fp8_scale_name(expert), {4, 3})[0], 0.02f / 448.0f);
  std::vector<std::uint8_t> out(4);
  EXPECT_THROW(w.read_fp8_into("model.norm.weight", {4}, 0, 4, 0, 1, out.data()), CheckpointError);
}

// Which stacks stay fp8: every slice stored so with the same blocks, cut on block boundaries.
TEST(Fp8WeightReading, StackedSlicesStayFp8OnlyOnBlockBoundaries) {
  const DummyWeights w(/*seed=*/1, /*scale=*/0.02f, Fp8Blocks{16, 32});
  const std::string g = "model.layers.1.mlp.experts.0.gate_proj.weight", u = "model.layers.1.mlp.experts.0.up_proj.weight";
  const std::string d = "model.layers.1.mlp.experts.0.down_proj.weight";
  auto blocks = [&](const StackedSlices& s) { return fp8_stacked_blocks(w, s).rows; };
  EXPECT_EQ(blocks({{g, {64, 96}, 0, 64, 0, 96}, {u, {64, 96}, 0, 64, 0, 96}}), 16);    // whole tensors
  EXPECT_EQ(blocks({{g, {64, 96}, 16, 48, 0, 96}, {u, {64, 96}, 16, 48, 0, 96}}), 16);  // TP rows on blocks
  EXPECT_EQ(blocks({{d, {96, 64}, 0, 96, 32, 64}}), 16);                                 // TP columns on a block
  EXPECT_EQ(blocks({{d, {96, 70}, 0, 96, 64, 70}}), 16);   // to the tensor's end, a partial block
  EXPECT_EQ(blocks({{g, {64, 96}, 8, 40, 0, 96}}), 0);     // rows start mid-block
  EXPECT_EQ(blocks({{g, {64, 96}, 0, 24, 0, 96}}), 0);     // rows end mid-block
  EXPECT_EQ(blocks({{d, {96, 64}, 0, 96, 16, 48}}), 0);    // columns start mid-block
  EXPECT_EQ(blocks({{d, {96, 64}, 0, 96, 0, 48}}), 0);     // columns end mid-block
  EXPECT_EQ(blocks({{g, {64, 96}, 48, 80, 0, 96}}), 0);    // rows past the end (padding)
  EXPECT_EQ(blocks({{g, {64, 96}, 0, 64, 0, 96}, {"model.norm.weight", {64, 96}, 0, 64, 0, 96}}), 0);  // one not fp8
  EXPECT_EQ(blocks({}), 0);
}

// The stacked scales: each slice's window of its scale tensor, the slices one after the other.
TEST(Fp8WeightReading, StackedScalesAreEachSlicesWindow) {
  const SafetensorsCheckpoint ckpt(kFixtures + "/deepseek-v3-fp8-tiny");
  const CheckpointWeights w(ckpt, 16, 16);
  const std::string g = "model.layers.1.mlp.experts.2.gate_proj.weight", d = "model.layers.1.mlp.experts.2.down_proj.weight";
  const StackedSlices slices = {{g, {16, 64}, 0, 16, 16, 48}, {d, {64, 16}, 32, 64, 0, 16}};
  ASSERT_EQ(fp8_stacked_blocks(w, {slices[0]}).rows, 16);
  const std::vector<float> got = read_fp8_stacked_scales(w, slices, Fp8Blocks{16, 16});
  const std::vector<float> gs = w.read_all<float>(fp8_scale_name(g), {1, 4}), ds = w.read_all<float>(fp8_scale_name(d), {4, 1});
  const std::vector<float> want = {gs[1], gs[2], ds[2], ds[3]};  // g's blocks 1-2 of row 0, d's rows 2-3
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace lockstep
