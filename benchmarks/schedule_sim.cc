// Replays the engine's scheduler and block manager over an offline run's shape (vLLM's
// benchmark_throughput: N prompts of L random tokens, O new tokens each, EOS ignored) with no
// model: the steps, preemptions and tokens computed again that a KV-cache size and the batch
// limits give, before the run takes GPU time. Each step's decode tokens and prefill tokens are
// what the GPU would compute. Example (the 1k/1k run at vLLM's offline defaults on one H200 with
// a bf16 cache: `lockstep batch` logs 120162 KV blocks), on one line:
//   schedule_sim --num-prompts 1024 --input-len 1024 --output-len 1024 --num-kv-blocks 120162
//       --max-num-seqs 1024 --max-num-batched-tokens 16384
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>

#include "app/engine/block_manager.h"
#include "app/engine/scheduler.h"

int main(int argc, char** argv) {
  using namespace lockstep;
  CLI::App app{"Replays the scheduler over N prompts of L tokens, O new each, with no model"};
  int prompts = 0, input_len = 0, output_len = 0, kv_blocks = 0, block_size = 16;
  SchedulerConfig config;
  config.max_model_len = 0;
  app.add_option("--num-prompts", prompts, "prompts")->required()->check(CLI::PositiveNumber);
  app.add_option("--input-len", input_len, "tokens a prompt")->required()->check(CLI::PositiveNumber);
  app.add_option("--output-len", output_len, "new tokens a prompt")->required()->check(CLI::PositiveNumber);
  app.add_option("--num-kv-blocks", kv_blocks, "KV-cache blocks (lockstep batch logs its count)")
      ->required()->check(CLI::PositiveNumber);
  app.add_option("--block-size", block_size, "tokens a KV block")->check(CLI::PositiveNumber);
  app.add_option("--max-num-seqs", config.max_num_seqs, "sequences a step")->check(CLI::PositiveNumber);
  app.add_option("--max-num-batched-tokens", config.max_num_batched_tokens, "tokens a step")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-model-len", config.max_model_len, "context length (default: input + output + 1)");
  CLI11_PARSE(app, argc, argv);
  if (config.max_model_len <= 0) config.max_model_len = input_len + output_len + 1;

  BlockManager blocks(kv_blocks, block_size, /*enable_prefix_caching=*/true);
  Scheduler scheduler(config, blocks);
  std::mt19937 gen(1);
  std::uniform_int_distribution<int> token(0, 150000);
  for (int i = 0; i < prompts; ++i) {
    auto seq = std::make_unique<Sequence>();
    seq->id = static_cast<std::uint64_t>(i) + 1;
    for (int t = 0; t < input_len; ++t) seq->tokens.push_back(token(gen));
    seq->stop.max_tokens = output_len;
    seq->stop.ignore_eos = true;
    if (auto error = scheduler.add(std::move(seq))) {
      std::fprintf(stderr, "schedule_sim: request %d refused: %s\n", i, error->c_str());
      return 1;
    }
  }
  long steps = 0, prefill_tokens = 0, decode_tokens = 0, mixed_steps = 0, largest_step = 0;
  while (!scheduler.idle()) {
    const std::vector<ScheduledChunk> chunks = scheduler.schedule();
    if (chunks.empty()) {
      std::fprintf(stderr, "schedule_sim: the scheduler made no progress at step %ld\n", steps);
      return 1;
    }
    long decode = 0, prefill = 0;
    for (const ScheduledChunk& c : chunks) (c.count == 1 && c.start >= c.seq->prompt_len ? decode : prefill) += c.count;
    ++steps;
    decode_tokens += decode, prefill_tokens += prefill;
    mixed_steps += decode > 0 && prefill > 0;
    largest_step = std::max<long>(largest_step, static_cast<long>(chunks.size()));
    scheduler.complete(chunks, std::vector<int>(chunks.size(), 0));
  }
  const double prompt_tokens = static_cast<double>(prompts) * input_len;
  std::printf("steps %ld, preemptions %llu, prefill tokens %ld (%.3f x the prompts'), decode tokens %ld, "
              "decode tokens a step %.1f, sequences in the largest step %ld, steps mixing prefill and decode %ld\n",
              steps, static_cast<unsigned long long>(scheduler.preemptions()), prefill_tokens,
              prefill_tokens / prompt_tokens, decode_tokens, static_cast<double>(decode_tokens) / steps, largest_step,
              mixed_steps);
  return 0;
}
