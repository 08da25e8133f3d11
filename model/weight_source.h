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

 private:
  const SafetensorsCheckpoint& ckpt_;
  int fp8_block_rows_, fp8_block_cols_;
};

// Values ~ U(-scale, scale) from a hash of (seed, name, row, column), rounded to the requested
// type: every rank computes the same full tensor no matter how it is sliced; norms are 1.
class DummyWeights final : public WeightSource {
 public:
  explicit DummyWeights(std::uint64_t seed = 0, float scale = 0.02f) : seed_(seed), scale_(scale) {}
  void read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                 std::int64_t c0, std::int64_t c1, DType to, void* out) const override;
  std::uint64_t bytes_read() const override { return bytes_; }

 private:
  template <typename W>
  void fill(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
            std::int64_t c0, std::int64_t c1, W* out) const;
  std::uint64_t seed_;
  float scale_;
  mutable std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace lockstep
