// Where a rank's weights come from: a hub checkpoint (SafetensorsCheckpoint) or, for
// `--load-format dummy`, deterministic random values at the right shapes (benchmarks without
// downloading a model). Callers always state the shape they expect, so a checkpoint whose
// tensors do not fit its config.json fails with the tensor's name. Weights are read in the
// 16-bit type the model runs in (W: bf16, or fp16 for --dtype half), whatever the checkpoint
// stores.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace lockstep {

class SafetensorsCheckpoint;

// The block shape of a weight stored in DeepSeek's block-scaled fp8 ({0, 0}: not stored so).
struct Fp8Blocks {
  int rows = 0, cols = 0;
  bool stored() const { return rows > 0; }
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Rows [r0, r1) x columns [c0, c1) of tensor `name` whose shape must be `shape` (a vector
  // has one column), in W; rows past the end read as zero (vocabulary padding). Safe to call
  // from several threads at once (LayerPrefetcher reads ahead while the stage reads its edges).
  template <typename W>
    requires HalfFloat<W> || std::same_as<W, float>
  std::vector<W> read(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                      std::int64_t r1, std::int64_t c0, std::int64_t c1) const {
    std::vector<W> out(static_cast<std::size_t>((r1 - r0) * (c1 - c0)));
    read_into(name, shape, r0, r1, c0, c1, dtype_of<W>, out.data());
    return out;
  }
  template <typename W>
    requires HalfFloat<W> || std::same_as<W, float>
  std::vector<W> read_all(const std::string& name, const std::vector<std::int64_t>& shape) const {
    std::int64_t cols = 1;
    for (std::size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
    return read<W>(name, shape, 0, shape.empty() ? 1 : shape[0], 0, cols);
  }
  // What read does, for implementations: writes the (r1 - r0) x (c1 - c0) values as `to`
  // (BF16, F16 or F32; CheckpointError otherwise) to `out`, padding rows included.
  virtual void read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                         std::int64_t r1, std::int64_t c0, std::int64_t c1, DType to, void* out) const = 0;
  virtual std::uint64_t bytes_read() const = 0;

  // Block-scaled fp8 as the checkpoint stores it (DeepSeek's), for a GPU that keeps it so
  // (weight_upload.h): tensor `name`'s blocks when it is stored as fp8 e4m3 with its
  // NAME_scale_inv beside it (fp8_scale_name; read as F32 like any tensor), {0, 0} otherwise
  // and for sources that store no fp8.
  virtual Fp8Blocks fp8_blocks(const std::string& name) const;
  // Rows [r0, r1) x columns [c0, c1) of such a tensor, its stored codes (a byte a value), rows
  // past the end zero. CheckpointError for a tensor not stored as fp8.
  virtual void read_fp8_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                             std::int64_t r1, std::int64_t c0, std::int64_t c1, std::uint8_t* out) const;
};

// Copies the stored bits when the checkpoint holds the tensor in the requested type; converts
// through float otherwise (SafetensorsCheckpoint::read_into). A tensor stored as fp8 is
// dequantized with its NAME_scale_inv, one fp32 scale per fp8_block_rows x fp8_block_cols block
// (ModelConfig's, from quantization_config); without one it is an error.
class CheckpointWeights final : public WeightSource {
 public:
  explicit CheckpointWeights(const SafetensorsCheckpoint& ckpt, int fp8_block_rows = 128, int fp8_block_cols = 128)
      : ckpt_(ckpt), fp8_block_rows_(fp8_block_rows), fp8_block_cols_(fp8_block_cols) {}
  void read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                 std::int64_t c0, std::int64_t c1, DType to, void* out) const override;
  std::uint64_t bytes_read() const override;
  Fp8Blocks fp8_blocks(const std::string& name) const override;
  void read_fp8_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                     std::int64_t c0, std::int64_t c1, std::uint8_t* out) const override;

 private:
  const SafetensorsCheckpoint& ckpt_;
  int fp8_block_rows_, fp8_block_cols_;
};

// Values ~ U(-scale, scale) from a hash of (seed, name, row, column), rounded to the requested
// type: every rank computes the same full tensor no matter how it is sliced; norms are 1. With
// fp8 blocks (a config whose quantization_config says block fp8), the routed experts' weights
// (".mlp.experts.") are stored as fp8 as R1's checkpoint has them: codes from the same hash,
// every block's scale scale / 448 (so values stay within +-scale), and read_into dequantizes them.
class DummyWeights final : public WeightSource {
 public:
  static constexpr float kDefaultScale = 0.02f;
  explicit DummyWeights(std::uint64_t seed = 0, float scale = kDefaultScale, Fp8Blocks fp8 = {})
      : seed_(seed), scale_(scale), fp8_(fp8) {}
  void read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                 std::int64_t c0, std::int64_t c1, DType to, void* out) const override;
  std::uint64_t bytes_read() const override { return bytes_; }
  Fp8Blocks fp8_blocks(const std::string& name) const override;
  void read_fp8_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                     std::int64_t c0, std::int64_t c1, std::uint8_t* out) const override;

 private:
  template <typename W>
  void fill(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
            std::int64_t c0, std::int64_t c1, W* out) const;
  std::uint64_t seed_;
  float scale_;
  Fp8Blocks fp8_;
  mutable std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace lockstep
