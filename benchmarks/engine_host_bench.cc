// The host's work in one engine step (schedule, plan, broadcast, retire, the scheduler's
// bookkeeping, and the tokens' detokenizing as `lockstep batch` does it) at serving batch sizes
// and contexts, with a model that takes no time: the part of a step the GPU waits for (on a GPU,
// StepGapMeter measures the wait itself; this finds where it goes, on any machine). The model
// also builds the KV slot list a GPU stage uploads each step. One rank (run it plainly or under
// mpirun -np 1).
//   engine_host_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "app/engine/block_manager.h"
#include "app/engine/lockstep_engine.h"
#include "app/engine/scheduler.h"
#include "comm/mpi_env.h"
#include "comm/rank_grid.h"
#include "kernels/fatal.h"
#include "model/forward_model.h"
#include "model/tokenizer/incremental_detokenizer.h"
#include "model/tokenizer/tokenizer.h"

namespace lockstep {
namespace {

const RankGrid* g_grid = nullptr;
constexpr int kBlockSize = 16, kMaxModelLen = 16384;

// Greedy ids at once: printable ASCII tokens of the byte-level vocabulary (ids 0-93 are '!'..'~'),
// so the detokenizer sees text that completes at every token, as real output mostly does.
class InstantModel final : public ForwardModel {
 public:
  explicit InstantModel(int num_blocks) : num_blocks_(num_blocks) {
    config_.architecture = "qwen2";
    config_.vocab_size = 151936;
  }
  std::span<const float> forward(const ForwardBatch&) override {
    LS_FATAL("engine_host_bench's model only answers greedy steps (forward_argmax)");
  }
  std::vector<int> forward_argmax(const ForwardBatch& b) override {
    benchmark::DoNotOptimize(kv_cache_slots(b, kBlockSize, num_blocks_));
    std::vector<int> ids(b.logit_rows.size());
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = (b.positions[b.logit_rows[i]] * 31 + 7) % 94;
    return ids;
  }
  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return kBlockSize; }
  int num_kv_blocks() const override { return num_blocks_; }

 private:
  ModelConfig config_;
  int num_blocks_;
};

// Args: sequences, context (prompt tokens), whether the tokens are detokenized.
void engine_step(benchmark::State& st) {
  const int batch = static_cast<int>(st.range(0)), context = static_cast<int>(st.range(1));
  const bool detokenize = st.range(2) != 0;
  const int num_blocks = batch * (kMaxModelLen / kBlockSize);
  InstantModel model(num_blocks);
  BlockManager blocks(num_blocks, kBlockSize, /*enable_prefix_caching=*/true);
  Scheduler scheduler({batch, 8192, kMaxModelLen, {}}, blocks);
  LockstepEngine engine(*g_grid, model, &scheduler);
  static const std::shared_ptr<const Tokenizer> tokenizer =
      Tokenizer::from_dir(std::string(LOCKSTEP_FIXTURES_DIR) + "/qwen2-tiny");
  std::map<std::uint64_t, IncrementalDetokenizer> detok;
  for (int i = 0; i < batch; ++i) {
    auto s = std::make_unique<Sequence>();
    s->id = static_cast<std::uint64_t>(i);
    for (int j = 0; j < context; ++j) s->tokens.push_back((i * 7919 + j * 104729 + 17) % 94);  // distinct prompts
    s->sampling.temperature = 0.0f;
    s->stop.max_tokens = kMaxModelLen - context - 1;
    s->stop.ignore_eos = true;
    if (auto why = scheduler.add(std::move(s))) {
      st.SkipWithError(why->c_str());
      return;
    }
    detok.emplace(static_cast<std::uint64_t>(i), IncrementalDetokenizer(tokenizer, true));
  }
  // Prefill until every sequence decodes one token a step.
  for (int done = 0; done < batch;) done += static_cast<int>(engine.step().tokens.size());
  for (auto _ : st) {
    StepOutput out = engine.step();
    if (detokenize)
      for (const TokenEvent& e : out.tokens) benchmark::DoNotOptimize(detok.at(e.id).push(e.token));
  }
  st.SetItemsProcessed(st.iterations() * batch);  // tokens a second
  engine.shutdown();
}

BENCHMARK(engine_step)
    ->ArgNames({"batch", "context", "detokenize"})
    ->Args({1, 256, 1})
    ->Args({32, 256, 1})
    ->Args({256, 1536, 0})
    ->Args({256, 1536, 1})
    ->Args({1024, 1536, 0})  // vLLM's offline default of 1024 sequences at a time
    ->Iterations(256)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  lockstep::MpiEnvironment env(argc, argv);
  lockstep::RankGrid grid(env, {1, 1});
  lockstep::g_grid = &grid;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
