// WeightSource implementations (see weight_source.h).
#include "model/weight_source.h"

#include <algorithm>
#include <thread>

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

template <typename W>
void DummyWeights::fill(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                        std::int64_t r1, std::int64_t c0, std::int64_t c1, W* out) const {
  const bool norm = name.find("norm") != std::string::npos;
  std::uint64_t name_hash = 1469598103934665603ull ^ seed_;
  for (char ch : name) name_hash = (name_hash ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  std::int64_t cols = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
  const std::int64_t rows = shape.empty() ? 1 : shape[0];
  const std::size_t count = static_cast<std::size_t>((r1 - r0) * (c1 - c0));
  auto fill_rows = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r)
      for (std::int64_t c = c0; c < c1; ++c) {
        float v = 1.0f;
        if (!norm) {
          std::uint64_t h = name_hash + static_cast<std::uint64_t>(r * cols + c) * 0x9E3779B97F4A7C15ull;
          h ^= h >> 31;
          h *= 0xBF58476D1CE4E5B9ull;
          h ^= h >> 29;
          v = scale_ * (static_cast<float>(h >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f);
        }
        if constexpr (std::same_as<W, float>) out[(r - r0) * (c1 - c0) + (c - c0)] = v;
        else out[(r - r0) * (c1 - c0) + (c - c0)] = from_float<W>(v);
      }
  };
  // Billions of values at real model shapes: spread over the host's cores, a thread per 256k
  // values at least (an MoE's experts come one small tensor at a time: Moonlight's are 2.9M
  // values each, which a threshold of 4M left on one core, 0.66 GB/s on a 16-core GPU host).
  const std::int64_t last = std::min(r1, rows);
  const std::int64_t threads = std::clamp<std::int64_t>(static_cast<std::int64_t>(count >> 18), 1,
                                                        std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  const std::int64_t per = (last - r0 + threads - 1) / threads;
  for (std::int64_t b = r0; b < last; b += per) pool.emplace_back(fill_rows, b, std::min(last, b + per));
  for (std::thread& t : pool) t.join();
  std::fill(out + std::max<std::int64_t>(0, last - r0) * (c1 - c0), out + count, W{0});  // vocabulary padding
  bytes_ += count * sizeof(W);
}

void DummyWeights::read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                             std::int64_t r1, std::int64_t c0, std::int64_t c1, DType to, void* out) const {
  if (to == DType::F32) return fill(name, shape, r0, r1, c0, c1, static_cast<float*>(out));
  with_weight_type(to, [&]<HalfFloat W>(W) { fill(name, shape, r0, r1, c0, c1, static_cast<W*>(out)); });
}

}  // namespace lockstep
