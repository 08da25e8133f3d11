// Where a rank's weights come from: a hub checkpoint (SafetensorsCheckpoint) or, for
// `--load-format dummy`, deterministic random values at the right shapes (benchmarks without
// downloading a model). Callers always state the shape they expect, so a checkpoint whose
// tensors do not fit its config.json fails with the tensor's name.
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
  // has one column); rows past the end read as zero (vocabulary padding). Safe to call from
  // several threads at once (LayerPrefetcher reads ahead while the stage reads its edges).
  virtual std::vector<bf16> read(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                                 std::int64_t r1, std::int64_t c0, std::int64_t c1) const = 0;
  std::vector<bf16> read_all(const std::string& name, const std::vector<std::int64_t>& shape) const;
  virtual std::uint64_t bytes_read() const = 0;
};

class CheckpointWeights final : public WeightSource {
 public:
  explicit CheckpointWeights(const SafetensorsCheckpoint& ckpt) : ckpt_(ckpt) {}
  std::vector<bf16> read(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                         std::int64_t r1, std::int64_t c0, std::int64_t c1) const override;
  std::uint64_t bytes_read() const override;

 private:
  const SafetensorsCheckpoint& ckpt_;
};

// Values ~ U(-scale, scale) from a hash of (seed, name, row, column): every rank computes the
// same full tensor no matter how it is sliced; norms are 1.
class DummyWeights final : public WeightSource {
 public:
  explicit DummyWeights(std::uint64_t seed = 0, float scale = 0.02f) : seed_(seed), scale_(scale) {}
  std::vector<bf16> read(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                         std::int64_t r1, std::int64_t c0, std::int64_t c1) const override;
  std::uint64_t bytes_read() const override { return bytes_; }

 private:
  std::uint64_t seed_;
  float scale_;
  mutable std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace lockstep
