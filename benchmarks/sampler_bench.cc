// The host sampler (model/sampler.h) on one row of a 152k vocabulary (Qwen2's), per filter, on a
// flat and a peaked distribution: the rows a GPU step hands to the host when they are not all
// greedy, so at batch 256 this is per-step time divided by the sampling threads.
// Run: build/benchmarks/sampler_bench
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "model/sampler.h"

namespace lockstep {
namespace {

constexpr int kVocab = 152064;

// logits ~ N(0, spread): spread 1 at temperature 0.6 leaves the top-p 0.95 set most of the
// vocabulary (random weights do this); spread 6 leaves a few tokens (a trained model's usual).
void bm_sample(benchmark::State& state, float spread, SamplingParams params) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = normal(gen);
  SamplerRng rng(11);
  for (auto _ : state) benchmark::DoNotOptimize(sample_token(logits.data(), kVocab, params, rng));
}

void register_benchmarks() {
  struct Filter {
    const char* name;
    SamplingParams params;
  };
  SamplingParams plain, top_p, top_k, min_p, greedy;
  plain.temperature = top_p.temperature = top_k.temperature = min_p.temperature = 0.6f;
  top_p.top_p = 0.95f;  // DeepSeek-R1's recommended settings
  top_k.top_k = 50;
  min_p.min_p = 0.05f;
  greedy.temperature = 0.0f;
  for (const Filter& f : {Filter{"greedy", greedy}, Filter{"plain", plain}, Filter{"top_p_0.95", top_p},
                          Filter{"top_k_50", top_k}, Filter{"min_p_0.05", min_p}})
    for (const float spread : {1.0f, 6.0f}) {
      const std::string name = std::string("sample_token/") + f.name + "/spread:" + std::to_string(int(spread));
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bm_sample(st, spread, f.params); })
          ->Unit(benchmark::kMillisecond);
    }
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  lockstep::register_benchmarks();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
