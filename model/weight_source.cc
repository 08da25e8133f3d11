// WeightSource implementations (see weight_source.h).
#include "model/weight_source.h"

#include <algorithm>
#include <thread>

#include "kernels/fp8.h"
#include "model/safetensors_reader.h"
#include "model/weight_type.h"

namespace lockstep {

void CheckpointWeights::read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                                  std::int64_t r1, std::int64_t c0, std::int64_t c1, DType to, void* out) const {
  const TensorInfo& t = ckpt_.get(name, shape);
  BlockScales scales;
  if (t.dtype == WeightDType::F8_E4M3) {
    const std::string scale_name = fp8_scale_name(name);
    check_fp8_scales(name, ckpt_.has(scale_name));
    scales.block_rows = fp8_block_rows_;
    scales.block_cols = fp8_block_cols_;
    scales.scale_inv = &ckpt_.get(scale_name, fp8_scale_shape(t.rows(), t.cols(), fp8_block_rows_, fp8_block_cols_));
  }
  const BlockScales* s = scales.scale_inv ? &scales : nullptr;
  if (to == DType::F32) return ckpt_.read_into(t, r0, r1, c0, c1, static_cast<float*>(out), s);
  with_weight_type(to, [&]<HalfFloat W>(W) { ckpt_.read_into(t, r0, r1, c0, c1, static_cast<W*>(out), s); });
}

std::uint64_t CheckpointWeights::bytes_read() const { return ckpt_.bytes_read(); }

namespace {

// The dummy values' hash of (name, seed) and of a value's index in the full tensor.
std::uint64_t name_hash(const std::string& name, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ull ^ seed;
  for (char ch : name) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  return h;
}
std::uint64_t value_hash(std::uint64_t name, std::int64_t index) {
  std::uint64_t h = name + static_cast<std::uint64_t>(index) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}
// A finite e4m3 code from a hash: any sign and magnitude but 0x7F (e4m3fn's NaN).
std::uint8_t fp8_code(std::uint64_t h) {
  const auto code = static_cast<std::uint8_t>(h >> 40);
  return (code & 0x7F) == 0x7F ? static_cast<std::uint8_t>(code - 1) : code;
}

// fill_rows(begin, end) over rows [r0, last) of a slice of `count` values. Billions of values at
// real model shapes: spread over the host's cores, a thread per 256k values at least (an MoE's
// experts come one small tensor at a time: Moonlight's are 2.9M values each, which a threshold of
// 4M left on one core, 0.66 GB/s on a 16-core GPU host).
template <typename Fill>
void fill_threaded(std::int64_t r0, std::int64_t last, std::size_t count, Fill&& fill_rows) {
  const std::int64_t threads = std::clamp<std::int64_t>(static_cast<std::int64_t>(count >> 18), 1,
                                                        std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  const std::int64_t per = (last - r0 + threads - 1) / threads;
  for (std::int64_t b = r0; b < last; b += per) pool.emplace_back(fill_rows, b, std::min(last, b + per));
  for (std::thread& t : pool) t.join();
}

}  // namespace

Fp8Blocks WeightSource::fp8_blocks(const std::string&) const { return {}; }

void WeightSource::read_fp8_into(const std::string& name, const std::vector<std::int64_t>&, std::int64_t,
                                 std::int64_t, std::int64_t, std::int64_t, std::uint8_t*) const {
  throw CheckpointError("tensor " + name + " is not stored as block fp8: its codes cannot be read as stored");
}

Fp8Blocks CheckpointWeights::fp8_blocks(const std::string& name) const {
  if (!ckpt_.has(name) || ckpt_.get(name, {}).dtype != WeightDType::F8_E4M3) return {};
  check_fp8_scales(name, ckpt_.has(fp8_scale_name(name)));
  return {fp8_block_rows_, fp8_block_cols_};
}

void CheckpointWeights::read_fp8_into(const std::string& name, const std::vector<std::int64_t>& shape,
                                      std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1,
                                      std::uint8_t* out) const {
  const TensorInfo& t = ckpt_.get(name, shape);
  if (t.dtype != WeightDType::F8_E4M3)
    throw CheckpointError("tensor " + name + " is stored as " + weight_dtype_name(t.dtype) +
                          ", not as block fp8: its codes cannot be read as stored");
  ckpt_.read_bytes_into(t, r0, r1, c0, c1, out);
}

Fp8Blocks DummyWeights::fp8_blocks(const std::string& name) const {
  return fp8_.stored() && name.find(".mlp.experts.") != std::string::npos && name.ends_with(".weight") ? fp8_
                                                                                                         : Fp8Blocks{};
}

void DummyWeights::read_fp8_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                                 std::int64_t r1, std::int64_t c0, std::int64_t c1, std::uint8_t* out) const {
  if (!fp8_blocks(name).stored()) WeightSource::read_fp8_into(name, shape, r0, r1, c0, c1, out);
  const std::uint64_t nh = name_hash(name, seed_);
  std::int64_t cols = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
  const std::int64_t last = std::max(r0, std::min(r1, shape.empty() ? 1 : shape[0]));
  const std::size_t count = static_cast<std::size_t>((r1 - r0) * (c1 - c0));
  fill_threaded(r0, last, count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r)
      for (std::int64_t c = c0; c < c1; ++c) out[(r - r0) * (c1 - c0) + (c - c0)] = fp8_code(value_hash(nh, r * cols + c));
  });
  std::fill(out + (last - r0) * (c1 - c0), out + count, std::uint8_t{0});
  bytes_ += count;
}

template <typename W>
void DummyWeights::fill(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                        std::int64_t r1, std::int64_t c0, std::int64_t c1, W* out) const {
  const bool norm = name.find("norm") != std::string::npos;
  // An fp8 expert weight: its codes times the one scale of every block; its NAME_scale_inv: that scale.
  const float fp8_scale = scale_ / 448.0f;
  const bool fp8 = fp8_blocks(name).stored();
  const bool fp8_scales = name.ends_with("_scale_inv") &&
                          fp8_blocks(name.substr(0, name.size() - std::string("_scale_inv").size())).stored();
  const std::uint64_t nh = name_hash(name, seed_);
  std::int64_t cols = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
  const std::int64_t rows = shape.empty() ? 1 : shape[0];
  const std::size_t count = static_cast<std::size_t>((r1 - r0) * (c1 - c0));
  const std::int64_t last = std::max(r0, std::min(r1, rows));
  // The kind of value is chosen once, so each row's loop is a tight run of hashes (the load of a
  // 70B model's dummy weights is this loop: 70 G values).
  const auto store = [](W* at, float v) {
    if constexpr (std::same_as<W, float>) *at = v;
    else *at = from_float<W>(v);
  };
  fill_threaded(r0, last, count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      W* row = out + (r - r0) * (c1 - c0);
      const std::int64_t base = r * cols;
      if (fp8_scales || (norm && !fp8)) {
        const float v = fp8_scales ? fp8_scale : 1.0f;
        for (std::int64_t c = c0; c < c1; ++c) store(row + (c - c0), v);
      } else if (fp8) {
        for (std::int64_t c = c0; c < c1; ++c)
          store(row + (c - c0), to_float(fp8_e4m3{fp8_code(value_hash(nh, base + c))}) * fp8_scale);
      } else {
        for (std::int64_t c = c0; c < c1; ++c) {
          const std::uint64_t h = value_hash(nh, base + c);
          store(row + (c - c0), scale_ * (static_cast<float>(h >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f));
        }
      }
    }
  });
  std::fill(out + (last - r0) * (c1 - c0), out + count, W{0});  // vocabulary padding
  bytes_ += count * sizeof(W);
}

void DummyWeights::read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                             std::int64_t r1, std::int64_t c0, std::int64_t c1, DType to, void* out) const {
  if (to == DType::F32) return fill(name, shape, r0, r1, c0, c1, static_cast<float*>(out));
  with_weight_type(to, [&]<HalfFloat W>(W) { fill(name, shape, r0, r1, c0, c1, static_cast<W*>(out)); });
}

}  // namespace lockstep
