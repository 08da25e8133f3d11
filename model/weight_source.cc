// WeightSource implementations (see weight_source.h).
#include "model/weight_source.h"

#include <algorithm>
#include <thread>

#include "model/safetensors_reader.h"

namespace lockstep {

std::vector<bf16> WeightSource::read_all(const std::string& name, const std::vector<std::int64_t>& shape) const {
  std::int64_t cols = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
  return read(name, shape, 0, shape.empty() ? 1 : shape[0], 0, cols);
}

std::vector<bf16> CheckpointWeights::read(const std::string& name, const std::vector<std::int64_t>& shape,
                                          std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) const {
  return ckpt_.read_bf16(ckpt_.get(name, shape), r0, r1, c0, c1);
}

std::uint64_t CheckpointWeights::bytes_read() const { return ckpt_.bytes_read(); }

std::vector<bf16> DummyWeights::read(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                                     std::int64_t r1, std::int64_t c0, std::int64_t c1) const {
  const bool norm = name.find("norm") != std::string::npos;
  std::uint64_t name_hash = 1469598103934665603ull ^ seed_;
  for (char ch : name) name_hash = (name_hash ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  std::int64_t cols = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
  const std::int64_t rows = shape.empty() ? 1 : shape[0];
  std::vector<bf16> out(static_cast<std::size_t>((r1 - r0) * (c1 - c0)), bf16{0});
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
        out[(r - r0) * (c1 - c0) + (c - c0)] = float_to_bf16(v);
      }
  };
  // Billions of values at real model shapes: spread big tensors over the host's cores.
  const std::int64_t last = std::min(r1, rows);
  const std::int64_t threads = out.size() < (1u << 22) ? 1 : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  const std::int64_t per = (last - r0 + threads - 1) / threads;
  for (std::int64_t b = r0; b < last; b += per) pool.emplace_back(fill_rows, b, std::min(last, b + per));
  for (std::thread& t : pool) t.join();
  bytes_ += out.size() * sizeof(bf16);
  return out;
}

}  // namespace lockstep
