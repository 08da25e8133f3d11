// upload_weight on a GPU: the device buffer holds exactly what read_stacked reads on the host,
// when a slice spans several staging chunks (rows cut at chunk boundaries, vocabulary padding
// rows past the tensor's end, column slices), when a chunk is read by several threads, and in
// fp16; block-fp8 codes and scales (upload_fp8_weight); a read's error reaches the caller. Skips
// where no GPU is visible (CI compiles it).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/device_buffer.h"
#include "kernels/pinned_uploader.h"
#include "model/fp8_weight_slices.h"
#include "model/layer_weights.h"
#include "model/weight_source.h"
#include "model/weight_upload.h"

namespace lockstep {
namespace {

template <HalfFloat W>
void expect_same_as_host(PinnedUploader& up, const WeightSource& w, const StackedSlices& slices) {
  const std::vector<W> want = read_stacked<W>(w, slices);
  const DeviceBuffer got = upload_weight(up, w, slices, dtype_of<W>);
  up.finish();
  ASSERT_EQ(got.bytes(), want.size() * sizeof(W));
  std::vector<W> back(want.size());
  got.copy_to_host(back.data(), got.bytes());
  std::size_t bad = 0, first_bad = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&back[i], &want[i], sizeof(W)) != 0 && bad++ == 0) first_bad = i;
  EXPECT_EQ(bad, 0u) << "first at element " << first_bad << " of " << want.size();
}

TEST(UploadWeight, ManyChunksPaddingRowsAndColumnSlicesMatchTheHostRead) {
  if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible";
  const DummyWeights w(7);
  PinnedUploader up(256);  // 8 rows of 16 bf16 a chunk: every slice below spans several
  const StackedSlices slices = {
      {"a.weight", {100, 24}, 10, 91, 4, 20},   // 81 rows, columns 4..19: a last partial chunk
      {"b.weight", {50, 16}, 40, 64, 0, 16},    // rows 50..63 past the end: zeros
      {"c.bias", {37}, 0, 37, 0, 1},            // a vector, one value a row
  };
  expect_same_as_host<bf16>(up, w, slices);
  expect_same_as_host<fp16>(up, w, slices);
  // The values are the source's, not zeros everywhere (the padding test above needs real rows).
  EXPECT_NE(read_stacked<bf16>(w, {slices[0]})[0].bits, 0);
}

TEST(UploadWeight, AChunkReadByThreadsMatchesTheHostRead) {
  if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible";
  const DummyWeights w(3);
  PinnedUploader up;  // 64 MB chunks: the 32 MB slice is one chunk, read in 4 MB pieces
  expect_same_as_host<bf16>(up, w, {{"big.weight", {4096, 4096}, 0, 4096, 0, 4096}});
  // Two slices stacked, the second starting mid-chunk on the device.
  expect_same_as_host<bf16>(up, w, {{"g.weight", {3000, 2048}, 0, 3000, 0, 2048},
                                    {"u.weight", {3000, 2048}, 0, 3000, 0, 2048}});
}

// Block fp8 (the routed experts a GPU keeps so): the codes stacked as read_fp8_into reads each
// slice, across staging chunks, and the slices' scale windows stacked after them; a stack that
// cannot stay fp8 is refused.
TEST(UploadWeight, Fp8CodesAndScalesStackAsTheHostReadsThem) {
  if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible";
  const DummyWeights w(9, 0.02f, Fp8Blocks{16, 32});
  PinnedUploader up(256);  // 2 rows of 96 codes a chunk
  const std::string g = "model.layers.1.mlp.experts.4.gate_proj.weight", u = "model.layers.1.mlp.experts.4.up_proj.weight";
  const StackedSlices slices = {{g, {64, 96}, 16, 48, 0, 96}, {u, {64, 96}, 16, 48, 0, 96}};
  const Fp8DeviceWeight got = upload_fp8_weight(up, w, slices);
  up.finish();
  EXPECT_EQ(got.block_rows, 16);
  EXPECT_EQ(got.block_cols, 32);
  std::vector<std::uint8_t> want(2 * 32 * 96), back(want.size());
  w.read_fp8_into(g, {64, 96}, 16, 48, 0, 96, want.data());
  w.read_fp8_into(u, {64, 96}, 16, 48, 0, 96, want.data() + 32 * 96);
  ASSERT_EQ(got.values.bytes(), want.size());
  got.values.copy_to_host(back.data(), back.size());
  EXPECT_EQ(back, want);
  const std::vector<float> want_scales = read_fp8_stacked_scales(w, slices, Fp8Blocks{16, 32});
  ASSERT_EQ(want_scales.size(), 4u * 3u);  // 2 block rows of each slice, 3 block columns
  std::vector<float> scales(want_scales.size());
  ASSERT_EQ(got.scales.bytes(), scales.size() * sizeof(float));
  got.scales.copy_to_host(scales.data(), got.scales.bytes());
  EXPECT_EQ(scales, want_scales);
  EXPECT_THROW(upload_fp8_weight(up, w, {{g, {64, 96}, 8, 40, 0, 96}}), CheckpointError);  // rows off the blocks
}

class ThrowingWeights final : public WeightSource {
 public:
  void read_into(const std::string& name, const std::vector<std::int64_t>&, std::int64_t, std::int64_t, std::int64_t,
                 std::int64_t, DType, void*) const override {
    throw CheckpointError("tensor " + name + " is missing");
  }
  std::uint64_t bytes_read() const override { return 0; }
};

TEST(UploadWeight, RethrowsTheSourcesError) {
  if (visible_gpu_count() == 0) GTEST_SKIP() << "no GPU visible";
  const ThrowingWeights w;
  PinnedUploader up;
  std::string what;
  try {
    upload_weight(up, w, {{"x.weight", {4096, 4096}, 0, 4096, 0, 4096}}, DType::BF16);
  } catch (const CheckpointError& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("tensor x.weight is missing"), std::string::npos) << what;
  up.finish();
}

}  // namespace
}  // namespace lockstep
