// Seeded random inputs for the CPU op tests: n values ~ N(0, sigma).
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace lockstep::testing {

inline std::vector<float> normal(std::size_t n, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace lockstep::testing
